import { describe, it, expect } from 'vitest';
import { dialects, withSteward } from './helpers/steward.js';
import {
  importDiscovery,
  type DiscoveredIdentity,
  type DiscoveryBatch,
} from '../src/inventory/import-discovery.js';
import { resolveIdentity } from '../src/inventory/queries.js';
import { verifyLedger } from '../src/ledger/verify.js';

/** n roles, each with an access key and a grant (more than two of importDiscovery's chunks of 2,000). */
function roles(n: number, from = 0): DiscoveredIdentity[] {
  return Array.from({ length: n }, (_, k) => {
    const i = from + k;
    return {
      externalId: `arn:aws:iam::123456789012:role/r${i}`,
      name: `r${i}`,
      kind: 'service-account' as const,
      credentials: [{ externalId: `AKIA${String(i).padStart(16, '0')}`, kind: 'access-key' }],
      entitlements: [
        { resource: `arn:aws:s3:::b${i % 7}`, actions: ['s3:GetObject'], grantedVia: 'inline:p' },
      ],
    };
  });
}

function batch(identities: DiscoveredIdentity[], streamed: boolean): DiscoveryBatch {
  const b: DiscoveryBatch = {
    source: 'aws-iam',
    scope: '123456789012',
    snapshot: true,
    files: [],
    identities: streamed ? [] : identities,
  };
  if (streamed) {
    // uneven chunks, as a source may hand them over
    b.stream = {
      count: identities.length,
      *chunks() {
        for (let i = 0; i < identities.length; i += 1500) yield identities.slice(i, i + 1500);
      },
    };
  }
  return b;
}

describe.each(dialects)('importDiscovery of large and streamed batches on $name', (dialect) => {
  it('a streamed batch imports as its list would; chunks of current state carry re-imports and vanishing', async () => {
    await withSteward(dialect, async (env) => {
      const first = await importDiscovery(env.steward, batch(roles(4500), true), { actor: 't' });
      expect(first.identities).toEqual({ new: 4500, changed: 0, unchanged: 0, vanished: 0 });
      expect(first.credentials.new).toBe(4500);
      expect(first.entitlements.new).toBe(4500);
      expect(first.events).toBe(3 * 4500 + 1);

      // the same identities as a list: nothing to write
      const again = await importDiscovery(env.steward, batch(roles(4500), false), { actor: 't' });
      expect(again.identities).toEqual({ new: 0, changed: 0, unchanged: 4500, vanished: 0 });
      expect(again.events).toBe(0);

      // a snapshot without the first 2,100 (more than one page of what this scope saw before)
      env.clock.advance(60_000);
      const later = await importDiscovery(env.steward, batch(roles(2400, 2100), true), { actor: 't' });
      expect(later.identities).toEqual({ new: 0, changed: 0, unchanged: 2400, vanished: 2100 });
      expect(later.credentials.vanished).toBe(2100);
      expect(later.entitlements.vanished).toBe(2100);
      expect((await resolveIdentity(env.steward.store, 'r0')).status).toBe('vanished');
      expect((await resolveIdentity(env.steward.store, 'r2099')).status).toBe('vanished');
      expect((await resolveIdentity(env.steward.store, 'r2100')).status).toBe('active');
      expect((await verifyLedger(env.steward.store, env.steward.keys)).ok).toBe(true);
    });
  });

  it('rejects a streamed batch that names one identity twice in different chunks, writing nothing', async () => {
    await withSteward(dialect, async (env) => {
      const ids = roles(3000);
      await expect(
        importDiscovery(env.steward, batch([...ids, ids[10]!], true), { actor: 't' }),
      ).rejects.toThrow(/names arn:aws:iam::123456789012:role\/r10 twice; nothing was imported/);
      expect((await env.steward.ledger.head()).seq).toBe(0);
      expect(await env.steward.store.db.selectFrom('identities').select('id').execute()).toEqual([]);
    });
  });
});
