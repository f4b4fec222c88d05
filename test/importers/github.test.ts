import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, it, expect } from 'vitest';
import { dialects, withSteward, type TestEnv } from '../helpers/steward.js';
import { corpus, corporaAvailable } from '../helpers/corpora.js';
import { tempFiles } from '../helpers/files.js';
import { cli } from '../helpers/cli.js';
import { importer, readGitHub, type GitHubReadOptions } from '../../src/importers/github/index.js';
import { sshKeyFacts, normaliseFingerprint } from '../../src/importers/github/ssh.js';
import { githubTime } from '../../src/importers/github/check.js';
import { importDiscovery, type DiscoveryBatch } from '../../src/inventory/import-discovery.js';
import { loadRecord } from '../../src/inventory/record.js';
import { resolveIdentity } from '../../src/inventory/queries.js';
import { ValidationError } from '../../src/domain/errors.js';
import type { Steward } from '../../src/app.js';

const ORG_LOG = 'github-audit/test-organisation-audit-json.log';
const PANTHER_AUDIT = 'github-audit/panther-derived/panther-tests.GitHub.Audit.jsonl';
const PANTHER_WEBHOOK = 'github-audit/panther-derived/panther-tests.GitHub.Webhook.jsonl';
const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures', 'github');
const fixture = (name: string) => path.join(FIXTURES, name);

const keys = { fingerprint: (s: string) => `fp:${s.length}` };
const opts = (extra: Partial<GitHubReadOptions> = {}): GitHubReadOptions => ({
  skipInvalid: false,
  keys,
  ...extra,
});

/** Fingerprints of the fixture keys as `ssh-keygen -lf` (and `-E md5`) printed them, not as this importer computes them. */
const CI_KEY = 'SHA256:JTcdpqkgMh+eYGr8ayyCHzUGXDyGSlqtDjFmZWSK5d4';
const CI_KEY_MD5 = 'MD5:00:74:8c:04:d2:41:d2:4c:26:c1:57:2a:00:c4:9d:1d';
const RELEASE_KEY = 'SHA256:OMXZgZNznmpis9Hk7xczTWl5OTGBQUwbTloHLb1dCDw';
const WEB_KEY = 'SHA256:uhwtm50gk1y20yODzSTUx+59HI6JbzslUAzHFRERyrs';

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

const ids = (b: DiscoveryBatch) => b.identities.map((i) => i.externalId);
const facts = (b: DiscoveryBatch) => ({ ...b, files: [] });
const attrs = (b: DiscoveryBatch, externalId: string) =>
  b.identities.find((i) => i.externalId === externalId)!.attributes!;

async function load(env: TestEnv, files: string[], extra: Partial<GitHubReadOptions> = {}) {
  const { batch } = await readGitHub(files, opts(extra));
  return importDiscovery(env.steward, batch, { actor: 'test' });
}

describe.runIf(corporaAvailable).each(dialects)('github audit-log corpus on $name', (dialect) => {
  it('imports the organisation audit log as it is: tokens, bots, app installations, a leaked secret (usage)', async () => {
    const { batch, skipped, stats } = await readGitHub([corpus(ORG_LOG)], opts());
    expect(skipped).toEqual([]);
    expect(stats).toMatchObject({
      records: 199,
      auditEvents: 199,
      webhookDeliveries: 0,
      attributed: 8,
      undated: 0,
      // line 16 (org.oauth_app_access_approved) and line 41 (integration_installation.create) name no app
      unattributed: { 'OAuth app event without app': 1, 'app installation event without app name': 1 },
    });
    expect(batch).toMatchObject({ source: 'github', scope: 'multi', snapshot: false });
    expect(batch.observedAt).toBe('2025-12-24T14:25:00.000Z');
    expect(ids(batch)).toEqual([
      'github:app-installation:onyxsectec/create-issue-branch',
      'github:app-installation:redacted/github-actions',
      'github:secret-scanning-alert:sample-organization/sample-repository#1',
      'github:token:213123634',
      'github:token:hashed:vnjCX8GeYi1K6rxJjPLM0GG1XRavJaqwAVosSTI1XNI=',
    ]);

    await withSteward(dialect, async (env) => {
      const r = await importDiscovery(env.steward, batch, { actor: 'test' });
      expect(r.identities).toEqual({ new: 5, changed: 0, unchanged: 0, vanished: 0 });
      expect(r.credentials).toEqual({ new: 3, changed: 0, unchanged: 0, vanished: 0 });
      expect(r.entitlements.new).toBe(0); // usage names no grant

      // one token id seen three times (lines 188, 195, 199) under two type labels and two scope sets
      const pat = await record(env.steward, 'github:token:213123634');
      expect(pat).toMatchObject({ kind: 'token', source: 'github', status: 'active' });
      expect(pat.lastUsedAt).toBe('2023-01-23T06:20:42.000Z'); // line 199, org.update_member
      expect(pat.attributes['github:multi']).toEqual({
        tokenId: '213123634',
        org: 'trustfactors',
        owner: 'userdeserve',
        humanBound: true,
        hashedTokens: ['12387sdjbqas17827ty1o2u313'],
        scopes: ['read:org', 'read:user', 'repo'],
        tokenTypes: ['Authentication token created before 2021-04-05', 'Personal access token'],
        usage: {
          events: 3,
          firstSeen: '2023-01-23T06:07:20.515Z', // line 195's @timestamp, not its later created_at
          lastSeen: '2023-01-23T06:20:42.000Z',
          actions: { 'hook.create': 2, 'org.update_member': 1 },
          actors: ['userdeserve'],
          userAgents: ['AWS CodePipeline'],
          repositories: ['org/repo'],
        },
      });
      expect(pat.credentials.map((c) => [c.externalId, c.kind, c.status, c.lastUsedAt])).toEqual([
        ['213123634', 'github-token', 'active', '2023-01-23T06:20:42.000Z'],
      ]);

      // github-actions[bot] cloning with its installation token: the GitHub Actions app in that org
      const bot = await record(env.steward, 'github:app-installation:redacted/github-actions');
      expect(bot).toMatchObject({ kind: 'oauth-app', name: 'github-actions@redacted' });
      expect(bot.lastUsedAt).toBe('2022-06-22T04:37:02.832Z');
      expect(bot.attributes['github:multi']).toMatchObject({
        bot: 'github-actions[bot]',
        usage: { events: 1, actions: { 'git.clone': 1 }, repositories: ['redacted/redacted'] },
      });
      expect(bot.credentials).toEqual([]); // installation tokens live an hour: not credentials to keep

      // an OAuth token logged by its hash only (line 192): kept as logged, acting for imays11
      const oauth = await record(
        env.steward,
        'github:token:hashed:vnjCX8GeYi1K6rxJjPLM0GG1XRavJaqwAVosSTI1XNI=',
      );
      expect(oauth.attributes['github:multi']).toMatchObject({
        owner: 'imays11',
        tokenTypes: ['OAuth access token'],
        usage: { sourceIps: ['81.2.69.144'], userAgents: ['git/2.39.3.windows.1'] },
      });
      expect(oauth.lastUsedAt).toBe('2023-09-20T16:13:21.262Z');

      // the app added to and removed from onyxsectec/25 by two people (lines 193, 194)
      const app = await record(env.steward, 'github:app-installation:onyxsectec/create-issue-branch');
      expect(app.lastUsedAt).toBeNull();
      expect(app.attributes['github:multi']).toEqual({
        app: 'Create Issue Branch',
        appSlug: 'create-issue-branch',
        org: 'onyxsectec',
        repositorySelection: 'all',
        repositoriesAdded: ['onyxsectec/25'],
        repositoriesRemoved: ['onyxsectec/25'],
        changes: {
          'integration_installation.repositories_added': 1,
          'integration_installation.repositories_removed': 1,
        },
      });

      // a password found by secret scanning: an unmanaged leaked secret in its repository
      const leak = await record(
        env.steward,
        'github:secret-scanning-alert:sample-organization/sample-repository#1',
      );
      expect(leak).toMatchObject({
        kind: 'secret',
        name: 'Password in sample-organization/sample-repository (#1)',
      });
      expect(leak.attributes['github:multi']).toMatchObject({
        unmanaged: true,
        leaked: {
          alertNumber: 1,
          secretType: 'password',
          secretTypeDisplayName: 'Password',
          publiclyLeaked: false,
          multiRepo: true,
          detectedAt: '2025-12-24T14:17:05.019Z',
          state: 'open',
        },
        createdBy: {
          actor: 'github',
          at: '2025-12-24T14:17:05.019Z',
          action: 'secret_scanning_alert.create',
        },
      });
      expect(leak.credentials[0]).toMatchObject({
        kind: 'password',
        locations: ['github:sample-organization/sample-repository'],
      });

      // usage only: the same log again writes nothing
      const head = (await env.steward.ledger.head()).seq;
      expect((await load(env, [corpus(ORG_LOG)])).events).toBe(0);
      expect((await env.steward.ledger.head()).seq).toBe(head);
    });
  });

  it('imports the Panther-derived GitHub.Audit rows as they are: installs, bots, an OAuth token, undated rows counted', async () => {
    const { batch, skipped, stats } = await readGitHub([corpus(PANTHER_AUDIT)], opts());
    expect(skipped).toEqual([]);
    expect(stats).toMatchObject({
      records: 107,
      auditEvents: 107,
      attributed: 7,
      undated: 1, // the bot's workflow dispatch with only p_event_time (a Panther field, dropped)
      unattributed: {
        'token use without token_id or hashed_token': 13, // supply-chain user-agent rows
        'app token use without app or bot': 2,
        'deploy key use without fingerprint': 2,
        'deploy key event without repository or fingerprint': 2, // public_key.create/delete
      },
    });
    expect(batch.observedAt).toBe('2025-10-15T18:45:47.048Z');
    expect(ids(batch)).toEqual([
      'github:app-installation:example-io/datadog-ci',
      'github:app-installation:my-org/secret-scanning',
      'github:app-installation:your-organization/microsoft-teams-for-github',
      'github:app-installation:yourcompany/github-actions',
      'github:secret-scanning-alert:acme-inc/crown-jewels#12',
      'github:token:0123456789', // a string id with a leading zero, kept as written
    ]);
    // "2022-12-11 05:28:05.542": a space for T, no zone (UTC)
    expect(
      attrs(batch, 'github:app-installation:your-organization/microsoft-teams-for-github'),
    ).toMatchObject({
      app: 'Microsoft Teams for GitHub',
      createdBy: {
        actor: 'user_name',
        at: '2022-12-11T05:28:05.542Z',
        action: 'integration_installation.create',
      },
    });
    // the bot's two rows, one dated with nanoseconds, one undated (its org from the repository)
    expect(attrs(batch, 'github:app-installation:yourcompany/github-actions')).toMatchObject({
      bot: 'github-actions[bot]',
      tokenTypes: ['GitHub App server-to-server token'],
      usage: {
        events: 2,
        firstSeen: '2025-10-15T18:45:47.048Z',
        lastSeen: '2025-10-15T18:45:47.048Z',
        actions: { 'workflows.created_workflow_run': 2 },
      },
    });

    await withSteward(dialect, async (env) => {
      const r = await importDiscovery(env.steward, batch, { actor: 'test' });
      expect(r.identities.new).toBe(6);
      const token = await record(env.steward, 'github:token:0123456789');
      expect(token.lastUsedAt).toBe('2023-11-20T21:20:09.423Z');
      expect(token.attributes['github:multi']).toMatchObject({
        owner: 'acme-inc-user',
        tokenTypes: ['OAuth access token'],
        hashedTokens: ['0771cae4d170dc02a6ff393d9946cd684d6145c1='],
      });
      expect(token.credentials[0]).toMatchObject({ externalId: '0123456789', kind: 'github-token' });
      const scanner = await record(env.steward, 'github:app-installation:my-org/secret-scanning');
      expect(scanner.lastUsedAt).toBe('2021-06-17T23:15:19.091Z');
      expect((await load(env, [corpus(PANTHER_AUDIT)])).events).toBe(0);
    });
  });

  it('reads the Panther GitHub.Webhook rows as webhook deliveries: nothing to import, nothing written', async () => {
    const { batch, stats } = await readGitHub([corpus(PANTHER_WEBHOOK)], opts());
    expect(stats).toMatchObject({ records: 76, webhookDeliveries: 76, auditEvents: 0, attributed: 0 });
    expect(batch.identities).toEqual([]);
    expect(batch.scope).toBe('unknown');
    await withSteward(dialect, async (env) => {
      expect((await importDiscovery(env.steward, batch, { actor: 'test' })).events).toBe(0);
    });
  });

  it('the corpus folder in one run, and the JSON-array and gzip forms of the same log, give the same identities', async () => {
    const all = await readGitHub([corpus('github-audit')], opts());
    expect(all.batch.files).toHaveLength(3);
    expect(all.batch.identities).toHaveLength(11);
    expect(all.stats).toMatchObject({ auditEvents: 306, webhookDeliveries: 76, attributed: 15 });

    const lines = fs.readFileSync(corpus(ORG_LOG), 'utf8');
    const events = lines
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as unknown);
    const dir = tempFiles({ 'array.json': JSON.stringify(events, null, 2) });
    fs.writeFileSync(path.join(dir, 'log.jsonl.gz'), gzipSync(lines));
    const reference = facts((await readGitHub([corpus(ORG_LOG)], opts())).batch);
    for (const name of ['array.json', 'log.jsonl.gz'])
      expect(facts((await readGitHub([path.join(dir, name)], opts())).batch), name).toEqual(reference);
  });
});

describe.each(dialects)('github REST listings on $name', (dialect) => {
  it('deploy keys (fixture from the GitHub REST schema of GET /repos/{owner}/{repo}/keys): fingerprints, read-only entitlements, creators, last used', async () => {
    const { batch, stats } = await readGitHub([fixture('acme__api.keys.json')], opts());
    expect(stats.listed).toEqual({ deployKeys: 2, installations: 0, tokens: 0 });
    expect(batch).toMatchObject({ source: 'github', scope: 'acme/api:deploy-keys', snapshot: true });
    expect(ids(batch)).toEqual([
      `github:deploy-key:acme/api:${CI_KEY}`,
      `github:deploy-key:acme/api:${RELEASE_KEY}`,
    ]);
    // the key text is public, but only its fingerprint is kept
    const keyText = (
      JSON.parse(fs.readFileSync(fixture('acme__api.keys.json'), 'utf8')) as { key: string }[]
    )[0]!.key;
    expect(JSON.stringify(batch)).not.toContain(keyText.split(' ')[1]!.slice(0, 40));

    await withSteward(dialect, async (env) => {
      const r = await importDiscovery(env.steward, batch, { actor: 'test' });
      expect(r.identities).toEqual({ new: 2, changed: 0, unchanged: 0, vanished: 0 });
      expect(r.credentials.new).toBe(2);
      expect(r.entitlements.new).toBe(2);

      const ci = await record(env.steward, `github:deploy-key:acme/api:${CI_KEY}`);
      expect(ci).toMatchObject({ kind: 'deploy-key', name: 'ci read-only (acme/api)', status: 'active' });
      expect(ci.lastUsedAt).toBe('2025-11-30T08:00:00.000Z');
      expect(ci.attributes['github:acme/api:deploy-keys']).toEqual({
        repository: 'acme/api',
        deployKeyId: '70001',
        fingerprint: CI_KEY,
        readOnly: true,
        title: 'ci read-only',
        verified: true,
        enabled: true,
        createdBy: { actor: 'alice-acme', at: '2025-03-04T10:15:00.000Z', action: 'deploy_key.listed' },
      });
      expect(ci.credentials).toHaveLength(1);
      expect(ci.credentials[0]).toMatchObject({
        externalId: CI_KEY,
        kind: 'deploy-key',
        status: 'active',
        issuedAt: '2025-03-04T10:15:00.000Z',
        lastUsedAt: '2025-11-30T08:00:00.000Z',
        attributes: {
          deployKeyId: '70001',
          keyType: 'ssh-ed25519',
          bits: 256,
          md5: CI_KEY_MD5,
          readOnly: true,
        },
      });
      expect(ci.entitlements.map((e) => [e.resource, e.actions, e.grantedVia, e.attributes])).toEqual([
        ['github:repo:acme/api', ['contents:read'], 'deploy-key:70001', { write: false, admin: false }],
      ]);

      const release = await record(env.steward, `github:deploy-key:acme/api:${RELEASE_KEY}`);
      expect(release.lastUsedAt).toBeNull(); // last_used: null
      expect(release.credentials[0]!.attributes).toMatchObject({ keyType: 'ssh-rsa', bits: 2048 });
      expect(release.entitlements[0]).toMatchObject({
        actions: ['contents:read', 'contents:write'],
        attributes: { write: true, admin: false },
        grantedAt: '2024-06-01T12:00:00.000Z',
      });
      expect(release.attributes['github:acme/api:deploy-keys']).toMatchObject({
        createdBy: { actor: 'bob-acme' },
      });

      // re-import writes nothing
      expect((await load(env, [fixture('acme__api.keys.json')])).events).toBe(0);

      // a later listing without the release key: it vanishes, with its credential and grant
      const keys = JSON.parse(fs.readFileSync(fixture('acme__api.keys.json'), 'utf8')) as { id: number }[];
      const dir = tempFiles({ 'acme__api.keys.json': JSON.stringify(keys.filter((k) => k.id !== 70002)) });
      env.clock.advance(86_400_000);
      const later = await load(env, [path.join(dir, 'acme__api.keys.json')]);
      expect(later.identities).toEqual({ new: 0, changed: 0, unchanged: 1, vanished: 1 });
      expect(later.credentials.vanished).toBe(1);
      expect(later.entitlements.vanished).toBe(1);
      const gone = await record(env.steward, `github:deploy-key:acme/api:${RELEASE_KEY}`);
      expect(gone.status).toBe('vanished');
      expect(gone.credentials[0]!.status).toBe('vanished');
      expect(gone.entitlements[0]!.status).toBe('revoked');
    });
  });

  it('a wrapped deploy-key listing names its repository; a disabled key is disabled (fixture from the GitHub REST schema)', async () => {
    const { batch } = await readGitHub([fixture('web-deploy-keys.json')], opts());
    expect(batch.scope).toBe('acme/web:deploy-keys');
    expect(ids(batch)).toEqual([`github:deploy-key:acme/web:${WEB_KEY}`]);
    await withSteward(dialect, async (env) => {
      await importDiscovery(env.steward, batch, { actor: 'test' });
      const web = await record(env.steward, `github:deploy-key:acme/web:${WEB_KEY}`);
      expect(web.status).toBe('disabled');
      expect(web.credentials[0]).toMatchObject({
        status: 'inactive',
        attributes: { keyType: 'ecdsa-sha2-nistp256', bits: 256 },
      });
      expect(web.attributes['github:acme/web:deploy-keys']).not.toHaveProperty('createdBy'); // added_by: null
    });
  });

  it('app installations (fixture from the GitHub REST schema of GET /orgs/{org}/installations): permissions as entitlements with admin and write flags; suspended is disabled', async () => {
    const { batch } = await readGitHub([fixture('acme.installations.json')], opts());
    expect(batch).toMatchObject({ scope: 'acme:installations', snapshot: true });
    expect(ids(batch)).toEqual([
      'github:app-installation:acme/octo-deployer',
      'github:app-installation:acme/stale-bot',
    ]);
    await withSteward(dialect, async (env) => {
      const r = await importDiscovery(env.steward, batch, { actor: 'test' });
      expect(r.entitlements.new).toBe(4);
      const deployer = await record(env.steward, 'github:app-installation:acme/octo-deployer');
      expect(deployer).toMatchObject({ kind: 'oauth-app', name: 'octo-deployer@acme', status: 'active' });
      expect(deployer.attributes['github:acme:installations']).toMatchObject({
        installationId: '51000001',
        appId: '310001',
        repositorySelection: 'selected',
        events: ['pull_request', 'push'],
        permissions: { administration: 'write', contents: 'write', members: 'read', metadata: 'read' },
      });
      expect(
        deployer.entitlements.map((e) => [e.resource, e.actions, e.grantedVia, e.grantedAt, e.attributes]),
      ).toEqual([
        [
          'github:org:acme',
          ['members:read'],
          'installation:51000001',
          '2024-02-10T08:30:00.000Z',
          { write: false, admin: false },
        ],
        [
          'github:org:acme/repositories:selected',
          ['administration:write', 'contents:write', 'metadata:read', 'pull_requests:write'],
          'installation:51000001',
          '2024-02-10T08:30:00.000Z', // "2024-02-10T09:30:00.000+01:00"
          { write: true, admin: true },
        ],
      ]);
      const stale = await record(env.steward, 'github:app-installation:acme/stale-bot');
      expect(stale.status).toBe('disabled');
      expect(stale.attributes['github:acme:installations']).toMatchObject({
        suspendedAt: '2025-09-01T10:00:00.000Z',
        suspendedBy: 'carol-acme',
      });
      expect(stale.entitlements.map((e) => [e.resource, e.actions])).toEqual([
        ['github:org:acme/repositories:all', ['issues:write', 'metadata:read']],
        ['github:org:acme/users', ['email_addresses:read']],
      ]);
      expect((await load(env, [fixture('acme.installations.json')])).events).toBe(0);
    });
  });

  it('fine-grained PATs (fixture from the GitHub REST schema of GET /orgs/{org}/personal-access-tokens): human owner kept, expiry, last used', async () => {
    const { batch } = await readGitHub([fixture('acme.personal-access-tokens.json')], opts());
    expect(batch).toMatchObject({ scope: 'acme:personal-access-tokens', snapshot: true });
    expect(ids(batch)).toEqual(['github:token:98716', 'github:token:98717']);
    await withSteward(dialect, async (env) => {
      await importDiscovery(env.steward, batch, { actor: 'test' });
      const pat = await record(env.steward, 'github:token:98716');
      expect(pat).toMatchObject({ kind: 'token', name: 'release automation', status: 'active' });
      expect(pat.lastUsedAt).toBe('2025-12-01T10:00:00.000Z');
      expect(pat.attributes['github:acme:personal-access-tokens']).toMatchObject({
        owner: 'octocat',
        ownerId: '1',
        humanBound: true,
        grantId: '25381',
        repositorySelection: 'subset',
        accessGrantedAt: '2025-05-16T15:47:09.000Z',
      });
      expect(pat.credentials[0]).toMatchObject({
        externalId: '98716',
        kind: 'github-token',
        status: 'active',
        expiresAt: '2026-05-16T15:47:09.000Z',
        lastUsedAt: '2025-12-01T10:00:00.000Z',
      });
      expect(pat.entitlements.map((e) => [e.resource, e.actions, e.attributes])).toEqual([
        ['github:org:acme', ['members:read'], { write: false, admin: false }],
        [
          'github:org:acme/repositories:subset',
          ['contents:write', 'metadata:read'],
          { write: true, admin: false },
        ],
      ]);
      const old = await record(env.steward, 'github:token:98717');
      expect(old.status).toBe('disabled');
      expect(old.credentials[0]).toMatchObject({ status: 'expired', expiresAt: '2025-01-10T12:00:00.000Z' });
      expect(old.entitlements.find((e) => e.resource === 'github:org:acme')).toMatchObject({
        actions: ['organization_administration:write'],
        attributes: { write: true, admin: true },
      });
    });
  });

  it('listings and an audit log of the same token, installation and deploy key merge on one identity (fixtures)', async () => {
    await withSteward(dialect, async (env) => {
      for (const f of ['acme.personal-access-tokens.json', 'acme.installations.json', 'acme__api.keys.json'])
        await load(env, [fixture(f)]);
      const { batch, stats } = await readGitHub([fixture('acme-audit.jsonl')], opts());
      expect(batch).toMatchObject({ scope: 'acme', snapshot: false, observedAt: '2025-12-22T11:00:00.000Z' });
      expect(stats).toMatchObject({ auditEvents: 13, attributed: 12 });
      const r = await importDiscovery(env.steward, batch, { actor: 'test' });
      // merged: the PAT, the deployer app, the ci key; new: the Slack app, its OAuth token, the leak
      expect(r.identities).toEqual({ new: 3, changed: 3, unchanged: 0, vanished: 0 });
      expect(r.credentials).toMatchObject({ new: 2, changed: 2 });

      const pat = await record(env.steward, 'github:token:98716');
      expect(pat.name).toBe('release automation');
      // a later use in the log, with only the hashed token, folded into the token it was paired with
      expect(pat.lastUsedAt).toBe('2025-12-21T09:00:00.000Z');
      expect(pat.credentials.map((c) => [c.externalId, c.status, c.lastUsedAt, c.expiresAt])).toEqual([
        ['98716', 'active', '2025-12-21T09:00:00.000Z', '2026-05-16T15:47:09.000Z'],
      ]);
      expect(pat.attributes['github:acme']).toMatchObject({
        owner: 'octocat',
        createdBy: {
          actor: 'octocat',
          at: '2025-05-16T15:40:00.000Z',
          action: 'personal_access_token.request_created',
        },
        approvedBy: {
          actor: 'carol-acme',
          at: '2025-05-16T15:47:09.000Z',
          action: 'personal_access_token.access_granted',
        },
        usage: {
          events: 2,
          actions: { 'git.clone': 1, 'repo.update': 1 },
          userAgents: ['curl/8.5.0', 'git/2.47.0'],
        },
      });
      expect(pat.attributes['github:acme:personal-access-tokens']).toMatchObject({ owner: 'octocat' });
      expect(pat.entitlements).toHaveLength(2); // the listing's grants stay

      const app = await record(env.steward, 'github:app-installation:acme/octo-deployer');
      expect(app.lastUsedAt).toBe('2025-12-22T11:00:00.000Z');
      expect(app.attributes['github:acme']).toMatchObject({
        bot: 'octo-deployer[bot]',
        createdBy: {
          actor: 'bob-acme',
          at: '2024-02-10T08:30:05.000Z',
          action: 'integration_installation.create',
        },
        usage: { events: 1, actions: { 'git.push': 1 } },
      });
      expect(app.status).toBe('active');

      const key = await record(env.steward, `github:deploy-key:acme/api:${CI_KEY}`);
      expect(key.lastUsedAt).toBe('2025-12-02T07:00:00.000Z');
      expect(key.credentials).toHaveLength(1);
      expect(key.credentials[0]).toMatchObject({
        externalId: CI_KEY,
        issuedAt: '2025-03-04T10:15:00.000Z',
        lastUsedAt: '2025-12-02T07:00:00.000Z',
        attributes: { deployKeyId: '70001' }, // the log does not overwrite what the listing said
      });
      expect(key.attributes['github:acme']).toMatchObject({
        createdBy: { actor: 'alice-acme', at: '2025-03-04T10:15:00.123Z', action: 'public_key.create' },
        usage: { actions: { 'git.fetch': 1 }, sourceIps: ['203.0.113.10'] },
      });

      const slack = await record(env.steward, 'github:oauth-app:acme/777');
      expect(slack.attributes['github:acme']).toMatchObject({
        oauthApplication: 'Slack',
        approvedBy: { actor: 'carol-acme', action: 'org.oauth_app_access_approved' },
        usage: { events: 1, actors: ['dave-acme'] },
      });
      const leak = await record(env.steward, 'github:secret-scanning-alert:acme/web#3');
      expect(leak.attributes['github:acme']).toMatchObject({
        leaked: { secretType: 'github_personal_access_token', publiclyLeaked: true, state: 'resolved' },
      });

      // neither source undoes the other: each again writes nothing
      expect((await load(env, [fixture('acme-audit.jsonl')])).events).toBe(0);
      for (const f of ['acme.personal-access-tokens.json', 'acme.installations.json', 'acme__api.keys.json'])
        expect((await load(env, [fixture(f)])).events, f).toBe(0);
    });
  });

  it.runIf(corporaAvailable)(
    'an installation listing (fixture) and the real audit log merge on the app installation',
    async () => {
      await withSteward(dialect, async (env) => {
        await load(env, [fixture('onyxsectec.installations.json')]);
        const r = await load(env, [corpus(ORG_LOG)]);
        expect(r.identities).toMatchObject({ new: 4, changed: 1 });
        const app = await record(env.steward, 'github:app-installation:onyxsectec/create-issue-branch');
        expect(Object.keys(app.attributes).sort()).toEqual([
          'github:multi',
          'github:onyxsectec:installations',
        ]);
        expect(app.entitlements.map((e) => e.resource)).toEqual(['github:org:onyxsectec/repositories:all']);
      });
    },
  );
});

describe.each(dialects)('steward import github on $name', (dialect) => {
  it('imports a listing from the command line, then refuses a mixed run naming both files', async () => {
    const env = {
      db: await dialect.freshUrl(),
      keys: fs.mkdtempSync(path.join(os.tmpdir(), 'steward-keys-')),
    };
    try {
      const r = await cli(['import', 'github', fixture('acme.personal-access-tokens.json'), '--json'], env);
      expect(r.code).toBe(0);
      expect(r.json()).toMatchObject({
        source: 'github',
        scope: 'acme:personal-access-tokens',
        identities: { new: 2 },
        credentials: { new: 2 },
        entitlements: { new: 4 },
      });
      // (PGlite's in-memory database lives for one command: nothing to show afterwards)
      if (!env.db.startsWith('pglite:')) {
        const shown = await cli(['show', 'github:token:98716', '--json'], env);
        expect(shown.json()).toMatchObject({
          kind: 'token',
          name: 'release automation',
          lastUsedAt: '2025-12-01T10:00:00.000Z',
        });
      }
      const mixed = await cli(
        ['import', 'github', fixture('acme.personal-access-tokens.json'), fixture('acme-audit.jsonl')],
        env,
      );
      expect(mixed.code).toBe(1);
      expect(mixed.stderr).toContain(fixture('acme-audit.jsonl'));
      expect(mixed.stderr).toMatch(/a run imports either audit logs or one listing/);
    } finally {
      await dialect.cleanup(env.db);
      fs.rmSync(env.keys, { recursive: true, force: true });
    }
  });
});

describe('github input shapes and conventions', () => {
  it('pretty, compact, JSON lines, gzip, slurped pages and a wrapper read as the same installation listing', async () => {
    const doc = JSON.parse(fs.readFileSync(fixture('acme.installations.json'), 'utf8')) as {
      installations: unknown[];
    };
    const dir = tempFiles({
      'compact/acme.installations.json': JSON.stringify(doc),
      'lines/acme.installations.json': doc.installations.map((i) => JSON.stringify(i)).join('\n'),
      'slurp/acme.installations.json': JSON.stringify([doc], null, 2),
      'bare/x.json': JSON.stringify(doc.installations, null, 2),
      'wrapper/x.json': JSON.stringify({ installations: doc.installations, organization: 'acme' }, null, 2),
    });
    fs.mkdirSync(path.join(dir, 'gz'));
    fs.writeFileSync(
      path.join(dir, 'gz', 'acme.installations.json.gz'),
      gzipSync(JSON.stringify(doc, null, 2)),
    );
    const reference = facts((await readGitHub([fixture('acme.installations.json')], opts())).batch);
    for (const sub of ['compact', 'lines', 'slurp', 'bare', 'wrapper', 'gz'])
      expect(facts((await readGitHub([path.join(dir, sub)], opts())).batch), sub).toEqual(reference);
  });

  it('a deploy-key listing takes its repository from the file name, a wrapper or the keys’ url, and refuses when none says', async () => {
    const keys = JSON.parse(fs.readFileSync(fixture('acme__api.keys.json'), 'utf8')) as Record<
      string,
      unknown
    >[];
    const noUrl = keys.map(({ url: _url, ...k }) => k);
    const dir = tempFiles({
      'byurl.json': JSON.stringify(keys),
      'nothing.json': JSON.stringify(noUrl),
      'acme__web.keys.json': JSON.stringify(keys),
      'wrapped.json': JSON.stringify({ repository: 'acme/web', keys }),
      'acme.installations.json': JSON.stringify(keys),
    });
    expect((await readGitHub([path.join(dir, 'byurl.json')], opts())).batch.scope).toBe(
      'acme/api:deploy-keys',
    );
    const none = await rejection(readGitHub([path.join(dir, 'nothing.json')], opts({ skipInvalid: true })));
    expect(none.problems[0]!.message).toMatch(
      /name the file <owner>__<repo>\.keys\.json or wrap the listing/,
    );
    // the keys' urls say acme/api: a key of another repository is a problem naming its url
    for (const name of ['acme__web.keys.json', 'wrapped.json']) {
      const e = await rejection(readGitHub([path.join(dir, name)], opts()));
      expect(e.problems.map((p) => [p.line, p.field, p.message])).toEqual(
        [
          [1, '[0].url', 'expected a key of acme/web, got a key of acme/api'],
          [1, '[1].url', 'expected a key of acme/web, got a key of acme/api'],
        ].map(([l, f, m]) => [l, name === 'wrapped.json' ? String(f).replace('[', 'keys[') : f, m]),
      );
    }
    const mismatch = await rejection(readGitHub([path.join(dir, 'acme.installations.json')], opts()));
    expect(mismatch.problems[0]!.message).toMatch(
      /^expected app installations .* as the file name says, got deploy keys/,
    );
  });

  it('one run reads one listing scope, never a listing and a log together', async () => {
    const dir = tempFiles({
      'acme__web.keys.json': JSON.stringify([]),
      'log.jsonl': fs.readFileSync(fixture('acme-audit.jsonl'), 'utf8'),
    });
    const two = await rejection(
      readGitHub([fixture('acme__api.keys.json'), path.join(dir, 'acme__web.keys.json')], opts()),
    );
    expect(two.problems[0]!.message).toMatch(
      /^expected the listing of acme\/api:deploy-keys .*one run imports one listing.*got acme\/web:deploy-keys/,
    );
    const mixed = await rejection(
      readGitHub([fixture('acme__api.keys.json'), path.join(dir, 'log.jsonl')], opts()),
    );
    expect(mixed.problems[0]!.message).toMatch(/a run imports either audit logs or one listing/);
    // an empty listing named by its file is a listing of nothing: everything it listed before vanishes
    const empty = await readGitHub([path.join(dir, 'acme__web.keys.json')], opts());
    expect(empty.batch).toMatchObject({ scope: 'acme/web:deploy-keys', snapshot: true, identities: [] });
  });

  it('fingerprints agree with ssh-keygen; timestamps in every form GitHub and Panther write', () => {
    // a public key and its fingerprint from another project's test, recorded with ssh-keygen -lf
    expect(
      sshKeyFacts('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGUXx6avvDyK80iLOOEAcMpOiz7c5X15hOJDGvAPOeWj'),
    ).toMatchObject({
      type: 'ssh-ed25519',
      sha256: 'SHA256:oVkwcIXwSc+fPzoGgHZH7miFHMuKgNGqLChKtPuyjBs',
      bits: 256,
    });
    expect(
      sshKeyFacts('ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIGUXx6avvDyK80iLOOEAcMpOiz7c5X15hOJDGvAPOeWj'),
    ).toMatch(/starts with its type "ssh-rsa"/);
    expect(sshKeyFacts('not a key')).toMatch(/^expected an OpenSSH public key/);
    expect(normaliseFingerprint('00:74:8C:04:d2:41:d2:4c:26:c1:57:2a:00:c4:9d:1d')).toBe(CI_KEY_MD5);
    expect(normaliseFingerprint(CI_KEY.slice(7))).toBe(CI_KEY);
    expect(normaliseFingerprint('nope')).toBeUndefined();
    expect(githubTime(1583364251067)).toBe('2020-03-04T23:24:11.067Z');
    expect(githubTime(1621305118553.0)).toBe('2021-05-18T02:31:58.553Z');
    expect(githubTime('1583364251067')).toBe('2020-03-04T23:24:11.067Z');
    expect(githubTime(1583364251)).toBe('2020-03-04T23:24:11.000Z'); // epoch seconds
    expect(githubTime('2023-10-18 18:20:52.209000000')).toBe('2023-10-18T18:20:52.209Z');
    expect(githubTime('2017-05-16T08:47:09.000-07:00')).toBe('2017-05-16T15:47:09.000Z');
    expect(githubTime('2024-12-17 00:00:00000000')).toBeUndefined(); // a Panther typo: not a time
    expect(githubTime('yesterday')).toBeUndefined();
    expect(importer.source).toBe('github');
  });
});

describe('github hostile inputs', () => {
  const event = (extra: Record<string, unknown> = {}) => ({
    '@timestamp': 1766586000000,
    action: 'git.clone',
    actor: 'octocat',
    org: 'acme',
    repo: 'acme/api',
    programmatic_access_type: 'Fine-grained personal access token',
    token_id: 98716,
    ...extra,
  });

  it('a truncated gzip fails naming the file', async () => {
    const full = gzipSync(Array.from({ length: 500 }, () => JSON.stringify(event())).join('\n'));
    const dir = tempFiles({});
    const file = path.join(dir, 'cut.jsonl.gz');
    fs.writeFileSync(file, full.subarray(0, Math.floor(full.length / 2)));
    for (const skipInvalid of [false, true]) {
      const err = await rejection(readGitHub([file], opts({ skipInvalid })));
      expect(err.message).toMatch(/expected a complete gzip stream/);
      expect(err.problems[0]!.file).toBe(file);
    }
  });

  it('audit events with wrong types are named by file, line and field; --skip-invalid keeps the good ones', async () => {
    const dir = tempFiles({
      'bad.jsonl': [
        event(),
        event({ action: 42 }),
        event({ token_id: { id: 1 } }),
        event({ '@timestamp': 'yesterday' }),
        event({ actor_is_bot: 'yes' }),
        {
          _source_file: 'x.yml',
          _test_name: 't',
          event: event({ data: { token_id: -4 }, token_id: undefined }),
        },
        event({
          action: 'public_key.create',
          programmatic_access_type: undefined,
          token_id: undefined,
          fingerprint: 'SHA1:zz',
        }),
        'a string',
        event({
          action: 'repo.create',
          token_id: undefined,
          programmatic_access_type: undefined,
          '@timestamp': 'whenever',
        }),
        { '@timestamp': 1766587000000, action: 'repo.update', actor: 'octocat', token_id: 'abc' },
        event({ '@timestamp': 1766587000000 }),
      ]
        .map((e) => JSON.stringify(e))
        .join('\n'),
    });
    const file = path.join(dir, 'bad.jsonl');
    const err = await rejection(readGitHub([file], opts()));
    expect(err.problems.map((p) => [p.line, p.field, p.message])).toEqual([
      [2, 'action', 'expected the action (a string such as "repo.create"), got number 42'],
      [3, 'token_id', 'expected an id (a whole number or a string of digits), got an object'],
      [4, '@timestamp', 'expected epoch milliseconds or an ISO-8601 timestamp, got string "yesterday"'],
      [5, 'actor_is_bot', 'expected true or false, got string "yes"'],
      [6, 'event.data.token_id', 'expected an id (a whole number or a string of digits), got number -4'],
      [7, 'fingerprint', 'expected an SSH key fingerprint (SHA256:… or aa:bb:…), got string "SHA1:zz"'],
      [
        8,
        undefined,
        expect.stringMatching(/^expected a GitHub audit-log event .*, got string "a string"$/) as string,
      ],
      [10, 'token_id', 'expected an id (a whole number or a string of digits), got string "abc"'],
    ]);
    expect(err.problems.every((p) => p.file === file)).toBe(true);
    expect(err.message).toMatch(/^8 invalid GitHub record\(s\); nothing was imported/);
    // a person's event (line 9) is not checked beyond its action: it is not imported

    const { batch, skipped, stats } = await readGitHub([file], opts({ skipInvalid: true }));
    expect(skipped).toHaveLength(8);
    expect(stats).toMatchObject({ records: 11, skipped: 8, attributed: 2 });
    expect(ids(batch)).toEqual(['github:token:98716']);
    expect(attrs(batch, 'github:token:98716')).toMatchObject({ usage: { events: 2 } });
  });

  it('listing elements with wrong types are named by line and JSON path; the key text is never echoed', async () => {
    const doc = JSON.parse(fs.readFileSync(fixture('acme.installations.json'), 'utf8')) as {
      installations: Record<string, unknown>[];
    };
    doc.installations[1]!.permissions = { issues: 3 };
    const keys = JSON.parse(fs.readFileSync(fixture('acme__api.keys.json'), 'utf8')) as Record<
      string,
      unknown
    >[];
    keys[0]!.read_only = 'no';
    keys[1]!.key = 'ssh-rsa c2VjcmV0LWxvb2tpbmctYnV0LW5vdC1hLWtleQ==';
    const dir = tempFiles({
      'acme.installations.json': JSON.stringify(doc, null, 2),
      'acme__api.keys.json': JSON.stringify(keys, null, 2),
    });
    const inst = await rejection(readGitHub([path.join(dir, 'acme.installations.json')], opts()));
    const instLine = JSON.stringify(doc, null, 2)
      .split('\n')
      .findIndex((l) => l.includes('"id": 51000002'));
    expect(inst.problems).toEqual([
      {
        file: path.join(dir, 'acme.installations.json'),
        line: instLine, // the element's opening brace, the line before its id
        field: 'installations[1].permissions.issues',
        message: 'expected a permission level (read, write, admin), got number 3',
      },
    ]);
    const skipped = await readGitHub(
      [path.join(dir, 'acme.installations.json')],
      opts({ skipInvalid: true }),
    );
    expect(ids(skipped.batch)).toEqual(['github:app-installation:acme/octo-deployer']);

    const key = await rejection(readGitHub([path.join(dir, 'acme__api.keys.json')], opts()));
    expect(key.problems.map((p) => [p.field, p.message])).toEqual([
      ['[0].read_only', 'expected true or false, got string "no"'],
      [
        '[1].key',
        expect.stringMatching(
          /^expected an OpenSSH public key whose data starts with its type "ssh-rsa", got a string of 48 characters$/,
        ) as string,
      ],
    ]);
    expect(key.message).not.toContain('c2VjcmV0');
  });

  it('refuses an unrecognised JSON document, naming what was expected', async () => {
    const dir = tempFiles({
      'other.json': JSON.stringify({ kind: 'List', items: [] }, null, 2),
      'scalar.json': '42\n',
      'requests.json': JSON.stringify([{ id: 1, reason: 'please', created_at: '2025-01-01T00:00:00Z' }]),
      'acme.personal-access-tokens.json': JSON.stringify([
        {
          id: 7,
          reason: 'deploys',
          owner: { login: 'octocat' },
          token_id: 9,
          created_at: '2025-01-01T00:00:00Z',
        },
      ]),
    });
    const other = await rejection(readGitHub([path.join(dir, 'other.json')], opts()));
    expect(other.problems[0]).toMatchObject({ line: 1 });
    expect(other.problems[0]!.message).toMatch(
      /^expected a GitHub audit-log event \(an object with "action"\), a deploy key \(id, key, read_only\), an app installation .* got an object with keys kind, items$/,
    );
    expect(
      (await rejection(readGitHub([path.join(dir, 'scalar.json')], opts()))).problems[0]!.message,
    ).toMatch(/got number 42$/);
    expect(
      (await rejection(readGitHub([path.join(dir, 'requests.json')], opts()))).problems[0],
    ).toMatchObject({
      field: '[0]',
      message: expect.stringMatching(/got an object with keys id, reason, created_at$/) as string,
    });
    // a pending request (GET /orgs/{org}/personal-access-token-requests) is not a grant
    expect(
      (await rejection(readGitHub([path.join(dir, 'acme.personal-access-tokens.json')], opts()))).problems[0],
    ).toMatchObject({ field: '[0]', message: expect.stringMatching(/got a pending request/) as string });
  });

  it('malformed and truncated JSON always fails, with its line', async () => {
    const pretty = JSON.stringify(
      JSON.parse(fs.readFileSync(fixture('acme.installations.json'), 'utf8')),
      null,
      2,
    );
    const dir = tempFiles({
      'acme.installations.json': pretty.slice(0, Math.floor(pretty.length / 2)),
      'broken.json': '{\n  "total_count": 1,\n  "installations": [ { "id": 1,, } ]\n}\n',
      'array.json': `[\n${JSON.stringify(event())},\n{"action": "x",, "a": 1}\n]\n`,
    });
    for (const skipInvalid of [false, true]) {
      const cut = await rejection(
        readGitHub([path.join(dir, 'acme.installations.json')], opts({ skipInvalid })),
      );
      expect(cut.problems[0]!.message).toMatch(
        /^expected complete JSON, got the end of the input \(truncated\?\)/,
      );
      const broken = await rejection(readGitHub([path.join(dir, 'broken.json')], opts({ skipInvalid })));
      expect(broken.problems[0]).toMatchObject({ line: 3 });
      expect(broken.problems[0]!.message).toMatch(/^expected valid JSON/);
      const array = await rejection(readGitHub([path.join(dir, 'array.json')], opts({ skipInvalid })));
      expect(array.problems[0]).toMatchObject({ line: 3, field: '[1]' });
    }
  });

  it('deep nesting is refused or passed over without exhausting the stack', async () => {
    const depth = 100_000;
    const deep = '['.repeat(depth) + ']'.repeat(depth);
    const dir = tempFiles({
      'deep.json': deep,
      'deep/acme.installations.json': `{\n"installations": [\n${'['.repeat(depth)}${']'.repeat(depth)}\n]\n}\n`,
      'deep-field.jsonl': JSON.stringify(event()).replace(/}$/, `,"data":{"blob":${deep}}}`) + '\n',
    });
    const arr = await rejection(readGitHub([path.join(dir, 'deep.json')], opts()));
    // the outer array's element is read as a page of records; the page's element is refused
    expect(arr.problems[0]).toMatchObject({
      field: '[0][0]',
      message: expect.stringMatching(/got an array$/) as string,
    });
    const doc = await rejection(readGitHub([path.join(dir, 'deep', 'acme.installations.json')], opts()));
    expect(doc.problems[0]).toMatchObject({
      line: 3,
      field: 'installations[0]',
      message: 'expected app installation (an object), got an array',
    });
    // nesting in a field this importer does not read is passed over
    const field = await readGitHub([path.join(dir, 'deep-field.jsonl')], opts());
    expect(ids(field.batch)).toEqual(['github:token:98716']);
  });

  it('a line, element or document over the limit fails in bounded memory, with or without --skip-invalid', async () => {
    const long = JSON.stringify(event({ user_agent: 'x'.repeat(500) }));
    const pretty = fs.readFileSync(fixture('acme.installations.json'), 'utf8');
    const dir = tempFiles({
      'long.jsonl': `${JSON.stringify(event())}\n${long}\n`,
      'long.json': `[${JSON.stringify(event())},\n${long}]`,
      'acme.installations.json': pretty,
    });
    for (const skipInvalid of [false, true]) {
      const line = await rejection(
        readGitHub([path.join(dir, 'long.jsonl')], opts({ skipInvalid, maxRecordChars: 400 })),
      );
      expect(line.problems[0]).toMatchObject({ line: 2 });
      expect(line.problems[0]!.message).toMatch(/at most 400 characters/);
      const elem = await rejection(
        readGitHub([path.join(dir, 'long.json')], opts({ skipInvalid, maxRecordChars: 400 })),
      );
      expect(elem.problems[0]).toMatchObject({ line: 2, field: '[1]' });
      const doc = await rejection(
        readGitHub([path.join(dir, 'acme.installations.json')], opts({ skipInvalid, maxRecordChars: 400 })),
      );
      expect(doc.problems[0]).toMatchObject({ line: 4, field: 'installations[0]' });
      expect(doc.problems[0]!.message).toMatch(/^expected a JSON value of at most 400 characters/);
    }
    // the same files pass with the default limit
    expect((await readGitHub([path.join(dir, 'long.jsonl')], opts())).stats.records).toBe(2);
    // a huge single line is refused after reading little more than the limit
    const huge = path.join(dir, 'huge.jsonl');
    fs.writeFileSync(huge, `{"action":"git.clone","user_agent":"${'a'.repeat(3 * 1024 * 1024)}"}\n`);
    const e = await rejection(readGitHub([huge], opts({ maxRecordChars: 1024 * 1024 })));
    expect(e.problems[0]!.message).toMatch(/at most 1048576 characters/);
  });
});
