import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { describe, it, expect } from 'vitest';
import { dialects, withSteward } from '../helpers/steward.js';
import { corpus, corporaAvailable } from '../helpers/corpora.js';
import { tempFiles } from '../helpers/files.js';
import {
  importer,
  isoTime,
  readCloudTrail,
  readJsonValues,
  roleArnOfSession,
  stsExpiration,
  type CloudTrailReadOptions,
} from '../../src/importers/cloudtrail/index.js';
import { importDiscovery, type DiscoveryBatch } from '../../src/inventory/import-discovery.js';
import { loadRecord } from '../../src/inventory/record.js';
import { resolveIdentity } from '../../src/inventory/queries.js';
import { ValidationError } from '../../src/domain/errors.js';
import type { Steward } from '../../src/app.js';

const STRATUS = 'aws-cloudtrail/stratus-red-team-detonation-logs';
const PANTHER = 'aws-cloudtrail/panther-derived/panther-tests.AWS.CloudTrail.jsonl';
const keys = { fingerprint: (s: string) => `fp:${s.length}` };
const opts = (extra: Partial<CloudTrailReadOptions> = {}): CloudTrailReadOptions => ({
  skipInvalid: false,
  keys,
  ...extra,
});

/** Every Stratus Red Team record, in file order (the corpus is read in place, never copied). */
function stratusRecords(): unknown[] {
  const dir = corpus(STRATUS);
  return fs
    .readdirSync(dir)
    .sort()
    .flatMap((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as unknown[]);
}

/** What a batch says, without where it was read from. */
const facts = (b: DiscoveryBatch) => ({ ...b, files: [] });

/**
 * The usage attributes a record shows for one sighting (`cloudtrail:<scope>`): the write path keeps
 * each source's attributes under its sighting (older versions merged them at the top level).
 */
function usageOf(attributes: Record<string, unknown>, sighting: string): Record<string, unknown> | undefined {
  const own = attributes[sighting] as { usage?: Record<string, unknown> } | undefined;
  return own?.usage ?? (attributes.usage as Record<string, unknown> | undefined);
}

async function record(s: Steward, externalId: string) {
  const id = (await resolveIdentity(s.store, externalId)).id;
  const rec = await loadRecord(s.store, id, new Date().toISOString(), new Date().toISOString());
  if (!rec) throw new Error(`no record for ${externalId}`);
  return rec;
}

async function rejection(p: Promise<unknown>): Promise<ValidationError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ValidationError);
    return e as ValidationError;
  }
  throw new Error('expected a ValidationError');
}

const ROLE = 'arn:aws:iam::457448411975:role/stratus-red-team-ec2-get-password-data-role';
const FEDERATION_USER = 'arn:aws:iam::742491224508:user/stratus-red-team-user-federation-user';

describe.runIf(corporaAvailable).each(dialects)('cloudtrail corpus on $name', (dialect) => {
  it('imports every Stratus Red Team capture as a folder: roles behind sessions, keys, denials', async () => {
    const { batch, skipped, stats } = await readCloudTrail([corpus(STRATUS)], opts());
    expect(skipped).toEqual([]);
    expect(stats).toMatchObject({ records: 310, attributed: 310, unattributed: {}, unrecognisedKeyIds: 0 });
    expect(batch.files).toHaveLength(35);
    expect(batch).toMatchObject({ source: 'cloudtrail', scope: 'multi', snapshot: false });
    expect(batch.observedAt).toBe('2024-11-30T08:43:18.000Z');
    expect(batch.identities).toHaveLength(40);
    // sessions are attributed to their role, never to the sts session ARN
    expect(batch.identities.filter((i) => i.externalId.includes(':role/'))).toHaveLength(7);
    expect(batch.identities.some((i) => /:sts:|assumed-role|federated-user/.test(i.externalId))).toBe(false);
    const creds = batch.identities.flatMap((i) => i.credentials ?? []);
    expect(creds.filter((c) => c.kind === 'access-key')).toHaveLength(32);
    expect(creds.filter((c) => c.kind === 'session-token')).toHaveLength(8);
    const sso = batch.identities.find((i) => i.externalId.includes('AWSReservedSSO'))!;
    expect(sso.externalId).toBe(
      'arn:aws:iam::844015365555:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_account-admin_599c9e90e350d2ff',
    );
    expect(sso.name).toBe('AWSReservedSSO_account-admin_599c9e90e350d2ff');

    await withSteward(dialect, async (env) => {
      const r = await importDiscovery(env.steward, batch, { actor: 'test' });
      expect(r.identities).toEqual({ new: 40, changed: 0, unchanged: 0, vanished: 0 });
      expect(r.credentials).toEqual({ new: 40, changed: 0, unchanged: 0, vanished: 0 });

      // the EC2 role assumed by christophe: 30 denied GetPasswordData calls with one session token
      const role = await record(env.steward, ROLE);
      expect(role.name).toBe('stratus-red-team-ec2-get-password-data-role');
      expect(role.kind).toBe('service-account');
      expect(role.source).toBe('cloudtrail');
      expect(role.lastUsedAt).toBe('2024-07-30T21:31:21.000Z');
      expect(usageOf(role.attributes, 'cloudtrail:multi')).toEqual({
        events: 30,
        firstSeen: '2024-07-30T21:31:16.000Z',
        lastSeen: '2024-07-30T21:31:21.000Z',
        services: { 'ec2.amazonaws.com': { actions: ['GetPasswordData'], count: 30 } },
        errors: { 'Client.UnauthorizedOperation': 30 },
        accessDenied: 30,
        sourceIps: ['200.249.253.51'],
        userAgents: ['stratus-red-team_5c59eb79-6dac-405c-a4c4-e19aec03c666'],
      });
      expect(role.credentials).toHaveLength(1);
      expect(role.credentials[0]).toMatchObject({
        externalId: 'ASIANQQHHS551LWULIWD',
        kind: 'session-token',
        issuedAt: '2024-07-30T21:31:15.000Z', // sessionContext.attributes.creationDate
        expiresAt: '2024-07-30T21:46:15.000Z', // the AssumeRole response: "Jul 30, 2024, 9:46:15 PM"
        lastUsedAt: '2024-07-30T21:31:21.000Z',
      });

      // the user who assumed it: a long-term key, 2 of 4 AssumeRole calls denied
      const user = await record(env.steward, 'arn:aws:iam::457448411975:user/christophe');
      expect(usageOf(user.attributes, 'cloudtrail:multi')).toMatchObject({
        events: 4,
        accessDenied: 2,
        errors: { AccessDenied: 2 },
      });
      expect(user.credentials.map((c) => [c.externalId, c.kind])).toEqual([
        ['AKIAWOGXN38MFN92ING5', 'access-key'],
      ]);

      // GetFederationToken: the federated session is the IAM user's, with an AKIA and an ASIA key
      const fed = await record(env.steward, FEDERATION_USER);
      expect(fed.lastUsedAt).toBe('2024-11-30T08:43:18.000Z');
      expect(fed.credentials.map((c) => [c.externalId, c.kind, c.lastUsedAt])).toEqual([
        ['AKIA6V1GNZTT65XQH36M', 'access-key', '2024-11-30T08:43:17.000Z'],
        ['ASIASTJKC5GCM7ZE6LUP', 'session-token', '2024-11-30T08:43:18.000Z'],
      ]);
      expect(
        batch.identities.find((i) => i.externalId === FEDERATION_USER)!.credentials![1]!.attributes,
      ).toEqual({
        temporary: true,
      });

      // usage only: importing the same logs again writes nothing
      const head = (await env.steward.ledger.head()).seq;
      const again = await importDiscovery(
        env.steward,
        (await readCloudTrail([corpus(STRATUS)], opts())).batch,
        {
          actor: 'test',
        },
      );
      expect(again.events).toBe(0);
      expect((await env.steward.ledger.head()).seq).toBe(head);
    });
  });

  it('imports the Panther-derived JSON lines: bad rows named by line, --skip-invalid imports the rest', async () => {
    const err = await rejection(readCloudTrail([corpus(PANTHER)], opts()));
    expect(err.problems).toHaveLength(39); // 37 rows without eventTime (trail resources, p_event_time only …) + 2 placeholders
    expect(err.problems[0]).toMatchObject({
      line: 1,
      field: 'event.eventTime',
      message: 'expected the event time, got nothing',
    });
    expect(err.problems.find((p) => p.line === 337)).toMatchObject({
      field: 'event.eventTime',
      message: 'expected an ISO-8601 timestamp, got string "redacted"',
    });

    const { batch, skipped, stats } = await readCloudTrail([corpus(PANTHER)], opts({ skipInvalid: true }));
    expect(skipped).toHaveLength(39);
    expect(stats).toMatchObject({
      records: 484,
      attributed: 413,
      unattributed: { IAMUser: 13, AssumedRole: 7, none: 5, AWSAccount: 5, AWSService: 2 },
      skipped: 39,
    });
    expect(batch.identities).toHaveLength(103);
    expect(batch.scope).toBe('multi');
    const creds = batch.identities.flatMap((i) => i.credentials ?? []);
    expect(creds.filter((c) => c.kind === 'access-key')).toHaveLength(25);
    expect(creds.filter((c) => c.kind === 'session-token')).toHaveLength(43);
    // nanosecond times without a zone ("2025-01-21 17:49:47.000000000") are UTC
    expect(batch.observedAt).toBe('2026-01-11T22:54:56.000Z');

    await withSteward(dialect, async (env) => {
      const r = await importDiscovery(env.steward, batch, { actor: 'test' });
      expect(r.identities.new).toBe(103);
      const dev = await record(env.steward, 'arn:aws:iam::123456789012:user/developer');
      expect(dev.lastUsedAt).toBe('2024-01-18T06:15:00.000Z');
      expect(usageOf(dev.attributes, 'cloudtrail:multi')).toMatchObject({
        events: 14,
        accessDenied: 10,
        errors: { AccessDenied: 10, InvalidDBInstanceState: 1, InvalidDBSnapshotState: 1 },
      });
      expect(dev.credentials.map((c) => [c.externalId, c.kind])).toEqual([
        ['AKIAIOSFODNN7EXAMPLE', 'access-key'],
      ]);
      const root = await record(env.steward, 'arn:aws:iam::123456789012:root');
      expect(root.name).toBe('root');
      expect(usageOf(root.attributes, 'cloudtrail:multi')).toMatchObject({ events: 12 });

      const again = await importDiscovery(
        env.steward,
        (await readCloudTrail([corpus(PANTHER)], opts({ skipInvalid: true }))).batch,
        { actor: 'test' },
      );
      expect(again.events).toBe(0);
    });
  });
});

describe.runIf(corporaAvailable)('cloudtrail input shapes', () => {
  it('{"Records":[…]} (one or concatenated), a bare array, JSON lines, EventBridge lines and gzip give the same batch', async () => {
    const records = stratusRecords();
    expect(records).toHaveLength(310);
    const lines = records.map((r) => JSON.stringify(r)).join('\n') + '\n';
    const dir = tempFiles({
      'records.json': JSON.stringify({ Records: records }),
      'pretty.json': JSON.stringify({ Records: records }, null, 2),
      'bare.json': JSON.stringify(records, null, 3),
      'lines.jsonl': lines,
      // S3 delivery files concatenated (zcat *.json.gz)
      'concatenated.json': `${JSON.stringify({ Records: records.slice(0, 100) })}${JSON.stringify({ Records: records.slice(100) })}\n`,
      'eventbridge.jsonl': records
        .map((r) =>
          JSON.stringify({
            version: '0',
            'detail-type': 'AWS API Call via CloudTrail',
            source: 'aws.ec2',
            detail: r,
          }),
        )
        .join('\r\n'),
    });
    fs.writeFileSync(path.join(dir, 'lines.jsonl.gz'), gzipSync(lines));
    fs.writeFileSync(path.join(dir, 'records.json.gz'), gzipSync(JSON.stringify({ Records: records })));
    const reference = facts((await readCloudTrail([corpus(STRATUS)], opts())).batch);
    for (const name of fs.readdirSync(dir)) {
      const { batch, stats } = await readCloudTrail([path.join(dir, name)], opts());
      expect(stats.records, name).toBe(310);
      expect(facts(batch), name).toEqual(reference);
    }
  });
});

describe('cloudtrail hostile inputs', () => {
  const rec = (extra: Record<string, unknown> = {}) => ({
    eventTime: '2024-07-30T21:31:21Z',
    eventName: 'GetCallerIdentity',
    eventSource: 'sts.amazonaws.com',
    recipientAccountId: '111122223333',
    userIdentity: {
      type: 'IAMUser',
      arn: 'arn:aws:iam::111122223333:user/ci',
      accountId: '111122223333',
      accessKeyId: 'AKIAEXAMPLE000000001',
    },
    ...extra,
  });

  it('a truncated gzip fails naming the file', async () => {
    const full = gzipSync(Array.from({ length: 200 }, () => JSON.stringify(rec())).join('\n'));
    const dir = tempFiles({});
    const file = path.join(dir, 'cut.jsonl.gz');
    fs.writeFileSync(file, full.subarray(0, Math.floor(full.length / 2)));
    const err = await rejection(readCloudTrail([file], opts()));
    expect(err.message).toMatch(/expected a complete gzip stream/);
    expect(err.problems[0]!.file).toBe(file);
  });

  it('malformed JSON in an array fails with its line and offset; in JSON lines it is a bad line', async () => {
    const dir = tempFiles({
      'array.json': `[\n${JSON.stringify(rec())},\n{"eventTime": "2024-07-30T21:31:21Z", "eventName": "X",, "a": 1}\n]\n`,
      'missing-comma.json': `[${JSON.stringify(rec())}\n${JSON.stringify(rec())}]`,
      'truncated.json': `{"Records":[${JSON.stringify(rec())},\n{"eventTime":"2024-`,
      'trailing.json': `[${JSON.stringify(rec())}] x`,
      'lines.jsonl': `${JSON.stringify(rec())}\n{"eventTime": oops}\n${JSON.stringify(rec({ eventName: 'Other' }))}\n`,
    });
    const bad = await rejection(readCloudTrail([path.join(dir, 'array.json')], opts()));
    expect(bad.problems[0]).toMatchObject({ line: 3, field: '[1]' });
    expect(bad.problems[0]!.message).toMatch(/^expected valid JSON, got .*\(offset \d+\)$/);
    // fatal even with skipInvalid: an array cannot be resynchronised
    await expect(readCloudTrail([path.join(dir, 'array.json')], opts({ skipInvalid: true }))).rejects.toThrow(
      /offset/,
    );
    const comma = await rejection(readCloudTrail([path.join(dir, 'missing-comma.json')], opts()));
    expect(comma.problems[0]!.line).toBe(2);
    expect(comma.problems[0]!.message).toMatch(/^expected "," or "]" after an array element/);
    const cut = await rejection(readCloudTrail([path.join(dir, 'truncated.json')], opts()));
    expect(cut.problems[0]).toMatchObject({ line: 2, field: 'Records[1]' });
    expect(cut.problems[0]!.message).toMatch(/truncated/);
    const trailing = await rejection(readCloudTrail([path.join(dir, 'trailing.json')], opts()));
    expect(trailing.problems[0]!.message).toMatch(/expected the end of the input after the array, got "x"/);

    const lines = await rejection(readCloudTrail([path.join(dir, 'lines.jsonl')], opts()));
    expect(lines.problems).toEqual([
      {
        file: path.join(dir, 'lines.jsonl'),
        line: 2,
        message: expect.stringMatching(/^expected valid JSON, got /) as string,
      },
    ]);
    const skipping = await readCloudTrail([path.join(dir, 'lines.jsonl')], opts({ skipInvalid: true }));
    expect(skipping.skipped.map((p) => p.line)).toEqual([2]);
    expect(skipping.batch.identities[0]!.attributes!.usage).toMatchObject({
      events: 2,
      services: { 'sts.amazonaws.com': { actions: ['GetCallerIdentity', 'Other'], count: 2 } },
    });
  });

  it('records with wrong types are named by JSON path; --skip-invalid keeps the good ones', async () => {
    const dir = tempFiles({
      'bad.json': JSON.stringify({
        Records: [
          rec(),
          rec({ eventTime: 1722375075 }),
          rec({ userIdentity: 'root' }),
          rec({ userIdentity: { type: 'IAMUser', arn: 42 } }),
          'not a record',
          rec({ eventName: '' }),
          rec({ errorCode: { code: 'AccessDenied' } }),
          rec({ eventTime: 'yesterday' }),
        ],
      }),
    });
    const file = path.join(dir, 'bad.json');
    const err = await rejection(readCloudTrail([file], opts()));
    expect(err.problems.map((p) => [p.field, p.message])).toEqual([
      ['Records[1].eventTime', 'expected an ISO-8601 timestamp string, got number 1722375075'],
      ['Records[2].userIdentity', 'expected an object, got string "root"'],
      ['Records[3].userIdentity.arn', 'expected a string, got number 42'],
      ['Records[4]', 'expected a CloudTrail record (a JSON object), got string "not a record"'],
      ['Records[5].eventName', 'expected the event name (a string), got an empty string'],
      ['Records[6].errorCode', 'expected a string, got an object'],
      ['Records[7].eventTime', 'expected an ISO-8601 timestamp, got string "yesterday"'],
    ]);
    expect(err.problems.every((p) => p.file === file && p.line === 1)).toBe(true);
    expect(err.message).toMatch(/^7 invalid CloudTrail record\(s\); nothing was imported/);

    const { batch, skipped, stats } = await readCloudTrail([file], opts({ skipInvalid: true }));
    expect(skipped).toHaveLength(7);
    expect(stats).toMatchObject({ records: 8, attributed: 1, skipped: 7 });
    expect(batch.identities.map((i) => i.externalId)).toEqual(['arn:aws:iam::111122223333:user/ci']);
    expect(batch.scope).toBe('111122223333');
  });

  it('an over-long JSON line or array element fails in bounded memory', async () => {
    const long = JSON.stringify(rec({ requestParameters: { blob: 'x'.repeat(500) } }));
    const dir = tempFiles({
      'long.jsonl': `${JSON.stringify(rec())}\n${long}\n`,
      'long.json': `[${JSON.stringify(rec())},\n${long}]`,
    });
    const line = await rejection(
      readCloudTrail([path.join(dir, 'long.jsonl')], opts({ maxRecordChars: 400 })),
    );
    expect(line.problems[0]!.line).toBe(2);
    expect(line.problems[0]!.message).toMatch(/at most 400 characters/);
    const elem = await rejection(
      readCloudTrail([path.join(dir, 'long.json')], opts({ maxRecordChars: 400 })),
    );
    expect(elem.problems[0]).toMatchObject({ line: 2, field: '[1]' });
    expect(elem.problems[0]!.message).toMatch(/at most 400 characters/);
    // the same files pass with the default limit
    expect((await readCloudTrail([path.join(dir, 'long.jsonl')], opts())).stats.records).toBe(2);

    // a "1 GB" single line (or element) is refused after reading little more than the limit
    for (const start of ['{"eventTime":"', '[{"eventTime":"', '{"Records":[{"a":"']) {
      let pulled = 0;
      const chunk = Buffer.alloc(64 * 1024, 'a');
      const endless = Readable.from(
        (function* () {
          yield Buffer.from(start);
          for (let i = 0; i < (1024 * 1024 * 1024) / chunk.length; i++) {
            pulled += chunk.length;
            yield chunk;
          }
        })(),
      );
      const e = await rejection(
        readJsonValues(
          endless,
          'stdin',
          () => {},
          () => {},
          1024 * 1024,
        ),
      );
      expect(e.message).toMatch(/at most 1048576 characters/);
      expect(pulled).toBeLessThan(4 * 1024 * 1024);
    }
  });

  it('parses the time and ARN forms logs use', () => {
    expect(isoTime('2024-07-30T21:31:21Z')).toBe('2024-07-30T21:31:21.000Z');
    expect(isoTime('2025-01-21 17:49:47.000000000')).toBe('2025-01-21T17:49:47.000Z');
    expect(isoTime('2020-12-01T20:29:04.36089379Z')).toBe('2020-12-01T20:29:04.360Z');
    expect(isoTime('2024-07-30T23:31:21+02:00')).toBe('2024-07-30T21:31:21.000Z');
    expect(isoTime('2024-13-30T21:31:21Z')).toBeUndefined();
    expect(isoTime('redacted')).toBeUndefined();
    expect(stsExpiration('Jul 30, 2024, 9:46:15 PM')).toBe('2024-07-30T21:46:15.000Z');
    expect(stsExpiration('Aug 2, 2024, 12:05:00 AM')).toBe('2024-08-02T00:05:00.000Z');
    expect(roleArnOfSession('arn:aws:sts::123456789012:assumed-role/Deploy/i-0abc')).toBe(
      'arn:aws:iam::123456789012:role/Deploy',
    );
    expect(roleArnOfSession('arn:aws-us-gov:sts::123456789012:assumed-role/Deploy')).toBe(
      'arn:aws-us-gov:iam::123456789012:role/Deploy',
    );
  });

  it('resolves principals: assumed role without issuer, root, AWS services counted not imported', async () => {
    const dir = tempFiles({
      'p.jsonl': [
        rec({
          userIdentity: {
            type: 'AssumedRole',
            arn: 'arn:aws:sts::111122223333:assumed-role/Deploy/gh-123',
            accessKeyId: 'ASIAEXAMPLE000000009',
          },
        }),
        rec({ userIdentity: { type: 'Root', accountId: '111122223333', accessKeyId: '' } }),
        rec({ userIdentity: { type: 'AWSService', invokedBy: 'lambda.amazonaws.com' } }),
        rec({ userIdentity: undefined, recipientAccountId: '444455556666' }),
        {
          _source_file: 'x.yml',
          _test_name: 't',
          _expected: true,
          event: { ...rec(), p_event_time: 'x', p_log_type: 'AWS.CloudTrail' },
        },
      ]
        .map((r) => JSON.stringify(r))
        .join('\n'),
    });
    const { batch, stats } = await readCloudTrail([dir], opts());
    expect(batch.identities.map((i) => [i.externalId, i.name])).toEqual([
      ['arn:aws:iam::111122223333:role/Deploy', 'Deploy'],
      ['arn:aws:iam::111122223333:root', 'root'],
      ['arn:aws:iam::111122223333:user/ci', 'ci'],
    ]);
    expect(batch.identities[0]!.credentials).toEqual([
      {
        externalId: 'ASIAEXAMPLE000000009',
        kind: 'session-token',
        lastUsedAt: '2024-07-30T21:31:21.000Z',
        attributes: { temporary: true },
      },
    ]);
    expect(batch.identities[1]!.credentials).toEqual([]);
    expect(stats.unattributed).toEqual({ AWSService: 1, none: 1 });
    expect(batch.scope).toBe('multi');
  });

  it('is registered as the cloudtrail source', () => {
    expect(importer.source).toBe('cloudtrail');
    expect(importer.description).toMatch(/CloudTrail/);
  });
});
