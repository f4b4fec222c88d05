import fs from 'node:fs';
import path from 'node:path';
import { describe, it, expect } from 'vitest';
import { dialects, withSteward, type TestEnv } from './helpers/steward.js';
import { tempFiles, DIRECTORY_CSV, nhi, PAYMENTS_SPEC } from './helpers/files.js';
import { cli } from './helpers/cli.js';
import { parseManifestPaths } from '../src/importers/manifest/parse.js';
import { parseDirectoryFile } from '../src/importers/directory/parse.js';
import { importManifests } from '../src/inventory/import-manifests.js';
import { importDirectory } from '../src/inventory/import-directory.js';
import { importDiscovery, type DiscoveryBatch } from '../src/inventory/import-discovery.js';
import { loadRecord } from '../src/inventory/record.js';
import { resolveIdentity } from '../src/inventory/queries.js';
import { verifyLedger } from '../src/ledger/verify.js';
import { ValidationError } from '../src/domain/errors.js';

const ARN = 'arn:aws:iam::123456789012:role/payments-batch';
const TOKEN = 'xoxb-2719-not-a-real-slack-token-5b1c';
const STRAY = 'sk_live_stray0000000000000000000000';

/** A scan's findings, in the shape the gitleaks and secrets importers yield. */
function scan(env: TestEnv, found: { secret: string; at: string[]; awsKeyId?: string }[]): DiscoveryBatch {
  return {
    source: 'gitleaks',
    scope: 'report.json',
    snapshot: true,
    observedAt: '2026-01-05T00:00:00.000Z',
    files: [{ path: '/x/report.json', sha256: 'abc' }],
    identities: found.map((f) => {
      const fp = env.steward.keys.fingerprint(f.secret);
      return {
        externalId: `secret:${fp}`,
        name: `generic-api-key in ${f.at[0]!}`,
        kind: 'secret' as const,
        attributes: { unmanaged: true, rule: 'generic-api-key' },
        credentials: [
          {
            externalId: fp,
            kind: 'generic-api-key',
            fingerprint: fp,
            locations: f.at,
            attributes: { rule: 'generic-api-key', ...(f.awsKeyId ? { awsAccessKeyId: f.awsKeyId } : {}) },
          },
        ],
      };
    }),
  };
}

/** The payments manifest, with a second credential declared by fingerprint (`steward fingerprint`). */
function manifest(env: TestEnv): string {
  return nhi(
    'payments-batch',
    PAYMENTS_SPEC.replace(
      'credentials:\n',
      `credentials:\n  - id: slack-bot-token\n    kind: token\n    fingerprint: ${env.steward.keys.fingerprint(TOKEN)}\n    locations: [vault:secret/slack]\n`,
    ),
  );
}

async function setup(env: TestEnv): Promise<string> {
  const dir = tempFiles({ 'directory.csv': DIRECTORY_CSV, 'm.yaml': manifest(env) });
  await importDirectory(env.steward, await parseDirectoryFile(path.join(dir, 'directory.csv')), {
    actor: 'test',
  });
  return dir;
}

const importManifest = async (env: TestEnv, dir: string) =>
  importManifests(env.steward, await parseManifestPaths([path.join(dir, 'm.yaml')]), {
    actor: 'test',
    roots: [dir],
  });

async function credentialLocations(env: TestEnv, externalId: string): Promise<string[]> {
  const id = (await resolveIdentity(env.steward.store, ARN)).id;
  const now = env.clock.now().toISOString();
  const rec = (await loadRecord(env.steward.store, id, now, now))!;
  return rec.credentials.find((c) => c.externalId === externalId)!.locations;
}

describe.each(dialects)('secret sprawl: found secrets linked to known credentials on $name', (dialect) => {
  it('links a found secret by AWS key id and by fingerprint; an unmatched one stays unmanaged; re-imports write nothing', async () => {
    await withSteward(dialect, async (env) => {
      const dir = await setup(env);
      await importManifest(env, dir);
      env.clock.advance(60_000);
      const found = scan(env, [
        {
          secret: 'aws-secret-access-key-value-0001',
          at: ['git:app/.env:3@c0ffee'],
          awsKeyId: 'AKIAEXAMPLE0001',
        },
        { secret: TOKEN, at: ['git:bot/config.js:12@c0ffee', 'file:bot/config.js:12'] },
        { secret: STRAY, at: ['git:billing/charge.ts:7@c0ffee'] },
      ]);
      const r = await importDiscovery(env.steward, found, { actor: 'test' });
      expect(r.linked).toBe(2);
      expect(r.identities.new).toBe(3);

      expect(await credentialLocations(env, 'AKIAEXAMPLE0001')).toEqual([
        'git:app/.env:3@c0ffee',
        'vault:secret/payments',
      ]);
      expect(await credentialLocations(env, 'slack-bot-token')).toEqual([
        'file:bot/config.js:12',
        'git:bot/config.js:12@c0ffee',
        'vault:secret/slack',
      ]);
      const tokenSecret = await resolveIdentity(
        env.steward.store,
        `secret:${env.steward.keys.fingerprint(TOKEN)}`,
      );
      expect(tokenSecret.status).toBe('linked');
      const slackCred = await env.steward.store.db
        .selectFrom('credentials')
        .select(['id', 'source'])
        .where('external_id', '=', 'slack-bot-token')
        .executeTakeFirstOrThrow();
      expect(tokenSecret.linked_to).toBe(slackCred.id);
      // declared in the manifest, now also found by the scan: the credential remembers the scan
      expect(slackCred.source).toBe('gitleaks:report.json');
      const stray = await resolveIdentity(env.steward.store, `secret:${env.steward.keys.fingerprint(STRAY)}`);
      expect(stray.status).toBe('active');
      expect(stray.linked_to).toBeNull();
      const now = env.clock.now().toISOString();
      expect((await loadRecord(env.steward.store, tokenSecret.id, now, now))!.linkedTo).toBe(slackCred.id);

      const head = (await env.steward.ledger.head()).seq;
      expect((await importDiscovery(env.steward, found, { actor: 'test' })).events).toBe(0);
      expect((await importManifest(env, dir)).events).toBe(0);
      expect((await env.steward.ledger.head()).seq).toBe(head);
      expect((await verifyLedger(env.steward.store, env.steward.keys)).ok).toBe(true);
    });
  });

  it('links in either order: a secret found first is linked when a manifest declares it, and later finds add locations', async () => {
    await withSteward(dialect, async (env) => {
      const dir = await setup(env);
      fs.writeFileSync(path.join(dir, 'm.yaml'), '');
      const first = await importDiscovery(
        env.steward,
        scan(env, [{ secret: TOKEN, at: ['git:a.js:1@aa'] }]),
        {
          actor: 'test',
        },
      );
      expect(first.linked).toBe(0);
      const fp = env.steward.keys.fingerprint(TOKEN);
      expect((await resolveIdentity(env.steward.store, `secret:${fp}`)).status).toBe('active');

      env.clock.advance(60_000);
      fs.writeFileSync(path.join(dir, 'm.yaml'), manifest(env));
      const m = await importManifest(env, dir);
      expect(m.linked).toBe(1);
      expect((await resolveIdentity(env.steward.store, `secret:${fp}`)).status).toBe('linked');
      expect(await credentialLocations(env, 'slack-bot-token')).toEqual([
        'git:a.js:1@aa',
        'vault:secret/slack',
      ]);

      env.clock.advance(60_000);
      const later = await importDiscovery(
        env.steward,
        scan(env, [{ secret: TOKEN, at: ['git:a.js:1@aa', 'git:b.js:9@bb'] }]),
        { actor: 'test' },
      );
      expect(later.linked).toBe(0); // already linked
      expect(later.credentials.changed).toBe(2); // the found one and the known one gain b.js
      expect((await resolveIdentity(env.steward.store, `secret:${fp}`)).status).toBe('linked');
      expect(await credentialLocations(env, 'slack-bot-token')).toEqual([
        'git:a.js:1@aa',
        'git:b.js:9@bb',
        'vault:secret/slack',
      ]);
      // the history of the known credential's identity shows the link as evidence
      const id = (await resolveIdentity(env.steward.store, ARN)).id;
      const events = await env.steward.store.db
        .selectFrom('events')
        .select(['type', 'payload'])
        .where('identity_id', '=', id)
        .where('type', '=', 'credential.changed')
        .execute();
      expect(events.some((e) => String(e.payload).includes(`identity:`))).toBe(true);
      expect((await verifyLedger(env.steward.store, env.steward.keys)).ok).toBe(true);
    });
  });
});

describe('declaring a fingerprint', () => {
  it('a manifest fingerprint must be a keyed hash; a pasted secret is refused without being echoed', async () => {
    const dir = tempFiles({
      'm.yaml': nhi('x', `type: token\ncredentials:\n  - id: t1\n    fingerprint: ${TOKEN}\n`),
    });
    const err = await parseManifestPaths([path.join(dir, 'm.yaml')]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ValidationError);
    const msg = (err as ValidationError).message;
    expect(msg).toContain('spec.credentials[0].fingerprint: expected hmac-sha256:<64 hex digits>');
    expect(msg).toContain(`a string of ${TOKEN.length} characters`);
    expect(msg).not.toContain(TOKEN);
  });

  it('`steward fingerprint` prints the keyed hash the scanners compute, and refuses an empty secret', async () => {
    const dir = tempFiles({ 'secret.txt': TOKEN + '\n', 'empty.txt': '' });
    const env = { db: path.join(dir, 's.db'), keys: path.join(dir, 'keys') };
    const r = await cli(['fingerprint', '--from-file', path.join(dir, 'secret.txt')], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^hmac-sha256:[0-9a-f]{64}\n$/);
    expect(r.stdout).not.toContain(TOKEN);
    // the same key computes the same fingerprint as an import does
    const again = await cli(['--json', 'fingerprint', '--from-file', path.join(dir, 'secret.txt')], env);
    expect(again.json<{ fingerprint: string }>().fingerprint).toBe(r.stdout.trim());
    const empty = await cli(['fingerprint', '--from-file', path.join(dir, 'empty.txt')], env);
    expect(empty.code).toBe(1);
    expect(empty.stderr).toContain('expected a secret, got nothing');
  });
});
