import fs from 'node:fs';
import path from 'node:path';
import { describe, it, expect } from 'vitest';
import { dialects, withSteward } from './helpers/steward.js';
import { tempFiles, DIRECTORY_CSV, nhi, PAYMENTS_SPEC } from './helpers/files.js';
import { parseManifestPaths } from '../src/importers/manifest/parse.js';
import { parseDirectoryFile } from '../src/importers/directory/parse.js';
import { importManifests } from '../src/inventory/import-manifests.js';
import { importDirectory } from '../src/inventory/import-directory.js';
import { importDiscovery, type DiscoveryBatch } from '../src/inventory/import-discovery.js';
import { loadRecord } from '../src/inventory/record.js';
import { resolveIdentity } from '../src/inventory/queries.js';
import { verifyLedger } from '../src/ledger/verify.js';

const ARN = 'arn:aws:iam::123456789012:role/payments-batch';

function snapshot(
  observedAt: string,
  opts: { withKey?: boolean; withOther?: boolean; lastUsed?: string } = {},
): DiscoveryBatch {
  return {
    source: 'aws-iam',
    scope: '123456789012',
    snapshot: true,
    observedAt,
    files: [{ path: '/x/authz.json', sha256: 'abc' }],
    identities: [
      {
        externalId: ARN,
        name: 'payments-batch',
        kind: 'service-account',
        ...(opts.lastUsed ? { lastUsedAt: opts.lastUsed } : {}),
        attributes: { trustedBy: ['ec2.amazonaws.com'] },
        credentials:
          opts.withKey === false
            ? []
            : [
                {
                  externalId: 'AKIAEXAMPLE0001',
                  kind: 'access-key',
                  lastUsedAt: '2026-01-20T00:00:00.000Z',
                  locations: ['github:acme/app/.env:3'],
                },
              ],
        entitlements: [
          {
            resource: '*',
            actions: ['s3:*'],
            grantedVia: 'arn:aws:iam::aws:policy/AmazonS3FullAccess',
            attributes: { wildcard: true },
          },
        ],
      },
      ...(opts.withOther === false
        ? []
        : [
            {
              externalId: 'arn:aws:iam::123456789012:user/ci-bot',
              name: 'ci-bot',
              kind: 'service-account' as const,
            },
          ]),
    ],
  };
}

describe.each(dialects)('discovery on $name', (dialect) => {
  it('merges with manifests on external id, never overwrites ownership, and re-import writes nothing', async () => {
    await withSteward(dialect, async (env) => {
      const dir = tempFiles({
        'directory.csv': DIRECTORY_CSV,
        'm.yaml': nhi('payments-batch', PAYMENTS_SPEC),
      });
      await importDirectory(env.steward, await parseDirectoryFile(path.join(dir, 'directory.csv')), {
        actor: 'test',
      });
      await importManifests(env.steward, await parseManifestPaths([path.join(dir, 'm.yaml')]), {
        actor: 'test',
        roots: [dir],
      });
      env.clock.advance(60_000);
      const r = await importDiscovery(env.steward, snapshot('2026-01-01T00:00:00.000Z'), { actor: 'test' });
      expect(r.identities).toEqual({ new: 1, changed: 1, unchanged: 0, vanished: 0 });
      // the manifest's credential AKIAEXAMPLE0001 is the same credential: its locations merge
      expect(r.credentials).toEqual({ new: 0, changed: 1, unchanged: 0, vanished: 0 });
      const id = (await resolveIdentity(env.steward.store, ARN)).id;
      const now = env.clock.now().toISOString();
      const rec = (await loadRecord(env.steward.store, id, now, now))!;
      expect(rec.owners.technical).toBe('person:bob@example.com');
      expect(rec.purpose).toBe('nightly settlement batch');
      expect(rec.credentials).toHaveLength(1);
      expect(rec.credentials[0]!.locations).toEqual(['github:acme/app/.env:3', 'vault:secret/payments']);
      expect(rec.credentials[0]!.lastUsedAt).toBe('2026-01-20T00:00:00.000Z');
      expect(rec.credentials[0]!.rotation.maxAge).toBeNull();
      expect(rec.entitlements.map((e) => e.resource).sort()).toEqual(['*', 'arn:aws:s3:::settlements']);
      expect(rec.attributes).toEqual({ 'aws-iam:123456789012': { trustedBy: ['ec2.amazonaws.com'] } });
      expect(rec.provenance.businessOwner!.source).toBe('manifest');
      expect(rec.provenance.attributes!.source).toBe('aws-iam');
      expect(rec.provenance.attributes!.at).toBe('2026-01-01T00:00:00.000Z');

      const head = (await env.steward.ledger.head()).seq;
      const again = await importDiscovery(env.steward, snapshot('2026-01-01T00:00:00.000Z'), {
        actor: 'test',
      });
      expect(again.events).toBe(0);
      expect((await env.steward.ledger.head()).seq).toBe(head);
      // and the manifest again: its ownership stands, discovery's facts stay
      const m = await importManifests(env.steward, await parseManifestPaths([path.join(dir, 'm.yaml')]), {
        actor: 'test',
        roots: [dir],
      });
      expect(m.events).toBe(0);
      // dropped from the manifest while its source still lists it: undeclared, not vanished
      fs.writeFileSync(path.join(dir, 'm.yaml'), '');
      const dropped = await importManifests(env.steward, await parseManifestPaths([dir]), {
        actor: 'test',
        roots: [dir],
        createMissing: true,
      });
      expect(dropped.identities).toMatchObject({ changed: 1, vanished: 0 });
      const after = await resolveIdentity(env.steward.store, ARN);
      expect(after.status).toBe('active');
      expect(after.manifest_file).toBeNull();
    });
  });

  it('a newer snapshot vanishes what disappeared (identity and credential) and moves usage forward only', async () => {
    await withSteward(dialect, async (env) => {
      await importDiscovery(
        env.steward,
        snapshot('2026-01-01T00:00:00.000Z', { lastUsed: '2025-12-30T00:00:00.000Z' }),
        { actor: 'test' },
      );
      env.clock.advance(86400_000 * 40);
      const r = await importDiscovery(
        env.steward,
        snapshot('2026-02-01T00:00:00.000Z', {
          withKey: false,
          withOther: false,
          lastUsed: '2025-12-01T00:00:00.000Z',
        }),
        { actor: 'test' },
      );
      expect(r.identities).toEqual({ new: 0, changed: 0, unchanged: 1, vanished: 1 });
      expect(r.credentials.vanished).toBe(1);
      const bot = await resolveIdentity(env.steward.store, 'ci-bot');
      expect(bot.status).toBe('vanished');
      const id = (await resolveIdentity(env.steward.store, ARN)).id;
      const now = env.clock.now().toISOString();
      const rec = (await loadRecord(env.steward.store, id, now, now))!;
      expect(rec.credentials[0]!.status).toBe('vanished');
      expect(rec.lastUsedAt).toBe('2025-12-30T00:00:00.000Z');
      // as of mid-January the key was still there
      const jan = (await loadRecord(env.steward.store, id, '2026-01-15T00:00:00.000Z', now))!;
      expect(jan.credentials[0]!.status).toBe('active');
      // a partial (usage) import never vanishes anything
      const partial = await importDiscovery(
        env.steward,
        { ...snapshot('2026-02-02T00:00:00.000Z', { withOther: false }), snapshot: false, identities: [] },
        { actor: 'test' },
      );
      expect(partial.identities.vanished).toBe(0);
      // nor does a usage log bring a vanished identity back: it only says it was used once
      const usage = await importDiscovery(
        env.steward,
        {
          source: 'cloudtrail',
          scope: '123456789012',
          snapshot: false,
          files: [],
          identities: [
            {
              externalId: 'arn:aws:iam::123456789012:user/ci-bot',
              name: 'ci-bot',
              kind: 'service-account',
              lastUsedAt: '2026-01-31T00:00:00.000Z',
            },
          ],
        },
        { actor: 'test' },
      );
      expect(usage.identities.changed).toBe(1);
      expect((await resolveIdentity(env.steward.store, 'ci-bot')).status).toBe('vanished');
      expect((await resolveIdentity(env.steward.store, 'ci-bot')).last_used_at).toBe(
        '2026-01-31T00:00:00.000Z',
      );
      // it comes back
      const back = await importDiscovery(env.steward, snapshot('2026-02-03T00:00:00.000Z'), {
        actor: 'test',
      });
      expect(back.identities.changed).toBeGreaterThanOrEqual(1);
      expect((await resolveIdentity(env.steward.store, 'ci-bot')).status).toBe('active');
      expect((await verifyLedger(env.steward.store, env.steward.keys)).ok).toBe(true);
    });
  });

  it('scopes do not vanish each other: the same id seen in two clusters stays until both lose it', async () => {
    await withSteward(dialect, async (env) => {
      const batch = (scope: string, withKey: boolean): DiscoveryBatch => ({
        source: 'kubernetes',
        scope,
        snapshot: true,
        files: [],
        identities: [
          {
            externalId: 'system:serviceaccount:kube-system:default',
            name: 'kube-system/default',
            kind: 'k8s-service-account',
            credentials: withKey
              ? [{ externalId: 'secret:kube-system/default-token', kind: 'k8s-sa-token' }]
              : [],
            entitlements: [
              {
                resource: 'cluster */*',
                actions: ['get'],
                grantedVia: 'crb:a',
                attributes: { clusterAdmin: false, wildcard: true },
              },
              {
                resource: 'cluster */*',
                actions: ['*'],
                grantedVia: 'crb:a',
                attributes: { clusterAdmin: true, wildcard: false },
              },
            ],
          },
        ],
      });
      await importDiscovery(env.steward, batch('prod-a', true), { actor: 't' });
      await importDiscovery(env.steward, batch('prod-b', true), { actor: 't' });
      const a2 = await importDiscovery(
        env.steward,
        { ...batch('prod-a', false), identities: [] },
        { actor: 't' },
      );
      expect(a2.identities).toMatchObject({ vanished: 0, changed: 1 });
      const row = await resolveIdentity(env.steward.store, 'kube-system/default');
      expect(row.status).toBe('active');
      const now = env.clock.now().toISOString();
      const rec = (await loadRecord(env.steward.store, row.id, now, now))!;
      // prod-b's grant is untouched by prod-a's snapshot
      expect(rec.entitlements.filter((e) => e.status === 'active')).toHaveLength(1);
      const grant = rec.entitlements.find((e) => e.actions.includes('*'))!;
      expect(grant.actions).toEqual(['*', 'get']);
      const b2 = await importDiscovery(
        env.steward,
        { ...batch('prod-b', false), identities: [] },
        { actor: 't' },
      );
      expect(b2.identities.vanished).toBe(1);
      expect((await resolveIdentity(env.steward.store, 'kube-system/default')).status).toBe('vanished');
      const attrs = (
        await env.steward.store.db.selectFrom('entitlements').select('attributes').execute()
      ).map((r) => JSON.parse(r.attributes!) as { clusterAdmin: boolean; wildcard: boolean });
      for (const a of attrs) expect(a).toEqual({ clusterAdmin: true, wildcard: true });
    });
  });

  it('rejects a batch that names one identity twice, writing nothing', async () => {
    await withSteward(dialect, async (env) => {
      const b = snapshot('2026-01-01T00:00:00.000Z');
      const twice = { ...b, identities: [...b.identities, b.identities[0]!] };
      await expect(importDiscovery(env.steward, twice, { actor: 't' })).rejects.toThrow(
        /names arn:aws:iam::123456789012:role\/payments-batch twice/,
      );
      expect((await env.steward.ledger.head()).seq).toBe(0);
    });
  });
});
