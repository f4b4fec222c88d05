import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { sql } from 'kysely';
import { dialects, withSteward, type TestEnv } from './helpers/steward.js';
import { verifyLedger } from '../src/ledger/verify.js';
import type { NewEvent } from '../src/ledger/event.js';
import type { Store } from '../src/store/store.js';

const ev = (i: number, t = '2026-01-01T00:00:00.000Z'): NewEvent => ({
  type: 'note.recorded',
  subject: `note:${i}`,
  payload: { text: `n${i}`, n: i },
  effectiveAt: t,
});

async function appendNotes(env: TestEnv, n: number, batch = n): Promise<void> {
  for (let i = 0; i < n; i += batch) {
    await env.steward.ledger.write({ actor: 'test', reason: 'notes' }, (w) => {
      w.append(Array.from({ length: Math.min(batch, n - i) }, (_, k) => ev(i + k)));
      return Promise.resolve();
    });
  }
}

/** Runs raw SQL with the append-only triggers out of the way, as an attacker with database access would. */
async function tamper(store: Store, statements: string[]): Promise<void> {
  if (store.dialect === 'sqlite') {
    await sql.raw('DROP TRIGGER events_no_update').execute(store.db);
    await sql.raw('DROP TRIGGER events_no_delete').execute(store.db);
    for (const s of statements) await sql.raw(s).execute(store.db);
  } else {
    await sql.raw('ALTER TABLE events DISABLE TRIGGER USER').execute(store.db);
    for (const s of statements) await sql.raw(s).execute(store.db);
    await sql.raw('ALTER TABLE events ENABLE TRIGGER USER').execute(store.db);
  }
}

describe.each(dialects)('ledger on $name', (dialect) => {
  it('chains events, signs checkpoints every N events and verifies', async () => {
    await withSteward(
      dialect,
      async (env) => {
        await appendNotes(env, 25, 5);
        const report = await verifyLedger(env.steward.store, env.steward.keys);
        expect(report).toMatchObject({ ok: true, events: 25, headSeq: 25 });
        // the first commit is signed (no checkpoint yet), then every 10 events at the commit that crosses the mark
        const seqs = (
          await env.steward.store.db.selectFrom('checkpoints').select('seq').orderBy('seq').execute()
        ).map((r) => Number(r.seq));
        expect(seqs).toEqual([5, 15, 25]);
        expect(report.checkpoints.verified).toBe(3);
        await appendNotes(env, 2);
        // an hour later, a commit is signed even below the count
        env.clock.advance(3600_000);
        await appendNotes(env, 1);
        const cp = await env.steward.ledger.checkpoint();
        expect(cp?.seq).toBe(28);
        const after = (
          await env.steward.store.db.selectFrom('checkpoints').select('seq').orderBy('seq').execute()
        ).map((r) => Number(r.seq));
        expect(after).toEqual([5, 15, 25, 28]);
        expect((await verifyLedger(env.steward.store, env.steward.keys)).checkpoints.verified).toBe(4);
      },
      { checkpointEvery: 10 },
    );
  });

  it('the database itself refuses updates and deletes of ledger rows', async () => {
    await withSteward(dialect, async (env) => {
      await appendNotes(env, 3);
      const db = env.steward.store.db;
      await expect(
        db.updateTable('events').set({ actor: 'mallory' }).where('seq', '=', 2).execute(),
      ).rejects.toThrow(/append-only/);
      await expect(db.deleteFrom('events').where('seq', '=', 3).execute()).rejects.toThrow(/append-only/);
      await env.steward.ledger.checkpoint();
      await expect(db.deleteFrom('checkpoints').execute()).rejects.toThrow(/append-only/);
      expect((await verifyLedger(env.steward.store, env.steward.keys)).ok).toBe(true);
    });
  });

  it('names the first bad event when a row is edited, deleted, reordered or inserted', async () => {
    const cases: [string, (s: Store) => string[], number, RegExp][] = [
      [
        'edited payload',
        () => [`UPDATE events SET payload = '{"n":99,"text":"n99"}' WHERE seq = 4`],
        4,
        /altered/,
      ],
      ['edited actor', () => [`UPDATE events SET actor = 'mallory' WHERE seq = 7`], 7, /altered/],
      ['deleted', () => ['DELETE FROM events WHERE seq = 5'], 5, /missing/],
      [
        'reordered',
        () => [
          'UPDATE events SET seq = -1 WHERE seq = 3',
          'UPDATE events SET seq = 3 WHERE seq = 6',
          'UPDATE events SET seq = 6 WHERE seq = -1',
        ],
        3,
        /altered/,
      ],
      [
        'inserted',
        () => [
          'UPDATE events SET seq = seq + 1000 WHERE seq >= 6',
          'UPDATE events SET seq = seq - 999 WHERE seq >= 1006',
          `INSERT INTO events (seq, type, subject, identity_id, payload, actor, reason, effective_at, recorded_at, prev_hash, hash)
             SELECT 6, type, subject, identity_id, payload, actor, reason, effective_at, recorded_at, prev_hash, hash FROM events WHERE seq = 5`,
        ],
        6,
        /altered|chain/,
      ],
      ['truncated tail', () => ['DELETE FROM events WHERE seq > 8'], 9, /removed/],
    ];
    for (const [name, statements, bad, why] of cases) {
      await withSteward(dialect, async (env) => {
        await appendNotes(env, 10, 3);
        await env.steward.ledger.checkpoint();
        await tamper(env.steward.store, statements(env.steward.store));
        const r = await verifyLedger(env.steward.store, env.steward.keys);
        expect(r.ok, name).toBe(false);
        expect(r.firstBad?.seq, name).toBe(bad);
        expect(r.firstBad?.problem, name).toMatch(why);
      });
    }
  });

  it('a chain rewritten with recomputed hashes still fails against the signed checkpoint', async () => {
    await withSteward(dialect, async (env) => {
      await appendNotes(env, 6);
      await env.steward.ledger.checkpoint();
      const { hashEvent, canonicalJson } = await import('../src/ledger/event.js');
      const { rowToEvent } = await import('../src/ledger/ledger.js');
      const rows = (await env.steward.store.db.selectFrom('events').selectAll().orderBy('seq').execute()).map(
        rowToEvent,
      );
      // The attacker edits event 2 and recomputes every later hash so the chain itself is consistent.
      let prev = rows[0]!.hash;
      const statements: string[] = [];
      for (const e of rows.slice(1)) {
        const payload = e.seq === 2 ? { n: 2, text: 'forged' } : e.payload;
        const payloadJson = canonicalJson(payload);
        const hash = hashEvent({ ...e, prevHash: prev }, payloadJson);
        statements.push(
          `UPDATE events SET payload = '${payloadJson}', prev_hash = '${prev}', hash = '${hash}' WHERE seq = ${e.seq}`,
        );
        prev = hash;
      }
      await tamper(env.steward.store, statements);
      const r = await verifyLedger(env.steward.store, env.steward.keys);
      expect(r.ok).toBe(false);
      expect(r.firstBad?.problem).toMatch(/rewritten.*checkpoint/);
      expect(r.firstBad?.seq).toBe(1);
    });
  });

  it('property: any sequence of appends verifies; any single tampered row fails at that row', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 6 }),
        fc.nat(),
        fc.constantFrom('edit', 'delete', 'swap'),
        async (batches, pick, op) => {
          await withSteward(dialect, async (env) => {
            let n = 0;
            for (const size of batches) {
              await env.steward.ledger.write({ actor: 'prop', reason: null }, (w) => {
                w.append(
                  Array.from({ length: size }, (_, k) =>
                    ev(n + k, `2026-0${1 + ((n + k) % 9)}-01T00:00:00.000Z`),
                  ),
                );
                return Promise.resolve();
              });
              n += size;
            }
            expect((await verifyLedger(env.steward.store, env.steward.keys)).ok).toBe(true);
            if (n < 2) return;
            await env.steward.ledger.checkpoint();
            const target = 1 + (pick % (n - 1)); // never the last row, so swap has a partner
            const stmts =
              op === 'edit'
                ? [`UPDATE events SET reason = 'tampered' WHERE seq = ${target}`]
                : op === 'delete'
                  ? [`DELETE FROM events WHERE seq = ${target}`]
                  : [
                      `UPDATE events SET seq = -1 WHERE seq = ${target}`,
                      `UPDATE events SET seq = ${target} WHERE seq = ${target + 1}`,
                      `UPDATE events SET seq = ${target + 1} WHERE seq = -1`,
                    ];
            await tamper(env.steward.store, stmts);
            const r = await verifyLedger(env.steward.store, env.steward.keys);
            expect(r.ok).toBe(false);
            expect(r.firstBad?.seq).toBe(target);
          });
        },
      ),
      { numRuns: dialect.name === 'sqlite' ? 40 : 15 },
    );
  });
});
