import fs from 'node:fs';
import path from 'node:path';
import { createHmac } from 'node:crypto';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { dumpDatabase } from '../helpers/dump.js';
import { describe, it, expect } from 'vitest';
import { dialects, withSteward } from '../helpers/steward.js';
import { corpus, corporaAvailable } from '../helpers/corpora.js';
import { tempFiles } from '../helpers/files.js';
import {
  importer,
  isHighPrivilege,
  keyDescriptions,
  readEntra,
  thumbprintOf,
  type EntraReadOptions,
} from '../../src/importers/entra/index.js';
import { readJsonRecords } from '../../src/importers/entra/json-records.js';
import { SOURCES } from '../../src/importers/registry.js';
import { importDiscovery, type DiscoveryBatch } from '../../src/inventory/import-discovery.js';
import { loadRecord } from '../../src/inventory/record.js';
import { resolveIdentity } from '../../src/inventory/queries.js';
import { ValidationError } from '../../src/domain/errors.js';
import type { Steward } from '../../src/app.js';

const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures', 'entra');
const LISTING = path.join(FIXTURES, 'listing');
const LOGS = path.join(FIXTURES, 'audit', 'entra-diagnostic-logs.jsonl');
const AUDIT = 'azure/panther-derived/panther-tests.Azure.Audit.jsonl';
const ACTIVITY = 'azure/panther-derived/panther-tests.Azure.MonitorActivity.jsonl';

const TENANT = '4a9c2e6b-7f31-4d5e-9b8a-2c1d0e3f4a5b';
const VENDOR = '9e8d7c6b-5a49-4382-a1b0-c9d8e7f6a5b4';
const GRAPH = 'entra:app:00000003-0000-0000-c000-000000000000';
const PAYMENTS = 'entra:app:0d4e6f8a-1b3c-4d5e-8f9a-0b1c2d3e4f5a';
const CERT_DEPLOYER = 'entra:app:5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9';
const FABRIKAM = 'entra:app:8a9b0c1d-2e3f-4a5b-8c6d-7e8f9a0b1c2d';
const VM_BACKUP = 'entra:app:6b7c8d9e-0f1a-4b2c-9d3e-4f5a6b7c8d9e';
const LEGACY = 'entra:app:7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d';
const ORPHAN = 'entra:app:9c0d1e2f-3a4b-4c5d-9e6f-7a8b9c0d1e2f';
const EXPIRED_SECRET = '3f1e5d7c-9b2a-4c4e-8d6f-1a3b5c7d9e0f';
const ACTIVE_SECRET = '7c8d9e0f-1a2b-4c3d-9e4f-5a6b7c8d9e0f';
/** The `hint` of every password credential in the fixtures: the first characters of a secret. */
const HINTS = ['Q~7', 'k~P', 'L~9', 'O~r'];

const testKeys: EntraReadOptions['keys'] = {
  fingerprint: (s) => 'hmac-sha256:' + createHmac('sha256', 'test-key').update(s, 'utf8').digest('hex'),
};
/** The time of reading in these tests: after the 2024 secret expired, before the 2026-03 one does. */
const NOW = () => new Date('2026-01-15T00:00:00Z');
const opts = (extra: Partial<EntraReadOptions> = {}): EntraReadOptions => ({
  skipInvalid: false,
  keys: testKeys,
  now: NOW,
  ...extra,
});

async function rejection(p: Promise<unknown>): Promise<ValidationError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ValidationError);
    return e as ValidationError;
  }
  throw new Error('expected a ValidationError');
}

async function record(s: Steward, externalId: string) {
  const id = (await resolveIdentity(s.store, externalId)).id;
  const rec = await loadRecord(s.store, id, new Date().toISOString(), new Date().toISOString());
  if (!rec) throw new Error(`no record for ${externalId}`);
  return rec;
}

/** The attributes a record shows for one sighting (`entra:<scope>`). */
const under = (attributes: Record<string, unknown>, sighting: string) =>
  attributes[sighting] as Record<string, unknown>;

/** A copy of the fixture listing in a temp folder, with its JSON files changed by `edit`. */
function listingCopy(edit: (name: string, json: Record<string, unknown>) => void = () => {}): string {
  const dir = tempFiles({});
  fs.cpSync(LISTING, dir, { recursive: true });
  for (const name of ['applications.json', 'oauth2PermissionGrants.json']) {
    const file = path.join(dir, name);
    const json = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
    edit(name, json);
    fs.writeFileSync(file, JSON.stringify(json, null, 2));
  }
  return dir;
}

type Obj = Record<string, unknown>;
const items = (json: Obj) => json.value as Obj[];

/** What a batch says, without where it was read from. */
const facts = (b: DiscoveryBatch) => ({ ...b, files: [] });

describe.each(dialects)(
  'entra listing (fixtures from the Microsoft Graph v1.0 schema) on $name',
  (dialect) => {
    it('imports the tenant listing (fixture from the Microsoft Graph v1.0 servicePrincipal, application, appRoleAssignment and oauth2PermissionGrant schemas): identities, credentials with dates and expiry, third-party flag, entitlements; re-import writes nothing', async () => {
      const { batch, skipped, stats, notes } = await readEntra([LISTING], opts());
      expect(skipped).toEqual([]);
      expect(batch).toMatchObject({ source: 'entra', scope: TENANT, snapshot: true });
      expect(batch.files).toHaveLength(7);
      expect(stats).toMatchObject({
        records: 18,
        input: 'listing',
        tenant: TENANT,
        graph: {
          servicePrincipals: 6,
          applications: 4,
          appRoleAssignments: 5,
          oauth2PermissionGrants: 3,
          unattributedGrants: 1, // Alice's assignment to a payments-api app role: a person, not an NHI
        },
      });
      expect(notes).toContain('1 grant(s) to users, groups or unlisted service principals were not imported');
      expect(batch.identities.map((i) => [i.externalId, i.name, i.kind, i.status])).toEqual([
        [GRAPH, 'Microsoft Graph', 'service-account', 'active'],
        [PAYMENTS, 'payments-api', 'service-account', 'active'],
        [CERT_DEPLOYER, 'cert-deployer', 'service-account', 'active'],
        [VM_BACKUP, 'vm-backup', 'workload', 'active'],
        [LEGACY, 'legacy-reporting', 'service-account', 'disabled'],
        [FABRIKAM, 'Fabrikam Sync', 'service-account', 'active'],
        [ORPHAN, 'orphan-registration', 'service-account', 'active'],
      ]);

      await withSteward(dialect, async (env) => {
        const r = await importDiscovery(env.steward, batch, { actor: 'test' });
        expect(r.identities).toEqual({ new: 7, changed: 0, unchanged: 0, vanished: 0 });
        expect(r.credentials).toEqual({ new: 7, changed: 0, unchanged: 0, vanished: 0 });
        expect(r.entitlements).toEqual({ new: 6, changed: 0, unchanged: 0, vanished: 0 });
        const sighting = `entra:${TENANT}`;

        // the app registration and its service principal are one identity, with the secrets of the application
        const payments = await record(env.steward, PAYMENTS);
        expect(payments).toMatchObject({ name: 'payments-api', kind: 'service-account', source: 'entra' });
        expect(under(payments.attributes, sighting)).toMatchObject({
          appId: '0d4e6f8a-1b3c-4d5e-8f9a-0b1c2d3e4f5a',
          servicePrincipalId: '1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9',
          applicationObjectId: 'a1a2a3a4-b5b6-4c7c-8d8d-e9e9f0f0a1a1',
          servicePrincipalType: 'Application',
          appOwnerOrganizationId: TENANT,
          thirdParty: false,
          registeredInTenant: true,
          signInAudience: 'AzureADMyOrg',
          tags: ['WindowsAzureActiveDirectoryIntegratedApp', 'team:payments'],
          requestedPermissions: [
            {
              resource: GRAPH,
              resourceName: 'Microsoft Graph',
              application: ['Directory.ReadWrite.All', 'User.Read.All'],
              delegated: ['User.Read'],
            },
          ],
        });
        const creds = payments.credentials.sort((a, b) => (a.externalId < b.externalId ? -1 : 1));
        expect(creds.map((c) => [c.externalId, c.kind, c.status, c.issuedAt, c.expiresAt])).toEqual([
          [
            EXPIRED_SECRET,
            'client-secret',
            'expired',
            '2023-01-10T09:00:00.000Z',
            '2024-01-10T09:00:00.000Z',
          ],
          [ACTIVE_SECRET, 'client-secret', 'active', '2025-06-01T09:12:44.521Z', '2027-05-31T09:12:44.521Z'],
        ]);
        expect(creds[1]!.attributes).toEqual({ on: 'application', displayName: 'ci-2025' });
        expect(creds[1]!.source).toBe(sighting);
        const ents = payments.entitlements.sort((a, b) =>
          (a.grantedVia ?? '') < (b.grantedVia ?? '') ? -1 : 1,
        );
        expect(ents.map((e) => [e.resource, e.grantedVia, e.actions, e.status, e.grantedAt])).toEqual([
          [
            GRAPH,
            'appRoleAssignment',
            ['Directory.ReadWrite.All', 'User.Read.All'],
            'active',
            '2023-01-11T08:00:00.000Z',
          ],
          [GRAPH, 'oauth2PermissionGrant:AllPrincipals', ['User.Read'], 'active', null],
        ]);
        expect(ents[0]!.attributes).toEqual({
          permissionType: 'application',
          resourceName: 'Microsoft Graph',
          highPrivilege: true,
          highPrivilegeActions: ['Directory.ReadWrite.All'],
        });
        expect(ents[1]!.attributes).toMatchObject({ permissionType: 'delegated', highPrivilege: false });

        // a multi-tenant third-party app: owned by the vendor's tenant, admin-consented Files.ReadWrite.All
        const fabrikam = await record(env.steward, FABRIKAM);
        expect(under(fabrikam.attributes, sighting)).toMatchObject({
          appOwnerOrganizationId: VENDOR,
          thirdParty: true,
          registeredInTenant: false,
          signInAudience: 'AzureADMultipleOrgs',
          verifiedPublisher: 'Fabrikam, Inc.',
        });
        expect(under(fabrikam.attributes, sighting)).not.toHaveProperty('publisher');
        expect(fabrikam.credentials).toEqual([]);
        const fe = fabrikam.entitlements.sort((a, b) =>
          (a.grantedVia ?? '') < (b.grantedVia ?? '') ? -1 : 1,
        );
        expect(fe.map((e) => [e.grantedVia, e.actions, e.attributes.highPrivilege])).toEqual([
          ['appRoleAssignment', ['Mail.Read'], false],
          [
            'oauth2PermissionGrant:AllPrincipals',
            ['Files.ReadWrite.All', 'User.Read', 'offline_access'],
            true,
          ],
          ['oauth2PermissionGrant:Principal', ['Mail.Read'], false],
        ]);
        expect(fe[1]!.attributes).toEqual({
          permissionType: 'delegated',
          consentType: 'AllPrincipals',
          resourceName: 'Microsoft Graph',
          highPrivilege: true,
          highPrivilegeActions: ['Files.ReadWrite.All'],
        });
        expect(fe[2]!.attributes).toMatchObject({ consentType: 'Principal', users: 1 });

        // Microsoft's own service principal: third party, published by Microsoft
        expect(under((await record(env.steward, GRAPH)).attributes, sighting)).toMatchObject({
          thirdParty: true,
          publisher: 'Microsoft Services',
        });

        // a certificate: thumbprint from customKeyIdentifier; Application.ReadWrite.All is high-privilege;
        // and a GitHub Actions workflow it trusts (a federated credential, $expand=federatedIdentityCredentials)
        const cert = await record(env.steward, CERT_DEPLOYER);
        cert.credentials.sort((a, b) => (a.externalId < b.externalId ? -1 : 1));
        expect(
          cert.credentials.map((c) => [c.externalId, c.kind, c.status, c.issuedAt, c.expiresAt]),
        ).toEqual([
          [
            'c0ffee00-1234-4abc-9def-0123456789ab',
            'certificate',
            'active',
            '2025-03-01T00:00:00.000Z',
            '2027-03-01T00:00:00.000Z',
          ],
          ['f1e2d3c4-b5a6-4978-8a9b-0c1d2e3f4a5b', 'federated-credential', 'active', null, null],
        ]);
        expect(cert.credentials[1]!.attributes).toEqual({
          on: 'application',
          displayName: 'github-main',
          issuer: 'https://token.actions.githubusercontent.com',
          subject: 'repo:contoso/cert-deployer:ref:refs/heads/main',
          audiences: ['api://AzureADTokenExchange'],
        });
        expect(cert.credentials[0]!.attributes).toEqual({
          on: 'application',
          displayName: 'CN=cert-deployer.contoso.com',
          keyType: 'AsymmetricX509Cert',
          usage: 'Verify',
          thumbprint: '5F2A9C0E7B3D41A6C8E2F0B4D6A8C1E3F5A7B9D0',
        });
        expect(cert.entitlements.map((e) => [e.actions, e.attributes.highPrivilege])).toEqual([
          [['Application.ReadWrite.All'], true],
        ]);

        // a managed identity: a workload with its Azure-managed certificate and its ARM resource id
        const mi = await record(env.steward, VM_BACKUP);
        expect(mi.kind).toBe('workload');
        expect(under(mi.attributes, sighting)).toMatchObject({
          servicePrincipalType: 'ManagedIdentity',
          thirdParty: false,
          managedIdentityResourceId:
            '/subscriptions/0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e/resourcegroups/backup-rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/vm-backup',
        });
        expect(mi.credentials.map((c) => [c.kind, c.status, c.expiresAt])).toEqual([
          ['certificate', 'active', '2026-02-18T07:40:00.000Z'],
        ]);

        // a disabled service principal with a secret of its own
        const legacy = await record(env.steward, LEGACY);
        expect(legacy.status).toBe('disabled');
        expect(legacy.credentials.map((c) => [c.kind, c.status, c.expiresAt, c.attributes.on])).toEqual([
          ['client-secret', 'active', '2299-12-31T05:00:00.000Z', 'servicePrincipal'],
        ]);

        // an app registration without a service principal is an identity too
        const orphan = await record(env.steward, ORPHAN);
        expect(under(orphan.attributes, sighting)).toMatchObject({
          registeredInTenant: true,
          thirdParty: false,
        });
        expect(under(orphan.attributes, sighting)).not.toHaveProperty('servicePrincipalId');

        const head = (await env.steward.ledger.head()).seq;
        const again = await importDiscovery(env.steward, (await readEntra([LISTING], opts())).batch, {
          actor: 'test',
        });
        expect(again.events).toBe(0);
        expect((await env.steward.ledger.head()).seq).toBe(head);
      });
    });

    it('a later listing without a secret marks that credential vanished, a withdrawn consent revoked and a deleted app vanished (fixture from the Microsoft Graph v1.0 schema)', async () => {
      const later = listingCopy((name, json) => {
        if (name === 'applications.json') {
          const apps = items(json).filter((a) => a.displayName !== 'orphan-registration');
          const payments = apps.find((a) => a.displayName === 'payments-api')!;
          payments.passwordCredentials = (payments.passwordCredentials as Obj[]).filter(
            (c) => c.keyId !== EXPIRED_SECRET,
          );
          json.value = apps;
        } else json.value = items(json).filter((g) => g.consentType !== 'Principal');
      });
      await withSteward(dialect, async (env) => {
        await importDiscovery(env.steward, (await readEntra([LISTING], opts())).batch, { actor: 'test' });
        const r = await importDiscovery(env.steward, (await readEntra([later], opts())).batch, {
          actor: 'test',
        });
        expect(r.identities).toMatchObject({ vanished: 1 });
        expect(r.credentials).toMatchObject({ new: 0, vanished: 2 }); // the removed secret, and the orphan's
        expect(r.entitlements).toMatchObject({ new: 0, vanished: 1 });
        const payments = await record(env.steward, PAYMENTS);
        expect(
          payments.credentials.map((c) => [c.externalId, c.status]).sort((a, b) => (a[0]! < b[0]! ? -1 : 1)),
        ).toEqual([
          [EXPIRED_SECRET, 'vanished'],
          [ACTIVE_SECRET, 'active'],
        ]);
        const fabrikam = await record(env.steward, FABRIKAM);
        expect(
          fabrikam.entitlements.find((e) => e.grantedVia === 'oauth2PermissionGrant:Principal')!.status,
        ).toBe('revoked');
        expect((await record(env.steward, ORPHAN)).status).toBe('vanished');
        // and the same later listing again writes nothing
        const again = await importDiscovery(env.steward, (await readEntra([later], opts())).batch, {
          actor: 'test',
        });
        expect(again.events).toBe(0);
      });
    });

    it('never stores a hint, the first characters of a secret; a secretText is kept as a keyed fingerprint only (dump of every table; fixture from the Microsoft Graph v1.0 schema)', async () => {
      const secret = 'Zx8Q~fixture.secretText_not-a-real-secret-0123456789';
      const withSecret = listingCopy((name, json) => {
        if (name !== 'applications.json') return;
        const orphan = items(json).find((a) => a.displayName === 'orphan-registration')!;
        (orphan.passwordCredentials as Obj[])[0]!.secretText = secret; // as an addPassword response returns it
      });
      // the fixtures do carry hints: the test would prove nothing otherwise
      const raw = fs.readFileSync(path.join(LISTING, 'applications.json'), 'utf8');
      for (const h of ['Q~7', 'k~P', 'O~r']) expect(raw).toContain(`"hint": "${h}"`);
      expect(fs.readFileSync(path.join(LISTING, 'servicePrincipals.jsonl'), 'utf8')).toContain(
        '"hint":"L~9"',
      );

      await withSteward(dialect, async (env) => {
        const read = await readEntra([withSecret], { skipInvalid: false, keys: env.steward.keys, now: NOW });
        expect(JSON.stringify(read)).not.toContain(secret);
        for (const h of HINTS) expect(JSON.stringify(read.batch)).not.toContain(h);
        await importDiscovery(env.steward, read.batch, { actor: 'test' });
        await importDiscovery(env.steward, (await readEntra([LOGS], opts())).batch, { actor: 'test' });
        const dump = await dumpDatabase(env);
        expect(dump).toContain(ACTIVE_SECRET); // key ids are identifiers, kept on purpose
        for (const h of HINTS) expect(dump).not.toContain(h);
        expect(dump).not.toMatch(/"hint"/i);
        expect(dump).not.toContain(secret);
        expect(dump).not.toContain('secretText');
        const orphan = await record(env.steward, ORPHAN);
        expect(orphan.credentials[0]!.fingerprint).toBe(env.steward.keys.fingerprint(secret));
      });

      // a hint of the wrong type is described by its shape, never by its content
      const bad = listingCopy((name, json) => {
        if (name !== 'applications.json') return;
        const payments = items(json).find((a) => a.displayName === 'payments-api')!;
        (payments.passwordCredentials as Obj[])[0]!.hint = 987654;
        (payments.passwordCredentials as Obj[])[1]!.hint = ['k~P'];
      });
      const err = await rejection(readEntra([bad], opts()));
      expect(err.problems.map((p) => [p.field, p.message])).toEqual([
        ['value[0].passwordCredentials[0].hint', 'expected a string, got a number'],
        ['value[0].passwordCredentials[1].hint', 'expected a string, got an array'],
      ]);
      expect(err.message).not.toContain('987654');
      expect(err.message).not.toContain('k~P');
    });

    it('imports Entra logs after the listing as usage: who added which credential when, last use of applications and credentials (fixture from the Azure Monitor Entra audit and sign-in log schemas); re-imports write nothing', async () => {
      const { batch, stats, notes } = await readEntra([LOGS], opts());
      expect(batch).toMatchObject({ source: 'entra', scope: `audit:${TENANT}`, snapshot: false });
      expect(batch.observedAt).toBe('2026-01-02T03:00:00.000Z');
      expect(stats.logs).toMatchObject({
        records: 11,
        directoryAudits: 7,
        servicePrincipalSignIns: 2,
        managedIdentitySignIns: 1,
        userSignIns: 1,
        ignoredOperations: { 'Update user': 1 },
      });
      // "Add service principal" of a principal named by object id only: reported, not guessed
      expect(stats.logs.unresolved).toEqual([
        {
          objectId: '0f9e8d7c-6b5a-4948-8372-6150a4b3c2d1',
          type: 'ServicePrincipal',
          name: 'unknown-automation',
          facts: expect.objectContaining({
            created: {
              at: '2025-12-02T11:11:11.000Z',
              operation: 'Add service principal',
              by: 'bob@contoso.example',
              on: 'servicePrincipal',
            },
          }) as unknown,
        },
      ]);
      expect(
        notes!.some((n) => n.includes('0f9e8d7c-6b5a-4948-8372-6150a4b3c2d1 (unknown-automation)')),
      ).toBe(true);

      await withSteward(dialect, async (env) => {
        await importDiscovery(env.steward, (await readEntra([LISTING], opts())).batch, { actor: 'test' });
        const r = await importDiscovery(env.steward, batch, { actor: 'test' });
        expect(r.identities).toEqual({ new: 0, changed: 5, unchanged: 0, vanished: 0 });
        const audit = `entra:audit:${TENANT}`;

        const payments = await record(env.steward, PAYMENTS);
        expect(payments.lastUsedAt).toBe('2025-12-30T23:58:01.123Z');
        const active = payments.credentials.find((c) => c.externalId === ACTIVE_SECRET)!;
        expect(active).toMatchObject({ lastUsedAt: '2025-12-30T23:58:01.123Z', status: 'active' });
        expect(active.attributes).toEqual({ on: 'application', displayName: 'ci-2025' }); // the listing's, untouched
        // a failed sign-in with the expired secret is not a use; usage never changes a status
        expect(payments.credentials.find((c) => c.externalId === EXPIRED_SECRET)).toMatchObject({
          status: 'expired',
          lastUsedAt: null,
        });
        const facts = under(payments.attributes, audit);
        expect(facts.credentialAdditions).toEqual([
          {
            at: '2025-06-01T09:12:45.118Z',
            operation: 'Update application – Certificates and secrets management',
            addedBy: 'alice@contoso.example',
            keyId: ACTIVE_SECRET,
            keyType: 'Password',
            kind: 'client-secret',
            displayName: 'ci-2025',
            usage: 'Verify',
            on: 'application',
          },
        ]);
        // named by its application object id only: resolved through the credential entry's AppId
        expect(facts.ownersAdded).toEqual([
          {
            at: '2025-09-14T07:45:00.000Z',
            operation: 'Add owner to application',
            by: 'alice@contoso.example',
            owner: 'carol@contoso.example',
          },
        ]);
        expect(facts.usage).toEqual({
          signIns: {
            count: 2,
            failed: 1,
            firstSeen: '2025-12-29T05:59:30.000Z',
            lastSeen: '2025-12-30T23:58:01.123Z',
            lastSucceeded: '2025-12-30T23:58:01.123Z',
            errors: { '7000222': 1 },
            resources: ['Microsoft Graph'],
            sourceIps: ['203.0.113.7'],
            credentialsUsed: { [ACTIVE_SECRET]: '2025-12-30T23:58:01.123Z' },
            credentialsFailed: { [EXPIRED_SECRET]: '2025-12-29T05:59:30.000Z' },
          },
        });
        // the listing's facts stay under the listing's sighting
        expect(under(payments.attributes, `entra:${TENANT}`)).toMatchObject({ thirdParty: false });

        // a secret added by an automation: the automation's own use is recorded too
        const legacy = await record(env.steward, LEGACY);
        expect((under(legacy.attributes, audit).credentialAdditions as Obj[])[0]).toMatchObject({
          at: '2022-02-01T10:00:03.510Z',
          addedBy: 'app:5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9 (cert-deployer)',
          keyId: 'e5f6a7b8-c9d0-4e1f-a2b3-c4d5e6f7a8b9',
          kind: 'client-secret',
          on: 'servicePrincipal',
        });
        const cert = await record(env.steward, CERT_DEPLOYER);
        expect(cert.lastUsedAt).toBe('2022-02-01T10:00:03.510Z');
        expect(under(cert.attributes, audit)).toMatchObject({
          usage: { directory: { count: 1, operations: { 'Add service principal credentials': 1 } } },
          permissionGrants: [
            {
              at: '2025-02-27T08:41:10.200Z',
              operation: 'Add app role assignment to service principal',
              by: 'alice@contoso.example',
              permissions: 'Application.ReadWrite.All',
              resource: 'Microsoft Graph',
            },
          ],
        });
        expect(
          (under((await record(env.steward, FABRIKAM)).attributes, audit).permissionGrants as Obj[])[0],
        ).toMatchObject({
          operation: 'Consent to application',
          by: 'bob@contoso.example',
          adminConsent: true,
          onBehalfOfAll: true,
        });
        const mi = await record(env.steward, VM_BACKUP);
        expect(mi).toMatchObject({ kind: 'workload', lastUsedAt: '2026-01-02T03:00:00.000Z' });

        // no flip-flop: each import again writes nothing
        for (const input of [LOGS, LISTING]) {
          const again = await importDiscovery(env.steward, (await readEntra([input], opts())).batch, {
            actor: 'test',
          });
          expect(again.events, input).toBe(0);
        }
      });
    });
  },
);

describe.runIf(corporaAvailable).each(dialects)('entra corpus on $name', (dialect) => {
  it('imports the Panther-derived Entra log (panther-tests.Azure.Audit.jsonl) as it is: service-principal sign-ins as usage, credential additions by object id only reported', async () => {
    const { batch, skipped, stats, notes } = await readEntra([corpus(AUDIT)], opts());
    expect(skipped).toEqual([]);
    expect(batch).toMatchObject({ source: 'entra', scope: 'audit:multi', snapshot: false });
    expect(batch.observedAt).toBe('2025-01-15T15:05:25.678Z');
    expect(stats.logs).toMatchObject({
      records: 48,
      directoryAudits: 21,
      servicePrincipalSignIns: 9,
      userSignIns: 18,
      attributed: 11,
    });
    expect(stats.logs.ignoredOperations).toMatchObject({
      'Invite external user': 4,
      'Add member to role': 1,
    });
    expect(batch.identities.map((i) => [i.externalId, i.name, i.lastUsedAt])).toEqual([
      [
        'entra:app:3b245ca3-dcce-4a54-a070-49ad8de02963',
        'very-normal-service-principal',
        '2023-07-27T13:59:53.691Z',
      ],
      ['entra:app:cfceb902-8fab-4f8c-88ba-374d3c975c3a', 'some-service-principal', undefined],
    ]);
    // line 44: who added which credential when, to a service principal named by object id only
    expect(
      stats.logs.unresolved.map((u) => [u.objectId, u.name, u.facts.credentialAdditions ?? u.facts.created]),
    ).toEqual([
      [
        'sp-app-456',
        'Production API Service',
        [
          {
            at: '2025-01-15T09:30:20.123Z',
            operation: 'Add service principal credentials',
            addedBy: 'frodo@lotr.com',
            keyType: 'Password',
            kind: 'client-secret',
            displayName: 'Client Secret for API Access',
            on: 'servicePrincipal',
          },
        ],
      ],
      [
        'sp-new-789',
        'New Automation Service',
        {
          at: '2025-01-15T15:05:25.678Z',
          operation: 'Add service principal',
          by: 'cloudadmin@company.com',
          on: 'servicePrincipal',
        },
      ],
    ]);
    expect(notes!.filter((n) => n.includes('named by object id only'))).toHaveLength(2);

    await withSteward(dialect, async (env) => {
      const r = await importDiscovery(env.steward, batch, { actor: 'test' });
      expect(r.identities).toEqual({ new: 2, changed: 0, unchanged: 0, vanished: 0 });
      const ok = await record(env.steward, 'entra:app:3b245ca3-dcce-4a54-a070-49ad8de02963');
      expect(ok.lastUsedAt).toBe('2023-07-27T13:59:53.691Z');
      expect(under(ok.attributes, 'entra:audit:multi')).toMatchObject({
        tenants: ['85e54ec3-85ee-4b03-9e3b-863075eb9b62'],
        servicePrincipalIds: ['4b6986ec-c49c-40c0-89ce-b2ac51213e39'],
        usage: {
          signIns: {
            count: 2,
            failed: 0,
            resources: ['Office 365 Management APIs'],
            // the sign-in names its key but not its type (clientCredentialType "none"): no credential is guessed
            credentialsUsed: { '2afc776a-4e79-4588-b2ad-f62c94d6bea8': '2023-07-27T13:59:53.691Z' },
          },
        },
      });
      expect(ok.credentials).toEqual([]);
      // seven sign-ins rejected with AADSTS7000215 (invalid client secret): seen, never used
      const failing = await record(env.steward, 'entra:app:cfceb902-8fab-4f8c-88ba-374d3c975c3a');
      expect(failing.lastUsedAt).toBeNull();
      expect(under(failing.attributes, 'entra:audit:multi')).toMatchObject({
        usage: { signIns: { count: 7, failed: 7, errors: { '7000215': 7 }, resources: ['Azure Storage'] } },
      });
      const again = await importDiscovery(env.steward, (await readEntra([corpus(AUDIT)], opts())).batch, {
        actor: 'test',
      });
      expect(again.events).toBe(0);
    });
  });

  it('imports the Azure Activity log (panther-tests.Azure.MonitorActivity.jsonl): its application callers as usage, people and resource logs counted', async () => {
    const { batch, skipped, stats, notes } = await readEntra([corpus(ACTIVITY)], opts());
    expect(skipped).toEqual([]);
    expect(stats.logs).toMatchObject({
      records: 249,
      activity: 233,
      activityByApplications: 6,
      otherResourceLogs: 16,
    });
    expect(notes![0]).toMatch(/233 Azure Activity log records \(6 by applications\)/);
    expect(batch).toMatchObject({
      scope: 'audit:multi',
      snapshot: false,
      observedAt: '2025-12-23T11:00:00.000Z',
    });
    expect(batch.identities.map((i) => [i.externalId, i.lastUsedAt])).toEqual([
      ['entra:app:12345678-1234-1234-1234-123456789abc', '2025-12-23T10:30:00.000Z'],
      ['entra:app:87654321-4321-4321-4321-123456789abc', '2025-12-23T11:00:00.000Z'],
    ]);
    await withSteward(dialect, async (env) => {
      const r = await importDiscovery(env.steward, batch, { actor: 'test' });
      expect(r.identities.new).toBe(2);
      const caller = await record(env.steward, 'entra:app:87654321-4321-4321-4321-123456789abc');
      expect(under(caller.attributes, 'entra:audit:multi')).toEqual({
        appId: '87654321-4321-4321-4321-123456789abc',
        tenants: ['22222222-2222-2222-2222-222222222222', '87654321-4321-4321-4321-111111111111'],
        usage: {
          activity: {
            count: 3,
            failed: 0,
            firstSeen: '2024-12-17T11:00:00.000Z',
            lastSeen: '2025-12-23T11:00:00.000Z',
            operations: {
              'Microsoft.KeyVault/vaults/certificates/read': 1,
              'Microsoft.KeyVault/vaults/keys/recover/action': 1,
              'Microsoft.KeyVault/vaults/secrets/recover/action': 1,
            },
            sourceIps: ['2.2.2.2'],
          },
        },
      });
      const again = await importDiscovery(env.steward, (await readEntra([corpus(ACTIVITY)], opts())).batch, {
        actor: 'test',
      });
      expect(again.events).toBe(0);
    });
  });
});

describe('entra input shapes (fixtures from the Microsoft Graph v1.0 schema)', () => {
  /** The fixture pages as parsed JSON: the two servicePrincipals pages and every other file. */
  function pages(): { name: string; page: Obj }[] {
    const out: { name: string; page: Obj }[] = [];
    const lines = fs.readFileSync(path.join(LISTING, 'servicePrincipals.jsonl'), 'utf8').trim().split('\n');
    lines.forEach((l, i) =>
      out.push({ name: `servicePrincipals-${i + 1}.json`, page: JSON.parse(l) as Obj }),
    );
    const walk = (dir: string) => {
      for (const n of fs.readdirSync(dir).sort()) {
        const p = path.join(dir, n);
        if (fs.statSync(p).isDirectory()) walk(p);
        else if (n.endsWith('.json'))
          out.push({ name: n, page: JSON.parse(fs.readFileSync(p, 'utf8')) as Obj });
      }
    };
    walk(LISTING);
    return out;
  }

  it('pages as JSON lines, pretty pages, concatenated pages, an array of pages, bare arrays, objects as JSON lines, gzip and standard input all give the same snapshot', async () => {
    const reference = facts((await readEntra([LISTING], opts())).batch);
    const all = pages();
    const pretty: Record<string, string> = {};
    for (const { name, page } of all) pretty[`pretty/${name}`] = JSON.stringify(page, null, 4);
    const objects = all.flatMap(({ page }) => items(page));
    const variants: Record<string, string> = {
      ...pretty,
      // a script that appends every page to one file, and one that keeps only the objects
      'concatenated/all.json': all.map(({ page }) => JSON.stringify(page, null, 1)).join('\n'),
      'lines/objects.jsonl': objects.map((o) => JSON.stringify(o)).join('\r\n') + '\r\n',
      'array-of-pages/all.json': JSON.stringify(all.map(({ page }) => page)),
    };
    // bare arrays lose the page context: each object is told apart by its shape
    for (const { name, page } of all) variants[`bare/${name}`] = JSON.stringify(items(page));
    const dir = tempFiles(variants);
    fs.mkdirSync(path.join(dir, 'gzip'));
    fs.writeFileSync(path.join(dir, 'gzip', 'all.json.gz'), gzipSync(variants['concatenated/all.json']!));
    for (const sub of ['pretty', 'concatenated', 'lines', 'bare', 'array-of-pages', 'gzip']) {
      const { batch } = await readEntra([path.join(dir, sub)], opts());
      expect(facts(batch), sub).toEqual(reference);
    }
    // standard input
    const stdin = Object.getOwnPropertyDescriptor(process, 'stdin')!;
    Object.defineProperty(process, 'stdin', {
      value: Readable.from([Buffer.from(variants['concatenated/all.json']!)]),
    });
    try {
      const { batch } = await readEntra(['-'], opts());
      expect(facts(batch)).toEqual(reference);
      expect(batch.files[0]!.path).toBe('-');
    } finally {
      Object.defineProperty(process, 'stdin', stdin);
    }
  });

  it('logs as a diagnostic-settings blob {"records": […]} or as a Graph directoryAudits page say the same (fixture from the Azure Monitor and Graph auditLogs schemas)', async () => {
    const lines = fs
      .readFileSync(LOGS, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Obj);
    const reference = (await readEntra([LOGS], opts())).batch;
    const audits = lines.filter((l) => l.category === 'AuditLogs').map((l) => l.properties as Obj);
    const dir = tempFiles({
      'blob/PT1H.json': JSON.stringify({ records: lines }, null, 2),
      'graph/directoryAudits.json': JSON.stringify({
        '@odata.context': 'https://graph.microsoft.com/v1.0/$metadata#auditLogs/directoryAudits',
        value: audits,
      }),
    });
    const blob = await readEntra([path.join(dir, 'blob')], opts());
    expect(facts(blob.batch)).toEqual(facts(reference));
    // Graph's directoryAudit objects carry no tenant: the same facts, under an unknown scope
    const graph = await readEntra([path.join(dir, 'graph')], opts());
    expect(graph.batch.scope).toBe('audit:unknown');
    expect(graph.stats.logs).toMatchObject({ directoryAudits: 7, ignoredOperations: { 'Update user': 1 } });
    const additions = (b: DiscoveryBatch, id: string) =>
      b.identities.find((i) => i.externalId === id)!.attributes!.credentialAdditions;
    for (const id of [PAYMENTS, LEGACY])
      expect(additions(graph.batch, id), id).toEqual(additions(reference, id));
  });

  it('takes the tenant from the organization listing; a listing that names no tenant, or several, is refused', async () => {
    const sps = path.join(LISTING, 'servicePrincipals.jsonl');
    const none = await rejection(readEntra([sps], opts()));
    expect(none.problems[0]!.message).toMatch(
      /^cannot tell which tenant this listing is of: expected the applications listing/,
    );
    const { batch } = await readEntra([sps, path.join(FIXTURES, 'organization.json')], opts());
    expect(batch.scope).toBe(TENANT);
    // the same third-party flags as with the applications listing
    expect(batch.identities.find((i) => i.externalId === FABRIKAM)!.attributes).toMatchObject({
      thirdParty: true,
    });
    expect(batch.identities.find((i) => i.externalId === PAYMENTS)!.attributes).toMatchObject({
      thirdParty: false,
      registeredInTenant: false,
    });

    const org = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'organization.json'), 'utf8')) as Obj;
    const other = { ...items(org)[0], id: VENDOR };
    const dir = tempFiles({ 'org.json': JSON.stringify({ ...org, value: [other] }) });
    const wrong = await rejection(readEntra([LISTING, path.join(dir, 'org.json')], opts()));
    expect(wrong.problems[0]!.message).toBe(
      `expected the listing of tenant ${VENDOR} (its organization), got applications registered in ${TENANT}`,
    );
  });

  it('refuses, even with --skip-invalid, a listing whose last page is missing, a delta round, and listings mixed with logs', async () => {
    const first = fs.readFileSync(path.join(LISTING, 'servicePrincipals.jsonl'), 'utf8').split('\n')[0]!;
    const delta = JSON.parse(fs.readFileSync(path.join(LISTING, 'applications.json'), 'utf8')) as Obj;
    items(delta)[3] = { id: 'c3c4c5c6-d7d8-4e9e-8f0f-a1a1b2b2c3c3', '@removed': { reason: 'changed' } };
    const dir = tempFiles({
      'partial/servicePrincipals.json': first,
      'delta/applications.json': JSON.stringify(delta),
    });
    fs.cpSync(path.join(LISTING, 'applications.json'), path.join(dir, 'partial', 'applications.json'));
    fs.cpSync(
      path.join(LISTING, 'servicePrincipals.jsonl'),
      path.join(dir, 'delta', 'servicePrincipals.jsonl'),
    );
    for (const skipInvalid of [false, true]) {
      const partial = await rejection(readEntra([path.join(dir, 'partial')], opts({ skipInvalid })));
      expect(partial.problems[0]!.message).toBe(
        'expected every page of the listing https://graph.microsoft.com/v1.0/$metadata#servicePrincipals, got 1 page(s) that each announce another (@odata.nextLink): the last page is missing',
      );
      const d = await rejection(readEntra([path.join(dir, 'delta')], opts({ skipInvalid })));
      expect(d.problems[0]).toMatchObject({
        field: 'value[3]',
        message: 'expected a full listing, got a delta round (an item with @removed)',
      });
      const mixed = await rejection(readEntra([LISTING, LOGS], opts({ skipInvalid })));
      expect(mixed.message).toMatch(/^the input mixes Graph listings and logs/);
      expect(mixed.problems[0]!.file).toBe(LOGS);
    }
  });

  it('recognises permissions, thumbprints and key descriptions', () => {
    for (const p of [
      'Directory.ReadWrite.All',
      'Application.ReadWrite.All',
      'Application.ReadWrite.OwnedBy',
      'AppRoleAssignment.ReadWrite.All',
      'RoleManagement.ReadWrite.Directory',
      'RoleManagement.Read.All',
      'Files.ReadWrite.All',
      'Sites.FullControl.All',
      'Policy.ReadWrite.ConditionalAccess',
      'Directory.AccessAsUser.All',
      'full_access_as_app',
    ])
      expect(isHighPrivilege(p, 'delegated'), p).toBe(true);
    for (const p of ['User.Read', 'User.Read.All', 'Mail.Read', 'offline_access', 'Directory.Read.All'])
      expect(isHighPrivilege(p, 'application'), p).toBe(false);
    expect(isHighPrivilege('Mail.Send', 'application')).toBe(true);
    expect(isHighPrivilege('Mail.Send', 'delegated')).toBe(false);
    expect(thumbprintOf('XyqcDns9QabI4vC01qjB4/WnudA=')).toBe('5F2A9C0E7B3D41A6C8E2F0B4D6A8C1E3F5A7B9D0');
    expect(thumbprintOf('5f2a9c0e7b3d41a6c8e2f0b4d6a8c1e3f5a7b9d0')).toBe(
      '5F2A9C0E7B3D41A6C8E2F0B4D6A8C1E3F5A7B9D0',
    );
    expect(thumbprintOf('c2VjcmV0')).toBeUndefined();
    expect(
      keyDescriptions(
        '["[KeyIdentifier=7C8D9E0F-1a2b-4c3d-9e4f-5a6b7c8d9e0f,KeyType=Password,KeyUsage=Verify,DisplayName=ci, 2025]"]',
      ),
    ).toEqual([
      {
        keyId: '7c8d9e0f-1a2b-4c3d-9e4f-5a6b7c8d9e0f',
        keyType: 'Password',
        usage: 'Verify',
        displayName: 'ci, 2025',
      },
    ]);
    expect(keyDescriptions('"Client Secret for API Access"')).toEqual([
      { displayName: 'Client Secret for API Access' },
    ]);
    expect(keyDescriptions('[]')).toEqual([]);
  });

  it('is registered as the entra source', async () => {
    expect(importer.source).toBe('entra');
    expect(await SOURCES.entra!.load()).toBe(importer);
  });
});

describe('entra hostile inputs', () => {
  const sp = (extra: Obj = {}) => ({
    id: '11111111-2222-4333-8444-555555555555',
    appId: '66666666-7777-4888-9999-000000000000',
    displayName: 'svc',
    servicePrincipalType: 'Application',
    appOwnerOrganizationId: TENANT,
    ...extra,
  });
  const app = {
    id: '99999999-8888-4777-8666-555555555555',
    appId: '66666666-7777-4888-9999-000000000000',
    displayName: 'svc',
    requiredResourceAccess: [],
  };
  const page = (value: unknown[], ctx = 'servicePrincipals') =>
    JSON.stringify({ '@odata.context': `https://graph.microsoft.com/v1.0/$metadata#${ctx}`, value });

  it('a truncated gzip fails naming the file, with and without --skip-invalid', async () => {
    const full = gzipSync(fs.readFileSync(path.join(LISTING, 'servicePrincipals.jsonl')));
    const dir = tempFiles({});
    const file = path.join(dir, 'cut.jsonl.gz');
    fs.writeFileSync(file, full.subarray(0, Math.floor(full.length / 2)));
    for (const skipInvalid of [false, true]) {
      const err = await rejection(readEntra([file], opts({ skipInvalid })));
      expect(err.message).toMatch(/expected a complete gzip stream/);
      expect(err.problems[0]!.file).toBe(file);
    }
  });

  it('wrong types are named by their JSON path and line; --skip-invalid imports the rest', async () => {
    const dir = tempFiles({
      'sps.json': `{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#servicePrincipals","value":[\n${[
        sp(),
        sp({ id: 'a', appId: 42 }),
        sp({ id: 'b', appId: 'b-app', passwordCredentials: [{ keyId: 'k1', endDateTime: 'soon', hint: 7 }] }),
        sp({ id: 'c', appId: 'c-app', keyCredentials: { keyId: 'k2' } }),
        sp({ id: 'd', appId: 'd-app', tags: ['ok', 1], accountEnabled: 'yes' }),
        'not an object',
      ]
        .map((x) => JSON.stringify(x))
        .join(',\n')}\n]}`,
      'apps.json': page([app], 'applications'),
    });
    const err = await rejection(readEntra([dir], opts()));
    expect(err.problems.map((p) => [path.basename(p.file), p.line, p.field, p.message])).toEqual([
      ['sps.json', 3, 'value[1].appId', 'expected a non-empty string, got number 42'],
      [
        'sps.json',
        4,
        'value[2].passwordCredentials[0].endDateTime',
        'expected an ISO-8601 timestamp, got string "soon"',
      ],
      ['sps.json', 4, 'value[2].passwordCredentials[0].hint', 'expected a string, got a number'],
      ['sps.json', 5, 'value[3].keyCredentials', 'expected an array, got an object'],
      ['sps.json', 6, 'value[4].accountEnabled', 'expected a boolean, got string "yes"'],
      ['sps.json', 6, 'value[4].tags[1]', 'expected a string, got number 1'],
      [
        'sps.json',
        7,
        'value[5]',
        'expected a Graph object or a log record (a JSON object), got a string of 13 characters',
      ],
    ]);
    expect(err.message).toMatch(
      /^7 invalid Entra record\(s\); nothing was imported \(--skip-invalid skips them\)/,
    );

    const { batch, skipped, stats } = await readEntra([dir], opts({ skipInvalid: true }));
    expect(skipped).toHaveLength(7);
    expect(stats).toMatchObject({ skipped: 7, graph: { servicePrincipals: 1, applications: 1 } });
    expect(batch.identities.map((i) => i.externalId)).toEqual([
      'entra:app:66666666-7777-4888-9999-000000000000',
    ]);

    // logs: a bad time, properties that are not an object, a sign-in without its application
    const logs = tempFiles({
      'bad.jsonl': [
        {
          time: 'yesterday',
          category: 'AuditLogs',
          tenantId: TENANT,
          operationName: 'Add service principal',
          properties: { activityDisplayName: 'Add service principal', targetResources: [] },
        },
        {
          time: '2025-01-01T00:00:00Z',
          category: 'AuditLogs',
          tenantId: TENANT,
          operationName: 'x',
          properties: 'oops',
        },
        {
          time: '2025-01-01T00:00:00Z',
          category: 'ServicePrincipalSignInLogs',
          tenantId: TENANT,
          operationName: 'Sign-in activity',
          properties: { servicePrincipalId: 'x' },
        },
        {
          time: '2025-01-02T00:00:00Z',
          category: 'ServicePrincipalSignInLogs',
          tenantId: TENANT,
          operationName: 'Sign-in activity',
          properties: { appId: '66666666-7777-4888-9999-000000000000', status: { errorCode: 0 } },
        },
      ]
        .map((r) => JSON.stringify(r))
        .join('\n'),
    });
    const le = await rejection(readEntra([logs], opts()));
    expect(le.problems.map((p) => [p.line, p.field, p.message])).toEqual([
      [1, 'time', 'expected an ISO-8601 timestamp, got "yesterday"'],
      [2, 'properties', 'expected an object, got a string'],
      [3, 'properties.appId', 'expected the application id, got nothing'],
    ]);
    const ls = await readEntra([logs], opts({ skipInvalid: true }));
    expect(ls.skipped.map((p) => p.line)).toEqual([1, 2, 3]);
    expect(ls.batch.identities.map((i) => [i.externalId, i.lastUsedAt])).toEqual([
      ['entra:app:66666666-7777-4888-9999-000000000000', '2025-01-02T00:00:00.000Z'],
    ]);
  });

  it('a record nested too deeply is a bad record (skipped with --skip-invalid) read in bounded memory', async () => {
    const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
    const dir = tempFiles({
      'deep.json': `{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#servicePrincipals","value":[\n${JSON.stringify(sp())},\n{"id":"x","appId":"y","tags":${deep(100000)}}\n]}\n`,
      'apps.json': page([app], 'applications'),
      'deep-line.jsonl': `${JSON.stringify({ ...app, id: 'other', appId: 'other-app' })}\n{"a":${deep(70)}}\n`,
    });
    const err = await rejection(readEntra([dir], opts()));
    expect(err.problems.map((p) => [path.basename(p.file), p.line, p.field, p.message])).toEqual([
      ['deep-line.jsonl', 2, undefined, 'expected a record nested at most 64 levels deep, got a deeper one'],
      ['deep.json', 3, 'value[1]', 'expected a record nested at most 64 levels deep, got a deeper one'],
    ]);
    const { batch, skipped } = await readEntra([dir], opts({ skipInvalid: true }));
    expect(skipped).toHaveLength(2);
    expect(batch.identities.map((i) => i.externalId)).toEqual([
      'entra:app:66666666-7777-4888-9999-000000000000',
      'entra:app:other-app',
    ]);
  });

  it('a record over the size limit fails the input, with and without --skip-invalid, after reading little more than the limit', async () => {
    const long = JSON.stringify(sp({ notes: 'x'.repeat(2000) }));
    const dir = tempFiles({
      'long.jsonl': `${JSON.stringify(app)}\n${long}\n`,
      'page.json': `{"value":[${JSON.stringify(app)},\n${long}]}`,
    });
    for (const skipInvalid of [false, true]) {
      const line = await rejection(
        readEntra([path.join(dir, 'long.jsonl')], opts({ skipInvalid, maxRecordChars: 1000 })),
      );
      expect(line.problems[0]).toMatchObject({ line: 2 });
      expect(line.problems[0]!.message).toMatch(
        /^expected a record of at most 1000 characters, got a longer one/,
      );
      const elem = await rejection(
        readEntra([path.join(dir, 'page.json')], opts({ skipInvalid, maxRecordChars: 1000 })),
      );
      expect(elem.problems[0]).toMatchObject({ line: 2, field: 'value[1]' });
    }
    // the same files pass with the default limit (the second one has no tenant of its own to tell)
    expect((await readEntra([path.join(dir, 'long.jsonl')], opts())).stats.records).toBe(2);

    // a "1 GB" single line (a string, a page element, a key) is refused after reading little more than the limit
    for (const start of ['{"notes":"', '{"value":[{"notes":"', '{"value":[{"', '"']) {
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
        readJsonRecords(
          endless,
          'stdin',
          { record: () => {}, pageEnd: () => {}, problem: () => {} },
          { maxRecordChars: 1024 * 1024, maxDepth: 64 },
        ),
      );
      expect(e.message, start).toMatch(/at most 1048576 characters/);
      expect(pulled).toBeLessThan(4 * 1024 * 1024);
    }
  });

  it('malformed or truncated JSON, an empty file and a foreign file are refused, even with --skip-invalid', async () => {
    const dir = tempFiles({
      'syntax.json': `{"value":[${JSON.stringify(sp())},\n{"id": "x",, "appId": "y"}]}`,
      'truncated.json': `{"value":[${JSON.stringify(sp())},\n{"id":"x","appId":"`,
      'empty.json': '',
      'foreign.json': JSON.stringify({
        Records: [{ eventTime: '2024-01-01T00:00:00Z', eventName: 'GetCallerIdentity' }],
      }),
    });
    for (const skipInvalid of [false, true]) {
      const s = await rejection(readEntra([path.join(dir, 'syntax.json')], opts({ skipInvalid })));
      expect(s.problems[0]).toMatchObject({ line: 2, field: 'value[1]' });
      expect(s.problems[0]!.message).toMatch(/^expected valid JSON, got a syntax error/);
      const t = await rejection(readEntra([path.join(dir, 'truncated.json')], opts({ skipInvalid })));
      expect(t.problems[0]).toMatchObject({ line: 2, field: 'value[1]' });
      expect(t.problems[0]!.message).toMatch(
        /^expected complete JSON, got the end of the input \(truncated\?\)/,
      );
      const e = await rejection(readEntra([path.join(dir, 'empty.json')], opts({ skipInvalid })));
      expect(e.problems[0]!.message).toMatch(/got an empty input$/);
      const f = await rejection(readEntra([path.join(dir, 'foreign.json')], opts({ skipInvalid })));
      expect(f.message).toMatch(/not a Microsoft Graph listing nor an Entra \/ Azure log/);
    }
  });
});
