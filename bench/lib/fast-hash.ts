/**
 * A faster, equivalent encoding of `canonicalJson` / `hashEvent` for the estate generator only:
 * the generator's values are plain strings, numbers, booleans, null, arrays and objects, for which
 * RFC 8785 is JSON.stringify of strings and finite numbers with object keys sorted by UTF-16 code
 * units. The generator cross-checks it against hashEvent regularly and verifyLedger checks the result.
 */
import { createHash } from 'node:crypto';

export function fastCanonicalJson(v: unknown): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'number':
      if (!Number.isFinite(v)) throw new TypeError('non-finite number');
      return JSON.stringify(v);
    case 'boolean':
      return v ? 'true' : 'false';
    case 'object': {
      if (Array.isArray(v)) return '[' + v.map((x) => (x === undefined ? 'null' : fastCanonicalJson(x))).join(',') + ']';
      const o = v as Record<string, unknown>;
      let out = '';
      for (const k of Object.keys(o).sort()) {
        const x = o[k];
        if (x === undefined) continue;
        out += (out ? ',' : '') + JSON.stringify(k) + ':' + fastCanonicalJson(x);
      }
      return '{' + out + '}';
    }
    default:
      throw new TypeError(`cannot encode ${typeof v}`);
  }
}

const q = (s: string | null) => (s === null ? 'null' : JSON.stringify(s));

/** Same bytes as hashEvent: the canonical head (keys in sorted order), a newline, the payload. */
export function fastHashEvent(e: {
  seq: number;
  prevHash: string;
  type: string;
  subject: string;
  identityId: string | null;
  actor: string;
  reason: string | null;
  effectiveAt: string;
  recordedAt: string;
  payloadJson: string;
}): string {
  const head =
    `{"actor":${q(e.actor)},"effectiveAt":${q(e.effectiveAt)},"identityId":${q(e.identityId)},"prevHash":${q(e.prevHash)},` +
    `"reason":${q(e.reason)},"recordedAt":${q(e.recordedAt)},"seq":${e.seq},"subject":${q(e.subject)},"type":${q(e.type)},"v":1}`;
  return createHash('sha256').update(head).update('\n').update(e.payloadJson).digest('hex');
}
