import fs from 'node:fs';
import path from 'node:path';
import { describe, it, expect } from 'vitest';
import { dialects, withSteward, type TestEnv } from './helpers/steward.js';
import { tempFiles, DIRECTORY_CSV, nhi, PAYMENTS_SPEC } from './helpers/files.js';
import { parseManifestPaths } from '../src/importers/manifest/parse.js';
import { parseDirectoryFile } from '../src/importers/directory/parse.js';
import { importManifests } from '../src/inventory/import-manifests.js';
import { importDirectory } from '../src/inventory/import-directory.js';
import { loadRecord } from '../src/inventory/record.js';
import { listIdentities, resolveIdentity, identityHistory, summarize } from '../src/inventory/queries.js';
import { assignRole } from '../src/inventory/assign.js';
import { verifyLedger } from '../src/ledger/verify.js';
import { ValidationError } from '../src/domain/errors.js';

async function importDir(env: TestEnv, dir: string) {
  return importDirectory(env.steward, await parseDirectoryFile(path.join(dir, 'directory.csv')), {
    actor: 'test',
  });
}
async function importMan(env: TestEnv, paths: string[], extra: { createMissing?: boolean } = {}) {
  return importManifests(env.steward, await parseManifestPaths(paths), {
    actor: 'test',
    roots: paths,
    ...extra,
  });
}
const eventCount = async (env: TestEnv) => (await env.steward.ledger.head()).seq;

describe.each(dialects)('inventory on $name', (dialect) => {
  it('imports manifests into the accountability record, and re-import writes no events', async () => {
    await withSteward(dialect, async (env) => {
      const dir = tempFiles({
        'directory.csv': DIRECTORY_CSV,
        'nhi/payments.yaml':
          nhi('payments-batch', PAYMENTS_SPEC) +
          '---\n' +
          nhi('report-bot', 'type: ai-agent\nsponsor: person:dave@example.com'),
      });
      await importDir(env, dir);
      const r = await importMan(env, [path.join(dir, 'nhi')]);
      expect(r.identities).toEqual({ new: 2, changed: 0, unchanged: 0, vanished: 0 });
      expect(r.credentials.new).toBe(1);
      expect(r.entitlements.new).toBe(1);

      const id = await resolveIdentity(env.steward.store, 'arn:aws:iam::123456789012:role/payments-batch');
      expect(id.name).toBe('payments-batch');
      const rec = (await loadRecord(
        env.steward.store,
        id.id,
        env.clock.now().toISOString(),
        env.clock.now().toISOString(),
      ))!;
      expect(rec.owners).toEqual({
        business: 'person:alice@example.com',
        technical: 'person:bob@example.com',
        control: 'team:security',
      });
      expect(rec.primaryTeam).toBe('team:payments');
      expect(rec.approval).toEqual({
        approver: 'person:carol@example.com',
        approvedAt: '2025-06-01T00:00:00.000Z',
        ticket: 'SEC-101',
      });
      expect(rec.revocation).toEqual({
        triggers: ['decommission', 'compromise'],
        owner: 'team:platform',
        runbook: null,
      });
      expect(rec.credentials).toHaveLength(1);
      expect(rec.credentials[0]).toMatchObject({
        externalId: 'AKIAEXAMPLE0001',
        kind: 'access-key',
        status: 'active',
        locations: ['vault:secret/payments'],
      });
      expect(rec.entitlements[0]).toMatchObject({
        resource: 'arn:aws:s3:::settlements',
        actions: ['s3:GetObject', 's3:PutObject'],
      });
      expect(rec.principals['person:bob@example.com']).toMatchObject({
        name: 'Bob Brown',
        status: 'active',
        team: 'team:platform',
      });
      expect(rec.service).toEqual({ name: 'payments-api', owner: null, system: null });
      expect(rec.gaps).toEqual([]);

      const bot = await resolveIdentity(env.steward.store, 'report-bot');
      const botRec = (await loadRecord(
        env.steward.store,
        bot.id,
        env.clock.now().toISOString(),
        env.clock.now().toISOString(),
      ))!;
      expect(botRec.gaps).toContain('no business owner');
      expect(botRec.sponsor).toBe('person:dave@example.com');

      const before = await eventCount(env);
      env.clock.advance(60_000);
      const again = await importMan(env, [path.join(dir, 'nhi')]);
      expect(again.identities).toEqual({ new: 0, changed: 0, unchanged: 2, vanished: 0 });
      expect(again.events).toBe(0);
      expect(await eventCount(env)).toBe(before);
      expect(await importDir(env, dir)).toMatchObject({ events: 0 });
      expect(await eventCount(env)).toBe(before);
      expect((await verifyLedger(env.steward.store, env.steward.keys)).ok).toBe(true);
    });
  });

  it('a change writes exactly the events for what changed; a removed identity is vanished, never deleted', async () => {
    await withSteward(dialect, async (env) => {
      const dir = tempFiles({
        'directory.csv': DIRECTORY_CSV,
        'nhi/a.yaml': nhi('payments-batch', PAYMENTS_SPEC),
        'nhi/b.yaml': nhi('other', 'purpose: x\nowners:\n  business: person:alice@example.com'),
      });
      await importDir(env, dir);
      await importMan(env, [path.join(dir, 'nhi')]);
      const before = await eventCount(env);
      // change one owner, drop one credential, widen the scope; remove b.yaml's identity
      fs.writeFileSync(
        path.join(dir, 'nhi/a.yaml'),
        nhi(
          'payments-batch',
          PAYMENTS_SPEC.replace('technical: person:bob@example.com', 'technical: person:dave@example.com')
            .replace(/credentials:[\s\S]*?locations: \[vault:secret\/payments\]\n/, '')
            .replace('[s3:GetObject, s3:PutObject]', '[s3:GetObject, s3:PutObject, s3:DeleteObject]'),
        ),
      );
      fs.writeFileSync(path.join(dir, 'nhi/b.yaml'), '');
      env.clock.advance(3600_000);
      const r = await importMan(env, [path.join(dir, 'nhi')]);
      expect(r.identities).toEqual({ new: 0, changed: 1, unchanged: 0, vanished: 1 });
      expect(r.credentials).toEqual({ new: 0, changed: 0, unchanged: 0, vanished: 1 });
      expect(r.entitlements).toEqual({ new: 0, changed: 1, unchanged: 0, vanished: 0 });
      const after = await eventCount(env);
      expect(after - before).toBe(5); // identity.changed, credential.vanished, entitlement.changed, identity.vanished, import.completed
      const a = await resolveIdentity(env.steward.store, 'payments-batch');
      const hist = await identityHistory(env.steward.store, a.id);
      const changed = hist.filter((e) => e.seq > before && e.type === 'identity.changed');
      expect(changed).toHaveLength(1);
      expect(changed[0]!.payload.set).toEqual({ technicalOwner: 'person:dave@example.com' });
      const other = await resolveIdentity(env.steward.store, 'other');
      expect(other.status).toBe('vanished');
      // reappearing brings it back with an event, not a new identity
      fs.writeFileSync(
        path.join(dir, 'nhi/b.yaml'),
        nhi('other', 'purpose: x\nowners:\n  business: person:alice@example.com'),
      );
      const back = await importMan(env, [path.join(dir, 'nhi')]);
      expect(back.identities).toMatchObject({ new: 0, changed: 1 });
      expect((await resolveIdentity(env.steward.store, 'other')).id).toBe(other.id);
      expect((await resolveIdentity(env.steward.store, 'other')).status).toBe('active');
      // identities of files outside the imported paths are untouched
      const elsewhere = tempFiles({ 'x.yaml': nhi('elsewhere', 'purpose: y') });
      const r2 = await importMan(env, [elsewhere], { createMissing: true });
      expect(r2.identities).toEqual({ new: 1, changed: 0, unchanged: 0, vanished: 0 });
    });
  });

  it('rejects an unknown owner with file:line and leaves the store unchanged; --create-missing creates it', async () => {
    await withSteward(dialect, async (env) => {
      const dir = tempFiles({
        'directory.csv': DIRECTORY_CSV,
        'm.yaml':
          nhi('ok-one', 'purpose: fine') +
          '---\n' +
          nhi('bad-one', 'owners:\n  business: person:zed@example.com\n  technical: team:ghosts'),
      });
      await importDir(env, dir);
      const before = await eventCount(env);
      const err = await importMan(env, [path.join(dir, 'm.yaml')]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ValidationError);
      const lines = (err as ValidationError).message.split('\n');
      expect(lines[0]).toMatch(/2 problem\(s\)/);
      expect(lines[1]).toBe(
        `  ${path.join(dir, 'm.yaml')}:16: spec.owners.business: expected a person or team known to the directory, got unknown person:zed@example.com (import the directory first, or pass --create-missing)`,
      );
      expect(lines[2]).toContain(':17: spec.owners.technical:');
      expect(await eventCount(env)).toBe(before);
      expect(await listIdentities(env.steward.store, {})).toHaveLength(0);

      const r = await importMan(env, [path.join(dir, 'm.yaml')], { createMissing: true });
      expect(r.principalsCreated.sort()).toEqual(['person:zed@example.com', 'team:ghosts']);
      const bad = await resolveIdentity(env.steward.store, 'bad-one');
      expect(bad.business_owner).toBe('person:zed@example.com');
    });
  });

  it('assign records the role with actor and reason; filters find identities by owner, team and missing role', async () => {
    await withSteward(dialect, async (env) => {
      const dir = tempFiles({
        'directory.csv': DIRECTORY_CSV,
        'm.yaml':
          nhi('payments-batch', PAYMENTS_SPEC) +
          '---\n' +
          nhi('lonely', 'type: api-key\npurpose: webhook', 'environment: dev'),
      });
      await importDir(env, dir);
      await importMan(env, [path.join(dir, 'm.yaml')]);
      const s = env.steward.store;
      expect((await listIdentities(s, { missing: 'business' })).map((r) => r.name)).toEqual(['lonely']);
      expect((await listIdentities(s, { owner: 'person:bob@example.com' })).map((r) => r.name)).toEqual([
        'payments-batch',
      ]);
      expect((await listIdentities(s, { team: 'payments' })).map((r) => r.name)).toEqual(['payments-batch']);
      expect((await listIdentities(s, { environment: 'dev' })).map((r) => r.name)).toEqual(['lonely']);
      expect((await listIdentities(s, { kind: 'api-key' })).map((r) => r.name)).toEqual(['lonely']);

      await expect(
        assignRole(env.steward, 'lonely', 'business', 'person:alice@example.com', {
          actor: 'person:carol@example.com',
        }),
      ).rejects.toThrow(/--reason/);
      await expect(
        assignRole(env.steward, 'lonely', 'owner', 'person:alice@example.com', { actor: 'x', reason: 'r' }),
      ).rejects.toThrow(/--role/);
      await expect(
        assignRole(env.steward, 'lonely', 'business', 'person:nobody@example.com', {
          actor: 'x',
          reason: 'r',
        }),
      ).rejects.toThrow(/not in the directory/);
      await expect(
        assignRole(env.steward, 'nope', 'business', 'person:alice@example.com', { actor: 'x', reason: 'r' }),
      ).rejects.toThrow(/no identity/);
      const r = await assignRole(env.steward, 'lonely', 'business', 'person:alice@example.com', {
        actor: 'person:carol@example.com',
        reason: 'SEC-7 triage',
      });
      expect(r).toMatchObject({ changed: true, from: null, to: 'person:alice@example.com' });
      const again = await assignRole(
        env.steward,
        'lonely',
        'business',
        'alice@example.com'.replace(/^/, 'person:'),
        { actor: 'x', reason: 'again' },
      );
      expect(again.changed).toBe(false);
      const h = await identityHistory(s, r.id);
      expect(h.at(-1)).toMatchObject({
        type: 'owner.assigned',
        actor: 'person:carol@example.com',
        reason: 'SEC-7 triage',
        payload: { role: 'business', set: { businessOwner: 'person:alice@example.com' } },
      });
      expect(await listIdentities(s, { missing: 'business' })).toHaveLength(0);
      const sum = await summarize(s);
      expect(sum.identities).toBe(2);
      expect(sum.missing.business).toBe(0);
      expect(sum.missing.technical).toBe(1);
    });
  });

  it('answers as of a past time by what was known then; a departure takes effect at left_at', async () => {
    await withSteward(dialect, async (env) => {
      const dir = tempFiles({
        'directory.csv': DIRECTORY_CSV,
        'm.yaml': nhi('payments-batch', PAYMENTS_SPEC),
      });
      env.clock.set('2026-02-01T00:00:00.000Z');
      await importDir(env, dir);
      await importMan(env, [path.join(dir, 'm.yaml')]);
      const { id } = await resolveIdentity(env.steward.store, 'payments-batch');
      env.clock.set('2026-03-01T00:00:00.000Z');
      await assignRole(env.steward, id, 'technical', 'person:dave@example.com', {
        actor: 'x',
        reason: 'handover',
      });
      // learned on 2026-04-01 that bob left on 2026-02-15
      env.clock.set('2026-04-01T00:00:00.000Z');
      fs.writeFileSync(
        path.join(dir, 'directory.csv'),
        DIRECTORY_CSV.replace(
          'bob@example.com,platform,alice,active,',
          'bob@example.com,platform,alice,departed,2026-02-15',
        ),
      );
      const dr = await importDir(env, dir);
      expect(dr.people.departed).toBe(1);

      const at = (asOf: string, knownAt = '2026-05-01T00:00:00.000Z') =>
        loadRecord(env.steward.store, id, asOf, knownAt);
      expect(await at('2026-01-15T00:00:00.000Z')).toBeUndefined();
      const feb10 = (await at('2026-02-10T00:00:00.000Z'))!;
      expect(feb10.owners.technical).toBe('person:bob@example.com');
      expect(feb10.principals['person:bob@example.com']!.status).toBe('active');
      const feb20 = (await at('2026-02-20T00:00:00.000Z'))!;
      expect(feb20.principals['person:bob@example.com']!.status).toBe('departed');
      expect(feb20.gaps).toContain('person:bob@example.com has departed');
      // ...but on 2026-03-15 Steward did not yet know bob had left
      const feb20then = (await at('2026-02-20T00:00:00.000Z', '2026-03-15T00:00:00.000Z'))!;
      expect(feb20then.principals['person:bob@example.com']!.status).toBe('active');
      const mar10 = (await at('2026-03-10T00:00:00.000Z'))!;
      expect(mar10.owners.technical).toBe('person:dave@example.com');
    });
  });

  it('an identity that gains an external id keeps its record and history', async () => {
    await withSteward(dialect, async (env) => {
      const dir = tempFiles({ 'm.yaml': nhi('batch-job', 'purpose: nightly') });
      await importMan(env, [dir], { createMissing: true });
      const before = await resolveIdentity(env.steward.store, 'batch-job');
      fs.writeFileSync(
        path.join(dir, 'm.yaml'),
        nhi('batch-job', 'purpose: nightly\nexternalId: arn:aws:iam::1:role/batch-job'),
      );
      const r = await importMan(env, [dir], { createMissing: true });
      expect(r.identities).toEqual({ new: 0, changed: 1, unchanged: 0, vanished: 0 });
      const after = await resolveIdentity(env.steward.store, 'arn:aws:iam::1:role/batch-job');
      expect(after.id).toBe(before.id);
      expect(after.natural_key).toBe('ext:arn:aws:iam::1:role/batch-job');
      const again = await importMan(env, [dir], { createMissing: true });
      expect(again.events).toBe(0);
    });
  });
});
