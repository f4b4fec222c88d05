import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { dialectsUnderTest, PGLITE_MEMORY_URL, providedPgUrl, schemaOf } from './helpers/pg-schema.js';

describe('test infrastructure', () => {
  it('global setup provided a PostgreSQL decision', () => {
    const url = providedPgUrl();
    expect(url === 'pglite' || url.startsWith('postgres://') || url.startsWith('postgresql://')).toBe(true);
  });

  for (const dialect of dialectsUnderTest()) {
    if (dialect.name === 'sqlite') {
      it('sqlite: fresh location is a new file path under the temp dir, removed by cleanup', async () => {
        const file = await dialect.freshUrl();
        const other = await dialect.freshUrl();
        try {
          expect(path.basename(file)).toBe('steward.db');
          expect(path.dirname(path.dirname(file))).toBe(os.tmpdir());
          expect(fs.existsSync(path.dirname(file))).toBe(true);
          expect(fs.existsSync(file)).toBe(false);
          expect(other).not.toBe(file);
        } finally {
          await dialect.cleanup(file);
          await dialect.cleanup(other);
        }
        expect(fs.existsSync(path.dirname(file))).toBe(false);
      });
    } else {
      it('postgres: each fresh URL is an isolated schema (real server) or a new PGlite', async () => {
        const url = await dialect.freshUrl();
        try {
          if (providedPgUrl() === 'pglite') {
            expect(url).toBe(PGLITE_MEMORY_URL);
            return;
          }
          const schema = schemaOf(url);
          expect(schema).toMatch(/^t_[0-9a-f]{16}$/);

          const client = new pg.Client({ connectionString: url });
          await client.connect();
          try {
            const { rows } = await client.query<{ s: string }>('SELECT current_schema() AS s');
            expect(rows[0]?.s).toBe(schema);
            // Unqualified DDL lands in the test's schema.
            await client.query('CREATE TABLE probe (id int)');
            const where = await client.query<{ n: string }>(
              `SELECT table_schema AS n FROM information_schema.tables WHERE table_name = 'probe'`,
            );
            expect(where.rows.map((r) => r.n)).toEqual([schema]);
          } finally {
            await client.end();
          }
        } finally {
          await dialect.cleanup(url);
        }
        if (providedPgUrl() !== 'pglite') {
          const client = new pg.Client({ connectionString: providedPgUrl() });
          await client.connect();
          try {
            const { rowCount } = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [
              schemaOf(url),
            ]);
            expect(rowCount).toBe(0);
          } finally {
            await client.end();
          }
        }
      });
    }
  }
});
