import os from 'node:os';
import { openSteward, type Steward } from '../app.js';
import type { Io } from './output.js';
import { policyEnabled, reevaluateSince } from '../policy/findings.js';
import { loadPolicy } from '../policy/config.js';
import { ValidationError } from '../domain/errors.js';

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

/**
 * Opens Steward for one command and closes it afterwards. With `reevaluate`, a command that
 * changed something re-evaluates the findings of exactly the identities it touched (once
 * `steward evaluate` has enabled findings for this install), reporting on stderr.
 */
export async function withSteward<T>(
  g: GlobalOptions,
  fn: (s: Steward) => Promise<T>,
  opts: { reevaluate?: Io } = {},
): Promise<T> {
  const s = await openSteward({
    ...(g.db !== undefined ? { db: g.db } : {}),
    ...(g.keys !== undefined ? { keysDir: g.keys } : {}),
  });
  try {
    const before = opts.reevaluate ? (await s.ledger.head()).seq : 0;
    const out = await fn(s);
    if (opts.reevaluate) await reevaluateTouched(s, before, actorOf(g), opts.reevaluate);
    return out;
  } finally {
    await s.close();
  }
}

async function reevaluateTouched(s: Steward, before: number, actor: string, io: Io): Promise<void> {
  const config = await policyEnabled(s.store);
  if (!config || (await s.ledger.head()).seq === before) return;
  let policy;
  try {
    policy = loadPolicy(config);
  } catch (e) {
    if (!(e instanceof ValidationError)) throw e;
    io.err.write(`warning: findings were not re-evaluated: ${e.message}\n`);
    return;
  }
  const r = await reevaluateSince(s, before, { rules: policy.rules, sla: policy.sla, actor });
  if (r && !io.json) {
    io.err.write(
      `findings: re-evaluated ${r.identities} identit${r.identities === 1 ? 'y' : 'ies'}: ${r.opened + r.reopened + r.exceptionsExpired} opened, ${r.resolved} resolved, ${r.open} open\n`,
    );
  }
}

export type { Io };
