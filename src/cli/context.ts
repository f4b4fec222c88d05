import os from 'node:os';
import { openSteward, type Steward } from '../app.js';
import type { Io } from './output.js';

/** Options every command accepts. */
export interface GlobalOptions {
  db?: string;
  keys?: string;
  json?: boolean;
  actor?: string;
}

/** The actor recorded on events: `--actor`, `STEWARD_ACTOR`, or the operating-system user. */
export function actorOf(g: GlobalOptions): string {
  if (g.actor) return g.actor;
  if (process.env.STEWARD_ACTOR) return process.env.STEWARD_ACTOR;
  let user = 'unknown';
  try {
    user = os.userInfo().username;
  } catch {
    /* no passwd entry */
  }
  return `cli:${user}`;
}

/** Opens Steward for one command and closes it afterwards. */
export async function withSteward<T>(g: GlobalOptions, fn: (s: Steward) => Promise<T>): Promise<T> {
  const s = await openSteward({
    ...(g.db !== undefined ? { db: g.db } : {}),
    ...(g.keys !== undefined ? { keysDir: g.keys } : {}),
  });
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

export type { Io };
