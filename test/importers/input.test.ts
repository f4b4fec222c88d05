import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { describe, it, expect, afterAll } from 'vitest';
import { openInput } from '../../src/importers/common.js';
import { readCloudTrail } from '../../src/importers/cloudtrail/index.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'steward-input-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function drain(input: ReturnType<typeof openInput>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of input.stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** CloudTrail JSON lines of about `mb` megabytes (every line a distinct event). */
function cloudTrailLines(mb: number): Buffer {
  const lines: string[] = [];
  let size = 0;
  for (let i = 0; size < mb << 20; i++) {
    const line = JSON.stringify({
      eventVersion: '1.08',
      eventTime: `2026-03-02T${String(Math.floor(i / 3600) % 24).padStart(2, '0')}:00:${String(i % 60).padStart(2, '0')}Z`,
      eventSource: 's3.amazonaws.com',
      eventName: i % 7 ? 'GetObject' : 'PutObject',
      userIdentity: {
        type: 'IAMUser',
        arn: `arn:aws:iam::111122223333:user/ci-${i % 50}`,
        accountId: '111122223333',
        accessKeyId: `AKIA${String(i % 50).padStart(16, '0')}`,
      },
      sourceIPAddress: `10.0.${i % 256}.${i % 200}`,
      userAgent: 'aws-cli/2.15.30',
      recipientAccountId: '111122223333',
      requestParameters: { bucketName: 'artifacts', key: `builds/${i}.tar.gz` },
    });
    lines.push(line);
    size += line.length + 1;
  }
  return Buffer.from(lines.join('\n') + '\n');
}

describe('opening inputs: decoding and the SHA-256 every import run records', () => {
  const big = cloudTrailLines(20); // above the size hashed on a worker thread

  it('a large file is hashed on a worker thread: the same SHA-256 and bytes as reading it here', async () => {
    const file = path.join(tmp, 'big.jsonl');
    fs.writeFileSync(file, big);
    const input = openInput(file);
    expect((await drain(input)).equals(big)).toBe(true);
    expect(await input.sha256()).toBe(sha(big));
  });

  it('a large gzip file: the hash is of the compressed bytes, the stream the decompressed ones', async () => {
    const file = path.join(tmp, 'big.bin.gz');
    const plain = randomBytes(17 << 20); // incompressible: the gzip file is large too
    const gz = gzipSync(plain);
    expect(gz.length).toBeGreaterThan(16 << 20);
    fs.writeFileSync(file, gz);
    const input = openInput(file);
    expect((await drain(input)).equals(plain)).toBe(true);
    expect(await input.sha256()).toBe(sha(gz));
  });

  it('a small file is hashed as it is read', async () => {
    const file = path.join(tmp, 'small.jsonl');
    const small = big.subarray(0, 10_000);
    fs.writeFileSync(file, small);
    const input = openInput(file);
    expect((await drain(input)).equals(small)).toBe(true);
    expect(await input.sha256()).toBe(sha(small));
  });

  it('a large file that changes while it is read fails the import', async () => {
    const file = path.join(tmp, 'growing.jsonl');
    fs.writeFileSync(file, big);
    const input = openInput(file);
    let appended = false;
    for await (const _ of input.stream) {
      if (!appended) {
        fs.appendFileSync(file, big.subarray(0, 1000));
        appended = true;
      }
    }
    await expect(input.sha256()).rejects.toThrow(/changed while it was being imported/);
  });

  it('the CloudTrail import of a large file records the file SHA-256 and every event', async () => {
    const file = path.join(tmp, 'trail.jsonl');
    fs.writeFileSync(file, big);
    const lines = big.toString('utf8').trimEnd().split('\n').length;
    const r = await readCloudTrail([file], {
      skipInvalid: false,
      keys: { fingerprint: (v: string) => `fp:${v.length}` },
    });
    expect(r.batch.files).toEqual([{ path: file, sha256: sha(big) }]);
    expect(r.stats.records).toBe(lines);
    expect(r.batch.identities).toHaveLength(50);
    expect(
      r.batch.identities.reduce((n, i) => n + (i.attributes!.usage as { events: number }).events, 0),
    ).toBe(lines);
  });
});
