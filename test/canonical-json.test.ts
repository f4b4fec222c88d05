import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import { canonicalJson, hashEvent, transactionHasher } from '../src/ledger/event.js';

/** What the RFC 8785 library says of a value: its encoding, or that it refuses it. */
function reference(v: unknown): { ok: string } | { error: true } {
  try {
    const s = canonicalize(v);
    return s === undefined ? { error: true } : { ok: s };
  } catch {
    return { error: true };
  }
}

function ours(v: unknown): { ok: string } | { error: true } {
  try {
    return { ok: canonicalJson(v) };
  } catch {
    return { error: true };
  }
}

describe('canonicalJson (the encoding every event hash covers)', () => {
  it('agrees with the RFC 8785 library on any JSON value, keys in any order', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (v) => {
        expect(ours(v)).toEqual(reference(v));
      }),
      { numRuns: 2000 },
    );
  });

  it('agrees with the library on anything else: undefined, symbols, holes, Dates, NaN, lone surrogates, -0', () => {
    fc.assert(
      fc.property(
        fc.anything({
          maxDepth: 4,
          withBigInt: false,
          withBoxedValues: true,
          withDate: true,
          withMap: true,
          withNullPrototype: true,
          withObjectString: true,
          withSparseArray: true,
          withTypedArray: true,
          withUnicodeString: true,
        }),
        (v) => {
          expect(ours(v)).toEqual(reference(v));
        },
      ),
      { numRuns: 2000 },
    );
    for (const v of [
      { a: undefined, b: 1 },
      [undefined, 1],
      { s: Symbol('x'), t: 2 },
      { d: new Date(0) },
      { n: Number.NaN },
      { n: -0 },
      { n: 1e21, m: 5e-7 },
      { '\ud800': 1 },
      ['\udc00'],
      { é: 1, e: 2, Z: 3, '𝄞': 4, '\u00ff': 5 },
    ])
      expect(ours(v)).toEqual(reference(v));
  });

  it('sorts keys by UTF-16 code units and does not depend on insertion order', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, 'x'], c: null } })).toBe('{"a":{"c":null,"d":[1,"x"]},"b":1}');
    expect(canonicalJson({ '𝄞': 1, '\uffff': 2 })).toBe('{"𝄞":1,"\uffff":2}');
  });

  it('refuses what has no canonical JSON encoding', () => {
    expect(() => canonicalJson(undefined)).toThrow();
    expect(() => canonicalJson({ x: Number.POSITIVE_INFINITY })).toThrow(/Infinity/);
    expect(() => canonicalJson({ x: '\ud800' })).toThrow(/surrogate/);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => canonicalJson(cyclic)).toThrow(/Circular/);
  });
});

describe('transactionHasher (the append path)', () => {
  it('hashes the documented envelope bytes, for any field values (and hashEvent agrees)', () => {
    const text = fc.string({ unit: 'binary', maxLength: 30 });
    fc.assert(
      fc.property(
        fc.record({
          seq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
          prevHash: fc.oneof(fc.stringMatching(/^[0-9a-f]{64}$/), text),
          type: text,
          subject: text,
          identityId: fc.option(text),
          actor: text,
          reason: fc.option(text),
          effectiveAt: text,
          recordedAt: text,
          payload: fc.jsonValue({ maxDepth: 3 }),
        }),
        (e) => {
          const payloadJson = canonicalJson(e.payload);
          const fast = transactionHasher(e.actor, e.reason, e.recordedAt)(
            e.seq,
            e.prevHash,
            e.type,
            e.subject,
            e.identityId,
            e.effectiveAt,
            payloadJson,
          );
          const envelope = JSON.stringify([
            1,
            e.seq,
            e.prevHash,
            e.type,
            e.subject,
            e.identityId,
            e.actor,
            e.reason,
            e.effectiveAt,
            e.recordedAt,
          ]);
          const expected = createHash('sha256')
            .update(envelope + '\n' + payloadJson, 'utf8')
            .digest('hex');
          expect(fast).toBe(expected);
          expect(hashEvent(e, payloadJson)).toBe(expected);
        },
      ),
      { numRuns: 1000 },
    );
  });
});
