import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { describe, it, expect } from 'vitest';
import { sql } from 'kysely';
import { dialects, withSteward } from './helpers/steward.js';
import { providedPgUrl } from './helpers/pg-schema.js';
import { copyRows } from '../src/store/bulk.js';
import { verifyLedger } from '../src/ledger/verify.js';
import { EVENT_COLUMNS } from '../src/ledger/ledger.js';
import type { NewEvent } from '../src/ledger/event.js';

/** Text that COPY's text format must escape, and text that merely looks like its markers. */
const AWKWARD = ['tab\there', 'line\nbreak', 'cr\rhere', 'back\\slash', '\\N', 'N', '', '"quoted"', 'é𝄞'];

function events(n: number, from = 0): NewEvent[] {
  return Array.from({ length: n }, (_, k) => {
    const i = from + k;
    const text = AWKWARD[i % AWKWARD.length]!;
    return {
      type: 'test.noted',
      subject: `note:${i}\t${text}`,
      identityId: i % 3 === 0 ? null : `nhi_${text}_${i % 17}`,
      payload: { set: { text }, i, nested: { list: [text, i, null, true] } },
      effectiveAt: new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString(),
    };
  });
}

describe('COPY text encoding', () => {
  it('escapes backslash, tab, newline and carriage return and writes null as \\N', () => {
    expect(copyRows([['a\tb', null, 3, true, 'x\\N', 'l1\nl2\r']])).toBe(
      'a\\tb\t\\N\t3\ttrue\tx\\\\N\tl1\\nl2\\r\n',
    );
  });
});

describe.each(dialects)('bulk ledger writes on $name', (dialect) => {
  it('stores awkward text byte for byte through the bulk path (COPY on a server) and the chain verifies', async () => {
    await withSteward(dialect, async (env) => {
      const all = events(3000);
      await env.steward.ledger.write({ actor: 'tab\tactor', reason: 'why\nnot' }, async (w) => {
        w.append(all.slice(0, 1700));
        await w.flush();
        w.append(all.slice(1700));
      });
      const rows = await env.steward.store.db
        .selectFrom('events')
        .select(['seq', 'subject', 'identity_id', 'payload', 'actor', 'reason'])
        .orderBy('seq')
        .execute();
      expect(rows).toHaveLength(3000);
      for (const [k, r] of rows.entries()) {
        const e = all[k]!;
        expect(r.subject).toBe(e.subject);
        expect(r.identity_id).toBe(e.identityId);
        expect(JSON.parse(r.payload)).toEqual(e.payload);
        expect(r.actor).toBe('tab\tactor');
        expect(r.reason).toBe('why\nnot');
      }
      expect((await verifyLedger(env.steward.store, env.steward.keys)).ok).toBe(true);
    });
  });

  it('a failure in the middle of a bulk write rolls the whole transaction back and the store stays usable', async () => {
    await withSteward(dialect, async (env) => {
      await env.steward.ledger.write({ actor: 't' }, (w) => {
        w.append(events(10));
        return Promise.resolve();
      });
      const poisoned = events(2500, 10);
      // a payload with no JSON encoding, in the fourth chunk: rows of earlier chunks are already written
      poisoned[2100] = { ...poisoned[2100]!, payload: { bad: Number.NaN } };
      await expect(
        env.steward.ledger.write({ actor: 't' }, async (w) => {
          w.append(poisoned);
          await w.flush();
        }),
      ).rejects.toThrow(/NaN/);
      // …and in the very first chunk, before the database has even answered the bulk write
      const first = events(600, 10);
      first[0] = { ...first[0]!, payload: { bad: Number.NaN } };
      await expect(
        env.steward.ledger.write({ actor: 't' }, (w) => {
          w.append(first);
          return w.flush();
        }),
      ).rejects.toThrow(/NaN/);
      expect((await env.steward.ledger.head()).seq).toBe(10);
      const count = await env.steward.store.db
        .selectFrom('events')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      expect(Number(count.n)).toBe(10);
      // a row the database refuses (a duplicate key) fails the bulk insert the same way
      await expect(
        env.steward.store.db.transaction().execute(async (tx) => {
          const row = [1, 't', 's', null, '{}', 'a', null, 'x', 'x', 'p', 'h'];
          await env.steward.store.bulkInsert(
            tx,
            'events',
            EVENT_COLUMNS,
            Array.from({ length: 100 }, (_, i) => [i + 1000, ...row.slice(1)]).concat([row]),
          );
        }),
      ).rejects.toThrow();
      await env.steward.ledger.write({ actor: 't' }, (w) => {
        w.append(events(5, 5000));
        return Promise.resolve();
      });
      expect((await env.steward.ledger.head()).seq).toBe(15);
      expect((await verifyLedger(env.steward.store, env.steward.keys)).ok).toBe(true);
    });
  });

  // a server only (PGlite runs in-process, with no pool and no JIT)
  if (dialect.name === 'postgres' && providedPgUrl() !== 'pglite')
    it("every connection of a server's pool has JIT compilation off, inside transactions too", async () => {
      await withSteward(dialect, async (env) => {
        const { db } = env.steward.store;
        const show = async (q: Parameters<typeof sql.raw>[0] = 'SHOW jit') =>
          (await sql.raw<{ jit: string }>(q).execute(db)).rows[0]?.jit;
        expect(await show()).toBe('off');
        // as many at once as the pool holds: each is a connection of its own
        expect(await Promise.all([show(), show(), show(), show()])).toEqual(['off', 'off', 'off', 'off']);
        const inTx = await db
          .transaction()
          .execute(async (tx) => (await sql<{ jit: string }>`SHOW jit`.execute(tx)).rows[0]?.jit);
        expect(inTx).toBe('off');
      });
    });
});

describe('SQLite checkpoints on a worker thread during bulk writes', () => {
  it('moves checkpoints off the writer after 20,000 bulk rows; the log is copied back and the file closes clean', async () => {
    const sqlite = dialects.find((d) => d.name === 'sqlite')!;
    await withSteward(sqlite, async (env) => {
      const store = env.steward.store;
      for (let t = 0; t < 3; t++) {
        await env.steward.ledger.write({ actor: 't' }, (w) => {
          w.append(events(10_000, t * 10_000));
          return Promise.resolve();
        });
      }
      const auto = await sql<{ wal_autocheckpoint: number }>`PRAGMA wal_autocheckpoint`.execute(store.db);
      expect(auto.rows[0]!.wal_autocheckpoint).toBe(0);
      // the worker copies committed frames into the database file itself, without the writer:
      // a copy of the file alone (no log) holds every event
      const copy = path.join(os.tmpdir(), `steward-ckpt-${process.pid}.db`);
      let inFile = 0;
      for (let i = 0; i < 50 && inFile < 30_000; i++) {
        await new Promise((r) => setTimeout(r, 100));
        fs.copyFileSync(env.url, copy);
        const db = new BetterSqlite3(copy, { readonly: true });
        try {
          inFile = (db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n;
        } catch {
          // a copy taken while the worker writes pages may be torn (the live file is not): retry
        } finally {
          db.close();
          fs.rmSync(copy, { force: true });
        }
      }
      expect(inFile).toBe(30_000);
      const reopened = await env.reopen();
      expect((await reopened.ledger.head()).seq).toBe(30_000);
      expect((await verifyLedger(reopened.store, reopened.keys)).ok).toBe(true);
    });
  });
});
