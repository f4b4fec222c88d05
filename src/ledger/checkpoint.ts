import { canonicalJson } from './event.js';

/** The bytes a checkpoint signature covers. */
export function checkpointBytes(cp: {
  seq: number;
  headHash: string;
  signedAt: string;
  keyId: string;
}): Buffer {
  return Buffer.from(
    canonicalJson({ v: 1, seq: cp.seq, headHash: cp.headHash, signedAt: cp.signedAt, keyId: cp.keyId }),
  );
}
