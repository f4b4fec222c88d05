import fs from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, it, expect } from 'vitest';
import { dialects, withSteward } from '../helpers/steward.js';
import { corpus, corporaAvailable } from '../helpers/corpora.js';
import { tempFiles } from '../helpers/files.js';
import {
  authMethodOfDisplayName,
  importer,
  readVaultAudit,
  type VaultReadOptions,
} from '../../src/importers/vault-audit/index.js';
import { importDiscovery } from '../../src/inventory/import-discovery.js';
import { loadRecord } from '../../src/inventory/record.js';
import { resolveIdentity } from '../../src/inventory/queries.js';
import { ValidationError } from '../../src/domain/errors.js';
import type { Steward } from '../../src/app.js';

const LOG = 'vault-audit/test-audit.log';
const keys = { fingerprint: (s: string) => `fp:${s.length}` };
const opts = (extra: Partial<VaultReadOptions> = {}): VaultReadOptions => ({
  skipInvalid: false,
  keys,
  ...extra,
});

const ENTITY = 'vault:entity:e4f5c67a-6f7e-789d-ae56-a1fe3ae23046';
const OIDC_2020 = 'hmac-sha256:eb605bd7f8a5ceb951b9ab42cae6d6c3f12f203cb2c2a78e33e899f77dceb931';
const OIDC_2021 = 'hmac-sha256:b31666f6a411cf7f9a950833e71035a863a1bb3ab536318529057e3f95787ac4';
const RUNNER = 'hmac-sha256:8fa4f7f3d1fd812064950025cde2b1565829a9dc5075253399e5ede8f8a1d98e';
const HOME_ASSISTANT = 'hmac-sha256:2ee197e25b333d83ba45d0c40aca153e0ad6c9e42b04b6de6a5b5b575de58771';

/** The attributes a record shows for one sighting (the write path keeps each source's under its own). */
function attributesOf(attributes: Record<string, unknown>, sighting: string): Record<string, unknown> {
  return (attributes[sighting] as Record<string, unknown> | undefined) ?? attributes;
}

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

describe.runIf(corporaAvailable).each(dialects)('vault audit corpus on $name', (dialect) => {
  it('imports the Vault test log: entities and tokens, HMAC’d accessors kept as logged', async () => {
    const { batch, skipped, stats } = await readVaultAudit([corpus(LOG)], opts());
    expect(skipped).toEqual([]);
    expect(stats).toEqual({
      lines: 13,
      attributed: 7,
      unattributed: { unauthenticated: 2, 'kmip-request': 1, 'kmip-response': 3 },
      skipped: 0,
    });
    expect(batch).toMatchObject({ source: 'vault-audit', scope: 'vault', snapshot: false });
    expect(batch.observedAt).toBe('2026-05-20T13:51:00.100Z'); // nanoseconds cut to milliseconds
    expect(batch.identities.map((i) => [i.externalId, i.name])).toEqual([
      [ENTITY, 'oidc-12349999999999999999'],
      [`vault:token:${HOME_ASSISTANT}`, 'token-c1d6c089-2f46-ff11-5988-38636bddf8d9-homeassistant'],
      [`vault:token:${RUNNER}`, 'token-375f9cb3-4355-42c7-eab5-029f8a310ca7-runner'],
    ]);
    // no client token (HMAC'd or not) is kept anywhere
    expect(JSON.stringify(batch)).not.toMatch(/9cc3baa3c2bd7a4b|client_token/);

    await withSteward(dialect, async (env) => {
      const r = await importDiscovery(env.steward, batch, { actor: 'test' });
      expect(r.identities).toEqual({ new: 3, changed: 0, unchanged: 0, vanished: 0 });
      expect(r.credentials).toEqual({ new: 4, changed: 0, unchanged: 0, vanished: 0 });

      // one OIDC entity, two tokens a year apart
      const oidc = await record(env.steward, ENTITY);
      expect(oidc.kind).toBe('token');
      expect(oidc.source).toBe('vault-audit');
      expect(oidc.lastUsedAt).toBe('2021-12-30T17:11:12.468Z');
      expect(attributesOf(oidc.attributes, 'vault-audit:vault')).toEqual({
        authMethod: 'oidc',
        policies: ['default', 'group-admin'],
        tokenType: 'service',
        usage: {
          requests: 2,
          operations: { help: 1, update: 1 },
          paths: ['ca/roles/example', 'sys/capabilities-self'],
          errors: 0,
          remoteAddresses: ['10.6.8.34', '67.43.156.13'],
          firstSeen: '2020-12-01T20:29:04.356Z',
          lastSeen: '2021-12-30T17:11:12.468Z',
        },
      });
      expect(
        oidc.credentials
          .map((c) => [c.externalId, c.kind, c.issuedAt, c.lastUsedAt])
          .sort((a, b) => String(a[2]).localeCompare(String(b[2]))),
      ).toEqual([
        [OIDC_2020, 'vault-token', '2020-12-01T20:28:40.000Z', '2020-12-01T20:29:04.360Z'],
        [OIDC_2021, 'vault-token', '2021-12-30T17:11:09.000Z', '2021-12-30T17:11:12.468Z'],
      ]);

      // a Nomad task's token without an entity: the token is the identity
      const runner = await record(env.steward, `vault:token:${RUNNER}`);
      expect(runner.lastUsedAt).toBe('2021-06-29T17:26:11.409Z');
      expect(attributesOf(runner.attributes, 'vault-audit:vault')).toMatchObject({
        authMethod: 'token',
        policies: ['app-continuous-delivery', 'app-github-runner', 'default'],
        usage: {
          requests: 1,
          operations: { read: 1 },
          paths: ['secret/data/apps/continuous-delivery/aws-bucket-sse-c'],
        },
      });
      expect(runner.credentials.map((c) => [c.externalId, c.issuedAt])).toEqual([
        [RUNNER, '2021-04-29T21:53:46.000Z'],
      ]);
      expect(batch.identities[2]!.credentials![0]!.attributes).toEqual({ ttl: 259200, tokenType: 'service' });

      const again = await importDiscovery(env.steward, (await readVaultAudit([corpus(LOG)], opts())).batch, {
        actor: 'test',
      });
      expect(again.events).toBe(0);
    });
  });

  it('gzip gives the same batch', async () => {
    const dir = tempFiles({});
    const gz = path.join(dir, 'audit.log.gz');
    fs.writeFileSync(gz, gzipSync(fs.readFileSync(corpus(LOG))));
    const plain = (await readVaultAudit([corpus(LOG)], opts())).batch;
    const zipped = (await readVaultAudit([gz], opts())).batch;
    expect({ ...zipped, files: [] }).toEqual({ ...plain, files: [] });
    expect(zipped.files[0]!.sha256).not.toBe(plain.files[0]!.sha256); // the raw (gzip) bytes are hashed
  });
});

describe('vault audit', () => {
  const line = (o: Record<string, unknown>) => JSON.stringify(o);
  const auth = (accessor: string, extra: Record<string, unknown> = {}) => ({
    client_token: 'hmac-sha256:ct',
    accessor,
    display_name: 'approle',
    policies: ['app', 'default'],
    entity_id: 'ent-1',
    token_type: 'service',
    token_ttl: 1200,
    ...extra,
  });
  const request = (p: string, extra: Record<string, unknown> = {}) => ({
    id: `req-${p}`,
    operation: 'read',
    mount_type: 'kv',
    namespace: { id: 'ns1' },
    path: p,
    remote_address: '10.0.0.7',
    ...extra,
  });

  it('bad lines are named by line and field; --skip-invalid imports the rest', async () => {
    const good = line({
      time: '2024-01-01T00:00:00Z',
      type: 'request',
      auth: auth('hmac-sha256:a1'),
      request: request('secret/data/x'),
    });
    const dir = tempFiles({
      'audit.log': [
        good,
        '{not json',
        '[]',
        line({ time: 12, type: 'request' }),
        line({ time: '2024-01-01T00:00:00Z', type: 'request', auth: 'x' }),
        line({
          time: '2024-01-01T00:00:00Z',
          type: 'request',
          auth: auth('hmac-sha256:a1', { token_ttl: '1h' }),
        }),
        '',
        line({
          time: '2024-01-01T00:00:01Z',
          type: 'response',
          auth: auth('hmac-sha256:a1'),
          request: request('secret/data/x', { path: 7 }),
        }),
        line({
          time: '2024-01-01T00:00:02Z',
          type: 'response',
          auth: auth('hmac-sha256:a1'),
          request: request('secret/data/x'),
        }),
      ].join('\n'),
    });
    const file = path.join(dir, 'audit.log');
    const err = await rejection(readVaultAudit([dir], opts()));
    expect(err.message).toMatch(/^6 invalid Vault audit line\(s\); nothing was imported/);
    expect(err.problems.map((p) => [p.line, p.field, p.message])).toEqual([
      [2, undefined, expect.stringMatching(/^expected valid JSON, got /)],
      [3, undefined, 'expected a Vault audit entry (a JSON object), got an array'],
      [4, 'time', 'expected an ISO-8601 timestamp string, got number 12'],
      [5, 'auth', 'expected an object, got string "x"'],
      [6, 'auth.token_ttl', 'expected a number of seconds, got string "1h"'],
      [8, 'request.path', 'expected a string, got number 7'],
    ]);
    expect(err.problems.every((p) => p.file === file)).toBe(true);

    const { batch, skipped, stats } = await readVaultAudit([dir], opts({ skipInvalid: true }));
    expect(skipped.map((p) => p.line)).toEqual([2, 3, 4, 5, 6, 8]);
    expect(stats).toMatchObject({ lines: 8, attributed: 2, skipped: 6 });
    expect(batch.identities).toHaveLength(1);
    expect(batch.identities[0]!.lastUsedAt).toBe('2024-01-01T00:00:02.000Z');
  });

  it('a login names the token it issues; errors count once per call; one namespace is the scope', async () => {
    const login = request('auth/approle/login', { operation: 'update', mount_type: 'approle' });
    const dir = tempFiles({
      'audit.log': [
        line({
          time: '2024-03-01T10:00:00.123456789Z',
          type: 'request',
          auth: { token_type: 'default' },
          request: login,
        }),
        line({
          time: '2024-03-01T10:00:00.200Z',
          type: 'response',
          auth: { token_type: 'default' },
          request: login,
          response: {
            mount_type: 'approle',
            auth: auth('hmac-sha256:new', { display_name: 'approle', metadata: { role_name: 'ci' } }),
          },
        }),
        line({
          time: '2024-03-01T10:00:05Z',
          type: 'request',
          auth: auth('hmac-sha256:new'),
          request: request('secret/data/ci'),
        }),
        line({
          time: '2024-03-01T10:00:05Z',
          type: 'response',
          auth: auth('hmac-sha256:new'),
          request: request('secret/data/ci'),
        }),
        line({
          time: '2024-03-01T10:00:06Z',
          type: 'request',
          auth: auth('hmac-sha256:new'),
          request: request('secret/data/prod', { operation: 'list' }),
          error: 'permission denied',
        }),
        line({
          time: '2024-03-01T10:00:06Z',
          type: 'response',
          auth: auth('hmac-sha256:new'),
          request: request('secret/data/prod', { operation: 'list' }),
          error: '1 error occurred:\n\t* permission denied\n\n',
        }),
      ].join('\n'),
    });
    const { batch, stats } = await readVaultAudit([dir], opts());
    expect(batch.scope).toBe('vault:ns1');
    expect(stats.unattributed).toEqual({ unauthenticated: 1 });
    expect(batch.identities).toEqual([
      {
        externalId: 'vault:entity:ent-1',
        name: 'approle',
        kind: 'token',
        lastUsedAt: '2024-03-01T10:00:06.000Z',
        attributes: {
          authMethod: 'approle',
          policies: ['app', 'default'],
          tokenType: 'service',
          usage: {
            requests: 2,
            operations: { list: 1, read: 1 },
            paths: ['secret/data/ci', 'secret/data/prod'],
            errors: 1,
            remoteAddresses: ['10.0.0.7'],
            firstSeen: '2024-03-01T10:00:00.200Z',
            lastSeen: '2024-03-01T10:00:06.000Z',
          },
        },
        credentials: [
          {
            externalId: 'hmac-sha256:new',
            kind: 'vault-token',
            lastUsedAt: '2024-03-01T10:00:06.000Z',
            issuedAt: '2024-03-01T10:00:00.200Z', // no token_issue_time: the login response's time
            attributes: { ttl: 1200, tokenType: 'service' },
          },
        ],
      },
    ]);
  });

  it('an over-long line fails with its line number', async () => {
    const dir = tempFiles({
      'audit.log': `${line({ time: '2024-01-01T00:00:00Z', type: 'request' })}\n${line({ time: '2024-01-01T00:00:00Z', type: 'request', pad: 'x'.repeat(300) })}\n`,
    });
    const err = await rejection(readVaultAudit([dir], opts({ maxRecordChars: 200 })));
    expect(err.problems[0]!.line).toBe(2);
    expect(err.problems[0]!.message).toMatch(/at most 200 characters/);
  });

  it('reads the auth method from display names', () => {
    expect(authMethodOfDisplayName('oidc-12349999999999999999')).toBe('oidc');
    expect(authMethodOfDisplayName('token-375f9cb3-runner')).toBe('token');
    expect(authMethodOfDisplayName('approle')).toBe('approle');
    expect(authMethodOfDisplayName('root')).toBe('token');
    expect(authMethodOfDisplayName('my-service')).toBeUndefined();
    expect(importer.source).toBe('vault-audit');
  });
});
