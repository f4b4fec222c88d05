import { PostgresDialect } from 'kysely';

/**
 * PGlite (PostgreSQL compiled to WASM) behind Kysely's PostgreSQL dialect, for running
 * the PostgreSQL suite where no server is available. PGlite has one connection, so the
 * pool hands it out to one user at a time.
 */
export async function pgliteDialect(
  dataDir?: string,
): Promise<{ dialect: PostgresDialect; close: () => Promise<void> }> {
  let mod: typeof import('@electric-sql/pglite');
  try {
    mod = await import('@electric-sql/pglite');
  } catch (e) {
    throw new Error('pglite: URLs need the @electric-sql/pglite package (a development dependency)', {
      cause: e,
    });
  }
  const pg = dataDir ? new mod.PGlite(dataDir) : new mod.PGlite();
  await pg.waitReady;
  let queue: Promise<void> = Promise.resolve();
  const client = {
    async query(sqlText: string, params?: readonly unknown[]) {
      const res = await pg.query<Record<string, unknown>>(sqlText, params as unknown[] | undefined, {
        parsers: { 20: (v: string) => Number(v) },
      });
      const command = sqlText.trimStart().slice(0, 6).toUpperCase();
      return { command, rowCount: res.affectedRows ?? res.rows.length, rows: res.rows };
    },
    release() {
      /* replaced per checkout */
    },
  };
  const pool = {
    async connect() {
      let release!: () => void;
      const previous = queue;
      queue = new Promise<void>((r) => (release = r));
      await previous;
      return { query: (text: string, params?: readonly unknown[]) => client.query(text, params), release };
    },
    async end() {
      await queue;
    },
  };
  return {
    dialect: new PostgresDialect({ pool: pool as never }),
    close: () => pg.close(),
  };
}
