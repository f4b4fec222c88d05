import { hash } from 'node:crypto';
import canonicalize from 'canonicalize';

/** An event a command wants appended. */
export interface NewEvent {
  type: string;
  /** What the event is about: `identity:<id>`, `credential:<id>`, `person:<email>`, `team:<id>` … */
  subject: string;
  /** The identity the event concerns, so an identity's record can be rebuilt from its own events. */
  identityId?: string | null;
  payload: EventPayload;
  /** When the fact became true in the world (ISO-8601 UTC). */
  effectiveAt: string;
  /**
   * The payload's canonical JSON when the caller has already encoded it (exactly
   * `canonicalJson(payload)`): a policy evaluation worker encodes its events on its own thread,
   * so the thread that appends them only hashes and stores them.
   */
  payloadJson?: string;
}

/** Field changes carried by a state event; `null` clears a field. */
export interface EventPayload {
  set?: Record<string, unknown>;
  [k: string]: unknown;
}

/** Who did it, why, and when Steward recorded it. */
export interface EventContext {
  actor: string;
  reason?: string | null;
  recordedAt: string;
}

/** An appended event, as stored in the ledger. */
export interface LedgerEvent {
  seq: number;
  type: string;
  subject: string;
  identityId: string | null;
  payload: EventPayload;
  actor: string;
  reason: string | null;
  effectiveAt: string;
  recordedAt: string;
  prevHash: string;
  hash: string;
}

export const GENESIS_HASH = '0'.repeat(64);

/** Canonical JSON (RFC 8785) of a value; the one encoding hashed and stored. */
export function canonicalJson(value: unknown): string {
  // Event payloads are plain JSON trees; encode those directly (the library's per-string
  // surrogate scan, cycle set and intermediate arrays were a fifth of an append). Anything
  // else (toJSON, class instances, symbols, holes, deep trees) goes to the library, whose
  // output and errors stay the reference; a property test checks that both agree.
  const s = plainCanonicalJson(value, 0) ?? canonicalize(value);
  if (s === undefined) throw new TypeError('value has no JSON encoding');
  return s;
}

interface WellFormed {
  isWellFormed(): boolean;
}

/** RFC 8785 for plain values (strings, finite numbers, booleans, null, arrays, plain objects); undefined for anything else. */
function plainCanonicalJson(v: unknown, depth: number): string | undefined {
  switch (typeof v) {
    case 'string':
      return (v as unknown as WellFormed).isWellFormed() ? JSON.stringify(v) : undefined;
    case 'number':
      return Number.isFinite(v) ? JSON.stringify(v) : undefined;
    case 'boolean':
      return v ? 'true' : 'false';
    case 'object': {
      if (v === null) return 'null';
      if (depth > 64 || typeof (v as { toJSON?: unknown }).toJSON === 'function') return undefined;
      if (Array.isArray(v)) {
        let out = '[';
        for (let i = 0; i < v.length; i++) {
          if (!(i in v)) return undefined;
          const x: unknown = v[i];
          const s = x === undefined ? 'null' : plainCanonicalJson(x, depth + 1);
          if (s === undefined) return undefined;
          out += i === 0 ? s : ',' + s;
        }
        return out + ']';
      }
      const proto: unknown = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) return undefined;
      const o = v as Record<string, unknown>;
      const keys = Object.keys(o);
      if (keys.length > 1) keys.sort();
      let out = '{';
      for (const k of keys) {
        const x = o[k];
        if (x === undefined) continue;
        const s = plainCanonicalJson(x, depth + 1);
        if (s === undefined || !(k as unknown as WellFormed).isWellFormed()) return undefined;
        out += (out.length === 1 ? '' : ',') + JSON.stringify(k) + ':' + s;
      }
      return out + '}';
    }
    default:
      return undefined;
  }
}

/**
 * SHA-256 over the canonical encoding of every field of the event but its own hash:
 * the envelope as a fixed-order JSON array (version 1), a newline, then the payload's
 * RFC 8785 canonical JSON. Fixed positions make the envelope canonical without sorting.
 */
export function hashEvent(
  e: Omit<LedgerEvent, 'hash' | 'payload'> & { payloadJson?: string },
  payloadJson: string | undefined = e.payloadJson,
): string {
  if (payloadJson === undefined) throw new TypeError("hashEvent: the payload's canonical JSON is required");
  return transactionHasher(e.actor, e.reason, e.recordedAt)(
    e.seq,
    e.prevHash,
    e.type,
    e.subject,
    e.identityId,
    e.effectiveAt,
    payloadJson,
  );
}

/**
 * The hasher of `hashEvent` for the events of one transaction: the envelope's constant fields
 * (actor, reason, recordedAt) are encoded once, the others concatenated in place. The bytes are
 * `JSON.stringify([1, seq, prevHash, type, subject, identityId, actor, reason, effectiveAt,
 * recordedAt]) + '\n' + payloadJson`; a property test holds them to that.
 */
export function transactionHasher(
  actor: string,
  reason: string | null,
  recordedAt: string,
): (
  seq: number,
  prevHash: string,
  type: string,
  subject: string,
  identityId: string | null,
  effectiveAt: string,
  payloadJson: string,
) => string {
  const tail = ',' + JSON.stringify(actor) + ',' + JSON.stringify(reason) + ',';
  const end = ',' + JSON.stringify(recordedAt) + ']\n';
  const HEX = /^[0-9a-f]*$/;
  return (seq, prevHash, type, subject, identityId, effectiveAt, payloadJson) => {
    const prev = HEX.test(prevHash) ? '"' + prevHash + '"' : JSON.stringify(prevHash);
    const head =
      '[1,' +
      JSON.stringify(seq) +
      ',' +
      prev +
      ',' +
      JSON.stringify(type) +
      ',' +
      JSON.stringify(subject) +
      ',' +
      (identityId === null ? 'null' : JSON.stringify(identityId)) +
      tail +
      JSON.stringify(effectiveAt) +
      end;
    return hash('sha256', head + payloadJson, 'hex');
  };
}
