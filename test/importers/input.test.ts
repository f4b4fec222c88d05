import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { describe, it, expect, afterAll } from 'vitest';
import { openInput } from '../../src/importers/common.js';
import { readCloudTrail } from '../../src/importers/cloudtrail/index.js';
import { withStdin } from '../helpers/files.js';

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

/** Opens `-` with standard input replaced by these chunks, and reads it to the end. */
function fromStdin(chunks: Buffer[]): Promise<{ bytes: Buffer; sha256: string }> {
  return withStdin(chunks, async () => {
    const input = openInput('-');
    expect(input.path).toBe('-');
    return { bytes: await drain(input), sha256: await input.sha256() };
  });
}

/** A buffer cut into pieces of `size` bytes, as a slow pipe delivers it. */
const pieces = (b: Buffer, size: number) =>
  Array.from({ length: Math.ceil(b.length / size) }, (_, i) => b.subarray(i * size, (i + 1) * size));

describe('standard input: gzip is told apart by its first two bytes, as for files', () => {
  const plain = Buffer.from('{"Records":[{"eventName":"GetObject"}]}\n');
  const gz = gzipSync(plain);

  it('gzip on stdin is decompressed; the hash is of the bytes as piped', async () => {
    const r = await fromStdin([gz]);
    expect(r.bytes.toString()).toBe(plain.toString());
    expect(r.sha256).toBe(sha(gz));
  });

  it('gzip arriving one byte at a time (the magic split across reads) is still decompressed', async () => {
    const r = await fromStdin(pieces(gz, 1));
    expect(r.bytes.equals(plain)).toBe(true);
    expect(r.sha256).toBe(sha(gz));
  });

  it('plain input, one byte, and nothing at all pass through unchanged', async () => {
    for (const input of [plain, Buffer.from('['), Buffer.alloc(0), Buffer.from([0x1f])]) {
      const r = await fromStdin(input.length ? pieces(input, 3) : []);
      expect(r.bytes.equals(input), JSON.stringify(input.toString())).toBe(true);
      expect(r.sha256).toBe(sha(input));
    }
  });

  it('truncated gzip on stdin fails naming standard input and the gzip error', async () => {
    await expect(fromStdin([gz.subarray(0, gz.length - 9)])).rejects.toThrow(
      /^-: expected a complete gzip stream, got unexpected end of file/,
    );
  });

  it('a gzip CloudTrail export piped to `import cloudtrail -` imports what the file does', async () => {
    const file = path.join(tmp, 'piped.jsonl');
    const trail = cloudTrailLines(1);
    fs.writeFileSync(file, trail);
    const keys = { fingerprint: (v: string) => `fp:${v.length}` };
    const direct = await readCloudTrail([file], { skipInvalid: false, keys });
    const piped = await withStdin(pieces(gzipSync(trail), 4096), () =>
      readCloudTrail(['-'], { skipInvalid: false, keys }),
    );
    expect(piped.stats.records).toBe(direct.stats.records);
    expect(piped.batch.identities).toEqual(direct.batch.identities);
  });
});
