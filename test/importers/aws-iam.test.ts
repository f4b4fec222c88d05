import fs from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, it, expect } from 'vitest';
import { dialects, withSteward, type TestEnv } from '../helpers/steward.js';
import { corpus, corporaAvailable } from '../helpers/corpora.js';
import { tempFiles } from '../helpers/files.js';
import {
  importer,
  expandPolicies,
  isCrossAccount,
  trustedPrincipals,
  type Statement,
} from '../../src/importers/aws-iam/index.js';
import { importDiscovery, type DiscoveredIdentity } from '../../src/inventory/import-discovery.js';
import { resolveIdentity } from '../../src/inventory/queries.js';
import { loadRecord } from '../../src/inventory/record.js';
import { ValidationError } from '../../src/domain/errors.js';
import type { ReadOptions } from '../../src/importers/source.js';

const CLOUDMAPPER = 'aws-iam-authz-details/iam-get-account-authorization-details.json';
const CLOUDSPLAINING = 'aws-iam-authz-details/example.json';
const TEACHING = 'aws-iam-authz-details/example-authz-details.json';
const ADMIN = 'arn:aws:iam::aws:policy/AdministratorAccess';
const opts: ReadOptions = { skipInvalid: false, keys: { fingerprint: (s) => `fp:${s.length}` } };

const byName = (ids: DiscoveredIdentity[], name: string): DiscoveredIdentity => {
  const d = ids.find((i) => i.name === name);
  if (!d) throw new Error(`no identity ${name}`);
  return d;
};

async function readError(paths: string[], o: ReadOptions = opts): Promise<ValidationError> {
  const e: unknown = await importer.read(paths, o).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ValidationError);
  return e as ValidationError;
}

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

/** Entitlement rows (with their JSON attributes) of one identity, from the projection. */
async function entitlementRows(env: TestEnv, identityId: string) {
  const rows = await env.steward.store.db
    .selectFrom('entitlements')
    .selectAll()
    .where('identity_id', '=', identityId)
    .execute();
  return rows.map((r) => ({
    resource: r.resource,
    grantedVia: r.granted_via,
    actions: JSON.parse(r.actions) as string[],
    attributes: JSON.parse(r.attributes ?? '{}') as Record<string, unknown>,
  }));
}

describe('aws-iam policy and trust parsing (pure)', () => {
  const allow = (actions: string[], resources: string[], extra: Partial<Statement> = {}): Statement => ({
    effect: 'Allow',
    actions,
    notAction: false,
    resources,
    notResource: false,
    ...extra,
  });

  it('merges statements per (policy, resource), flags wildcard/admin/condition and counts denies', () => {
    const { entitlements, denies } = expandPolicies([
      {
        grantedVia: 'inline:p',
        statements: [
          allow(['s3:GetObject'], ['arn:aws:s3:::b/*']),
          allow(['s3:PutObject'], ['arn:aws:s3:::b/*'], {
            condition: { Bool: { 'aws:SecureTransport': 'true' } },
          }),
          allow(['*'], ['*']),
          { ...allow(['iam:*'], ['*']), effect: 'Deny' },
          allow(['iam:*'], ['*'], { notAction: true }),
        ],
      },
    ]);
    expect(denies).toBe(1);
    expect(entitlements).toEqual([
      {
        resource: '*',
        actions: ['!iam:*', '*'],
        grantedVia: 'inline:p',
        attributes: { effect: 'Allow', wildcard: true, admin: true, notAction: true },
      },
      {
        resource: 'arn:aws:s3:::b/*',
        actions: ['s3:GetObject', 's3:PutObject'],
        grantedVia: 'inline:p',
        attributes: {
          effect: 'Allow',
          wildcard: true,
          admin: false,
          condition: { Bool: { 'aws:SecureTransport': 'true' } },
        },
      },
    ]);
    // AdministratorAccess is admin by name, whatever its document says
    const named = expandPolicies([
      { grantedVia: ADMIN, policyArn: ADMIN, statements: [allow(['ec2:Describe*'], ['*'])] },
    ]);
    expect(named.entitlements[0]!.attributes).toMatchObject({ admin: true, policyArn: ADMIN });
  });

  it('reads trusted principals: services, accounts, federated, ARNs, * and the external-id condition', () => {
    const st = (principal: unknown, condition?: Record<string, unknown>): Statement => ({
      effect: 'Allow',
      actions: ['sts:AssumeRole'],
      notAction: false,
      resources: [],
      notResource: false,
      principal,
      ...(condition ? { condition } : {}),
    });
    const tp = trustedPrincipals([
      st({ Service: ['ec2.amazonaws.com', 'lambda.amazonaws.com'] }),
      st({ AWS: 'arn:aws:iam::111122223333:root' }, { StringEquals: { 'sts:ExternalId': 'x' } }),
      st({ AWS: ['444455556666', 'arn:aws:iam::123456789012:role/ci'] }),
      st({ Federated: 'arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com' }),
      { ...st('*'), effect: 'Deny' },
      { ...st({ AWS: '*' }), actions: ['sts:TagSession'] },
    ]);
    expect(tp).toEqual([
      { type: 'service', value: 'ec2.amazonaws.com', externalIdCondition: false },
      { type: 'service', value: 'lambda.amazonaws.com', externalIdCondition: false },
      { type: 'account', value: '111122223333', externalIdCondition: true },
      { type: 'account', value: '444455556666', externalIdCondition: false },
      { type: 'aws', value: 'arn:aws:iam::123456789012:role/ci', externalIdCondition: false },
      {
        type: 'federated',
        value: 'arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com',
        externalIdCondition: false,
      },
    ]);
    expect(isCrossAccount(tp, '123456789012')).toBe(true);
    expect(
      isCrossAccount(
        tp.filter((p) => p.type !== 'account'),
        '123456789012',
      ),
    ).toBe(false);
    expect(isCrossAccount([{ type: 'aws', value: '*', externalIdCondition: false }], '123456789012')).toBe(
      true,
    );
  });
});

describe.runIf(corporaAvailable)('aws-iam reading the corpus (pure)', () => {
  it('cloudmapper demo (CLI date style): 2 users + 4 roles, a role anyone may assume, and group grants', async () => {
    const { batch, skipped } = await importer.read([corpus(CLOUDMAPPER)], opts);
    expect(skipped).toEqual([]);
    expect(batch).toMatchObject({ source: 'aws-iam', scope: '123456789012', snapshot: true });
    expect(batch.observedAt).toBeUndefined();
    expect(batch.files).toEqual([
      { path: corpus(CLOUDMAPPER), sha256: expect.stringMatching(/^23def594a6484dc7/) as unknown },
    ]);
    const ids = batch.identities;
    expect(ids.filter((d) => d.attributes?.principalType === 'user')).toHaveLength(2);
    expect(ids.filter((d) => d.attributes?.principalType === 'role').map((d) => d.name)).toEqual([
      'exfiller',
      'bad_role',
      'level1',
      'level3',
    ]);
    expect(ids.every((d) => d.kind === 'service-account')).toBe(true);
    expect(ids.flatMap((d) => d.entitlements ?? [])).toHaveLength(10);

    const bad = byName(ids, 'bad_role');
    expect(bad.externalId).toBe('arn:aws:iam::123456789012:role/bad_role');
    expect(bad.createdAt).toBe('2018-11-20T17:14:45.000Z'); // "2018-11-20T17:14:45+00:00"
    expect(bad.attributes).toMatchObject({
      trustedPrincipals: [{ type: 'aws', value: '*', externalIdCondition: false }],
      crossAccount: true,
      serviceLinked: false,
    });
    expect(bad.entitlements).toEqual([
      expect.objectContaining({
        resource: '*',
        grantedVia: 'arn:aws:iam::aws:policy/service-role/AmazonEC2RoleforSSM',
        attributes: expect.objectContaining({ wildcard: true, admin: false }) as unknown,
      }),
      {
        resource: '*',
        actions: ['*'],
        grantedVia: 'inline:dostuff',
        attributes: { effect: 'Allow', wildcard: true, admin: true },
      },
    ]);
    expect(bad.entitlements?.[0]?.actions).toHaveLength(41);

    // USER gets AmazonEC2RoleforSSM only through its group
    const user = byName(ids, 'USER');
    expect(user.attributes).toMatchObject({
      principalType: 'user',
      groups: ['GROUP_WITH_BAD_INLINE_POLICY'],
    });
    expect(user.entitlements?.map((e) => e.grantedVia)).toEqual([
      'group:GROUP_WITH_BAD_INLINE_POLICY/arn:aws:iam::aws:policy/service-role/AmazonEC2RoleforSSM',
    ]);
  });

  it('teaching fixture (boto3 "2019-12-18 19:10:08+00:00" dates): admin granted directly and via a group', async () => {
    const { batch } = await importer.read([corpus(TEACHING)], opts);
    expect(batch.scope).toBe('012345678901');
    expect(batch.identities).toHaveLength(6);
    const obama = byName(batch.identities, 'obama');
    expect(obama.createdAt).toBe('2019-12-18T19:10:08.000Z');
    expect(obama.entitlements?.map((e) => [e.grantedVia, e.resource, e.attributes?.admin])).toEqual([
      [ADMIN, '*', true],
      [`group:admin/${ADMIN}`, '*', true],
    ]);
    const ec2 = byName(batch.identities, 'OverprivilegedEC2');
    expect(ec2.lastUsedAt).toBe('2019-01-20T18:48:00.000Z');
    expect(ec2.attributes).toMatchObject({ lastUsedRegion: 'us-east-1' });
  });
});

describe.runIf(corporaAvailable).each(dialects)('aws-iam import on $name', (dialect) => {
  it('cloudsplaining lab account: 41 users, 75 roles, trust, admin grants, service-linked roles; re-import writes nothing', async () => {
    await withSteward(dialect, async (env) => {
      const { batch } = await importer.read([corpus(CLOUDSPLAINING)], { ...opts, keys: env.steward.keys });
      expect(batch.scope).toBe('200611803367');
      const types = batch.identities.map((d) => d.attributes?.principalType);
      expect(types.filter((t) => t === 'user')).toHaveLength(41);
      expect(types.filter((t) => t === 'role')).toHaveLength(75);
      expect(batch.identities.filter((d) => d.attributes?.serviceLinked === true)).toHaveLength(8);
      expect(batch.identities.filter((d) => d.lastUsedAt !== undefined)).toHaveLength(25);

      const r = await importDiscovery(env.steward, batch, { actor: 'test' });
      expect(r.identities).toEqual({ new: 116, changed: 0, unchanged: 0, vanished: 0 });
      expect(r.entitlements.new).toBe(401);
      expect(r.credentials.new).toBe(0);

      // The role the management account (072528804237) may assume, with full admin.
      const org = await resolveIdentity(env.steward.store, 'OrganizationAccountAccessRole');
      expect(org.external_id).toBe('arn:aws:iam::200611803367:role/OrganizationAccountAccessRole');
      const now = env.clock.now().toISOString();
      const rec = (await loadRecord(env.steward.store, org.id, now, now))!;
      expect(rec.source).toBe('aws-iam');
      expect(said(rec.attributes, 'aws-iam:200611803367')).toMatchObject({
        principalType: 'role',
        trustedPrincipals: [{ type: 'account', value: '072528804237', externalIdCondition: false }],
        crossAccount: true,
      });
      expect(await entitlementRows(env, org.id)).toEqual([
        {
          resource: '*',
          grantedVia: ADMIN,
          actions: ['*'],
          attributes: { effect: 'Allow', wildcard: true, admin: true, policyArn: ADMIN },
        },
      ]);

      // SSO admin role: federated trust, last used "2023-03-21 09:35:50+00:00"
      const sso = await resolveIdentity(
        env.steward.store,
        'AWSReservedSSO_AdministratorAccess_dc6414f7f2ab04fc',
      );
      expect(sso.last_used_at).toBe('2023-03-21T09:35:50.000Z');
      expect(said(sso.attributes, 'aws-iam:200611803367')).toMatchObject({
        trustedPrincipals: [
          {
            type: 'federated',
            value: 'arn:aws:iam::200611803367:saml-provider/AWSSSO_b937d2dff24f2774_DO_NOT_DELETE',
            externalIdCondition: false,
          },
        ],
        crossAccount: false,
        serviceLinked: false,
      });

      const config = await resolveIdentity(env.steward.store, 'AWSServiceRoleForConfig');
      expect(said(config.attributes, 'aws-iam:200611803367')).toMatchObject({
        serviceLinked: true,
        path: '/aws-service-role/config.amazonaws.com/',
        trustedPrincipals: [{ type: 'service', value: 'config.amazonaws.com', externalIdCondition: false }],
      });
      expect(config.last_used_at).toBe('2023-03-28T13:19:53.000Z');

      // identities granted "*" on "*" (AdministratorAccess or an inline/customer policy)
      const admins = await env.steward.store.db
        .selectFrom('entitlements')
        .innerJoin('identities', 'identities.id', 'entitlements.identity_id')
        .select('identities.name')
        .where('entitlements.attributes', 'like', '%"admin":true%')
        .execute();
      expect(new Set(admins.map((a) => a.name)).size).toBe(8);

      // a Deny is counted on the identity, never recorded as a grant; NotAction reads "!action"
      const fp3 = await resolveIdentity(env.steward.store, 'fp3-deny-iam-user');
      expect(said(fp3.attributes, 'aws-iam:200611803367')).toMatchObject({ denies: 1 });
      const fn4 = await resolveIdentity(env.steward.store, 'fn4-exploitableNotAction-user');
      expect(
        (await entitlementRows(env, fn4.id)).map((e) => [e.resource, e.actions, e.attributes.notAction]),
      ).toEqual([['*', ['!iam:Attach*', '!iam:Create*', '!iam:Update*'], true]]);

      const head = (await env.steward.ledger.head()).seq;
      const again = await importDiscovery(
        env.steward,
        (await importer.read([corpus(CLOUDSPLAINING)], { ...opts, keys: env.steward.keys })).batch,
        { actor: 'test' },
      );
      expect(again.events).toBe(0);
      expect(again.identities.unchanged).toBe(116);
      expect((await env.steward.ledger.head()).seq).toBe(head);
    });
  });

  it('several files, one per account: the corpus folder (two other AWS documents skipped with --skip-invalid)', async () => {
    await withSteward(dialect, async (env) => {
      const folder = path.dirname(corpus(CLOUDMAPPER));
      const refused = await readError([folder]);
      expect(refused.problems.map((p) => path.basename(p.file))).toEqual([
        'iam-get-account-summary.json',
        'secretsmanager-list-secrets.json',
      ]);
      expect(refused.problems[0]!.message).toContain('got keys SummaryMap');

      const { batch, skipped } = await importer.read([folder], {
        ...opts,
        skipInvalid: true,
        keys: env.steward.keys,
      });
      expect(skipped).toHaveLength(2);
      expect(batch.files).toHaveLength(3);
      // the skipped files are other documents: the three exports are still complete snapshots
      expect(batch.snapshot).toBe(true);
      expect(batch.scope).toBe('012345678901,123456789012,200611803367');
      const r = await importDiscovery(env.steward, batch, { actor: 'test' });
      expect(r.identities.new).toBe(6 + 6 + 116);
      expect(r.entitlements.new).toBe(10 + 13 + 401);
    });
  });

  it('a record with a wrong type is refused with its JSON path; --skip-invalid skips it and vanishes nothing (fixture written by us from the cloudmapper demo)', async () => {
    await withSteward(dialect, async (env) => {
      const doc = JSON.parse(fs.readFileSync(corpus(CLOUDMAPPER), 'utf8')) as {
        RoleDetailList: Record<string, unknown>[];
      };
      await importDiscovery(
        env.steward,
        (await importer.read([corpus(CLOUDMAPPER)], { ...opts, keys: env.steward.keys })).batch,
        { actor: 'test' },
      );
      doc.RoleDetailList[2]!.Arn = 42;
      doc.RoleDetailList[3]!.CreateDate = 'last tuesday';
      const dir = tempFiles({ 'authz.json': JSON.stringify(doc, null, 2) });
      const file = path.join(dir, 'authz.json');

      const e = await readError([file]);
      expect(e.problems).toEqual([
        {
          file,
          line: expect.any(Number) as unknown,
          field: 'RoleDetailList[2].Arn',
          message: 'expected ARN string (arn:aws:…), got number 42',
        },
        {
          file,
          line: expect.any(Number) as unknown,
          field: 'RoleDetailList[3].CreateDate',
          message: 'expected ISO-8601 timestamp, got string "last tuesday"',
        },
      ]);
      // the line is where the record starts
      const lines = fs.readFileSync(file, 'utf8').split('\n');
      expect(lines[e.problems[0]!.line! - 1]!.trim()).toBe('{');
      expect(lines[e.problems[0]!.line!]).toContain('"Arn": 42');

      const { batch, skipped } = await importer.read([file], {
        ...opts,
        skipInvalid: true,
        keys: env.steward.keys,
      });
      expect(skipped.map((p) => p.field)).toEqual(['RoleDetailList[2].Arn', 'RoleDetailList[3].CreateDate']);
      expect(batch.identities.map((d) => d.name).sort()).toEqual([
        'USER',
        'USER_WITH_BAD_INLINE_POLICY',
        'bad_role',
        'exfiller',
      ]);
      expect(batch.snapshot).toBe(false);
      const r = await importDiscovery(env.steward, batch, { actor: 'test' });
      // level1 and level3 could not be read: they are not taken for deleted
      expect(r.identities).toEqual({ new: 0, changed: 0, unchanged: 4, vanished: 0 });
      expect(r.events).toBe(0);
    });
  });
});

describe.runIf(corporaAvailable)('aws-iam hostile inputs', () => {
  it('truncated JSON is refused whole, even with --skip-invalid, naming the last line (fixture: first 300 kB of the corpus file)', async () => {
    const text = fs.readFileSync(corpus(CLOUDSPLAINING), 'utf8').slice(0, 300_000);
    const dir = tempFiles({ 'cut.json': text });
    const file = path.join(dir, 'cut.json');
    for (const skipInvalid of [false, true]) {
      const e = await readError([file], { ...opts, skipInvalid });
      expect(e.problems).toHaveLength(1);
      expect(e.problems[0]).toMatchObject({ file, line: text.split('\n').length });
      expect(e.problems[0]!.message).toMatch(/^expected complete JSON, got the end of the input/);
    }
  });

  it('a syntax error names its line (fixture written by us)', async () => {
    const lines = fs.readFileSync(corpus(CLOUDMAPPER), 'utf8').split('\n');
    const at = lines.findIndex((l, i) => i >= 99 && l.endsWith(','));
    lines[at] = `${lines[at]},`;
    const dir = tempFiles({ 'bad.json': lines.join('\n') });
    const e = await readError([path.join(dir, 'bad.json')]);
    expect(e.problems).toEqual([
      {
        file: path.join(dir, 'bad.json'),
        line: at + 1,
        message: expect.stringMatching(/^expected valid JSON, got a syntax error/) as unknown,
      },
    ]);
  });

  it('a gzipped export is read; a truncated gzip is refused (fixtures: the corpus file gzipped by us)', async () => {
    const gz = gzipSync(fs.readFileSync(corpus(CLOUDMAPPER)));
    const dir = tempFiles({});
    fs.writeFileSync(path.join(dir, 'ok.json.gz'), gz);
    fs.writeFileSync(path.join(dir, 'cut.json.gz'), gz.subarray(0, Math.floor(gz.length / 2)));
    const ok = await importer.read([path.join(dir, 'ok.json.gz')], opts);
    expect(ok.batch.identities).toHaveLength(6);
    const e = await readError([path.join(dir, 'cut.json.gz')]);
    expect(e.problems[0]!.message).toMatch(/corrupt or truncated gzip/);
  });

  it('not an authorization-details file: a clear problem (corpus: iam-get-account-summary.json, and an array written by us)', async () => {
    const e = await readError([corpus('aws-iam-authz-details/iam-get-account-summary.json')]);
    expect(e.problems[0]!.message).toBe(
      'expected an `aws iam get-account-authorization-details` export (an object with UserDetailList, GroupDetailList, RoleDetailList, Policies), got keys SummaryMap',
    );
    const dir = tempFiles({
      'list.json': '[{"eventName": "AssumeRole"}]',
      'page.json': '{"RoleDetailList": {}}',
    });
    expect((await readError([path.join(dir, 'list.json')])).problems[0]!.message).toMatch(/got an array$/);
    expect((await readError([path.join(dir, 'page.json')])).problems[0]).toMatchObject({
      field: 'RoleDetailList',
      message: 'expected array, got object',
    });
  });

  it('raw-API style URL-encoded documents and a single truncated page (fixtures written by us)', async () => {
    const trust = {
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { AWS: 'arn:aws:iam::999999999999:root' },
          Action: 'sts:AssumeRole',
          Condition: { StringEquals: { 'sts:ExternalId': 'k' } },
        },
      ],
    };
    const inline = { Statement: { Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::b/*' } };
    const role = {
      RoleName: 'vendor',
      Arn: 'arn:aws:iam::123456789012:role/vendor',
      CreateDate: '2024-01-02T03:04:05Z',
      AssumeRolePolicyDocument: encodeURIComponent(JSON.stringify(trust)),
      RolePolicyList: [{ PolicyName: 'read', PolicyDocument: encodeURIComponent(JSON.stringify(inline)) }],
      PermissionsBoundary: {
        PermissionsBoundaryType: 'Policy',
        PermissionsBoundaryArn: 'arn:aws:iam::123456789012:policy/boundary',
      },
      Tags: [{ Key: 'team', Value: 'payments' }],
    };
    const dir = tempFiles({
      'raw.json': JSON.stringify({ RoleDetailList: [role], UserDetailList: [], IsTruncated: false }),
      'page1.json': JSON.stringify({ RoleDetailList: [role], IsTruncated: true, Marker: 'abc' }),
    });
    const { batch } = await importer.read([path.join(dir, 'raw.json')], opts);
    const d = batch.identities[0]!;
    expect(d.createdAt).toBe('2024-01-02T03:04:05.000Z');
    expect(d.attributes).toMatchObject({
      trustedPrincipals: [{ type: 'account', value: '999999999999', externalIdCondition: true }],
      crossAccount: true,
      permissionsBoundary: 'arn:aws:iam::123456789012:policy/boundary',
      tags: { team: 'payments' },
    });
    expect(d.entitlements).toEqual([
      {
        resource: 'arn:aws:s3:::b/*',
        actions: ['s3:GetObject'],
        grantedVia: 'inline:read',
        attributes: { effect: 'Allow', wildcard: true, admin: false },
      },
    ]);
    const e = await readError([path.join(dir, 'page1.json')]);
    expect(e.problems[0]).toMatchObject({ field: 'IsTruncated' });
    // with the last page among the inputs, the pages are read together
    expect((await importer.read([dir], opts)).batch.identities).toHaveLength(1);
  });
});
