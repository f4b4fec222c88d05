import path from 'node:path';
import fs from 'node:fs';
import { Kysely, PostgresDialect, SqliteDialect, sql, type Transaction } from 'kysely';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import type { Database } from './schema.js';
import { migrationsFor } from './migrations.js';
import { ConfigurationError } from '../domain/errors.js';
import { pgliteDialect } from './pglite.js';
import { startCheckpointer, type Checkpointer } from './sqlite-checkpointer.js';
import {
  copyRowSink,
  insertingRowSink,
  postgresBulkInsert,
  sqliteBulkInsert,
  type BulkInsert,
  type OpenRowSink,
} from './bulk.js';

export type Dialect = 'sqlite' | 'postgres';
export type Db = Kysely<Database>;
export type Tx = Transaction<Database>;

/** An open database: the Kysely handle plus what dialect-specific code needs to know. */
export interface Store {
  readonly db: Db;
  readonly dialect: Dialect;
  /** Where it is, for messages (never includes a password). */
  readonly location: string;
  /**
   * What another thread opens to read the same database (a file path or the full URL, password
   * included: never print it); undefined when only this thread can reach it (PGlite, `:memory:`).
   */
  readonly url?: string;
  /** Largest number of bound parameters one statement may carry. */
  readonly maxParams: number;
  /** Inserts many rows inside an open transaction (prepared statements on SQLite, COPY or one JSON-parameter INSERT on PostgreSQL). */
  readonly bulkInsert: BulkInsert;
  /** Streams rows into a table inside an open transaction (COPY on a PostgreSQL server). */
  readonly openRowSink: OpenRowSink;
  close(): Promise<void>;
}

/** Default database when neither `--db` nor `STEWARD_DB` is given. */
export const DEFAULT_DB = './steward.db';

/** Tells whether a `--db` value names PostgreSQL. */
export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//.test(url) || url.startsWith('pglite:');
}

/** Opens (and migrates) the database named by a path or URL. */
export async function openStore(url: string, options: { migrate?: boolean } = {}): Promise<Store> {
  const store = url.startsWith('pglite:')
    ? await openPglite(url)
    : isPostgresUrl(url)
      ? openPostgres(url)
      : openSqlite(url);
  if (options.migrate !== false) {
    try {
      await migrate(store);
    } catch (e) {
      await store.close();
      throw e;
    }
  }
  return store;
}

/** Rows bulk-inserted by one process before its WAL checkpoints move to a worker thread. */
const BULK_CHECKPOINTER_ROWS = 20_000;

function openSqlite(file: string): Store {
  const dir = path.dirname(path.resolve(file));
  if (!fs.existsSync(dir)) {
    throw new ConfigurationError(`database folder ${dir} does not exist`);
  }
  const sqlite = new BetterSqlite3(file, { timeout: 15000 });
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('synchronous = NORMAL');
  // Bulk imports touch many index pages; the default 2 MB page cache thrashes.
  sqlite.pragma('cache_size = -65536');
  sqlite.pragma('temp_store = MEMORY');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  // Once a process writes in bulk, WAL checkpoints move to a worker thread (see
  // sqlite-checkpointer.ts); small writers keep SQLite's own checkpoint on commit.
  let checkpointer: Checkpointer | null = null;
  let bulkRows = 0;
  const insert = sqliteBulkInsert(sqlite);
  const bulkInsert: BulkInsert = (tx, table, columns, rows) => {
    bulkRows += rows.length;
    if (bulkRows >= BULK_CHECKPOINTER_ROWS && !checkpointer && !sqlite.memory) {
      sqlite.pragma('wal_autocheckpoint = 0');
      checkpointer = startCheckpointer(sqlite.name, () => {
        if (sqlite.open) sqlite.pragma('wal_autocheckpoint = 1000');
      });
    }
    return insert(tx, table, columns, rows);
  };
  return {
    db,
    dialect: 'sqlite',
    location: path.resolve(file),
    ...(file === ':memory:' ? {} : { url: path.resolve(file) }),
    maxParams: 32000,
    bulkInsert,
    openRowSink: insertingRowSink(bulkInsert),
    close: async () => {
      await checkpointer?.stop();
      await db.destroy();
    },
  };
}

const INT8_OID = 20;
/** bigint columns (sequence numbers) come back as numbers: they stay far below 2^53. */
const pgTypes: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID
      ? (v: string) => Number(v)
      : (pg.types.getTypeParser(oid, format) as (
          v: string,
        ) => unknown)) as pg.CustomTypesConfig['getTypeParser'],
};

/**
 * A query text that never reaches the server: each pooled client answers it with itself, so
 * code holding a Kysely transaction can reach that transaction's connection (for COPY).
 */
const RAW_CLIENT_SQL = "SELECT 'steward:raw-client'";

function openPostgres(url: string): Store {
  const pool = new pg.Pool({ connectionString: url, max: 4, types: pgTypes });
  pool.on('connect', (client) => {
    // No JIT compilation: Steward's queries run for milliseconds, and where the planner's
    // estimate is high (a table grown inside the running transaction, whose statistics still
    // say it is empty) compiling one cost 130 ms per page of an evaluation (measured: a first
    // evaluation of 100,000 identities spent 15 of its 23 s so). Queued before any other query.
    // A server without JIT (before PostgreSQL 11) rejects the setting: nothing to turn off.
    client.query('SET jit = off').catch(() => undefined);
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args) =>
      args[0] === RAW_CLIENT_SQL
        ? Promise.resolve({ command: 'SELECT', rowCount: 1, rows: [{ client }] })
        : query(...args);
  });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const clientOf = async (tx: Tx) => {
    const r = await sql<{ client: pg.PoolClient }>`${sql.raw(RAW_CLIENT_SQL)}`.execute(tx);
    const client = r.rows[0]?.client;
    if (!client) throw new Error('internal: no pg client behind the transaction');
    return client;
  };
  const openRowSink = copyRowSink(clientOf);
  const small = postgresBulkInsert();
  // Large batches go through COPY; a handful of rows is cheaper as one INSERT.
  const bulkInsert: BulkInsert = async (tx, table, columns, rows) => {
    if (rows.length < 64) return small(tx, table, columns, rows);
    const sink = await openRowSink(tx, table, columns);
    try {
      await sink.write(rows);
      await sink.end();
    } catch (e) {
      await sink.abort(e);
      throw e;
    }
  };
  return {
    db,
    dialect: 'postgres',
    location: redact(url),
    url,
    maxParams: 60000,
    bulkInsert,
    openRowSink,
    close: () => db.destroy(),
  };
}

async function openPglite(url: string): Promise<Store> {
  const where = url.slice('pglite:'.length);
  const pglite = await pgliteDialect(where === 'memory' || where === '' ? undefined : where);
  const dialect = pglite.dialect;
  const db = new Kysely<Database>({ dialect });
  const bulkInsert = postgresBulkInsert();
  return {
    db,
    dialect: 'postgres',
    location: url,
    maxParams: 60000,
    bulkInsert,
    openRowSink: insertingRowSink(bulkInsert),
    close: async () => {
      await db.destroy();
      await pglite.close();
    },
  };
}

/** Removes a password from a connection URL for display. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

/**
 * Applies pending migrations in one transaction. A small runner rather than Kysely's Migrator:
 * the Migrator finds its tables by introspecting every schema on the server, which races with
 * other schemas being created and dropped (parallel test runs, other tenants). The table and
 * its columns are the ones the Migrator used, so existing databases carry on.
 */
async function migrate(store: Store): Promise<void> {
  const migrations = await migrationsFor(store.dialect).getMigrations();
  const names = Object.keys(migrations).sort();
  const createTable = sql`create table if not exists steward_migrations (name varchar(255) primary key, timestamp varchar(255) not null)`;
  try {
    await createTable.execute(store.db);
  } catch {
    await createTable.execute(store.db); // another process created it at the same moment
  }
  let current = '?';
  try {
    await store.db.transaction().execute(async (tx) => {
      // one migrator per database (PostgreSQL: per schema) at a time; SQLite's write lock does this
      if (store.dialect === 'postgres')
        await sql`select pg_advisory_xact_lock(hashtext(current_schema()))`.execute(tx);
      const done = new Set(
        (await sql<{ name: string }>`select name from steward_migrations`.execute(tx)).rows.map(
          (r) => r.name,
        ),
      );
      for (const name of names) {
        if (done.has(name)) continue;
        current = name;
        await migrations[name]!.up(tx);
        await sql`insert into steward_migrations (name, timestamp) values (${name}, ${new Date().toISOString()})`.execute(
          tx,
        );
      }
    });
  } catch (error) {
    throw new ConfigurationError(
      `migration ${current} failed on ${store.location}: ${String((error as Error).message ?? error)}`,
      { cause: error },
    );
  }
}
