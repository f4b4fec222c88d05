import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import {
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { ConfigurationError } from '../domain/errors.js';

/** The install's keys, kept in files outside the database. */
export interface Keys {
  readonly dir: string;
  readonly keyId: string;
  /** Signs checkpoint bytes with the Ed25519 private key. */
  sign(data: Buffer): string;
  /** Checks an Ed25519 signature with the trusted public key. */
  verify(data: Buffer, signature: string): boolean;
  /** Keyed hash of a secret value: what Steward stores instead of the value. */
  fingerprint(secret: string): string;
}

const SIGNING_KEY = 'ledger-signing.key';
const PUBLIC_KEY = 'ledger-signing.pub';
const FINGERPRINT_KEY = 'fingerprint.key';

/** Where keys live when `--keys`/`STEWARD_KEYS` is not given. */
export function defaultKeysDir(dbLocation: string, isPostgres: boolean): string {
  if (isPostgres) return path.join(os.homedir(), '.config', 'steward', 'keys');
  return path.join(path.dirname(path.resolve(dbLocation)), '.steward-keys');
}

/** Loads the keys in `dir`, creating them first when `create` is set and none exist. */
export function loadKeys(dir: string, options: { create: boolean }): Keys {
  const signingPath = path.join(dir, SIGNING_KEY);
  if (!fs.existsSync(signingPath)) {
    if (!options.create) {
      throw new ConfigurationError(
        `no signing key in ${dir} (run \`steward init\`, or point --keys/STEWARD_KEYS at the key folder)`,
      );
    }
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    // Another process may be creating the keys at the same moment (two `steward init` on one
    // key folder): each key file appears whole or not at all, the first one made is kept, and
    // the process that lost reads the winner's.
    if (!fs.existsSync(path.join(dir, FINGERPRINT_KEY))) {
      createOnce(path.join(dir, FINGERPRINT_KEY), randomBytes(32).toString('hex') + '\n', 0o600);
    }
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    if (createOnce(signingPath, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 0o600)) {
      // the public key must be this private key's: one left from an earlier key is replaced
      const pub = path.join(dir, PUBLIC_KEY);
      const tmp = asideOf(pub);
      fs.writeFileSync(tmp, publicKey.export({ type: 'spki', format: 'pem' }).toString(), {
        mode: 0o644,
        flag: 'wx',
      });
      fs.renameSync(tmp, pub);
    }
  }
  let privateKey: KeyObject;
  let publicKey: KeyObject;
  let hmacKey: Buffer;
  try {
    privateKey = createPrivateKey(fs.readFileSync(signingPath));
    const pubPath = path.join(dir, PUBLIC_KEY);
    publicKey = fs.existsSync(pubPath)
      ? createPublicKey(fs.readFileSync(pubPath))
      : createPublicKey(privateKey);
    hmacKey = Buffer.from(fs.readFileSync(path.join(dir, FINGERPRINT_KEY), 'utf8').trim(), 'hex');
  } catch (e) {
    throw new ConfigurationError(`cannot read the keys in ${dir}: ${(e as Error).message}`, { cause: e });
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new ConfigurationError(`${signingPath} is not an Ed25519 private key`);
  }
  if (hmacKey.length < 32)
    throw new ConfigurationError(`${path.join(dir, FINGERPRINT_KEY)} must hold 32 hex-encoded bytes`);
  const keyId = createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex')
    .slice(0, 16);
  return {
    dir,
    keyId,
    sign: (data) => sign(null, data, privateKey).toString('base64'),
    verify: (data, signature) => {
      try {
        return verify(null, data, publicKey, Buffer.from(signature, 'base64'));
      } catch {
        return false;
      }
    },
    fingerprint: (secret) =>
      'hmac-sha256:' + createHmac('sha256', hmacKey).update(secret, 'utf8').digest('hex'),
  };
}

/** A file name beside `file` that no other process uses. */
const asideOf = (file: string) => `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;

/**
 * Creates `file` with `content` unless it exists; true when this call created it. The content is
 * written to a file of its own first and linked into place, so no reader ever sees it half
 * written, and an existing file is never replaced.
 */
function createOnce(file: string, content: string, mode: number): boolean {
  const tmp = asideOf(file);
  fs.writeFileSync(tmp, content, { mode, flag: 'wx' });
  try {
    fs.linkSync(tmp, file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}
