/**
 * Vitest global setup: decides which PostgreSQL the PostgreSQL suites run against and hands the
 * decision to the test workers as `inject('pgUrl')`:
 *
 *  1. `STEWARD_TEST_PG_URL` set          → that server (must connect, otherwise the run fails).
 *  2. a server answers on the probe addr → that server (default probe 127.0.0.1:5432, user postgres;
 *     override the address with `STEWARD_TEST_PG_PROBE=host:port`, meant for testing this file).
 *  3. `CI=true`                          → fail: CI never silently skips PostgreSQL.
 *  4. otherwise                          → `'pglite'` (in-process WASM PostgreSQL).
 *
 * With a real server, tests use a dedicated database `steward_test` (created if missing); each test
 * isolates itself in its own `t_<run><hex>` schema (see test/helpers/pg-schema.ts). At teardown the
 * schemas this run left behind are dropped — only this run's, so concurrent runs on one server
 * do not pull schemas from under each other.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A `postgres://` URL of the test database on a real server, or `'pglite'`. */
    pgUrl: string;
    /** Hex prefix of this run's schema names. */
    pgRunTag: string;
  }
}

export const TEST_DATABASE = 'steward_test';
const PROBE_TIMEOUT_MS = 2_000;
const EXPLICIT_TIMEOUT_MS = 10_000;

type Decision = { url: string; how: string } | { url: 'pglite'; how: string };

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const decision = await decide();
  const shown = decision.url === 'pglite' ? 'PGlite' : redact(decision.url);
  console.log(`PostgreSQL for tests: ${shown} (${decision.how})`);
  project.provide('pgUrl', decision.url);
  const runTag = randomBytes(3).toString('hex');
  project.provide('pgRunTag', runTag);

  return async () => {
    if (decision.url !== 'pglite') await dropLeftoverSchemas(decision.url, runTag);
  };
}

async function decide(): Promise<Decision> {
  const explicit = process.env['STEWARD_TEST_PG_URL'];
  if (explicit !== undefined && explicit !== '') {
    const problem = await tryConnect(explicit, EXPLICIT_TIMEOUT_MS);
    if (problem !== undefined) {
      throw new Error(
        `STEWARD_TEST_PG_URL is set but PostgreSQL at ${redact(explicit)} is not reachable: ${problem}`,
      );
    }
    return { url: await ensureTestDatabase(explicit), how: 'STEWARD_TEST_PG_URL' };
  }

  const probe = process.env['STEWARD_TEST_PG_PROBE'] || '127.0.0.1:5432';
  const probeUrl = `postgres://postgres@${probe}/postgres`;
  const problem = await tryConnect(probeUrl, PROBE_TIMEOUT_MS);
  if (problem === undefined) {
    return { url: await ensureTestDatabase(probeUrl), how: `server on ${probe}` };
  }

  if (process.env['CI'] === 'true') {
    throw new Error(
      `CI requires a reachable PostgreSQL; set STEWARD_TEST_PG_URL (no server answered on ${probe}: ${problem})`,
    );
  }
  return { url: 'pglite', how: `in-process WASM; no server answered on ${probe}` };
}

/** Returns undefined when a connection succeeds, otherwise a short description of the failure. */
async function tryConnect(url: string, timeoutMs: number): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return undefined;
  } catch (err) {
    return explain(err);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Creates `steward_test` on the server behind `url` if needed; returns the URL of that database. */
async function ensureTestDatabase(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: EXPLICIT_TIMEOUT_MS });
  client.on('error', () => {});
  try {
    await client.connect();
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [TEST_DATABASE]);
    if (exists.rowCount === 0) {
      try {
        await client.query(`CREATE DATABASE ${TEST_DATABASE}`);
      } catch (err) {
        // 42P04 duplicate_database; 23505 when two runs race on the catalog's unique index.
        const code = (err as { code?: unknown }).code;
        if (code !== '42P04' && code !== '23505') {
          throw new Error(`cannot create database ${TEST_DATABASE} at ${redact(url)}: ${explain(err)}`);
        }
      }
    }
  } finally {
    await client.end().catch(() => {});
  }
  return withDatabase(url, TEST_DATABASE);
}

async function dropLeftoverSchemas(url: string, runTag: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: EXPLICIT_TIMEOUT_MS });
  client.on('error', () => {});
  try {
    await client.connect();
    const { rows } = await client.query<{ nspname: string }>(
      `SELECT nspname FROM pg_namespace WHERE nspname LIKE $1`,
      [`t\\_${runTag}%`],
    );
    for (const { nspname } of rows) {
      await client.query(`DROP SCHEMA IF EXISTS ${quoteIdent(nspname)} CASCADE`).catch(() => {});
    }
  } catch {
    // best effort: a leftover schema does no harm to the next run
  } finally {
    await client.end().catch(() => {});
  }
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function explain(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return explain(err.errors[0]);
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}
