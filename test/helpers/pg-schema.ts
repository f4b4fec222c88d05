/**
 * Isolated database locations for tests.
 *
 * - `freshPgUrl()` gives one test its own PostgreSQL location: on a real server a new schema `t_<hex>`
 *   in the `steward_test` database, addressed by a `postgres://…?options=-c%20search_path%3Dt_<hex>`
 *   URL (libpq-style `options`, which node-postgres sends as a startup parameter, so every connection
 *   made from that URL works inside the schema); under PGlite the string `pglite:memory`, which the
 *   store opens as a new in-memory database each time.
 * - `dropPgSchema(url)` removes what `freshPgUrl()` created (no-op for PGlite).
 * - `dialectsUnderTest()` lists the dialects a store-level suite should run against.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { inject } from 'vitest';

export const PGLITE_MEMORY_URL = 'pglite:memory';

export interface DialectUnderTest {
  name: 'sqlite' | 'postgres';
  /** A fresh, empty location for one test (a file path for sqlite, a URL for postgres). */
  freshUrl(): Promise<string>;
  /** Removes what `freshUrl()` created; safe to call more than once. */
  cleanup(url: string): Promise<void>;
}

/** `'pglite'` or the `postgres://` URL of the test database, as decided by the global setup. */
export function providedPgUrl(): string {
  return inject('pgUrl');
}

export function usingPglite(): boolean {
  return providedPgUrl() === 'pglite';
}

export async function freshPgUrl(): Promise<string> {
  const base = providedPgUrl();
  if (base === 'pglite') return PGLITE_MEMORY_URL;

  const schema = `t_${inject('pgRunTag')}${randomBytes(5).toString('hex')}`;
  await withClient(base, (client) => client.query(`CREATE SCHEMA ${schema}`));
  return withSearchPath(base, schema);
}

export async function dropPgSchema(url: string): Promise<void> {
  if (url.startsWith('pglite:')) return;
  const schema = schemaOf(url);
  if (schema === undefined) return;
  await withClient(withoutSearchPath(url), (client) =>
    client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`),
  );
}

/** The `t_<hex>` schema a URL from `freshPgUrl()` points at, if any. */
export function schemaOf(url: string): string | undefined {
  const options = new URL(url).searchParams.get('options') ?? '';
  const match = /(?:^|\s)-c\s*search_path=(t_[0-9a-f]+)(?:\s|$)/.exec(options);
  return match?.[1];
}

export function dialectsUnderTest(): DialectUnderTest[] {
  return [
    {
      name: 'sqlite',
      freshUrl: () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'steward-test-'));
        return Promise.resolve(path.join(dir, 'steward.db'));
      },
      cleanup: (file) => {
        const dir = path.dirname(file);
        // Only ever remove directories this helper created.
        if (path.basename(dir).startsWith('steward-test-') && path.dirname(dir) === os.tmpdir()) {
          fs.rmSync(dir, { recursive: true, force: true });
        }
        return Promise.resolve();
      },
    },
    {
      name: 'postgres',
      freshUrl: freshPgUrl,
      cleanup: dropPgSchema,
    },
  ];
}

function withSearchPath(url: string, schema: string): string {
  // Encoded by hand: URLSearchParams would turn the space into '+'.
  const sep = url.includes('?') ? '&' : '?';
  return `${url}${sep}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
}

function withoutSearchPath(url: string): string {
  const u = new URL(url);
  u.searchParams.delete('options');
  return u.toString();
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  client.on('error', () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}
