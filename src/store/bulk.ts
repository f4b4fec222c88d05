import { sql } from 'kysely';
import type BetterSqlite3 from 'better-sqlite3';
import type { Tx } from './store.js';

/** Inserts many rows at once inside an open transaction: the bulk path of the storage port. */
export type BulkInsert = (
  tx: Tx,
  table: string,
  columns: readonly string[],
  rows: readonly unknown[][],
) => Promise<void>;

/** Columns holding 64-bit integers (everything else is text). */
const BIGINT_COLUMNS = new Set(['seq', 'updated_seq']);

/**
 * SQLite: prepared multi-row statements run on the transaction's own connection
 * (better-sqlite3 is synchronous and Kysely's SQLite driver has exactly one connection,
 * so these statements run inside the transaction Kysely opened).
 */
export function sqliteBulkInsert(raw: BetterSqlite3.Database): BulkInsert {
  const cache = new Map<string, BetterSqlite3.Statement>();
  const statement = (table: string, columns: readonly string[], n: number) => {
    const key = `${table}|${columns.join(',')}|${n}`;
    let st = cache.get(key);
    if (!st) {
      const one = `(${columns.map(() => '?').join(',')})`;
      st = raw.prepare(
        `INSERT INTO ${table} (${columns.join(',')}) VALUES ${Array.from({ length: n }, () => one).join(',')}`,
      );
      cache.set(key, st);
    }
    return st;
  };
  return (_tx, table, columns, rows) => {
    if (!raw.inTransaction) throw new Error('internal: bulk insert outside a transaction');
    const per = Math.max(1, Math.min(200, Math.floor(30000 / columns.length)));
    let i = 0;
    if (rows.length >= per) {
      const st = statement(table, columns, per);
      for (; i + per <= rows.length; i += per) st.run(rows.slice(i, i + per).flat());
    }
    if (i < rows.length) {
      const st = statement(table, columns, 1);
      for (; i < rows.length; i++) st.run(rows[i]);
    }
    return Promise.resolve();
  };
}

/** PostgreSQL: one `INSERT … SELECT FROM unnest(arrays)` per chunk: a handful of parameters, any number of rows. */
export function postgresBulkInsert(): BulkInsert {
  return async (tx, table, columns, rows) => {
    const chunk = 20000;
    for (let i = 0; i < rows.length; i += chunk) {
      const part = rows.slice(i, i + chunk);
      const arrays = columns.map((c, j) => {
        const values = part.map((r) => r[j] ?? null);
        return BIGINT_COLUMNS.has(c) ? sql`${values}::bigint[]` : sql`${values}::text[]`;
      });
      await sql`INSERT INTO ${sql.table(table)} (${sql.join(columns.map((c) => sql.ref(c)))}) SELECT * FROM unnest(${sql.join(arrays)})`.execute(
        tx,
      );
    }
  };
}
