import fs from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, it, expect } from 'vitest';
import { dialects, withSteward } from '../helpers/steward.js';
import { corpus, corporaAvailable } from '../helpers/corpora.js';
import { tempFiles } from '../helpers/files.js';
import { importer, COLUMNS, unwrapReport } from '../../src/importers/aws-credential-report/index.js';
import { importDiscovery } from '../../src/inventory/import-discovery.js';
import { resolveIdentity } from '../../src/inventory/queries.js';
import { loadRecord } from '../../src/inventory/record.js';
import { ValidationError } from '../../src/domain/errors.js';
import type { ReadOptions } from '../../src/importers/source.js';

const CLOUDMAPPER = 'aws-credential-report/iam-get-credential-report.json';
const opts: ReadOptions = { skipInvalid: false, keys: { fingerprint: (s) => `fp:${s.length}` } };
const HEADER = COLUMNS.join(',');

/**
 * Written by us (the 2025-style report of SOURCES.md, credential-report.csv, is not in the corpus):
 * `Z` timestamps, a newer root row (password_enabled true), a rotated-out inactive key, a certificate,
 * and a console password on a service user.
 */
const REPORT_2025 = `${HEADER}
<root_account>,arn:aws:iam::111122223333:root,2020-01-01T00:00:00Z,true,2025-01-20T08:00:00Z,2024-06-01T00:00:00Z,not_supported,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A
ci-deployer,arn:aws:iam::111122223333:user/svc/ci-deployer,2023-02-01T10:00:00Z,false,N/A,N/A,N/A,false,true,2024-11-02T09:00:00Z,2025-01-28T17:25:12Z,eu-west-1,s3,false,2023-02-01T10:00:05Z,2023-05-01T00:00:00Z,us-east-1,sts,true,2023-02-01T10:00:10Z,false,N/A
jenkins,arn:aws:iam::111122223333:user/jenkins,2021-03-03T12:00:00Z,true,no_information,2021-03-03T12:00:00Z,2021-06-01T12:00:00Z,false,true,2021-03-03T12:00:01Z,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A
`;

/**
 * What one source said about an identity. The write path keeps identity attributes per
 * `source:scope` (`{"aws-iam:200611803367": {...}}`); a flat object is read as is.
 */
function said(attributes: unknown, sighting: string): Record<string, unknown> {
  const all = ((typeof attributes === 'string' ? JSON.parse(attributes) : attributes) ?? {}) as Record<
    string,
    unknown
  >;
  const own = all[sighting];
  return typeof own === 'object' && own !== null ? (own as Record<string, unknown>) : all;
}

async function readError(paths: string[], o: ReadOptions = opts): Promise<ValidationError> {
  const e: unknown = await importer.read(paths, o).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ValidationError);
  return e as ValidationError;
}

/** The corpus wrapper with its Content base64-encoded, as the real API returns it (written by us). */
function base64Wrapper(): string {
  const doc = JSON.parse(fs.readFileSync(corpus(CLOUDMAPPER), 'utf8')) as { Content: string };
  return JSON.stringify({ ...doc, Content: Buffer.from(doc.Content).toString('base64') });
}

describe.runIf(corporaAvailable)('aws-credential-report reading (pure)', () => {
  it('cloudmapper wrapper (plain CSV Content): root row, users, keys, observedAt = GeneratedTime', async () => {
    const { batch, skipped } = await importer.read([corpus(CLOUDMAPPER)], opts);
    expect(skipped).toEqual([]);
    expect(batch).toMatchObject({
      source: 'aws-credential-report',
      scope: '123456789012',
      snapshot: true,
      observedAt: '2019-05-07T15:40:22.000Z',
    });
    expect(batch.identities.map((d) => [d.name, d.externalId])).toEqual([
      ['root', 'arn:aws:iam::123456789012:root'],
      ['auditor_tmp', 'arn:aws:iam::123456789012:user/auditor_tmp'],
      ['user', 'arn:aws:iam::123456789012:user/user'],
    ]);
    const [root, auditor, user] = batch.identities;
    expect(root).toMatchObject({
      kind: 'service-account',
      createdAt: '2018-08-12T17:20:55.000Z',
      lastUsedAt: '2019-03-03T16:58:16.000Z', // password, later than the key's 2018-11-27
      attributes: { root: true, principalType: 'root', consolePassword: null, mfaActive: true },
    });
    expect(root!.credentials).toEqual([
      {
        externalId: 'arn:aws:iam::123456789012:root#access_key_1',
        kind: 'access-key',
        status: 'active',
        lastRotatedAt: '2018-11-23T16:01:14.000Z',
        lastUsedAt: '2018-11-27T00:02:00.000Z',
        attributes: { slot: 'access_key_1', lastUsedService: 'ecr', lastUsedRegion: 'us-east-1' },
      },
    ]);
    // a key created and never used
    expect(auditor!.lastUsedAt).toBeUndefined();
    expect(auditor!.credentials).toEqual([
      expect.objectContaining({ status: 'active', lastRotatedAt: '2019-05-07T15:35:55.000Z' }),
    ]);
    expect(auditor!.credentials![0]!.lastUsedAt).toBeUndefined();
    expect(auditor!.attributes).toMatchObject({ consolePassword: false, root: false });
    expect(user!.attributes).toMatchObject({
      consolePassword: true,
      passwordLastUsed: '2018-05-07T15:35:54.000Z',
    });
    expect(user!.credentials!.map((c) => c.externalId)).toEqual([
      'arn:aws:iam::123456789012:user/user#access_key_1',
      'arn:aws:iam::123456789012:user/user#access_key_2',
    ]);
  });

  it('base64 Content (as the API returns it; fixture written by us from the corpus file) reads the same', async () => {
    const dir = tempFiles({ 'report.json': base64Wrapper() });
    const plain = await importer.read([corpus(CLOUDMAPPER)], opts);
    const b64 = await importer.read([path.join(dir, 'report.json')], opts);
    expect(b64.batch.identities).toEqual(plain.batch.identities);
    expect(b64.batch.observedAt).toBe('2019-05-07T15:40:22.000Z');
    expect(unwrapReport(base64Wrapper(), 'r.json').csv).toMatch(/^user,arn,/);
    expect(() => unwrapReport('{"Content": "bm90IGEgcmVwb3J0", "ReportFormat": "text/csv"}', 'x')).toThrow(
      ValidationError,
    );
  });
});

describe('aws-credential-report hostile inputs (fixtures written by us)', () => {
  it('a header missing columns names them', async () => {
    const header = COLUMNS.filter((c) => c !== 'mfa_active' && c !== 'cert_2_last_rotated').join(',');
    const dir = tempFiles({ 'r.csv': `${header}\nx,arn:aws:iam::111122223333:user/x\n` });
    const e = await readError([path.join(dir, 'r.csv')]);
    expect(e.problems).toHaveLength(1);
    expect(e.problems[0]).toMatchObject({ file: path.join(dir, 'r.csv'), line: 1 });
    expect(e.problems[0]!.message).toMatch(/missing columns mfa_active, cert_2_last_rotated$/);
  });

  it('bad rows are file:line problems; --skip-invalid skips them and the read is no snapshot', async () => {
    const rows = REPORT_2025.trimEnd().split('\n');
    rows[2] = rows[2]!.replace(',2024-11-02T09:00:00Z,', ',02/11/2024,'); // unparsable date
    rows[3] = rows[3]!.split(',').slice(0, 20).join(','); // 20 fields, not 22
    const dir = tempFiles({ 'r.csv': rows.join('\n') + '\n' });
    const file = path.join(dir, 'r.csv');
    const e = await readError([file]);
    expect(e.problems).toEqual([
      {
        file,
        line: 3,
        field: 'access_key_1_last_rotated',
        message: 'expected ISO-8601 timestamp or N/A, no_information, not_supported, got "02/11/2024"',
      },
      { file, line: 4, message: 'expected 22 fields as in the header, got 20' },
    ]);
    const { batch, skipped } = await importer.read([file], { ...opts, skipInvalid: true });
    expect(skipped.map((p) => p.line)).toEqual([3, 4]);
    expect(batch.identities.map((d) => d.name)).toEqual(['root']);
    expect(batch.snapshot).toBe(false);
  });

  it('a truncated gzip of a valid report is refused; the whole gzip is read', async () => {
    const gz = gzipSync(Buffer.from(REPORT_2025));
    const dir = tempFiles({});
    fs.writeFileSync(path.join(dir, 'ok.csv.gz'), gz);
    fs.writeFileSync(path.join(dir, 'cut.csv.gz'), gz.subarray(0, gz.length - 12));
    expect((await importer.read([path.join(dir, 'ok.csv.gz')], opts)).batch.identities).toHaveLength(3);
    const e = await readError([path.join(dir, 'cut.csv.gz')]);
    expect(e.problems[0]!.message).toMatch(/corrupt or truncated gzip/);
  });

  it('a wrapper whose Content is not a report, and an empty file', async () => {
    const dir = tempFiles({
      'w.json': JSON.stringify({
        Content: Buffer.from('hello').toString('base64'),
        ReportFormat: 'text/csv',
      }),
      'empty.csv': '',
    });
    const e = await readError([path.join(dir, 'w.json')]);
    expect(e.problems[0]).toMatchObject({ field: 'Content' });
    expect(e.problems[0]!.message).toMatch(
      /^expected the CSV report \(starting "user,arn"\), plain or base64/,
    );
    expect((await readError([path.join(dir, 'empty.csv')])).problems[0]!.message).toMatch(
      /got an empty file$/,
    );
    // a bad row inside a base64 wrapper is named by its line in the decoded report
    const bad = REPORT_2025.replace('2024-11-02T09:00:00Z', 'yesterday');
    fs.writeFileSync(
      path.join(dir, 'b64.json'),
      JSON.stringify({ Content: Buffer.from(bad).toString('base64'), GeneratedTime: '2025-02-01T00:00:00Z' }),
    );
    expect((await readError([path.join(dir, 'b64.json')])).problems).toEqual([
      {
        file: path.join(dir, 'b64.json'),
        field: 'Content (report line 3).access_key_1_last_rotated',
        message: 'expected ISO-8601 timestamp or N/A, no_information, not_supported, got "yesterday"',
      },
    ]);
  });
});

describe.each(dialects)('aws-credential-report import on $name', (dialect) => {
  it.runIf(corporaAvailable)(
    'cloudmapper report: dated at GeneratedTime, root and keys recorded; re-import and the base64 form write nothing',
    async () => {
      await withSteward(dialect, async (env) => {
        const { batch } = await importer.read([corpus(CLOUDMAPPER)], { ...opts, keys: env.steward.keys });
        const r = await importDiscovery(env.steward, batch, { actor: 'test' });
        expect(r.identities).toEqual({ new: 3, changed: 0, unchanged: 0, vanished: 0 });
        expect(r.credentials).toEqual({ new: 4, changed: 0, unchanged: 0, vanished: 0 });

        const now = env.clock.now().toISOString();
        const root = await resolveIdentity(env.steward.store, 'arn:aws:iam::123456789012:root');
        const rec = (await loadRecord(env.steward.store, root.id, now, now))!;
        expect(rec.name).toBe('root');
        expect(said(rec.attributes, 'aws-credential-report:123456789012')).toMatchObject({
          root: true,
          mfaActive: true,
        });
        expect(rec.provenance.attributes!.at).toBe('2019-05-07T15:40:22.000Z');
        expect(rec.lastUsedAt).toBe('2019-03-03T16:58:16.000Z');

        const user = await resolveIdentity(env.steward.store, 'arn:aws:iam::123456789012:user/user');
        const urec = (await loadRecord(env.steward.store, user.id, now, now))!;
        expect(
          urec.credentials.map((c) => [c.externalId, c.kind, c.status, c.lastRotatedAt, c.lastUsedAt]),
        ).toEqual([
          [
            'arn:aws:iam::123456789012:user/user#access_key_1',
            'access-key',
            'active',
            '2019-05-07T15:35:55.000Z',
            null,
          ],
          [
            'arn:aws:iam::123456789012:user/user#access_key_2',
            'access-key',
            'active',
            '2018-05-07T15:35:54.000Z',
            '2018-05-07T15:35:54.000Z',
          ],
        ]);
        expect(said(urec.attributes, 'aws-credential-report:123456789012')).toMatchObject({
          consolePassword: true,
          mfaActive: false,
        });

        const again = await importDiscovery(
          env.steward,
          (await importer.read([corpus(CLOUDMAPPER)], { ...opts, keys: env.steward.keys })).batch,
          { actor: 'test' },
        );
        expect(again.events).toBe(0);
        const dir = tempFiles({ 'report.json': base64Wrapper() });
        const b64 = await importDiscovery(
          env.steward,
          (await importer.read([path.join(dir, 'report.json')], { ...opts, keys: env.steward.keys })).batch,
          { actor: 'test' },
        );
        expect(b64.events).toBe(0);
      });
    },
  );

  it('2025-style report ("Z" timestamps; fixture written by us): certificates, inactive keys; a later report vanishes what is gone', async () => {
    await withSteward(dialect, async (env) => {
      const dir = tempFiles({ 'jan.csv': REPORT_2025 });
      const { batch } = await importer.read([path.join(dir, 'jan.csv')], { ...opts, keys: env.steward.keys });
      expect(batch.scope).toBe('111122223333');
      expect(batch.observedAt).toBeUndefined();
      const r = await importDiscovery(env.steward, batch, { actor: 'test' });
      expect(r.identities.new).toBe(3);
      expect(r.credentials.new).toBe(4);

      const ci = await resolveIdentity(env.steward.store, 'ci-deployer');
      expect(ci.last_used_at).toBe('2025-01-28T17:25:12.000Z');
      expect(ci.source_created_at ?? null).toBe('2023-02-01T10:00:00.000Z');
      const creds = await env.steward.store.db
        .selectFrom('credentials')
        .selectAll()
        .where('identity_id', '=', ci.id)
        .orderBy('external_id')
        .execute();
      expect(
        creds.map((c) => [c.external_id.split('#')[1], c.kind, c.status, c.last_rotated_at, c.last_used_at]),
      ).toEqual([
        ['access_key_1', 'access-key', 'active', '2024-11-02T09:00:00.000Z', '2025-01-28T17:25:12.000Z'],
        ['access_key_2', 'access-key', 'inactive', '2023-02-01T10:00:05.000Z', '2023-05-01T00:00:00.000Z'],
        ['cert_1', 'certificate', 'active', '2023-02-01T10:00:10.000Z', null],
      ]);
      expect(JSON.parse(creds[0]!.attributes ?? '{}')).toEqual({
        slot: 'access_key_1',
        lastUsedService: 's3',
        lastUsedRegion: 'eu-west-1',
      });
      const jenkins = await resolveIdentity(env.steward.store, 'jenkins');
      expect(said(jenkins.attributes, 'aws-credential-report:111122223333')).toMatchObject({
        consolePassword: true,
        passwordLastUsed: null, // no_information
        passwordNextRotation: '2021-06-01T12:00:00.000Z',
        mfaActive: false,
      });
      expect(jenkins.last_used_at).toBeNull();
      const root = await resolveIdentity(env.steward.store, 'arn:aws:iam::111122223333:root');
      expect(said(root.attributes, 'aws-credential-report:111122223333')).toMatchObject({
        root: true,
        consolePassword: true,
      });

      // February: ci-deployer's old key was deleted, jenkins was deleted
      const feb = REPORT_2025.replace(
        ',false,2023-02-01T10:00:05Z,2023-05-01T00:00:00Z,us-east-1,sts,',
        ',false,N/A,N/A,N/A,N/A,',
      )
        .split('\n')
        .filter((l) => !l.startsWith('jenkins,'))
        .join('\n');
      fs.writeFileSync(path.join(dir, 'feb.csv'), feb);
      env.clock.advance(86400_000 * 30);
      const r2 = await importDiscovery(
        env.steward,
        (await importer.read([path.join(dir, 'feb.csv')], { ...opts, keys: env.steward.keys })).batch,
        { actor: 'test' },
      );
      expect(r2.identities).toEqual({ new: 0, changed: 0, unchanged: 2, vanished: 1 });
      // ci-deployer: key 1 and cert 1 unchanged, key 2 gone (whether jenkins' own key is vanished with
      // jenkins is the write path's policy, not this importer's)
      expect(r2.credentials).toMatchObject({ new: 0, changed: 0, unchanged: 2 });
      const after = await env.steward.store.db
        .selectFrom('credentials')
        .select(['external_id', 'status'])
        .where('identity_id', '=', ci.id)
        .orderBy('external_id')
        .execute();
      expect(after.map((c) => [c.external_id.split('#')[1], c.status])).toEqual([
        ['access_key_1', 'active'],
        ['access_key_2', 'vanished'],
        ['cert_1', 'active'],
      ]);
      expect((await resolveIdentity(env.steward.store, 'jenkins')).status).toBe('vanished');
    });
  });
});
