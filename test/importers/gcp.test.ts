import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, it, expect } from 'vitest';
import { dialects, withSteward, type TestEnv } from '../helpers/steward.js';
import { corpus, corporaAvailable } from '../helpers/corpora.js';
import { tempFiles } from '../helpers/files.js';
import { cli } from '../helpers/cli.js';
import {
  KEY_KIND,
  classifyAccount,
  grpcCodeName,
  importer,
  parseKeyName,
  parseMember,
  readGcp,
  roleFlags,
  type GcpReadOptions,
} from '../../src/importers/gcp/index.js';
import { SOURCES } from '../../src/importers/registry.js';
import { importDiscovery, type DiscoveryBatch } from '../../src/inventory/import-discovery.js';
import { loadRecord } from '../../src/inventory/record.js';
import { resolveIdentity } from '../../src/inventory/queries.js';
import { ValidationError } from '../../src/domain/errors.js';

const PLF = 'gcp-iam/policy-library-fixtures';
const PANTHER = 'gcp-iam/panther-derived/panther-tests.GCP.AuditLog.jsonl';
const plf = (name: string): string => corpus(`${PLF}/${name}/assets/data.json`);
/** Fixtures written by us from Google's published schemas (the corpus has no such captures). */
const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures', 'gcp');
const CAI = path.join(FIXTURES, 'cai-export.jsonl');
const AUDIT = path.join(FIXTURES, 'audit-log.jsonl');
const KEYS_LIST = path.join(FIXTURES, 'keys-list.json');
const SA_LIST = path.join(FIXTURES, 'service-accounts-list.json');

const keys = { fingerprint: (s: string) => `fp:${s.length}` };
const opts = (extra: Partial<GcpReadOptions> = {}): GcpReadOptions => ({
  skipInvalid: false,
  keys,
  ...extra,
});

const DEPLOYER = 'deployer@acme-prod.iam.gserviceaccount.com';
const REPORTING = 'reporting@acme-prod.iam.gserviceaccount.com';
const COMPUTE = '412345678901-compute@developer.gserviceaccount.com';
const ACME = 'projects/412345678901';
const KEY_NEVER = '3f1c9a2b7d4e5f60718293a4b5c6d7e8f9012345';
const KEY_SYSTEM = '77aa88bb99cc00dd11ee22ff33aa44bb55cc66dd';
const KEY_COMPUTE = 'c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00';

/** What a batch says, without where it was read from. */
const facts = (b: DiscoveryBatch) => ({ ...b, files: [] });

async function rejection(p: Promise<unknown>): Promise<ValidationError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ValidationError);
    return e as ValidationError;
  }
  throw new Error('expected a ValidationError');
}

async function record(env: TestEnv, externalId: string) {
  const id = (await resolveIdentity(env.steward.store, externalId)).id;
  const now = env.clock.now().toISOString();
  const rec = await loadRecord(env.steward.store, id, now, now);
  if (!rec) throw new Error(`no record for ${externalId}`);
  return rec;
}

/** What one `gcp:<scope>` sighting said about an identity. */
function said(attributes: Record<string, unknown>, scope: string): Record<string, unknown> {
  return (attributes[`gcp:${scope}`] ?? {}) as Record<string, unknown>;
}

const count = (b: DiscoveryBatch) => ({
  identities: b.identities.length,
  credentials: b.identities.flatMap((i) => i.credentials ?? []).length,
  entitlements: b.identities.flatMap((i) => i.entitlements ?? []).length,
});

// ---------------------------------------------------------------------------------------------

describe('gcp names, roles and members (pure)', () => {
  it('parses key names (with or without the service host, by email or unique id) and refuses others', () => {
    expect(
      parseKeyName(
        '//iam.googleapis.com/projects/p/serviceAccounts/sa@p.iam.gserviceaccount.com/keys/0123abcd',
      ),
    ).toEqual({ project: 'p', account: 'sa@p.iam.gserviceaccount.com', keyId: '0123abcd' });
    expect(parseKeyName('projects/-/serviceAccounts/104000000000000000001/keys/k')).toEqual({
      project: '-',
      account: '104000000000000000001',
      keyId: 'k',
    });
    expect(parseKeyName('projects/p/serviceAccounts/sa@p.iam.gserviceaccount.com')).toBeUndefined();
    expect(parseKeyName('projects/p/serviceAccounts/bob/keys/k')).toBeUndefined();
    expect(parseKeyName('//iam.googleapis.com/projects/p/serviceAccounts/sa@x/keys/k/extra')).toBeUndefined();
  });

  it('tells default accounts and Google-managed service agents from their emails', () => {
    expect(classifyAccount('111111-compute@developer.gserviceaccount.com')).toEqual({
      defaultAccount: 'compute-engine',
      googleManaged: false,
      projectNumber: '111111',
    });
    expect(classifyAccount('acme-prod@appspot.gserviceaccount.com').defaultAccount).toBe('app-engine');
    expect(classifyAccount('412345678901@cloudbuild.gserviceaccount.com').defaultAccount).toBe('cloud-build');
    expect(classifyAccount('service-186783260185@gcp-sa-cloudasset.iam.gserviceaccount.com')).toEqual({
      defaultAccount: null,
      googleManaged: true,
      projectNumber: '186783260185',
    });
    expect(classifyAccount('412345678901@cloudservices.gserviceaccount.com').googleManaged).toBe(true);
    expect(classifyAccount('service-agent-manager@system.gserviceaccount.com').googleManaged).toBe(true);
    // an OAuth-style developer account is neither
    expect(
      classifyAccount('773711848681-ke5v18ndptc8j6cb5rraooik5kh0plcs@developer.gserviceaccount.com'),
    ).toEqual({ defaultAccount: null, googleManaged: false, projectNumber: null });
    expect(classifyAccount(DEPLOYER)).toEqual({
      defaultAccount: null,
      googleManaged: false,
      projectNumber: null,
    });
  });

  it('flags primitive, admin, impersonation and custom roles', () => {
    expect(roleFlags('roles/owner')).toEqual({
      primitive: true,
      admin: true,
      impersonation: false,
      customRole: false,
    });
    expect(roleFlags('roles/editor')).toMatchObject({ primitive: true, admin: true });
    expect(roleFlags('roles/viewer')).toMatchObject({ primitive: true, admin: false });
    expect(roleFlags('roles/storage.admin')).toMatchObject({ primitive: false, admin: true });
    expect(roleFlags('roles/resourcemanager.organizationAdmin').admin).toBe(true);
    expect(roleFlags('roles/bigquery.dataOwner').admin).toBe(false);
    expect(roleFlags('roles/iam.serviceAccountTokenCreator')).toMatchObject({
      impersonation: true,
      admin: false,
    });
    expect(roleFlags('organizations/123456/roles/test_role_1')).toMatchObject({
      customRole: true,
      admin: false,
    });
    // a custom role is never admin by its name alone
    expect(roleFlags('projects/p/roles/storage.admin')).toMatchObject({ customRole: true, admin: false });
  });

  it('reads members: service accounts (case folded), Workload Identity, deleted and other principals', () => {
    expect(parseMember('serviceAccount:Deployer@Acme-Prod.iam.gserviceaccount.com')).toEqual({
      kind: 'serviceAccount',
      value: DEPLOYER,
    });
    expect(parseMember('serviceAccount:acme-prod.svc.id.goog[ci/runner]')).toEqual({
      kind: 'workloadIdentity',
      value: 'acme-prod.svc.id.goog[ci/runner]',
    });
    expect(parseMember('deleted:serviceAccount:old@p.iam.gserviceaccount.com?uid=123')!.kind).toBe('deleted');
    expect(parseMember('user:alice@example.com')!.kind).toBe('other');
    expect(parseMember('allUsers')!.kind).toBe('other');
    expect(parseMember('serviceAccount:not-an-email')).toBeUndefined();
    expect(grpcCodeName(7)).toBe('PERMISSION_DENIED');
    expect(grpcCodeName(16)).toBe('UNAUTHENTICATED');
    expect(grpcCodeName(42)).toBe('CODE_42');
  });

  it('is registered as the gcp source', async () => {
    expect(importer.source).toBe('gcp');
    expect(SOURCES.gcp!.description).toMatch(/Cloud Asset Inventory/);
    expect((await SOURCES.gcp!.load()).source).toBe('gcp');
  });
});

// ---------------------------------------------------------------------------------------------

describe.runIf(corporaAvailable)('gcp reading the corpus (pure)', () => {
  it('reads every policy-library fixture as it is: scope, accounts, keys and grants', async () => {
    const expected: [string, string, ReturnType<typeof count>][] = [
      ['gcp_iam_restrict_service_account_creation', 'projects/773711848681', c(3, 0, 0)],
      ['gcp_iam_restrict_service_account_key_age', 'projects/forseti-system-test', c(1, 5, 0)],
      ['gcp_iam_restrict_service_account_key_type', 'projects/forseti-system-test', c(1, 2, 0)],
      ['gke_disable_default_service_account', 'projects/282148707733', c(0, 0, 0)],
      ['iam_allow_ban_roles', 'projects/12345', c(1, 0, 1)],
      ['iam_allowed_bindings', 'projects/12345', c(1, 0, 1)],
      ['iam_allowed_policy_member_domains', 'projects/12345,projects/186783260185', c(11, 0, 11)],
      [
        'iam_audit_log',
        'projects/good,projects/ignore-asset-type,projects/unexpected-exemption,projects/wrong-log-type,projects/wrong-service',
        c(0, 0, 0),
      ],
      ['iam_custom_role_permissions', 'organizations/123456', c(0, 0, 0)],
      ['iam_required_bindings', 'projects/12345,projects/12345-2', c(1, 0, 2)],
    ];
    function c(identities: number, credentials: number, entitlements: number) {
      return { identities, credentials, entitlements };
    }
    expect(fs.readdirSync(corpus(PLF)).sort()).toEqual(expected.map((e) => e[0]));
    for (const [name, scope, figures] of expected) {
      const { batch, skipped, stats } = await readGcp([plf(name)], opts());
      expect(skipped, name).toEqual([]);
      expect(stats.skipped, name).toBe(0);
      expect({ scope: batch.scope, snapshot: batch.snapshot, source: batch.source }, name).toEqual({
        scope,
        snapshot: true,
        source: 'gcp',
      });
      expect(count(batch), name).toEqual(figures);
    }
  });

  it('key_age and key_type: keys on the compute default account, with dates, algorithm and type', async () => {
    const { batch } = await readGcp([plf('gcp_iam_restrict_service_account_key_age')], opts());
    const sa = batch.identities[0]!;
    expect(sa).toMatchObject({
      externalId: '111111-compute@developer.gserviceaccount.com',
      kind: 'service-account',
      attributes: {
        listed: false,
        referencedBy: ['key'],
        defaultAccount: 'compute-engine',
        projectNumber: '111111',
        googleManaged: false,
      },
    });
    expect(sa.status).toBeUndefined(); // named by its keys only: the listing says nothing of its state
    expect(sa.credentials!.map((k) => [k.externalId, k.issuedAt, k.expiresAt])).toEqual([
      ['testkeyagefuture', '2200-08-21T07:55:36.000Z', '2200-08-22T19:55:36.000Z'],
      ['testkeyageover100000days', '2018-03-24T10:00:00.000Z', '2999-08-22T19:55:36.000Z'],
      ['testkeyageover100days', '2018-03-24T10:00:00.000Z', '2200-08-22T19:55:36.000Z'],
      ['testkeyageover90days', '2017-08-21T07:55:36.000Z', '2200-08-22T19:55:36.000Z'],
      ['testkeyexpired', '2017-08-21T07:55:36.000Z', '2017-08-22T19:55:36.000Z'],
    ]);
    expect(sa.credentials![0]).toMatchObject({
      kind: KEY_KIND,
      status: 'active',
      attributes: { keyAlgorithm: 'KEY_ALG_RSA_2048', keyType: null, neverExpires: false, disabled: false },
    });

    const types = (await readGcp([plf('gcp_iam_restrict_service_account_key_type')], opts())).batch;
    expect(types.identities[0]!.credentials!.map((k) => [k.externalId, k.attributes?.keyType])).toEqual([
      ['1234567890abcdef', 'USER_MANAGED'],
      ['1234567891abcdef', 'SYSTEM_MANAGED'],
    ]);
  });

  it('the Panther-derived audit log: bad rows named by line and JSON path; --skip-invalid imports the rest', async () => {
    const err = await rejection(readGcp([corpus(PANTHER)], opts()));
    expect(err.message).toMatch(/^68 invalid GCP record\(s\); nothing was imported/);
    const file = corpus(PANTHER);
    expect(err.problems.filter((p) => p.field === 'event.timestamp')).toHaveLength(52);
    expect(err.problems.find((p) => p.line === 7)).toEqual({
      file,
      line: 7,
      field: 'event.protoPayload.requestMetadata',
      message: 'expected an object, got string "..."',
    });
    expect(err.problems.find((p) => p.line === 39)).toEqual({
      file,
      line: 39,
      field: 'event.protoPayload',
      message: 'expected protoPayload (the AuditLog of a Cloud Audit Log entry), got nothing',
    });
    expect(err.problems.find((p) => p.line === 109)).toMatchObject({
      field: 'event.protoPayload.authorizationInfo[0].granted',
      message: 'expected true or false, got string "афдиу"',
    });
    // Panther's lower-cased rows (protopayload, insertid, logname) are read, not refused
    const lower = fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .map((l, i) => [i + 1, l] as const)
      .filter(([, l]) => l.includes('"protopayload"'))
      .map(([n]) => n);
    expect(lower.length).toBeGreaterThan(0);
    expect(err.problems.filter((p) => lower.includes(p.line!) && p.field !== 'event.timestamp')).toEqual([]);

    const { batch, skipped, stats, notes } = await readGcp([file], opts({ skipInvalid: true }));
    expect(skipped).toHaveLength(66); // one per skipped row
    expect(skipped.find((p) => p.line === 29)!.message).toMatch(
      /\(and 2 more problem\(s\) in this record\)$/,
    );
    expect(stats.usage).toEqual({
      entries: 206,
      attributed: 15,
      unattributed: { user: 103, none: 16, federated: 1, other: 4, kubernetes: 1 },
      nonAudit: 0,
    });
    expect(batch).toMatchObject({ source: 'gcp', scope: 'audit-logs:multi', snapshot: false });
    expect(batch.observedAt).toBe('2025-12-15T15:55:03.915Z');
    expect(batch.identities.map((i) => i.externalId)).toEqual([
      '0000000000000@cloudbuild.gserviceaccount.com',
      'container-engine-robot@some-project.iam.gserviceaccount.com',
      'service-agent-manager@system.gserviceaccount.com',
      'some-project@company.iam.gserviceaccount.com',
      // named only by the key the call used (the caller shown is a user)
      'some-team@some-project.gserviceaccount.com',
      'terraform@platform.iam.gserviceaccount.com',
      'test-no-perms@test-project-123456.iam.gserviceaccount.com',
      'whodoneit@some-project.iam.gserviceaccount.com',
    ]);
    expect(notes).toEqual([
      '125 audit log entries by callers that are not service accounts (federated: 1, kubernetes: 1, none: 16, other: 4, user: 103): counted, not imported',
    ]);
    // usage only: no status, no listing attributes, keys with their last use and nothing else
    expect(batch.identities.every((i) => i.status === undefined && i.entitlements === undefined)).toBe(true);
    expect(batch.identities.flatMap((i) => i.credentials!).every((k) => k.attributes === undefined)).toBe(
      true,
    );
  });
});

describe.runIf(corporaAvailable).each(dialects)('gcp corpus import on $name', (dialect) => {
  it('each policy-library fixture imports on its own; a re-import writes nothing', async () => {
    const figures: Record<string, [number, number, number]> = {};
    for (const name of fs.readdirSync(corpus(PLF)).sort()) {
      await withSteward(dialect, async (env) => {
        const r = await importDiscovery(env.steward, (await readGcp([plf(name)], opts())).batch, {
          actor: 'test',
        });
        figures[name] = [r.identities.new, r.credentials.new, r.entitlements.new];
        const again = await importDiscovery(env.steward, (await readGcp([plf(name)], opts())).batch, {
          actor: 'test',
        });
        expect(again.events, name).toBe(0);
      });
    }
    expect(figures).toEqual({
      gcp_iam_restrict_service_account_creation: [3, 0, 0],
      gcp_iam_restrict_service_account_key_age: [1, 5, 0],
      gcp_iam_restrict_service_account_key_type: [1, 2, 0],
      gke_disable_default_service_account: [0, 0, 0],
      iam_allow_ban_roles: [1, 0, 1],
      iam_allowed_bindings: [1, 0, 1],
      iam_allowed_policy_member_domains: [11, 0, 11],
      iam_audit_log: [0, 0, 0],
      iam_custom_role_permissions: [0, 0, 0],
      iam_required_bindings: [1, 0, 2],
    });
  });

  it('the whole policy-library folder in one run: accounts, keys, grants with flags; re-import writes nothing', async () => {
    await withSteward(dialect, async (env) => {
      const { batch } = await readGcp([corpus(PLF)], opts());
      expect(batch.files).toHaveLength(10);
      expect(batch.scope.split(',')).toEqual([
        'organizations/123456',
        'projects/12345',
        'projects/12345-2',
        'projects/186783260185',
        'projects/282148707733',
        'projects/773711848681', // test-project: its service accounts' parent gives the number
        'projects/forseti-system-test',
        'projects/good',
        'projects/ignore-asset-type',
        'projects/unexpected-exemption',
        'projects/wrong-log-type',
        'projects/wrong-service',
      ]);
      const r = await importDiscovery(env.steward, batch, { actor: 'test' });
      expect(r.identities).toEqual({ new: 15, changed: 0, unchanged: 0, vanished: 0 });
      expect(r.credentials.new).toBe(7);
      // service-12345@notiam holds serviceAccountUser on projects/12345 in three fixtures: one grant
      expect(r.entitlements.new).toBe(13);
      const scope = batch.scope;

      const named = await record(env, 'myserviceaccount@test-project.iam.gserviceaccount.com');
      expect(named).toMatchObject({
        name: 'myserviceaccount@test-project.iam.gserviceaccount.com',
        kind: 'service-account',
        source: 'gcp',
        status: 'active',
      });
      expect(said(named.attributes, scope)).toEqual({
        listed: true,
        referencedBy: [],
        projectId: 'test-project',
        projectNumber: '773711848681',
        uniqueId: '102628377948083709745',
        displayName: 'myserviceaccount',
        description: null,
        oauth2ClientId: '102628377948083709745',
        disabled: false,
        defaultAccount: null,
        googleManaged: false,
        assetName: '//iam.googleapis.com/projects/test-project/serviceAccounts/102628377948083709745',
      });

      const compute = await record(env, '111111-compute@developer.gserviceaccount.com');
      expect(compute.credentials).toHaveLength(7);
      expect(
        compute.credentials
          .filter((k) => k.externalId.startsWith('12345'))
          .map((k) => [k.externalId, k.kind, k.status, k.issuedAt, k.expiresAt, k.attributes.keyType]),
      ).toEqual([
        [
          '1234567890abcdef',
          KEY_KIND,
          'active',
          '2017-08-21T07:55:36.000Z',
          '2017-08-22T19:55:36.000Z',
          'USER_MANAGED',
        ],
        [
          '1234567891abcdef',
          KEY_KIND,
          'active',
          '2017-08-21T07:55:36.000Z',
          '2017-08-22T19:55:36.000Z',
          'SYSTEM_MANAGED',
        ],
      ]);

      const agent = await record(env, 'service-12345@notiam.gserviceaccount.com');
      expect(agent.entitlements.map((e) => [e.resource, e.actions, e.grantedVia, e.status])).toEqual([
        [
          '//cloudresourcemanager.googleapis.com/projects/12345',
          ['roles/iam.serviceAccountUser'],
          'binding:roles/iam.serviceAccountUser',
          'active',
        ],
        [
          '//cloudresourcemanager.googleapis.com/projects/12345',
          ['roles/cloudasset.viewer'],
          'binding:roles/cloudasset.viewer',
          'active',
        ],
        [
          '//cloudresourcemanager.googleapis.com/projects/12345-2',
          ['roles/iam.serviceAccountUser'],
          'binding:roles/iam.serviceAccountUser',
          'active',
        ],
      ]);
      expect(agent.entitlements[0]!.attributes).toEqual({
        primitive: false,
        admin: false,
        impersonation: true,
        customRole: false,
        condition: null,
        assetType: 'cloudresourcemanager.googleapis.com/Project',
      });
      expect(said(agent.attributes, scope)).toMatchObject({ listed: false, referencedBy: ['binding'] });

      const robot = await record(env, 'service-186783260185@container-engine-robot.iam.gserviceaccount.com');
      expect(said(robot.attributes, scope)).toMatchObject({
        googleManaged: true,
        projectNumber: '186783260185',
      });
      expect(robot.entitlements.map((e) => e.actions)).toEqual([['roles/container.serviceAgent']]);

      const head = (await env.steward.ledger.head()).seq;
      const again = await importDiscovery(env.steward, (await readGcp([corpus(PLF)], opts())).batch, {
        actor: 'test',
      });
      expect(again.events).toBe(0);
      expect(again.identities.unchanged).toBe(15);
      expect((await env.steward.ledger.head()).seq).toBe(head);
    });
  });

  it('a later export of the project without a key marks it vanished (fixture: key_type less its SYSTEM_MANAGED key)', async () => {
    await withSteward(dialect, async (env) => {
      const file = plf('gcp_iam_restrict_service_account_key_type');
      await importDiscovery(env.steward, (await readGcp([file], opts())).batch, { actor: 'test' });
      const assets = JSON.parse(fs.readFileSync(file, 'utf8')) as {
        resource: { data: { keyType: string } };
      }[];
      const dir = tempFiles({
        'data.json': JSON.stringify(assets.filter((a) => a.resource.data.keyType !== 'SYSTEM_MANAGED')),
      });
      env.clock.advance(86_400_000);
      const { batch } = await readGcp([path.join(dir, 'data.json')], opts());
      expect(batch.scope).toBe('projects/forseti-system-test');
      const r = await importDiscovery(env.steward, batch, { actor: 'test' });
      expect(r.credentials).toEqual({ new: 0, changed: 0, unchanged: 1, vanished: 1 });
      expect(r.identities).toEqual({ new: 0, changed: 0, unchanged: 1, vanished: 0 });
      const sa = await record(env, '111111-compute@developer.gserviceaccount.com');
      expect(sa.credentials.map((k) => [k.externalId, k.status])).toEqual([
        ['1234567890abcdef', 'active'],
        ['1234567891abcdef', 'vanished'],
      ]);
    });
  });

  it('the Panther-derived audit log (--skip-invalid): last use per account and per key, denials, methods; re-import writes nothing', async () => {
    await withSteward(dialect, async (env) => {
      const { batch } = await readGcp([corpus(PANTHER)], opts({ skipInvalid: true }));
      const r = await importDiscovery(env.steward, batch, { actor: 'test' });
      expect(r.identities).toEqual({ new: 8, changed: 0, unchanged: 0, vanished: 0 });
      expect(r.credentials.new).toBe(5);
      expect(r.entitlements.new).toBe(0);
      const scope = 'audit-logs:multi';

      // SignJwt six times with one key, three of them denied (authorizationInfo granted: false)
      const signer = await record(env, 'some-project@company.iam.gserviceaccount.com');
      expect(signer.lastUsedAt).toBe('2024-02-26T17:15:16.314Z');
      expect(signer.status).toBe('active');
      expect(said(signer.attributes, scope)).toEqual({
        usage: {
          events: 6,
          firstSeen: '2024-02-26T17:15:16.314Z',
          lastSeen: '2024-02-26T17:15:16.314Z',
          services: { 'iamcredentials.googleapis.com': { actions: ['SignJwt'], count: 6 } },
          errors: {},
          accessDenied: 3,
          sourceIps: ['1.2.3.4'],
          userAgents: [],
          impersonatedBy: [],
        },
      });
      expect(signer.credentials.map((k) => [k.externalId, k.kind, k.lastUsedAt, k.status])).toEqual([
        ['a378358365ff3d22e9c1a72fecf4605ddff76b47', KEY_KIND, '2024-02-26T17:15:16.314Z', 'active'],
      ]);

      // "2022-05-05 14:00:48.814294000" (no zone: UTC), Terraform's user agent, one key
      const tf = await record(env, 'terraform@platform.iam.gserviceaccount.com');
      expect(tf.lastUsedAt).toBe('2022-05-05T14:00:48.814Z');
      expect(tf.credentials.map((k) => [k.externalId, k.lastUsedAt])).toEqual([
        ['bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', '2022-05-05T14:00:48.814Z'],
      ]);
      expect(said(tf.attributes, scope).usage).toMatchObject({
        services: { 'cloudresourcemanager.googleapis.com': { actions: ['SetIamPolicy'], count: 1 } },
        sourceIps: ['100.100.100.100'],
        userAgents: ['Terraform/0.13.2 terraform-provider-google/3.90.1'],
      });

      // status code 7 counts as an error and a denial
      const denied = await record(env, 'test-no-perms@test-project-123456.iam.gserviceaccount.com');
      expect(said(denied.attributes, scope).usage).toMatchObject({
        errors: { PERMISSION_DENIED: 1 },
        accessDenied: 1,
        services: {
          'iam.googleapis.com': { actions: ['google.iam.admin.v1.CreateServiceAccount'], count: 1 },
        },
      });
      expect(denied.credentials[0]!.externalId).toBe('a0064fe0ef82b9e256b8b093d927ee842a19da34');

      // the key's account is the one its name gives, even when the logged caller is a user
      const team = await record(env, 'some-team@some-project.gserviceaccount.com');
      expect(team.lastUsedAt).toBe('2024-01-25T13:28:18.961Z');
      expect(team.credentials.map((k) => k.externalId)).toEqual(['dc5344c246064589v76ec76f66bafc92b093ed41']);

      const head = (await env.steward.ledger.head()).seq;
      const again = await importDiscovery(
        env.steward,
        (await readGcp([corpus(PANTHER)], opts({ skipInvalid: true }))).batch,
        { actor: 'test' },
      );
      expect(again.events).toBe(0);
      expect((await env.steward.ledger.head()).seq).toBe(head);
    });
  });
});

// ---------------------------------------------------------------------------------------------

describe.each(dialects)('gcp fixtures on $name', (dialect) => {
  it('keys list and service-accounts list (fixtures from the IAM v1 REST schema): never-expiring, disabled and exposed keys', async () => {
    await withSteward(dialect, async (env) => {
      const { batch, stats } = await readGcp([KEYS_LIST, SA_LIST], opts());
      expect(batch).toMatchObject({ scope: 'projects/acme-prod', snapshot: true });
      expect(stats.inventory).toMatchObject({ listEntries: 7, serviceAccounts: 3, keys: 4 });
      const r = await importDiscovery(env.steward, batch, { actor: 'test' });
      expect(r.identities.new).toBe(3);
      expect(r.credentials.new).toBe(4);

      const dep = await record(env, DEPLOYER);
      expect(dep.status).toBe('active');
      expect(said(dep.attributes, 'projects/acme-prod')).toMatchObject({
        listed: true,
        displayName: 'CI deployer',
        description: 'GitHub Actions deploys to production',
        uniqueId: '104000000000000000001',
      });
      const byId = Object.fromEntries(dep.credentials.map((k) => [k.externalId, k]));
      // 9999-12-31T23:59:59Z: the key never expires
      expect(byId[KEY_NEVER]).toMatchObject({
        status: 'active',
        issuedAt: '2024-03-01T10:00:00.000Z',
        expiresAt: null,
        attributes: {
          keyType: 'USER_MANAGED',
          keyOrigin: 'GOOGLE_PROVIDED',
          keyAlgorithm: 'KEY_ALG_RSA_2048',
          neverExpires: true,
          exposed: false,
        },
      });
      expect(byId['9b8a7c6d5e4f30211f2e3d4c5b6a79880a1b2c3d']).toMatchObject({
        status: 'inactive',
        issuedAt: '2023-01-15T08:30:00.000Z',
        expiresAt: '2025-01-15T08:30:00.000Z',
        attributes: {
          disabled: true,
          disableReason: 'SERVICE_ACCOUNT_KEY_DISABLE_REASON_USER_INITIATED',
          keyOrigin: 'USER_PROVIDED',
        },
      });
      expect(byId['0d0e0a0d0b0e0e0f0c0a0f0e0b0a0b0e0e0f0a01']).toMatchObject({
        status: 'inactive',
        attributes: { exposed: true, disableReason: 'SERVICE_ACCOUNT_KEY_DISABLE_REASON_EXPOSED' },
      });
      expect(byId[KEY_SYSTEM]).toMatchObject({
        issuedAt: '2025-06-01T04:12:33.000Z',
        expiresAt: '2025-06-17T04:12:33.000Z',
        attributes: { keyType: 'SYSTEM_MANAGED', neverExpires: false },
      });
      expect((await record(env, REPORTING)).status).toBe('disabled');
      expect(said((await record(env, COMPUTE)).attributes, 'projects/acme-prod')).toMatchObject({
        defaultAccount: 'compute-engine',
        projectNumber: '412345678901',
      });

      const again = await importDiscovery(env.steward, (await readGcp([KEYS_LIST, SA_LIST], opts())).batch, {
        actor: 'test',
      });
      expect(again.events).toBe(0);
    });
  });

  it('a CAI export (fixture: gcloud asset export JSON lines with ancestors), then audit logs as usage, then a later export', async () => {
    await withSteward(dialect, async (env) => {
      // 1. the inventory: a snapshot of the project every asset's ancestors share
      const inv = await readGcp([CAI], opts());
      expect(inv.batch).toMatchObject({
        scope: ACME,
        snapshot: true,
        observedAt: '2025-06-10T08:00:01.000Z',
      });
      expect(inv.stats.inventory).toMatchObject({
        assets: 11,
        serviceAccounts: 3,
        keys: 3,
        bindings: 9,
        members: { serviceAccount: 8, workloadIdentity: 1, deleted: 1, other: 2 },
      });
      expect(inv.notes).toEqual([
        '1 binding member(s) name deleted service accounts (deleted:serviceAccount:…): not imported',
      ]);
      const r1 = await importDiscovery(env.steward, inv.batch, { actor: 'test' });
      expect(r1.identities).toEqual({ new: 5, changed: 0, unchanged: 0, vanished: 0 });
      expect(r1.credentials.new).toBe(3);
      expect(r1.entitlements.new).toBe(9);

      const dep = await record(env, DEPLOYER);
      expect(dep.credentials.map((k) => [k.externalId, k.status, k.issuedAt, k.expiresAt])).toEqual([
        [KEY_NEVER, 'active', '2024-03-01T10:00:00.000Z', null],
        [KEY_SYSTEM, 'active', '2025-06-01T04:12:33.000Z', '2025-06-17T04:12:33.000Z'],
      ]);
      expect(
        dep.entitlements.map((e) => [e.resource, e.actions[0], e.attributes.primitive, e.attributes.admin]),
      ).toEqual([
        [`//cloudresourcemanager.googleapis.com/${ACME}`, 'roles/owner', true, true],
        ['//storage.googleapis.com/acme-prod-artifacts', 'roles/storage.objectViewer', false, false],
      ]);

      const rep = await record(env, REPORTING);
      expect(rep.status).toBe('disabled');
      const grants = Object.fromEntries(rep.entitlements.map((e) => [e.actions[0]!, e]));
      expect(grants['roles/storage.admin']).toMatchObject({
        grantedVia: expect.stringMatching(
          /^binding:roles\/storage\.admin \[condition "until-2026" #[0-9a-f]{12}\]$/,
        ) as unknown,
        attributes: {
          admin: true,
          condition: {
            title: 'until-2026',
            description: 'temporary access for the migration',
            expression: 'request.time < timestamp("2026-01-01T00:00:00Z")',
          },
        },
      });
      expect(grants['projects/acme-prod/roles/secretReader']!.attributes).toMatchObject({
        customRole: true,
        permissions: ['secretmanager.secrets.get', 'secretmanager.versions.access'],
      });
      // a grant on the deployer account itself: reporting may mint tokens as the deployer
      expect(grants['roles/iam.serviceAccountTokenCreator']).toMatchObject({
        resource: '//iam.googleapis.com/projects/acme-prod/serviceAccounts/104000000000000000001',
        attributes: { impersonation: true, targetServiceAccount: DEPLOYER },
      });
      // Workload Identity: the Kubernetes account ci/runner may act as the deployer
      const runner = await record(env, 'system:serviceaccount:ci:runner');
      expect(runner.kind).toBe('k8s-service-account');
      expect(runner.entitlements.map((e) => [e.actions[0], e.attributes.targetServiceAccount])).toEqual([
        ['roles/iam.workloadIdentityUser', DEPLOYER],
      ]);

      // 2. audit logs: usage only, under their own scope; listing facts stay as they were
      const logs = await readGcp([AUDIT], opts());
      expect(logs.batch).toMatchObject({ scope: 'audit-logs:projects/acme-prod', snapshot: false });
      expect(logs.stats.usage).toEqual({ entries: 7, attributed: 5, unattributed: { user: 1 }, nonAudit: 1 });
      expect(logs.notes).toEqual([
        '1 audit log entry by callers that are not service accounts (user: 1): counted, not imported',
        '1 log entry is not an audit log: ignored',
      ]);
      env.clock.advance(86_400_000 * 10);
      const r2 = await importDiscovery(env.steward, logs.batch, { actor: 'test' });
      expect(r2.identities).toEqual({ new: 0, changed: 2, unchanged: 0, vanished: 0 });
      expect(r2.credentials).toEqual({ new: 0, changed: 2, unchanged: 0, vanished: 0 });
      const used = await record(env, DEPLOYER);
      expect(used.lastUsedAt).toBe('2025-06-13T10:00:00.500Z');
      expect(used.status).toBe('active');
      expect(said(used.attributes, 'audit-logs:projects/acme-prod').usage).toEqual({
        events: 3,
        firstSeen: '2025-06-12T09:00:00.123Z',
        lastSeen: '2025-06-13T10:00:00.500Z',
        services: {
          'iam.googleapis.com': { actions: ['google.iam.admin.v1.ListServiceAccountKeys'], count: 1 },
          'storage.googleapis.com': { actions: ['storage.buckets.list', 'storage.objects.create'], count: 2 },
        },
        errors: {},
        accessDenied: 0,
        sourceIps: ['198.51.100.7', '203.0.113.10'],
        userAgents: ['Mozilla/5.0', 'google-cloud-sdk gcloud/470.0.0'],
        impersonatedBy: ['alice@acme.example'],
      });
      expect(said(used.attributes, ACME)).toMatchObject({ listed: true, displayName: 'CI deployer' });
      // the key named by the account's unique id in the log is the caller's
      expect(used.credentials.map((k) => [k.externalId, k.lastUsedAt, k.attributes.keyType])).toEqual([
        [KEY_NEVER, '2025-06-12T09:00:00.123Z', 'USER_MANAGED'],
        [KEY_SYSTEM, '2025-06-13T10:00:00.500Z', 'SYSTEM_MANAGED'],
      ]);
      const repUsed = await record(env, REPORTING);
      expect(repUsed.status).toBe('disabled'); // usage never re-enables
      expect(repUsed.lastUsedAt).toBe('2025-06-14T06:00:00.000Z'); // the lower-cased (Panther-style) entry
      expect(said(repUsed.attributes, 'audit-logs:projects/acme-prod').usage).toMatchObject({
        events: 2,
        errors: { PERMISSION_DENIED: 1 },
        accessDenied: 1,
      });

      // 3. the same inputs again write nothing
      const head = (await env.steward.ledger.head()).seq;
      for (const f of [CAI, AUDIT]) {
        const again = await importDiscovery(env.steward, (await readGcp([f], opts())).batch, {
          actor: 'test',
        });
        expect(again.events, f).toBe(0);
      }
      expect((await env.steward.ledger.head()).seq).toBe(head);

      // 4. a later export: the compute default account is deleted (with its key and grant), a deployer
      //    key is deleted, the conditional grant is removed
      const later = fs
        .readFileSync(CAI, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown> & { name: string })
        .filter((a) => !a.name.includes('104000000000000000003') && !a.name.endsWith(KEY_NEVER))
        .map((a) => {
          const policy = a.iam_policy as { bindings: { role: string; members: string[] }[] } | undefined;
          if (policy)
            policy.bindings = policy.bindings.filter(
              (b) => b.role !== 'roles/editor' && b.role !== 'roles/storage.admin',
            );
          return a;
        });
      const dir = tempFiles({ 'cai-export.jsonl': later.map((a) => JSON.stringify(a)).join('\n') + '\n' });
      const r4 = await importDiscovery(
        env.steward,
        (await readGcp([path.join(dir, 'cai-export.jsonl')], opts())).batch,
        { actor: 'test' },
      );
      expect(r4.identities.vanished).toBe(1);
      expect(r4.credentials.vanished).toBe(2);
      expect(r4.entitlements.vanished).toBe(2);
      const gone = await record(env, COMPUTE);
      expect(gone.status).toBe('vanished');
      expect(gone.credentials.map((k) => [k.externalId, k.status])).toEqual([[KEY_COMPUTE, 'vanished']]);
      expect(gone.entitlements.map((e) => e.status)).toEqual(['revoked']);
      const dep4 = await record(env, DEPLOYER);
      expect(dep4.credentials.map((k) => [k.externalId, k.status])).toEqual([
        [KEY_NEVER, 'vanished'],
        [KEY_SYSTEM, 'active'],
      ]);
      const rep4 = await record(env, REPORTING);
      expect(rep4.entitlements.find((e) => e.actions[0] === 'roles/storage.admin')!.status).toBe('revoked');
    });
  });

  it('a CAI export and audit logs in one run: one snapshot with usage merged in (fixtures)', async () => {
    await withSteward(dialect, async (env) => {
      const { batch } = await readGcp([CAI, AUDIT], opts());
      expect(batch).toMatchObject({ scope: ACME, snapshot: true, observedAt: '2025-06-14T06:00:00.000Z' });
      await importDiscovery(env.steward, batch, { actor: 'test' });
      const dep = await record(env, DEPLOYER);
      expect(said(dep.attributes, ACME)).toMatchObject({
        listed: true,
        referencedBy: ['audit-log', 'binding', 'key'],
        usage: { events: 3, impersonatedBy: ['alice@acme.example'] },
      });
      expect(dep.lastUsedAt).toBe('2025-06-13T10:00:00.500Z');
      expect(said((await record(env, COMPUTE)).attributes, ACME).usage).toBeNull();
    });
  });

  it('steward import gcp through the CLI (fixtures)', async () => {
    const db = await dialect.freshUrl();
    const keysDir = fs.mkdtempSync(path.join(os.tmpdir(), 'steward-keys-'));
    try {
      const env = { db, keys: keysDir };
      const out = await cli(['import', 'gcp', CAI, '--json'], env);
      expect(out.code, out.stderr).toBe(0);
      expect(out.json()).toMatchObject({ source: 'gcp', scope: ACME, identities: { new: 5 }, skipped: 0 });
      const bad = tempFiles({
        'bad.jsonl': '{"asset_type": "iam.googleapis.com/ServiceAccountKey", "name": 7}\n',
      });
      const refused = await cli(['import', 'gcp', path.join(bad, 'bad.jsonl')], env);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('bad.jsonl:1: name: expected a non-empty string, got number 7');
    } finally {
      await dialect.cleanup(db);
      fs.rmSync(keysDir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('gcp input shapes', () => {
  it('JSON lines, a JSON array, gcloud asset list camelCase and gzip give the same batch (fixture)', async () => {
    const lines = fs.readFileSync(CAI, 'utf8').trim().split('\n');
    const assets = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const camel = assets.map((a) => {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(a))
        out[
          k === 'asset_type'
            ? 'assetType'
            : k === 'iam_policy'
              ? 'iamPolicy'
              : k === 'update_time'
                ? 'updateTime'
                : k
        ] = v;
      return out;
    });
    const dir = tempFiles({
      'array.json': JSON.stringify(assets, null, 2),
      'camel.json': JSON.stringify(camel),
      'crlf.jsonl': lines.join('\r\n'),
    });
    fs.writeFileSync(path.join(dir, 'lines.jsonl.gz'), gzipSync(fs.readFileSync(CAI)));
    const reference = facts((await readGcp([CAI], opts())).batch);
    for (const name of fs.readdirSync(dir)) {
      expect(facts((await readGcp([path.join(dir, name)], opts())).batch), name).toEqual(reference);
    }
  });

  it.runIf(corporaAvailable)('a corpus fixture as JSON lines reads as the array does', async () => {
    const file = plf('iam_allowed_policy_member_domains');
    const assets = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown[];
    const dir = tempFiles({ 'export.jsonl': assets.map((a) => JSON.stringify(a)).join('\n') });
    expect(facts((await readGcp([path.join(dir, 'export.jsonl')], opts())).batch)).toEqual(
      facts((await readGcp([file], opts())).batch),
    );
  });

  it('an empty export is no snapshot and changes nothing; assets with no container are refused', async () => {
    const dir = tempFiles({
      'empty.json': '[]',
      'nowhere.json': JSON.stringify([
        {
          name: '//storage.googleapis.com/bucket',
          asset_type: 'storage.googleapis.com/Bucket',
          iam_policy: {
            bindings: [
              { role: 'roles/storage.admin', members: ['serviceAccount:a@b.iam.gserviceaccount.com'] },
            ],
          },
        },
      ]),
    });
    const empty = await readGcp([path.join(dir, 'empty.json')], opts());
    expect(empty.batch).toMatchObject({ scope: 'audit-logs:unknown', snapshot: false, identities: [] });
    const e = await rejection(readGcp([path.join(dir, 'nowhere.json')], opts()));
    expect(e.message).toMatch(/cannot tell which project, folder or organisation this export covers/);
  });
});

describe('gcp hostile inputs', () => {
  const key = (name: string, data: Record<string, unknown> = {}) => ({
    name,
    asset_type: 'iam.googleapis.com/ServiceAccountKey',
    resource: { data: { validAfterTime: '2024-01-01T00:00:00Z', keyAlgorithm: 'KEY_ALG_RSA_2048', ...data } },
  });
  const KEY_PATH = '//iam.googleapis.com/projects/p/serviceAccounts/sa@p.iam.gserviceaccount.com/keys/';
  const binding = (members: unknown) => ({
    name: '//cloudresourcemanager.googleapis.com/projects/p',
    asset_type: 'cloudresourcemanager.googleapis.com/Project',
    iam_policy: { bindings: [{ role: 'roles/viewer', members }] },
  });

  it('a truncated gzip is refused naming the file, with or without --skip-invalid', async () => {
    const full = gzipSync(fs.readFileSync(CAI));
    const dir = tempFiles({});
    const file = path.join(dir, 'cut.jsonl.gz');
    fs.writeFileSync(file, full.subarray(0, Math.floor(full.length / 2)));
    for (const skipInvalid of [false, true]) {
      const err = await rejection(readGcp([file], opts({ skipInvalid })));
      expect(err.message).toMatch(/expected a complete gzip stream/);
      expect(err.problems[0]!.file).toBe(file);
    }
  });

  it('wrong types are named by JSON path; --skip-invalid keeps the good records and is no snapshot', async () => {
    const dir = tempFiles({
      'export.json': JSON.stringify(
        [
          key(`${KEY_PATH}good`),
          key(`${KEY_PATH}k1`, { validAfterTime: 1704067200 }),
          binding(['user:a@example.com', { email: 'x' }]),
          { name: '//iam.googleapis.com/projects/p/serviceAccounts/1' },
          'not an asset',
          {
            name: '//iam.googleapis.com/projects/p/serviceAccounts/2',
            asset_type: 'iam.googleapis.com/ServiceAccount',
            resource: { data: { email: 42, disabled: 'no' } },
          },
          binding(['serviceAccount:not-an-email']),
          key(`${KEY_PATH}k2`, { validBeforeTime: 'soon', keyType: ['USER_MANAGED'] }),
        ],
        null,
        1,
      ),
      'logs.jsonl': [
        {
          timestamp: '2024-01-01T00:00:00Z',
          protoPayload: { authenticationInfo: { principalEmail: 'sa@p.iam.gserviceaccount.com' } },
          logName: 'projects/p/logs/cloudaudit.googleapis.com%2Factivity',
        },
        { timestamp: '2024-01-01T00:00:00Z', protoPayload: { authenticationInfo: { principalEmail: 42 } } },
        { timestamp: 'yesterday', protoPayload: {} },
        { timestamp: '2024-01-01T00:00:00Z', protoPayload: { status: { code: '7' } } },
      ]
        .map((l) => JSON.stringify(l))
        .join('\n'),
    });
    const file = path.join(dir, 'export.json');
    const logs = path.join(dir, 'logs.jsonl');
    const err = await rejection(readGcp([file, logs], opts()));
    expect(err.problems.map((p) => [path.basename(p.file), p.field, p.message])).toEqual([
      [
        'export.json',
        '[1].resource.data.validAfterTime',
        'expected an ISO-8601 timestamp string, got number 1704067200',
      ],
      [
        'export.json',
        '[2].iam_policy.bindings[0].members[1]',
        'expected a member string (serviceAccount:<email>, user:<email> …), got an object',
      ],
      [
        'export.json',
        '[3]',
        'expected a Cloud Asset Inventory asset, a service account key (keys list), a service account (service-accounts list) or a Cloud Audit Log entry, got an object with keys name',
      ],
      [
        'export.json',
        '[4]',
        'expected a Cloud Asset Inventory asset, a service account key (keys list), a service account (service-accounts list) or a Cloud Audit Log entry (a JSON object), got string "not an asset"',
      ],
      ['export.json', '[5].resource.data.email', 'expected a non-empty string, got number 42'],
      ['export.json', '[5].resource.data.disabled', 'expected true or false, got string "no"'],
      [
        'export.json',
        '[6].iam_policy.bindings[0].members[0]',
        'expected serviceAccount:<email>, got string "serviceAccount:not-an-email"',
      ],
      [
        'export.json',
        '[7].resource.data.validBeforeTime',
        'expected an ISO-8601 timestamp, got string "soon"',
      ],
      ['export.json', '[7].resource.data.keyType', 'expected a string, got an array'],
      ['logs.jsonl', 'protoPayload.authenticationInfo.principalEmail', 'expected a string, got number 42'],
      ['logs.jsonl', 'timestamp', 'expected an ISO-8601 timestamp, got string "yesterday"'],
      ['logs.jsonl', 'protoPayload.status.code', 'expected a google.rpc.Code number, got string "7"'],
    ]);
    // array elements carry the line where they start; JSON lines their own line
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    const at5 = err.problems.find((p) => p.field === '[5].resource.data.email')!;
    expect(lines.slice(at5.line! - 1, at5.line! + 3).join('')).toContain('serviceAccounts/2"');
    expect(err.problems.filter((p) => p.file === logs).map((p) => p.line)).toEqual([2, 3, 4]);

    const { batch, skipped, stats } = await readGcp([file, logs], opts({ skipInvalid: true }));
    expect(skipped).toHaveLength(10); // one per record
    expect(skipped.find((p) => p.field === '[5].resource.data.email')!.message).toBe(
      'expected a non-empty string, got number 42 (and 1 more problem(s) in this record)',
    );
    expect(stats.skipped).toBe(10);
    expect(batch.snapshot).toBe(false); // a listing that skipped a record vanishes nothing
    expect(batch.scope).toBe('projects/p');
    expect(
      batch.identities.map((i) => [i.externalId, i.credentials!.map((k) => k.externalId), i.lastUsedAt]),
    ).toEqual([['sa@p.iam.gserviceaccount.com', ['good'], '2024-01-01T00:00:00.000Z']]);
  });

  it.each(dialects)('a read that skipped a record vanishes nothing on $name', async (dialect) => {
    await withSteward(dialect, async (env) => {
      await importDiscovery(env.steward, (await readGcp([CAI], opts())).batch, { actor: 'test' });
      const lines = fs.readFileSync(CAI, 'utf8').trim().split('\n');
      // the deployer's account record is broken: the deployer and its keys must not vanish
      const broken = lines.map((l) =>
        l.includes('"CI deployer"') ? l.replace('"CI deployer"', '["CI deployer"]') : l,
      );
      const dir = tempFiles({ 'cai.jsonl': broken.join('\n') });
      const file = path.join(dir, 'cai.jsonl');
      const e = await rejection(readGcp([file], opts()));
      // the deployer's keys name it by unique id: without its record, their owner cannot be told either
      const orphan =
        'expected the service account 104000000000000000001 this key belongs to among the inputs (the key names it by unique id), got no ServiceAccount asset with that uniqueId';
      expect(e.problems).toEqual([
        { file, line: 3, field: 'resource.data.displayName', message: 'expected a string, got an array' },
        { file, line: 7, field: 'name', message: orphan },
        { file, line: 8, field: 'name', message: orphan },
      ]);
      const { batch, notes } = await readGcp([file], opts({ skipInvalid: true }));
      expect(batch.snapshot).toBe(false);
      expect(notes).toContain(
        'records of the listing were skipped: it is not taken as complete, so nothing was marked vanished',
      );
      env.clock.advance(3_600_000);
      const r = await importDiscovery(env.steward, batch, { actor: 'test' });
      expect(r.identities.vanished + r.credentials.vanished + r.entitlements.vanished).toBe(0);
      const dep = await record(env, DEPLOYER);
      expect(dep.status).toBe('active');
      expect(dep.credentials.map((k) => k.status)).toEqual(['active', 'active']);
    });
  });

  it('deeply nested JSON: refused where a record is expected, ignored where it is not read, no stack overflow', async () => {
    const depth = 200_000;
    const deepArray = '['.repeat(depth) + ']'.repeat(depth);
    const deepObject = '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
    const cluster = `{"name":"//container.googleapis.com/projects/p/zones/z/clusters/c","asset_type":"container.googleapis.com/Cluster","resource":{"data":${deepObject}}}`;
    const members = `{"name":"//cloudresourcemanager.googleapis.com/projects/p","asset_type":"cloudresourcemanager.googleapis.com/Project","iam_policy":{"bindings":[{"role":"roles/viewer","members":[${deepArray}]}]}}`;
    const dir = tempFiles({
      'deep.jsonl': [JSON.stringify(key(`${KEY_PATH}good`)), deepArray, cluster, members].join('\n'),
      'deep.json': `[${JSON.stringify(key(`${KEY_PATH}good`))},\n${deepArray},\n${cluster}]`,
    });
    const err = await rejection(readGcp([path.join(dir, 'deep.jsonl')], opts()));
    expect(err.problems.map((p) => [p.line, p.field, p.message.replace(/ \(a JSON object\).*/, '')])).toEqual(
      [
        [2, undefined, expect.stringMatching(/^expected a Cloud Asset Inventory asset/) as unknown],
        [
          4,
          'iam_policy.bindings[0].members[0]',
          'expected a member string (serviceAccount:<email>, user:<email> …), got an array',
        ],
      ],
    );
    expect(err.problems[0]!.message).toMatch(/got an array$/);
    const skipping = await readGcp([path.join(dir, 'deep.jsonl')], opts({ skipInvalid: true }));
    expect(skipping.skipped.map((p) => p.line)).toEqual([2, 4]);
    expect(skipping.batch.identities[0]!.credentials!.map((k) => k.externalId)).toEqual(['good']);
    expect(skipping.stats.inventory.otherAssets).toBe(1); // the cluster, read without looking into its data

    const arr = await rejection(readGcp([path.join(dir, 'deep.json')], opts()));
    expect(arr.problems).toMatchObject([{ line: 2, field: '[1]' }]);
  });

  it('a single line or element over the size limit is refused, even with --skip-invalid; so is an input over maxBytes', async () => {
    const big = JSON.stringify(key(`${KEY_PATH}big`, { padding: 'x'.repeat(17 * 1024 * 1024) }));
    const dir = tempFiles({
      'huge.jsonl': `${JSON.stringify(key(`${KEY_PATH}good`))}\n${big}\n`,
      'small.json': `[${JSON.stringify(key(`${KEY_PATH}good`))},\n${JSON.stringify(key(`${KEY_PATH}k`, { pad: 'y'.repeat(600) }))}]`,
    });
    for (const skipInvalid of [false, true]) {
      // the default limit: 16 Mi characters per line
      const huge = await rejection(readGcp([path.join(dir, 'huge.jsonl')], opts({ skipInvalid })));
      expect(huge.problems[0]).toMatchObject({ line: 2 });
      expect(huge.problems[0]!.message).toMatch(/at most 16777216 characters/);
      const elem = await rejection(
        readGcp([path.join(dir, 'small.json')], opts({ skipInvalid, maxRecordChars: 500 })),
      );
      expect(elem.problems[0]).toMatchObject({ line: 2, field: '[1]' });
      expect(elem.problems[0]!.message).toMatch(/at most 500 characters/);
      const bytes = await rejection(
        readGcp([path.join(dir, 'small.json')], opts({ skipInvalid, maxBytes: 300 })),
      );
      expect(bytes.message).toMatch(/input larger than 300 bytes/);
    }
    expect(
      (await readGcp([path.join(dir, 'small.json')], opts())).batch.identities[0]!.credentials,
    ).toHaveLength(2);
  });

  it('a key whose name is not a key path: in an asset, a keys-list entry and an audit log; or whose account is not listed', async () => {
    const dir = tempFiles({
      'keys.json': JSON.stringify([
        key(`${KEY_PATH}good`),
        key('//iam.googleapis.com/projects/p/serviceAccounts/sa@p.iam.gserviceaccount.com'),
        {
          name: 'projects/p/serviceAccounts/bob/keys/k1',
          keyAlgorithm: 'KEY_ALG_RSA_2048',
          keyType: 'USER_MANAGED',
          validAfterTime: '2024-01-01T00:00:00Z',
        },
        key('//iam.googleapis.com/projects/p/serviceAccounts/104000000000000000777/keys/orphan'),
      ]),
      'log.jsonl': JSON.stringify({
        timestamp: '2024-02-01T00:00:00Z',
        protoPayload: {
          authenticationInfo: {
            principalEmail: 'sa@p.iam.gserviceaccount.com',
            serviceAccountKeyName: 'my-key',
          },
        },
      }),
    });
    const keysFile = path.join(dir, 'keys.json');
    const err = await rejection(readGcp([keysFile, path.join(dir, 'log.jsonl')], opts()));
    expect(err.problems.map((p) => [path.basename(p.file), p.line, p.field, p.message])).toEqual([
      [
        'keys.json',
        1,
        '[1].name',
        'expected a service account key name (projects/<project>/serviceAccounts/<email or unique id>/keys/<key id>), got string "//iam.googleapis.com/projects/p/serviceAccounts/sa@p.iam...."', // long values are cut
      ],
      [
        'keys.json',
        1,
        '[2].name',
        'expected a service account key name (projects/<project>/serviceAccounts/<email or unique id>/keys/<key id>), got string "projects/p/serviceAccounts/bob/keys/k1"',
      ],
      [
        'log.jsonl',
        1,
        'protoPayload.authenticationInfo.serviceAccountKeyName',
        'expected a service account key name (projects/<project>/serviceAccounts/<email or unique id>/keys/<key id>), got string "my-key"',
      ],
      [
        'keys.json',
        1,
        '[3].name',
        'expected the service account 104000000000000000777 this key belongs to among the inputs (the key names it by unique id), got no ServiceAccount asset with that uniqueId',
      ],
    ]);
    const { batch, skipped } = await readGcp(
      [keysFile, path.join(dir, 'log.jsonl')],
      opts({ skipInvalid: true }),
    );
    expect(skipped.map((p) => p.field)).toEqual([
      '[1].name',
      '[2].name',
      'protoPayload.authenticationInfo.serviceAccountKeyName',
      '[3].name',
    ]);
    expect(batch.snapshot).toBe(false);
    expect(batch.identities.map((i) => [i.externalId, i.credentials!.map((k) => k.externalId)])).toEqual([
      ['sa@p.iam.gserviceaccount.com', ['good']],
    ]);
  });

  it('another document is not taken for a GCP export', async () => {
    const dir = tempFiles({ 'authz.json': '{"UserDetailList": [], "RoleDetailList": []}\n' });
    const e = await rejection(readGcp([path.join(dir, 'authz.json')], opts()));
    expect(e.problems).toEqual([
      {
        file: path.join(dir, 'authz.json'),
        line: 1,
        message:
          'expected a Cloud Asset Inventory asset, a service account key (keys list), a service account (service-accounts list) or a Cloud Audit Log entry, got an object with keys UserDetailList, RoleDetailList',
      },
    ]);
  });
});
