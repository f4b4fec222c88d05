import fs from 'node:fs';
import path from 'node:path';
import { createHmac } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { sourceAttributes } from '../helpers/files.js';
import { dumpDatabase } from '../helpers/dump.js';
import { describe, it, expect } from 'vitest';
import { dialects, withSteward, type TestEnv } from '../helpers/steward.js';
import { corpus, corporaAvailable } from '../helpers/corpora.js';
import { tempFiles } from '../helpers/files.js';
import { importer } from '../../src/importers/kubernetes/index.js';
import { importDiscovery, type DiscoveryBatch } from '../../src/inventory/import-discovery.js';
import { resolveIdentity } from '../../src/inventory/queries.js';
import { ValidationError } from '../../src/domain/errors.js';
import type { ReadOptions } from '../../src/importers/source.js';

const COMBINED_JSON = corpus('kubernetes-rbac/combined.json');
const COMBINED_YAML = corpus('kubernetes-rbac/combined.yaml');
const RBAC_TOOL = corpus('kubernetes-rbac/rbac-tool-testdata');
const KUBISCAN_SA = [corpus('kubernetes-rbac/kubiscan-sa'), corpus('kubernetes-rbac/kubiscan-sa2')];

/** Keys for tests that never reach a database. */
const testKeys: ReadOptions['keys'] = {
  fingerprint: (s) => 'hmac-sha256:' + createHmac('sha256', 'test-key').update(s, 'utf8').digest('hex'),
};
const opts = (skipInvalid = false): ReadOptions => ({ skipInvalid, keys: testKeys });

interface EntRow {
  resource: string;
  actions: string[];
  grantedVia: string | null;
  status: string;
  attributes: Record<string, unknown>;
}

async function entitlementsOf(env: TestEnv, externalId: string): Promise<EntRow[]> {
  const id = await resolveIdentity(env.steward.store, externalId);
  const rows = await env.steward.store.db
    .selectFrom('entitlements')
    .selectAll()
    .where('identity_id', '=', id.id)
    .execute();
  return rows
    .map((r) => ({
      resource: r.resource,
      actions: JSON.parse(r.actions) as string[],
      grantedVia: r.granted_via,
      status: r.status,
      attributes: JSON.parse(r.attributes ?? '{}') as Record<string, unknown>,
    }))
    .sort((a, b) => (a.resource + a.grantedVia < b.resource + b.grantedVia ? -1 : 1));
}

async function credentialsOf(env: TestEnv, externalId: string) {
  const id = await resolveIdentity(env.steward.store, externalId);
  return env.steward.store.db
    .selectFrom('credentials')
    .selectAll()
    .where('identity_id', '=', id.id)
    .execute();
}

/** The SA token of the KubiScan dump (a real JWT of a dead minikube cluster), read from the corpus. */
function corpusToken(): { base64: string; jwt: string } {
  const lists = JSON.parse(fs.readFileSync(COMBINED_JSON, 'utf8')) as { items: Record<string, unknown>[] }[];
  const secret = lists.flatMap((l) => l.items).find((i) => i.kind === 'Secret') as {
    data: { token: string };
  };
  return { base64: secret.data.token, jwt: Buffer.from(secret.data.token, 'base64').toString('utf8') };
}

async function problemsOf(p: Promise<unknown>): Promise<ValidationError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ValidationError);
  return err as ValidationError;
}

const ids = (b: DiscoveryBatch) => b.identities.map((i) => i.name);
const withAttr = (b: DiscoveryBatch, attr: string) =>
  b.identities.filter((i) => i.entitlements?.some((e) => e.attributes?.[attr] === true)).map((i) => i.name);

describe.skipIf(!corporaAvailable).each(dialects)('kubernetes importer on $name', (dialect) => {
  it('KubiScan minikube dump (combined.json): 45 service accounts, kube-system/default is cluster-admin via minikube-rbac, one long-lived token, no token in the database, re-import writes nothing', async () => {
    await withSteward(dialect, async (env) => {
      const { batch, skipped } = await importer.read([COMBINED_JSON], {
        skipInvalid: false,
        keys: env.steward.keys,
      });
      expect(skipped).toEqual([]);
      expect(batch.source).toBe('kubernetes');
      expect(batch.scope).toBe('combined');
      expect(batch.snapshot).toBe(true);
      expect(batch.files).toHaveLength(1);
      expect(batch.files[0]!.sha256).toMatch(/^[0-9a-f]{64}$/);
      // The dump lists no ServiceAccount objects: every account is known from a binding, a Pod or a token Secret.
      expect(batch.identities).toHaveLength(45);
      expect(batch.identities.every((i) => i.attributes?.listed === false)).toBe(true);
      expect(withAttr(batch, 'clusterAdmin')).toEqual(['kube-system/default']);
      expect(withAttr(batch, 'wildcard')).toEqual([
        'default/kubiscan-sa',
        'kube-system/default',
        'kube-system/disruption-controller',
        'kube-system/generic-garbage-collector',
        'kube-system/horizontal-pod-autoscaler',
        'kube-system/namespace-controller',
        'kube-system/resourcequota-controller',
      ]);
      expect(withAttr(batch, 'secretsAccess')).toContain('kube-system/token-cleaner');
      const entCount = batch.identities.reduce((n, i) => n + (i.entitlements?.length ?? 0), 0);

      const r = await importDiscovery(env.steward, batch, { actor: 'test' });
      expect(r.identities).toEqual({ new: 45, changed: 0, unchanged: 0, vanished: 0 });
      expect(r.credentials.new).toBe(1);
      expect(r.entitlements.new).toBe(entCount);

      // kube-system/default: a default account, used by a Pod, bound to cluster-admin by minikube-rbac
      const def = await resolveIdentity(env.steward.store, 'system:serviceaccount:kube-system:default');
      expect(def.kind).toBe('k8s-service-account');
      expect(def.name).toBe('kube-system/default');
      expect(sourceAttributes(def.attributes)).toEqual({
        namespace: 'kube-system',
        default: true,
        listed: false,
        referencedBy: ['binding', 'pod'],
      });
      const defEnts = await entitlementsOf(env, 'system:serviceaccount:kube-system:default');
      const admin = defEnts.find((e) => e.resource === 'cluster */*')!;
      expect(admin).toMatchObject({
        actions: ['*'],
        grantedVia: 'clusterrolebinding:minikube-rbac → clusterrole:cluster-admin',
        status: 'active',
        attributes: { wildcard: true, clusterAdmin: true, secretsAccess: true },
      });
      // the issuer-discovery grant every account gets through the group system:serviceaccounts
      expect(defEnts.map((e) => e.attributes.viaGroup).filter(Boolean)).toEqual(['system:serviceaccounts']);
      // default/default (used by Pods) has no right but that group grant
      const dd = await entitlementsOf(env, 'system:serviceaccount:default:default');
      expect(dd.map((e) => e.grantedVia)).toEqual([
        'clusterrolebinding:system:service-account-issuer-discovery → clusterrole:system:service-account-issuer-discovery',
      ]);

      // a namespaced grant: bootstrap-signer reads secrets in kube-system through a RoleBinding
      const signer = await entitlementsOf(env, 'system:serviceaccount:kube-system:bootstrap-signer');
      expect(signer.find((e) => e.resource === 'ns:kube-system core/secrets')).toMatchObject({
        actions: ['get', 'list', 'watch'],
        grantedVia:
          'rolebinding:kube-system/system:controller:bootstrap-signer → role:kube-system/system:controller:bootstrap-signer',
        attributes: { secretsAccess: true, clusterAdmin: false, wildcard: false },
      });

      // kubiscan-sa: wildcard API group on RBAC objects and pods, and a long-lived token Secret
      const kubiscan = await entitlementsOf(env, 'system:serviceaccount:default:kubiscan-sa');
      expect(
        kubiscan.find((e) => e.grantedVia?.startsWith('clusterrolebinding:kubiscan-clusterrolebinding')),
      ).toMatchObject({
        resource: 'cluster */clusterrolebindings,clusterroles,pods,rolebindings,roles',
        actions: ['get', 'list'],
        attributes: { wildcard: true, clusterAdmin: false, secretsAccess: false },
      });
      const token = corpusToken();
      const creds = await credentialsOf(env, 'system:serviceaccount:default:kubiscan-sa');
      expect(creds).toHaveLength(1);
      expect(creds[0]).toMatchObject({
        external_id: 'secret:default/kubiscan-sa-secret',
        kind: 'k8s-sa-token',
        status: 'active',
        issued_at: '2024-07-15T09:36:56.000Z',
        fingerprint: env.steward.keys.fingerprint(token.jwt),
        source: 'kubernetes:combined', // source:scope — the scope is the dump's file name
      });
      expect(JSON.parse(creds[0]!.locations!)).toEqual(['k8s-secret:default/kubiscan-sa-secret']);
      expect(JSON.parse(creds[0]!.attributes!)).toMatchObject({ longLived: true });

      // the token is nowhere: neither base64, nor decoded, nor its signature
      const dump = await dumpDatabase(env);
      expect(dump).toContain('kubiscan-sa-secret');
      expect(dump).not.toContain(token.base64);
      expect(dump).not.toContain(token.jwt);
      expect(dump).not.toContain(token.jwt.split('.')[2]!);
      expect(dump).not.toContain('BEGIN CERTIFICATE');

      const head = (await env.steward.ledger.head()).seq;
      const again = await importDiscovery(
        env.steward,
        (await importer.read([COMBINED_JSON], { skipInvalid: false, keys: env.steward.keys })).batch,
        { actor: 'test' },
      );
      expect(again.events).toBe(0);
      expect((await env.steward.ledger.head()).seq).toBe(head);
    });
  });

  it('rbac-tool manifests (a folder of YAML; audit-event JSON in it is ignored): listed accounts, a RoleBinding subject without namespace, resourceNames, an aggregated ClusterRole', async () => {
    await withSteward(dialect, async (env) => {
      const { batch } = await importer.read([RBAC_TOOL], { skipInvalid: false, keys: env.steward.keys });
      expect(batch.scope).toBe('rbac-tool-testdata');
      expect(batch.files.map((f) => path.basename(f.path))).toContain('testdata-01.json');
      expect(ids(batch)).toEqual([
        'mynamespace/example-user',
        'policyrules/the-test-user',
        'test/gateway-network-operator-sa',
        'test/test-aggregate-sa',
        'test/test-pod-creator-sa',
        'test/test-secret-reader-sa',
        'test/test-specific-secret-reader-sa',
      ]);
      const r = await importDiscovery(env.steward, batch, { actor: 'test' });
      expect(r.identities.new).toBe(7);

      const user = await resolveIdentity(env.steward.store, 'system:serviceaccount:mynamespace:example-user');
      expect(sourceAttributes(user.attributes)).toEqual({
        namespace: 'mynamespace',
        default: false,
        listed: true,
        automountToken: true,
      });
      // its RoleBindings name no subject namespace: the binding's namespace applies
      const userEnts = await entitlementsOf(env, 'system:serviceaccount:mynamespace:example-user');
      expect(userEnts.map((e) => [e.resource, e.grantedVia])).toEqual([
        [
          'ns:mynamespace core/pods',
          'rolebinding:mynamespace/example-rolebinding-1 → role:mynamespace/example-role-1',
        ],
        [
          'ns:mynamespace core/services',
          'rolebinding:mynamespace/example-rolebinding-2 → role:mynamespace/example-role-2',
        ],
        [
          'ns:mynamespace policy/podsecuritypolicies/*',
          'rolebinding:mynamespace/all-psps-bind → clusterrole:all-psps',
        ],
        [
          'ns:mynamespace policy/podsecuritypolicies/mypsp',
          'rolebinding:mynamespace/example-psp-bind → clusterrole:priviliged-psp-role',
        ],
      ]);
      // resourceNames narrow the grant, and it still reads secrets
      expect(
        await entitlementsOf(env, 'system:serviceaccount:test:test-specific-secret-reader-sa'),
      ).toMatchObject([
        {
          resource: 'ns:test core/secrets/some-secret',
          actions: ['get', 'list', 'watch'],
          attributes: { secretsAccess: true, wildcard: false },
        },
      ]);
      // test-aggregate has no rules of its own: the two ClusterRoles its selector matches give them
      expect(await entitlementsOf(env, 'system:serviceaccount:test:test-aggregate-sa')).toMatchObject([
        {
          resource: 'cluster core/pods',
          actions: ['create', 'get', 'list', 'watch'],
          grantedVia: 'clusterrolebinding:aggregate-pod-creator → clusterrole:test-aggregate',
        },
      ]);
      // `resources: ["*"]` in the core group: a wildcard that includes secrets
      const tu = await entitlementsOf(env, 'system:serviceaccount:policyrules:the-test-user');
      expect(tu.filter((e) => e.resource === 'ns:policyrules core/*').map((e) => e.attributes)).toEqual([
        { wildcard: true, clusterAdmin: false, secretsAccess: true },
        { wildcard: true, clusterAdmin: false, secretsAccess: true },
      ]);
      expect(withAttr(batch, 'wildcard')).toEqual([
        'policyrules/the-test-user',
        'test/gateway-network-operator-sa',
      ]);
    });
  });

  it('KubiScan manifests (files without extension): listed accounts with token Secrets not yet filled (no fingerprint)', async () => {
    await withSteward(dialect, async (env) => {
      const { batch } = await importer.read(KUBISCAN_SA, { skipInvalid: false, keys: env.steward.keys });
      expect(ids(batch)).toEqual(['default/kubiscan-sa', 'default/kubiscan-sa2']);
      await importDiscovery(env.steward, batch, { actor: 'test' });
      const creds = await credentialsOf(env, 'system:serviceaccount:default:kubiscan-sa');
      expect(creds).toHaveLength(1);
      expect(creds[0]).toMatchObject({
        external_id: 'secret:default/kubiscan-sa-token',
        kind: 'k8s-sa-token',
        fingerprint: null,
      });
      expect(await entitlementsOf(env, 'system:serviceaccount:default:kubiscan-sa')).toMatchObject([
        {
          resource: 'cluster */clusterrolebindings,clusterroles,pods,rolebindings,roles,secrets',
          actions: ['get', 'list'],
          attributes: { wildcard: true, secretsAccess: true, clusterAdmin: false },
        },
      ]);
      expect(
        (await entitlementsOf(env, 'system:serviceaccount:default:kubiscan-sa2'))[0]!.attributes
          .secretsAccess,
      ).toBe(false);
    });
  });

  it('a later dump of the same cluster without minikube-rbac and the token Secret revokes the grant and vanishes the token', async () => {
    await withSteward(dialect, async (env) => {
      await importDiscovery(
        env.steward,
        (await importer.read([COMBINED_JSON], { skipInvalid: false, keys: env.steward.keys })).batch,
        { actor: 'test' },
      );
      const lists = JSON.parse(fs.readFileSync(COMBINED_JSON, 'utf8')) as {
        items: { kind: string; metadata: { name: string } }[];
      }[];
      for (const l of lists) {
        l.items = l.items.filter((i) => i.kind !== 'Secret' && i.metadata.name !== 'minikube-rbac');
      }
      const dir = tempFiles({ 'combined.json': JSON.stringify(lists) });
      env.clock.advance(86_400_000);
      const { batch } = await importer.read([path.join(dir, 'combined.json')], {
        skipInvalid: false,
        keys: env.steward.keys,
      });
      expect(batch.scope).toBe('combined');
      const r = await importDiscovery(env.steward, batch, { actor: 'test' });
      expect(r.credentials.vanished).toBe(1);
      expect(r.entitlements.vanished).toBe(2); // cluster-admin's two rules
      // kube-system/default is still there (a Pod uses it) but no longer cluster-admin
      const def = await entitlementsOf(env, 'system:serviceaccount:kube-system:default');
      expect(def.filter((e) => e.attributes.clusterAdmin).map((e) => e.status)).toEqual([
        'revoked',
        'revoked',
      ]);
      const creds = await credentialsOf(env, 'system:serviceaccount:default:kubiscan-sa');
      expect(creds[0]!.status).toBe('vanished');
    });
  });
});

describe.skipIf(!corporaAvailable)('kubernetes importer: formats and hostile inputs', () => {
  it('combined.yaml (the YAML rendering of the same cluster) reads like combined.json; a gzipped dump too', async () => {
    const json = (await importer.read([COMBINED_JSON], opts())).batch;
    const yaml = (await importer.read([COMBINED_YAML], opts())).batch;
    expect(yaml.identities).toEqual(json.identities);
    const dir = tempFiles({});
    fs.writeFileSync(path.join(dir, 'minikube.json.gz'), gzipSync(fs.readFileSync(COMBINED_JSON)));
    const gz = (await importer.read([path.join(dir, 'minikube.json.gz')], opts())).batch;
    expect(gz.scope).toBe('minikube');
    expect(gz.identities).toEqual(json.identities);
  });

  it('truncated JSON is refused, even with skipInvalid', async () => {
    const dir = tempFiles({ 'cut.json': fs.readFileSync(COMBINED_JSON, 'utf8').slice(0, 5000) });
    for (const skip of [false, true]) {
      const e = await problemsOf(importer.read([path.join(dir, 'cut.json')], opts(skip)));
      expect(e.problems[0]!.message).toMatch(/^expected complete JSON/);
    }
  });

  it('an export without Kubernetes objects (empty file, the EKS audit JSONL) is refused, even with skipInvalid', async () => {
    const dir = tempFiles({ 'empty.yaml': '\n# nothing\n' });
    expect(
      (await problemsOf(importer.read([path.join(dir, 'empty.yaml')], opts(true)))).problems[0]!.message,
    ).toBe('expected Kubernetes objects or Lists (JSON or YAML), got an empty input');
    const audit = corpus('kubernetes-rbac/panther-derived/panther-tests.Amazon.EKS.Audit.jsonl');
    expect((await problemsOf(importer.read([audit], opts(true)))).problems[0]!.message).toBe(
      'expected Kubernetes objects or Lists (JSON or YAML), got no value with a kind',
    );
  });

  const HOSTILE = {
    apiVersion: 'v1',
    kind: 'List',
    items: [
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'payments' } },
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'cfg', namespace: 'payments' },
        data: { a: 'b' },
      },
      { kind: 'Event', apiVersion: 'audit.k8s.io/v1', auditID: 'x' },
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'api', namespace: 'payments' } },
      { apiVersion: 'v1', metadata: { name: 'no-kind' } },
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { namespace: 'payments' } },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: { name: 'r', namespace: 'payments' },
        rules: 'all',
      },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name: 'rb', namespace: 'payments' },
        roleRef: { kind: 'Role', name: 'r' },
        subjects: { kind: 'ServiceAccount', name: 'api' },
      },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: 'crb' },
        roleRef: { kind: 'Role', name: 'r' },
        subjects: [{ kind: 'ServiceAccount', name: 'api' }],
      },
      {
        apiVersion: 'v1',
        kind: 'Secret',
        type: 'kubernetes.io/service-account-token',
        metadata: {
          name: 'api-token',
          namespace: 'payments',
          annotations: { 'kubernetes.io/service-account.name': 'api' },
        },
        data: { token: 'not base64!! s3cr3t-value' },
      },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name: 'to-missing', namespace: 'payments' },
        roleRef: { kind: 'ClusterRole', name: 'cluster-admin' },
        subjects: [{ kind: 'ServiceAccount', name: 'api', namespace: 'payments' }],
      },
    ],
  };

  it('unknown kinds are ignored; invalid objects are rejected with file and path (never echoing a token); skipInvalid skips only them', async () => {
    const dir = tempFiles({ 'hostile.json': JSON.stringify(HOSTILE) });
    const file = path.join(dir, 'hostile.json');
    const e = await problemsOf(importer.read([file], opts()));
    expect(e.problems.map((p) => [p.file, p.field, p.message])).toEqual([
      [file, 'items[4].kind', 'expected a Kubernetes kind (ServiceAccount, RoleBinding …), got nothing'],
      [file, 'items[5].metadata.name', 'expected the object name, got nothing'],
      [file, 'items[6].rules', 'expected a list of rules, got string "all"'],
      [file, 'items[7].subjects', 'expected a list of subjects, got mapping'],
      [file, 'items[8].roleRef.kind', 'expected ClusterRole, got string "Role"'],
      [file, 'items[8].subjects[0].namespace', 'expected the service account namespace, got nothing'],
      [file, 'items[9].data.token', 'expected base64 text, got text that is not base64 (value not shown)'],
    ]);
    expect(e.message).not.toContain('s3cr3t');

    const { batch, skipped } = await importer.read([file], opts(true));
    expect(skipped).toHaveLength(7);
    expect(batch.identities).toHaveLength(1);
    const api = batch.identities[0]!;
    expect(api).toMatchObject({
      externalId: 'system:serviceaccount:payments:api',
      name: 'payments/api',
      credentials: [],
    });
    // a RoleBinding to cluster-admin that the input does not define: unresolved, and admin of its namespace only
    expect(api.entitlements).toEqual([
      {
        resource: 'ns:payments unresolved:clusterrole:cluster-admin',
        actions: [],
        grantedVia: 'rolebinding:payments/to-missing → clusterrole:cluster-admin',
        attributes: {
          unresolvedRole: 'clusterrole:cluster-admin',
          wildcard: false,
          clusterAdmin: false,
          namespaceAdmin: true,
          secretsAccess: false,
        },
      },
    ]);
  });

  it('YAML problems name the line; YAML syntax errors are refused with their line', async () => {
    const dir = tempFiles({
      'roles.yaml': `apiVersion: v1
kind: ServiceAccount
metadata:
  name: api
  namespace: payments
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: reader
  namespace: payments
rules:
  - apiGroups: [""]
    resources: ["secrets"]
    verbs: get
`,
      'broken.yaml': `kind: ServiceAccount
metadata:
  name: [unclosed
`,
    });
    const e = await problemsOf(importer.read([path.join(dir, 'roles.yaml')], opts()));
    expect(e.problems).toEqual([
      {
        file: path.join(dir, 'roles.yaml'),
        line: 15,
        field: 'rules[0].verbs',
        message: 'expected a list of verbs, got string "get"',
      },
    ]);
    const s = await problemsOf(importer.read([path.join(dir, 'broken.yaml')], opts(true)));
    expect(s.problems[0]).toMatchObject({
      file: path.join(dir, 'broken.yaml'),
      line: expect.any(Number) as number,
    });
    expect(s.problems[0]!.message).toMatch(/^expected valid YAML/);
  });
});
