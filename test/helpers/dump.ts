import type { Database } from '../../src/store/schema.js';
import type { TestEnv } from './steward.js';

/** Every table Steward keeps (a new table must be added here, or a secret could hide in it). */
const TABLES: Record<keyof Database, true> = {
  events: true,
  ledger_head: true,
  checkpoints: true,
  principals: true,
  services: true,
  vendors: true,
  identities: true,
  credentials: true,
  entitlements: true,
  findings: true,
  metrics_daily: true,
  meta: true,
};

/** Every row of every table (the ledger's event payloads included), as text: to search for secrets. */
export async function dumpDatabase(env: TestEnv): Promise<string> {
  const parts: string[] = [];
  for (const t of Object.keys(TABLES) as (keyof Database)[]) {
    parts.push(
      JSON.stringify(
        await env.steward.store.db
          .selectFrom(t as 'events')
          .selectAll()
          .execute(),
      ),
    );
  }
  return parts.join('\n');
}
