import { setImmediate as nextTurn } from 'node:timers/promises';
import { sql } from 'kysely';
import type BetterSqlite3 from 'better-sqlite3';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
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

/**
 * Rows streamed into one table inside an open transaction, written while the caller prepares
 * the next ones where the dialect allows it (PostgreSQL works on its own core meanwhile).
 */
export interface RowSink {
  /** Hands rows over; resolves when the sink can take more. */
  write(rows: readonly unknown[][]): Promise<void>;
  /** Writes what is left; rejects with the database's error if a row was refused. */
  end(): Promise<void>;
  /** Gives up: nothing written through this sink stays (the transaction must roll back). */
  abort(error: unknown): Promise<void>;
}

export type OpenRowSink = (tx: Tx, table: string, columns: readonly string[]) => Promise<RowSink>;

/** A sink that writes each handed-over batch with a bulk insert, in order (SQLite, PGlite). */
export function insertingRowSink(insert: BulkInsert): OpenRowSink {
  return (tx, table, columns) =>
    Promise.resolve({
      write: (rows) => insert(tx, table, columns, rows),
      end: () => Promise.resolve(),
      abort: () => Promise.resolve(),
    });
}

/** The raw pg client behind a Kysely transaction (see `RAW_CLIENT_SQL` in store.ts). */
export type ClientOf = (tx: Tx) => Promise<pg.PoolClient>;

const COPY_SPECIAL = /[\\\n\r\t]/;
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** One value in PostgreSQL's COPY text format. */
function copyValue(v: unknown): string {
  if (v === null || v === undefined) return '\\N';
  let s: string;
  if (typeof v === 'string') s = v;
  else if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') s = String(v);
  else throw new TypeError(`internal: COPY of a ${typeof v} value`);
  return COPY_SPECIAL.test(s) ? s.replace(/[\\\n\r\t]/g, (c) => COPY_ESCAPES[c]!) : s;
}

/** Rows in COPY text format: tab-separated, one line each. */
export function copyRows(rows: readonly unknown[][]): string {
  let out = '';
  for (const row of rows) {
    for (let c = 0; c < row.length; c++) out += (c === 0 ? '' : '\t') + copyValue(row[c]);
    out += '\n';
  }
  return out;
}

/**
 * PostgreSQL: `COPY … FROM STDIN` (pg-copy-streams) on the transaction's own connection. Each
 * write goes to the socket at once, and the sink yields to the event loop so the server parses
 * and indexes those rows while the caller computes the next.
 */
export function copyRowSink(clientOf: ClientOf): OpenRowSink {
  return async (tx, table, columns) => {
    const client = await clientOf(tx);
    const ident = (name: string) => '"' + name.replace(/"/g, '""') + '"';
    const stream = client.query(
      copyFrom(`COPY ${ident(table)} (${columns.map(ident).join(', ')}) FROM STDIN`, {
        highWaterMark: 4 << 20,
      }),
    );
    let failure: Error | null = null;
    const finished = new Promise<void>((resolve, reject) => {
      stream.on('finish', resolve);
      stream.on('error', (e: Error) => {
        failure = e;
        reject(e);
      });
    });
    finished.catch(() => undefined); // observed through end(); never unhandled
    return {
      async write(rows) {
        if (failure) throw failure;
        if (rows.length === 0) return;
        if (stream.write(Buffer.from(copyRows(rows)))) await nextTurn();
        else
          await new Promise<void>((resolve, reject) => {
            const done = () => {
              stream.off('drain', done);
              stream.off('error', done);
              if (failure) reject(failure);
              else resolve();
            };
            stream.on('drain', done);
            stream.on('error', done);
          });
      },
      async end() {
        if (!failure) stream.end();
        await finished;
      },
      async abort(error) {
        if (stream.writableFinished || failure) return;
        // CopyFail: the server ends the COPY with an error, so the connection can roll back.
        stream.destroy(error instanceof Error ? error : new Error(String(error)));
        await finished.catch(() => undefined);
      },
    };
  };
}

/**
 * SQLite: drops the named indexes inside the open transaction and returns what rebuilds them,
 * from their own stored definitions, before it commits. For a transaction that inserts many rows
 * in an order those indexes do not follow: one sort at the end instead of a random B-tree insert
 * per row. Both steps are part of the transaction, so a crash or a rollback keeps the indexes.
 */
export async function dropIndexesUntilCommit(tx: Tx, names: readonly string[]): Promise<() => Promise<void>> {
  const defs = (
    await sql<{ name: string; sql: string }>`
      SELECT name, sql FROM sqlite_master
      WHERE type = 'index' AND sql IS NOT NULL AND name IN (${sql.join(names.map((n) => sql`${n}`))})
      ORDER BY name`.execute(tx)
  ).rows;
  for (const d of defs) await sql`DROP INDEX ${sql.id(d.name)}`.execute(tx);
  return async () => {
    for (const d of defs) await sql.raw(d.sql).execute(tx);
  };
}
