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
      const params = new Array<unknown>(per * columns.length);
      for (; i + per <= rows.length; i += per) {
        let k = 0;
        for (let r = i; r < i + per; r++) {
          const row = rows[r]!;
          for (let c = 0; c < row.length; c++) params[k++] = row[c];
        }
        st.run(params);
      }
    }
    if (i < rows.length) {
      const st = statement(table, columns, 1);
      for (; i < rows.length; i++) st.run(rows[i]);
    }
    return Promise.resolve();
  };
}

/**
 * PostgreSQL: one `INSERT … SELECT FROM json_populate_recordset(NULL::table, $1)` per chunk:
 * a single JSON parameter (serialised natively by V8, parsed in C by the server) for any
 * number of rows; about 1.7× faster than `unnest` over per-column arrays here.
 */
export function postgresBulkInsert(): BulkInsert {
  return async (tx, table, columns, rows) => {
    const chunk = 10000;
    const cols = sql.join(columns.map((c) => sql.ref(c)));
    for (let i = 0; i < rows.length; i += chunk) {
      const part = rows.slice(i, i + chunk);
      let json = '[';
      for (let r = 0; r < part.length; r++) {
        const row = part[r]!;
        const o: Record<string, unknown> = {};
        for (let j = 0; j < columns.length; j++) o[columns[j]!] = row[j] ?? null;
        json += (r ? ',' : '') + JSON.stringify(o);
      }
      json += ']';
      await sql`INSERT INTO ${sql.table(table)} (${cols}) SELECT ${cols} FROM json_populate_recordset(NULL::${sql.table(table)}, ${json}::json)`.execute(
        tx,
      );
    }
  };
}
