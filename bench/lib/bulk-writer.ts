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
  /**
   * Drops the secondary indexes the migrations created on these tables and returns what
   * re-creates them from their own stored definitions (bulk load, then index: the same
   * indexes, built by sorting instead of by millions of random-key inserts).
   */
  deferIndexes(tables: readonly string[]): Promise<() => Promise<void>>;
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
  const spent = new Map<string, number>();
  const statement = (table: TableSpec, rows: number) => {
    const key = `${table.name}/${rows}`;
    let s = statements.get(key);
    if (!s) {
      const one = `(${table.columns.map(() => '?').join(',')})`;
      s = db.prepare(
        `INSERT INTO ${table.name} (${table.columns.join(',')}) VALUES ${new Array<string>(rows).fill(one).join(',')}`,
      );
      statements.set(key, s);
    }
    return s;
  };
  return {
    begin: () => Promise.resolve(void db.exec('BEGIN')),
    commit: () => Promise.resolve(void db.exec('COMMIT')),
    insert(table, rows) {
      const t0 = performance.now();
      const per = Math.max(1, Math.floor(30_000 / table.columns.length));
      for (let i = 0; i < rows.length; i += per) {
        const chunk = rows.slice(i, i + per);
        statement(table, chunk.length).run(chunk.flat());
      }
      spent.set(table.name, (spent.get(table.name) ?? 0) + performance.now() - t0);
      return Promise.resolve();
    },
    exec(sql, params = []) {
      db.prepare(sql).run(...params);
      return Promise.resolve();
    },
    deferIndexes(tables) {
      const defs = db
        .prepare(
          `SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN (${tables.map(() => '?').join(',')})`,
        )
        .all(...tables) as { name: string; sql: string }[];
      for (const d of defs) db.exec(`DROP INDEX ${d.name}`);
      return Promise.resolve(() => {
        for (const d of defs) db.exec(d.sql);
        return Promise.resolve();
      });
    },
    close() {
      if (process.env.STEWARD_BENCH_DEBUG)
        process.stderr.write(`insert time: ${JSON.stringify(Object.fromEntries(spent))}\n`);
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
  let tail: Promise<unknown> = Promise.resolve();
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
        // Chained, not queued on the client: pg deprecates overlapping client.query calls.
        const p = tail.then(() => client.query(text, arrays));
        tail = p.catch(() => {}); // the error itself is surfaced by drain()
        inFlight.push(p);
        if (inFlight.length >= 4) await inFlight.shift();
      }
    },
    exec: async (sql, params = []) => {
      await drain();
      await client.query(
        sql.replace(
          /\?/g,
          (() => {
            let n = 0;
            return () => `$${++n}`;
          })(),
        ),
        params,
      );
    },
    async deferIndexes(tables) {
      await drain();
      // Indexes that back a constraint (primary keys, UNIQUE) stay.
      const r = await client.query<{ indexname: string; indexdef: string }>(
        `SELECT indexname, indexdef FROM pg_indexes i WHERE schemaname = current_schema() AND tablename = ANY($1)
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)`,
        [tables],
      );
      for (const d of r.rows) await client.query(`DROP INDEX ${d.indexname}`);
      return async () => {
        await drain();
        await client.query(`SET maintenance_work_mem = '1GB'`);
        for (const d of r.rows) await client.query(d.indexdef);
      };
    },
    close: async () => {
      await drain();
      await client.end();
    },
  };
}
