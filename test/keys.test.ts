import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { describe, it, expect } from 'vitest';
import { loadKeys } from '../src/ledger/keys.js';

/** The built module (`dist/`, which `npm ci` builds): a child process cannot load TypeScript. */
const KEYS_MODULE = pathToFileURL(path.resolve('dist/src/ledger/keys.js')).href;

/** Runs `loadKeys(dir, { create: true })` in a process of its own; resolves to its key id. */
function keyIdInChild(dir: string): Promise<string> {
  const script = `import(${JSON.stringify(KEYS_MODULE)}).then((m) => process.stdout.write(m.loadKeys(${JSON.stringify(dir)}, { create: true }).keyId))`;
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`exit ${code}: ${err}`))));
  });
}

describe('signing and fingerprint keys', () => {
  it('processes that create the keys of one folder at the same moment all end up with the same keys, whole', async () => {
    for (let round = 0; round < 4; round++) {
      const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'steward-keys-')), 'keys');
      try {
        const ids = await Promise.all(Array.from({ length: 6 }, () => keyIdInChild(dir)));
        expect(ids[0]).toMatch(/^[0-9a-f]{16}$/);
        expect(new Set(ids).size).toBe(1);
        // the keys as they stay: what this process loads is what every child got
        const keys = loadKeys(dir, { create: false });
        expect(keys.keyId).toBe(ids[0]);
        expect(keys.verify(Buffer.from('x'), keys.sign(Buffer.from('x')))).toBe(true);
        // no temporary files left, the secrets readable by their owner only
        expect(fs.readdirSync(dir).sort()).toEqual(
          ['fingerprint.key', 'ledger-signing.key', 'ledger-signing.pub'].sort(),
        );
        for (const f of ['fingerprint.key', 'ledger-signing.key'])
          expect(fs.statSync(path.join(dir, f)).mode & 0o777).toBe(0o600);
      } finally {
        fs.rmSync(path.dirname(dir), { recursive: true, force: true });
      }
    }
  });

  it('a signing key made anew gets its own public key, replacing one left from an earlier key', () => {
    const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'steward-keys-')), 'keys');
    try {
      const before = loadKeys(dir, { create: true });
      fs.rmSync(path.join(dir, 'ledger-signing.key'));
      const after = loadKeys(dir, { create: true });
      expect(after.keyId).not.toBe(before.keyId);
      const data = Buffer.from('checkpoint');
      expect(after.verify(data, after.sign(data))).toBe(true);
      expect(loadKeys(dir, { create: false }).keyId).toBe(after.keyId);
      // the fingerprint key is kept: fingerprints already stored stay comparable
      expect(after.fingerprint('s3cret')).toBe(before.fingerprint('s3cret'));
    } finally {
      fs.rmSync(path.dirname(dir), { recursive: true, force: true });
    }
  });
});
