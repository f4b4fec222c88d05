import { canonicalJson } from '../ledger/event.js';

/** Payload fields of a subject (camelCase names, `null` for "not set"). */
export type Fields = Record<string, unknown>;

/** Counts an import reports for one kind of record. */
export interface ImportCounts {
  new: number;
  changed: number;
  unchanged: number;
  vanished: number;
}

export const emptyCounts = (): ImportCounts => ({ new: 0, changed: 0, unchanged: 0, vanished: 0 });

export const orNull = <T>(v: T | undefined): T | null => (v === undefined ? null : v);

/** The fields of `desired` whose values differ from `current` (arrays and objects compared canonically), or null. */
export function changedFields(desired: Fields, current: Fields): Fields | null {
  let out: Fields | null = null;
  for (const [k, v] of Object.entries(desired)) {
    const cur = current[k] ?? null;
    if (v === cur) continue;
    if (v !== null && cur !== null && typeof v === 'object' && canonicalJson(v) === canonicalJson(cur))
      continue;
    (out ??= {})[k] = v;
  }
  return out;
}

/** A creation states only what is known: absent fields are null in the record anyway. */
export function withoutNulls(f: Fields): Fields {
  const out: Fields = {};
  for (const k in f) if (f[k] !== null) out[k] = f[k];
  return out;
}
