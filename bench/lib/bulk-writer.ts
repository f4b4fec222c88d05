/**
 * Fast direct writers for generating a large ledger: multi-row inserts in big transactions
 * (SQLite: prepared multi-row INSERTs over one better-sqlite3 connection; PostgreSQL: one
 * INSERT … SELECT FROM unnest($1::type[], …) per 10,000 rows). They bypass Steward's ledger
 * on purpose: the events they are given are already hash-chained by the caller.
 */
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import type { BenchDialect } from './common.js';

export interface TableSpec {
  name: string;
  columns: readonly string[];
  /** PostgreSQL array element types, one per column. */
  pgTypes: readonly string[];
}

/** Rows are arrays of column values in `columns` order. */
export type Row = (string | number | null)[];

export interface BulkWriter {
  begin(): Promise<void>;
  insert(table: TableSpec, rows: Row[]): Promise<void>;
  commit(): Promise<void>;
  exec(sql: string, params?: unknown[]): Promise<void>;
  close(): Promise<void>;
}

export async function openBulkWriter(dialect: BenchDialect, url: string): Promise<BulkWriter> {
  return dialect === 'sqlite' ? sqliteWriter(url) : pgWriter(url);
}

function sqliteWriter(file: string): BulkWriter {
  const db = new BetterSqlite3(file, { timeout: 15000 });
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  // A large page cache keeps the two random-key event indexes in memory while they grow.
  db.pragma('cache_size = -4000000');
  const statements = new Map<string, BetterSqlite3.Statement>();
  const statement = (table: TableSpec, rows: number) => {
    const key = `${table.name}/${rows}`;
    let s = statements.get(key);
    if (!s) {
      const one = `(${table.columns.map(() => '?').join(',')})`;
      s = db.prepare(`INSERT INTO ${table.name} (${table.columns.join(',')}) VALUES ${new Array<string>(rows).fill(one).join(',')}`);
      statements.set(key, s);
    }
    return s;
  };
  return {
    begin: () => Promise.resolve(void db.exec('BEGIN')),
    commit: () => Promise.resolve(void db.exec('COMMIT')),
    insert(table, rows) {
      const per = Math.max(1, Math.floor(30_000 / table.columns.length));
      for (let i = 0; i < rows.length; i += per) {
        const chunk = rows.slice(i, i + per);
        statement(table, chunk.length).run(chunk.flat());
      }
      return Promise.resolve();
    },
    exec(sql, params = []) {
      db.prepare(sql).run(...params);
      return Promise.resolve();
    },
    close() {
      db.close();
      return Promise.resolve();
    },
  };
}

async function pgWriter(url: string): Promise<BulkWriter> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const PER = 10_000;
  // Inserts are queued on the connection without waiting, so the server writes while this
  // process hashes the next rows (a second core); a few at most are kept in flight.
  let inFlight: Promise<unknown>[] = [];
  const drain = async () => {
    const all = inFlight;
    inFlight = [];
    await Promise.all(all);
  };
  return {
    begin: async () => void (await client.query('BEGIN')),
    commit: async () => {
      await drain();
      await client.query('COMMIT');
    },
    async insert(table, rows) {
      const cols = table.columns;
      const text = `INSERT INTO ${table.name} (${cols.join(',')}) SELECT * FROM unnest(${cols.map((_, i) => `$${i + 1}::${table.pgTypes[i]!}[]`).join(',')})`;
      for (let i = 0; i < rows.length; i += PER) {
        const chunk = rows.slice(i, i + PER);
        const arrays = cols.map((_, c) => chunk.map((r) => r[c] ?? null));
        const p = client.query(text, arrays);
        p.catch(() => {}); // surfaced by drain()
        inFlight.push(p);
        if (inFlight.length >= 4) await inFlight.shift();
      }
    },
    exec: async (sql, params = []) => {
      await drain();
      await client.query(sql.replace(/\?/g, (() => { let n = 0; return () => `$${++n}`; })()), params);
    },
    close: async () => {
      await drain();
      await client.end();
    },
  };
}
