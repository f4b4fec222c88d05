import type { Store } from '../store/store.js';
import type { Ledger } from '../ledger/ledger.js';
import type { Keys } from '../ledger/keys.js';
import { ValidationError } from '../domain/errors.js';

/** What every inventory command is given: explicit dependencies, no globals. */
export interface InventoryDeps {
  store: Store;
  ledger: Ledger;
  keys: Keys | null;
  now: () => Date;
}

/** Who is acting and why, and when the facts became true. */
export interface CommandOptions {
  actor: string;
  reason?: string;
  /** When the facts became true in the world; defaults to now; never later than now. */
  effectiveAt?: string;
}

/** Parses and checks an `--effective-at`/`--as-of` style time: ISO-8601, returned in UTC. */
export function parseTime(value: string, field: string): string {
  const d = new Date(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(d.getTime())) {
    throw new ValidationError(
      `${field}: expected an ISO-8601 time such as 2026-01-31 or 2026-01-31T12:00:00Z, got "${value}"`,
    );
  }
  return d.toISOString();
}

/** The effective time of a command: given (not in the future) or now. */
export function effectiveTime(opts: CommandOptions, now: Date): string {
  if (opts.effectiveAt === undefined) return now.toISOString();
  const t = parseTime(opts.effectiveAt, '--effective-at');
  if (t > now.toISOString()) {
    throw new ValidationError(`--effective-at: expected a time not in the future, got ${t}`);
  }
  return t;
}

let lastMs = 0;
let counter = 0;
// 48 random bits per process: ids made in the same millisecond by two processes still differ.
const processTag = Array.from(crypto.getRandomValues(new Uint8Array(6)), (b) =>
  b.toString(16).padStart(2, '0'),
).join('');

/**
 * Time-ordered id with a kind prefix (`nhi_…`, `cred_…`, `ent_…`): milliseconds and a
 * counter (so ids created together sort together and index inserts stay append-mostly)
 * and a per-process random tag.
 */
export function newId(prefix: string): string {
  const ms = Date.now();
  if (ms > lastMs) {
    lastMs = ms;
    counter = 0;
  } else counter += 1;
  return `${prefix}_${lastMs.toString(36).padStart(9, '0')}${counter.toString(36).padStart(4, '0')}${processTag}`;
}
