/**
 * Hostile input: JSON nested 100,000 levels deep, where a record's field is expected and where a
 * field is not read. Each importer answers with a clear error naming the file, line and JSON path,
 * or passes over what it does not read — never a stack overflow, never a half-read import.
 * (Fixtures written by us: the corpora hold no such files.)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it, expect, afterAll } from 'vitest';
import { ValidationError } from '../../src/domain/errors.js';
import { importer as awsIam } from '../../src/importers/aws-iam/index.js';
import { importer as kubernetes } from '../../src/importers/kubernetes/index.js';
import { importer as vaultAudit } from '../../src/importers/vault-audit/index.js';
import { importer as cloudtrail } from '../../src/importers/cloudtrail/index.js';
import type { SourceImporter } from '../../src/importers/source.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'steward-deep-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const DEPTH = 100_000;
const deepArray = '['.repeat(DEPTH) + ']'.repeat(DEPTH);
const deepObject = '{"a":'.repeat(DEPTH) + '1' + '}'.repeat(DEPTH);
const write = (name: string, text: string) => {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, text);
  return f;
};
const read = (imp: SourceImporter, file: string, skipInvalid = false) =>
  imp.read([file], { skipInvalid, keys: { fingerprint: (s: string) => `fp:${s.length}` } });
async function refusal(p: Promise<unknown>): Promise<ValidationError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ValidationError);
    return e as ValidationError;
  }
  throw new Error('expected a refusal');
}

const ARN = 'arn:aws:iam::123456789012:user/ci';
const authz = (user: Record<string, unknown>) =>
  JSON.stringify({
    UserDetailList: [
      { UserName: 'ci', UserId: 'AIDAEXAMPLE', Arn: ARN, CreateDate: '2024-01-01T00:00:00Z', ...user },
    ],
    GroupDetailList: [],
    RoleDetailList: [],
    Policies: [],
  });

describe('deeply nested JSON (100,000 levels)', () => {
  it('aws-iam: deep tags are refused with their path; a deep inline policy document grants nothing', async () => {
    const tags = write('iam-tags.json', authz({ Tags: '__X__' }).replace('"__X__"', deepArray));
    const err = await refusal(read(awsIam, tags));
    expect(err.problems).toEqual([
      expect.objectContaining({ file: tags, line: 1, field: 'UserDetailList[0].Tags[0]' }),
    ]);
    expect(err.message).toMatch(/nothing was imported/);

    const policy = write(
      'iam-policy.json',
      authz({ UserPolicyList: [{ PolicyName: 'p', PolicyDocument: '__X__' }] }).replace(
        '"__X__"',
        deepObject,
      ),
    );
    const r = await read(awsIam, policy);
    expect(r.batch.identities.map((i) => i.externalId)).toEqual([ARN]);
    expect(r.batch.identities[0]!.entitlements ?? []).toEqual([]);
  });

  it('kubernetes: deep labels on a service account are passed over; a deep item is refused', async () => {
    const list = (item: string) =>
      `{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"ci","namespace":"build"}},${item}]}`;
    const labels = write(
      'k8s-labels.json',
      list(
        `{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"deep","namespace":"build","labels":${deepObject}}}`,
      ),
    );
    const r = await read(kubernetes, labels);
    expect(r.batch.identities.map((i) => i.externalId).sort()).toEqual([
      'system:serviceaccount:build:ci',
      'system:serviceaccount:build:deep',
    ]);
    const item = write('k8s-item.json', list(deepArray));
    const err = await refusal(read(kubernetes, item));
    expect(err.problems[0]).toMatchObject({ file: item });
    expect(err.problems[0]!.field ?? '').toMatch(/items\[1\]/);
  });

  it('vault-audit and cloudtrail: a deep line is a bad line (named by line) or passed over; the rest is read', async () => {
    const good = JSON.stringify({
      time: '2024-01-01T00:00:00Z',
      type: 'response',
      auth: {
        accessor: 'hmac-sha256:aaaa',
        token_type: 'service',
        display_name: 'ci',
        policies: ['default'],
      },
      request: { path: 'secret/data/ci', operation: 'read' },
    });
    const vault = write(
      'vault.log',
      `${good}\n{"time":"2024-01-01T00:00:01Z","type":"request","request":${deepObject}}\n${deepArray}\n`,
    );
    const strict = await refusal(read(vaultAudit, vault));
    expect(strict.problems.map((p) => p.line)).toContain(3);
    const skipping = await read(vaultAudit, vault, true);
    expect(skipping.skipped.map((p) => p.line)).toContain(3);
    expect(skipping.batch.identities.length).toBeGreaterThan(0);

    const event = JSON.stringify({
      eventTime: '2024-01-01T00:00:00Z',
      eventSource: 's3.amazonaws.com',
      eventName: 'GetObject',
      userIdentity: {
        type: 'IAMUser',
        arn: ARN,
        accountId: '123456789012',
        accessKeyId: 'AKIAEXAMPLEEXAMPLE00',
      },
    });
    const trail = write(
      'trail.jsonl',
      `${event}\n${deepArray}\n${event.replace('"GetObject"', `"GetObject","requestParameters":${deepObject}`)}\n`,
    );
    const bad = await refusal(read(cloudtrail, trail));
    expect(bad.problems.map((p) => p.line)).toEqual([2]);
    const ct = await read(cloudtrail, trail, true);
    expect(ct.batch.identities.map((i) => i.externalId)).toEqual([ARN]);
    expect((ct.batch.identities[0]!.attributes!.usage as { events: number }).events).toBe(2);
  });
});
