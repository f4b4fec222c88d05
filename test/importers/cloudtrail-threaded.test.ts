/**
 * A large CloudTrail file is read on a worker thread (threaded.ts) by the compiled package: what
 * it finds — identities, keys, usage, counts and every problem with its line — must be exactly
 * what reading it on one thread finds. The test imports the built module (`dist/`, which
 * `npm ci` builds) beside the sources it runs on.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { describe, it, expect, afterAll } from 'vitest';
import { ValidationError } from '../../src/domain/errors.js';
import * as sources from '../../src/importers/cloudtrail/index.js';

const BUILT = path.resolve('dist/src/importers/cloudtrail/index.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'steward-ct-thread-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
/** The error a read ends with (it must end with one). */
async function refusal(
  read: typeof sources.readCloudTrail,
  file: string,
  skipInvalid: boolean,
): Promise<ValidationError> {
  try {
    await read([file], opts(skipInvalid));
  } catch (e) {
    return e as ValidationError;
  }
  throw new Error('expected the read to fail');
}
const opts = (skipInvalid: boolean) => ({ skipInvalid, keys: { fingerprint: (s: string) => `fp:${s}` } });

/** ≈ 20 MB of JSON lines: users with long-term keys, role sessions, services; bad lines given. */
function trail(bad: Map<number, string>): string {
  const lines: string[] = [];
  let size = 0;
  for (let i = 0; size < 20 << 20; i++) {
    const b = bad.get(i);
    if (b !== undefined) {
      lines.push(b);
      continue;
    }
    const session = i % 3 === 0;
    const line = JSON.stringify({
      eventVersion: '1.08',
      eventTime: `2026-03-0${1 + (i % 5)}T${String(i % 24).padStart(2, '0')}:${String(i % 60).padStart(2, '0')}:00Z`,
      eventSource: ['s3.amazonaws.com', 'sts.amazonaws.com', 'dynamodb.amazonaws.com'][i % 3],
      eventName: ['GetObject', 'AssumeRole', 'PutItem', 'ListBuckets'][i % 4],
      ...(i % 11 === 0 ? { errorCode: 'AccessDenied' } : {}),
      userIdentity: session
        ? {
            type: 'AssumedRole',
            arn: `arn:aws:sts::111122223333:assumed-role/deploy-${i % 7}/s${i % 13}`,
            accountId: '111122223333',
            accessKeyId: `ASIA${String(i % 97).padStart(16, '0')}`,
            sessionContext: {
              sessionIssuer: { type: 'Role', arn: `arn:aws:iam::111122223333:role/deploy-${i % 7}` },
              attributes: { creationDate: '2026-03-01T00:00:00Z' },
            },
          }
        : i % 17 === 0
          ? { type: 'AWSService', invokedBy: 'lambda.amazonaws.com' }
          : {
              type: 'IAMUser',
              arn: `arn:aws:iam::111122223333:user/ci-${i % 41}`,
              accountId: '111122223333',
              accessKeyId: `AKIA${String(i % 41).padStart(16, '0')}`,
            },
      sourceIPAddress: `10.${i % 3}.${i % 256}.${i % 199}`,
      userAgent: `aws-cli/2.${i % 30}.0`,
      recipientAccountId: '111122223333',
      requestParameters: { bucketName: 'artifacts', key: `builds/${i}.tar.gz` },
    });
    lines.push(line);
    size += line.length + 1;
  }
  return lines.join('\n') + '\n';
}

describe.runIf(fs.existsSync(BUILT))('CloudTrail: a large file read on a worker thread', () => {
  const file = path.join(tmp, 'trail.jsonl');
  const bad = new Map([
    [5, '{"eventTime": "2026-03-01T00:00:00Z", "eventName": 7}'],
    [20_000, '{"eventTime": "yesterday", "eventName": "GetObject"}'],
    [30_001, '{not json'],
  ]);
  fs.writeFileSync(file, trail(bad));

  it('finds exactly what reading it on one thread finds, bad lines and all', async () => {
    const built = (await import(pathToFileURL(BUILT).href)) as typeof sources;
    expect(fs.statSync(file).size).toBeGreaterThan(16 << 20);
    const threaded = await built.readCloudTrail([file], opts(true));
    const single = await sources.readCloudTrail([file], opts(true));
    expect(threaded.batch).toEqual(single.batch);
    expect(threaded.stats).toEqual(single.stats);
    expect(threaded.skipped).toEqual(single.skipped);
    expect(single.skipped.map((p) => [p.line, p.field])).toEqual([
      [6, 'eventName'],
      [20_001, 'eventTime'],
      [30_002, undefined],
    ]);
    expect(threaded.batch.identities.length).toBe(7 + 41);
    expect(threaded.batch.files[0]!.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('without --skip-invalid both refuse the file with the same problems', async () => {
    const built = (await import(pathToFileURL(BUILT).href)) as typeof sources;
    const fail = (read: typeof sources.readCloudTrail) => refusal(read, file, false);
    const [a, b] = [await fail(built.readCloudTrail), await fail(sources.readCloudTrail)];
    expect(a.message).toBe(b.message);
    expect(a.problems).toEqual(b.problems);
    expect(b).toBeInstanceOf(ValidationError);
  });

  it('an over-long line in the second part fails the file naming the line a one-thread read names', async () => {
    const built = (await import(pathToFileURL(BUILT).href)) as typeof sources;
    const long = path.join(tmp, 'long.jsonl');
    const good = trail(new Map());
    const before = good.trimEnd().split('\n').length;
    fs.writeFileSync(long, `${good}"${'x'.repeat(17 << 20)}"\n${good.slice(0, good.indexOf('\n') + 1)}`);
    const fail = (read: typeof sources.readCloudTrail) => refusal(read, long, true);
    const [a, b] = [await fail(built.readCloudTrail), await fail(sources.readCloudTrail)];
    expect(b.problems.map((p) => p.line)).toEqual([before + 1]);
    expect(b.message).toMatch(/at most 16777216 characters/);
    expect(a.problems).toEqual(b.problems);
  });
  it('a folder of deliveries (Records documents, gzip, an array, JSON lines) is read the same, in order', async () => {
    const built = (await import(pathToFileURL(BUILT).href)) as typeof sources;
    const dir = path.join(tmp, 'deliveries');
    fs.mkdirSync(dir);
    const lines = trail(new Map([[3, '{"eventTime": 12, "eventName": "GetObject"}']]))
      .trimEnd()
      .split('\n');
    const records = (from: number, to: number) => lines.slice(from, to).map((l) => JSON.parse(l) as unknown);
    const third = Math.floor(lines.length / 3);
    fs.writeFileSync(path.join(dir, 'a.json.gz'), gzipSync(JSON.stringify({ Records: records(0, third) })));
    fs.writeFileSync(path.join(dir, 'b.json'), JSON.stringify(records(third, 2 * third)));
    fs.writeFileSync(path.join(dir, 'c.jsonl'), lines.slice(2 * third).join('\n') + '\n');
    fs.writeFileSync(path.join(dir, 'd.json'), JSON.stringify({ Records: records(5, 50) }));
    const threaded = await built.readCloudTrail([dir], opts(true));
    const single = await sources.readCloudTrail([dir], opts(true));
    expect(threaded.batch).toEqual(single.batch);
    expect(threaded.stats).toEqual(single.stats);
    expect(threaded.skipped).toEqual(single.skipped);
    expect(single.skipped).toHaveLength(1);
    expect(single.batch.files.map((f) => path.basename(f.path))).toEqual([
      'a.json.gz',
      'b.json',
      'c.jsonl',
      'd.json',
    ]);
    expect(single.stats.records).toBe(lines.length + 45);
  });
});
