/**
 * A first full evaluation of a large estate on SQLite drops the findings indexes it never reads
 * and rebuilds them before it commits (`deferFindingIndexes` in evaluate.ts). What must hold: the
 * indexes come back exactly as the migrations defined them and are used, and an evaluation that
 * fails half-way leaves them (and everything else) as they were.
 */
import { describe, it, expect } from 'vitest';
import { sql } from 'kysely';
import { dialects, withSteward } from './helpers/steward.js';
import { loadRules } from '../src/policy/rules.js';
import { DEFER_INDEXES_MIN, evaluate } from '../src/policy/evaluate.js';
import { dropIndexesUntilCommit } from '../src/store/bulk.js';
import { verifyLedger } from '../src/ledger/verify.js';
import type { Steward } from '../src/app.js';

const sqlite = dialects.filter((d) => d.name === 'sqlite');

const IDENTITY_COLUMNS = ['id', 'natural_key', 'name', 'status', 'first_seen', 'last_seen', 'updated_seq'];

/** Identities with nothing but a name: the built-in pack finds gaps in every one. */
async function seed(s: Steward, n: number): Promise<void> {
  await s.store.db.transaction().execute(async (tx) => {
    const rows: unknown[][] = [];
    for (let i = 0; i < n; i++) {
      const id = `nhi_${String(i).padStart(6, '0')}`;
      rows.push([
        id,
        `test:${id}`,
        `svc-${i}`,
        'active',
        '2026-01-01T00:00:00.000Z',
        '2026-01-01T00:00:00.000Z',
        0,
      ]);
    }
    await s.store.bulkInsert(tx, 'identities', IDENTITY_COLUMNS, rows);
  });
}

async function findingIndexes(s: Steward): Promise<{ name: string; sql: string }[]> {
  return (
    await sql<{ name: string; sql: string }>`
      SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'findings' AND sql IS NOT NULL
      ORDER BY name`.execute(s.store.db)
  ).rows;
}

const count = async (s: Steward, table: 'findings' | 'events') =>
  Number(
    (
      await s.store.db
        .selectFrom(table)
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirst()
    )?.n ?? 0,
  );

describe.each(sqlite)('first full evaluation of a large estate on $name', (dialect) => {
  it('rebuilds the findings indexes it dropped exactly as they were, and they are used', async () => {
    await withSteward(dialect, async ({ steward }) => {
      await seed(steward, DEFER_INDEXES_MIN);
      const before = await findingIndexes(steward);
      expect(before.map((i) => i.name)).toEqual(
        expect.arrayContaining([
          'findings_assignee',
          'findings_rule',
          'findings_status',
          'findings_identity_id',
        ]),
      );
      const rules = loadRules();
      const r = await evaluate(steward, { rules, actor: 'policy', workers: 0 });
      expect(r.opened).toBeGreaterThan(DEFER_INDEXES_MIN);
      expect(await findingIndexes(steward)).toEqual(before);
      const plan = await sql<{ detail: string }>`
        EXPLAIN QUERY PLAN SELECT id FROM findings WHERE assignee = ${'team:x'}`.execute(steward.store.db);
      expect(plan.rows.map((p) => p.detail).join(' ')).toContain('findings_assignee');
      expect(
        (await sql<{ integrity_check: string }>`PRAGMA integrity_check`.execute(steward.store.db)).rows,
      ).toEqual([{ integrity_check: 'ok' }]);
      expect((await verifyLedger(steward.store, steward.keys)).ok).toBe(true);
    });
  });

  it('keeps the indexes and writes nothing when the evaluation fails half-way', async () => {
    await withSteward(dialect, async ({ steward }) => {
      await seed(steward, DEFER_INDEXES_MIN + 2000);
      const before = await findingIndexes(steward);
      const rules = loadRules();
      let pages = 0;
      await expect(
        evaluate(steward, {
          rules,
          actor: 'policy',
          workers: 0,
          onProgress: () => {
            if (++pages === 3) throw new Error('interrupted');
          },
        }),
      ).rejects.toThrow('interrupted');
      expect(await findingIndexes(steward)).toEqual(before);
      expect(await count(steward, 'findings')).toBe(0);
      expect(await count(steward, 'events')).toBe(0);
    });
  });

  it('dropIndexesUntilCommit: gone inside the transaction, back after it commits or rolls back', async () => {
    await withSteward(dialect, async ({ steward }) => {
      const before = await findingIndexes(steward);
      const names = ['findings_assignee', 'findings_status'];
      await steward.store.db.transaction().execute(async (tx) => {
        const rebuild = await dropIndexesUntilCommit(tx, names);
        const inside = await sql<{ name: string }>`
          SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'findings'`.execute(tx);
        expect(inside.rows.map((r) => r.name)).not.toContain('findings_assignee');
        expect(inside.rows.map((r) => r.name)).not.toContain('findings_status');
        await rebuild();
      });
      expect(await findingIndexes(steward)).toEqual(before);
      await expect(
        steward.store.db.transaction().execute(async (tx) => {
          await dropIndexesUntilCommit(tx, names);
          throw new Error('rolled back');
        }),
      ).rejects.toThrow('rolled back');
      expect(await findingIndexes(steward)).toEqual(before);
    });
  });
});
