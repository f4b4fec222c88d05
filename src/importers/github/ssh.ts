import { createHash } from 'node:crypto';

/** What an OpenSSH public key line says about the key, without the key itself. */
export interface SshKeyFacts {
  /** The key type as written: `ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256`, `sk-ssh-ed25519@openssh.com` … */
  type: string;
  /** `SHA256:<base64, no padding>`: what `ssh-keygen -lf` prints and GitHub shows and logs. */
  sha256: string;
  /** `MD5:aa:bb:…`: the legacy fingerprint (older GitHub pages and logs). */
  md5: string;
  /** Key size in bits: the RSA modulus, the ECDSA curve, 256 for Ed25519. */
  bits?: number;
}

const KEY_LINE_RE = /^\s*([A-Za-z0-9@._+-]+)\s+([A-Za-z0-9+/]+={0,2})(?:\s+.*)?$/s;

/** Reads one SSH wire-format string (uint32 length, bytes) at `at`; undefined past the end. */
function wireString(blob: Buffer, at: number): { value: Buffer; next: number } | undefined {
  if (at + 4 > blob.length) return undefined;
  const len = blob.readUInt32BE(at);
  if (at + 4 + len > blob.length) return undefined;
  return { value: blob.subarray(at + 4, at + 4 + len), next: at + 4 + len };
}

/** Bits of an SSH mpint (big-endian, a leading zero byte for positive values with the top bit set). */
function mpintBits(b: Buffer): number {
  let i = 0;
  while (i < b.length && b[i] === 0) i++;
  if (i === b.length) return 0;
  return (b.length - i - 1) * 8 + (32 - Math.clz32(b[i]!));
}

const CURVE_BITS: Record<string, number> = { nistp256: 256, nistp384: 384, nistp521: 521 };

/**
 * Fingerprints an OpenSSH public key line (`type base64 [comment]`), as `ssh-keygen -l` does:
 * SHA-256 (and MD5) of the decoded key blob. Returns a sentence saying what is wrong when the
 * text is not a public key (the blob must start with the type it declares).
 */
export function sshKeyFacts(text: string): SshKeyFacts | string {
  const m = KEY_LINE_RE.exec(text);
  if (!m) return 'expected an OpenSSH public key ("<type> <base64> [comment]")';
  const type = m[1]!;
  const blob = Buffer.from(m[2]!, 'base64');
  const head = wireString(blob, 0);
  if (!head || head.value.toString('latin1') !== type)
    return `expected an OpenSSH public key whose data starts with its type ${JSON.stringify(type)}`;
  const facts: SshKeyFacts = {
    type,
    sha256: `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`,
    md5: `MD5:${createHash('md5')
      .update(blob)
      .digest('hex')
      .replace(/(..)(?!$)/g, '$1:')}`,
  };
  if (type === 'ssh-rsa') {
    const e = wireString(blob, head.next);
    const n = e && wireString(blob, e.next);
    if (n) facts.bits = mpintBits(n.value);
  } else if (type.startsWith('ecdsa-sha2-') || type.startsWith('sk-ecdsa-sha2-')) {
    const curve = wireString(blob, head.next);
    const bits = curve && CURVE_BITS[curve.value.toString('latin1')];
    if (bits) facts.bits = bits;
  } else if (type === 'ssh-ed25519' || type.startsWith('sk-ssh-ed25519')) facts.bits = 256;
  return facts;
}

const SHA256_FP_RE = /^(?:SHA256:)?([A-Za-z0-9+/]{43})=?$/;
const MD5_FP_RE = /^(?:MD5:)?((?:[0-9a-f]{2}:){15}[0-9a-f]{2})$/i;

/**
 * A fingerprint as an audit log writes it (`SHA256:…`, bare base64, or the legacy `aa:bb:…` MD5
 * form) in the one form this importer uses (`SHA256:…` or `MD5:aa:bb:…`); undefined if it is
 * neither.
 */
export function normaliseFingerprint(v: string): string | undefined {
  const s = v.trim();
  const sha = SHA256_FP_RE.exec(s);
  if (sha) return `SHA256:${sha[1]}`;
  const md5 = MD5_FP_RE.exec(s);
  if (md5) return `MD5:${md5[1]!.toLowerCase()}`;
  return undefined;
}
