import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { describe, it, expect } from 'vitest';
import { parseAllDocuments, LineCounter } from 'yaml';
import {
  readYamlStream,
  normaliseBackstageOwner,
  normaliseTime,
  parseManifestPaths,
} from '../src/importers/manifest/parse.js';
import { ValidationError } from '../src/domain/errors.js';
import { formatProblem, type Problem } from '../src/domain/problems.js';

const EXAMPLES = path.resolve(import.meta.dirname, '..', 'examples');

function tempDir(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'steward-manifest-'));
  for (const [name, content] of Object.entries(files)) {
    const p = path.join(dir, name);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, content);
  }
  return dir;
}

/** Runs the parser and returns the problems it throws (fails the test when it does not throw). */
async function problemsOf(paths: string[]): Promise<Problem[]> {
  try {
    await parseManifestPaths(paths);
  } catch (e) {
    expect(e).toBeInstanceOf(ValidationError);
    return (e as ValidationError).problems;
  }
  throw new Error('expected parseManifestPaths to throw');
}

const lines = (problems: Problem[]): string[] => problems.map(formatProblem);

const HEAD = 'apiVersion: steward/v1\nkind: NonHumanIdentity\n';

describe('parseManifestPaths on the examples', () => {
  it('reads every identity, Backstage entity and file', async () => {
    const r = await parseManifestPaths([
      path.join(EXAMPLES, 'manifests'),
      path.join(EXAMPLES, 'catalog-info.yaml'),
    ]);
    expect(r.identities).toHaveLength(10);
    expect(r.files.map((f) => path.relative(EXAMPLES, f.path))).toEqual([
      'manifests/data.yaml',
      'manifests/growth.yaml',
      'manifests/payments.yaml',
      'manifests/platform.yaml',
      'catalog-info.yaml',
    ]);
    expect(r.files.map((f) => f.documents)).toEqual([2, 2, 3, 3, 4]);
    for (const f of r.files) {
      expect(f.sha256).toBe(crypto.createHash('sha256').update(fs.readFileSync(f.path)).digest('hex'));
    }
    const types = new Set(r.identities.map((i) => i.type));
    for (const t of [
      'service-account',
      'access-key',
      'oauth-app',
      'k8s-service-account',
      'deploy-key',
      'ai-agent',
      'certificate',
      'api-key',
    ]) {
      expect(types).toContain(t);
    }

    const byName = new Map(r.identities.map((i) => [i.name, i]));
    const settle = byName.get('payments-settlement-batch')!;
    expect(settle).toEqual({
      file: path.join(EXAMPLES, 'manifests', 'payments.yaml'),
      line: 2,
      name: 'payments-settlement-batch',
      environment: 'prod',
      labels: { 'cost-center': 'cc-1042' },
      type: 'access-key',
      source: 'aws',
      externalId: 'arn:aws:iam::123456789012:user/payments-settlement-batch',
      service: 'payments-api',
      purpose: "Nightly settlement batch; uploads settlement files to the bank's S3 drop",
      sensitivity: 'critical',
      owners: {
        business: 'person:alice@example.com',
        technical: 'person:leo@example.com',
        control: 'team:security',
      },
      primaryTeam: 'team:payments',
      approval: {
        approver: 'person:carol@example.com',
        approvedAt: '2026-03-02T00:00:00.000Z',
        ticket: 'SEC-2211',
      },
      scope: [
        { resource: 'arn:aws:s3:::acme-settlements', actions: ['s3:GetObject', 's3:PutObject'] },
        { resource: 'arn:aws:kms:eu-west-1:123456789012:key/settlements', actions: ['kms:Encrypt'] },
      ],
      credentials: [
        {
          id: 'AKIAEXAMPLESETTLE01',
          kind: 'access-key',
          issuedAt: '2026-03-02T09:14:00.000Z',
          lastRotatedAt: '2026-09-01T08:00:00.000Z',
          rotationMaxAge: '90d',
          locations: ['vault:secret/payments/settlement-batch'],
        },
      ],
      rotation: { maxAge: '90d' },
      revocation: {
        triggers: ['decommission', 'compromise', 'owner-departure'],
        owner: 'team:platform',
        runbook: 'https://runbooks.example.com/payments/revoke-settlement-key',
      },
    });

    expect(byName.get('payments-stripe-restricted-key')!.owners).toEqual({
      business: 'person:alice@example.com',
      technical: 'person:frank@example.com',
    });
    expect(byName.get('warehouse-loader')!.owners).toEqual({ technical: 'person:heidi@example.com' });
    expect(byName.get('warehouse-loader')!.credentials![0]!.rotationMaxAge).toBe('52w');
    const exporter = byName.get('observability-exporter')!;
    expect(exporter.sharedWith).toEqual(['team:platform', 'team:data', 'team:payments', 'team:growth']);
    expect(exporter).not.toHaveProperty('primaryTeam');
    expect(byName.get('infra-deploy-key')!.origin).toEqual({
      kind: 'pull-request',
      ref: 'https://github.com/acme/infra/pull/482',
      mergedBy: 'person:grace@example.com',
    });
    expect(byName.get('salesforce-connected-app')!.vendor).toEqual({
      name: 'Salesforce',
      contractingOwner: 'person:erin@example.com',
      contractEnds: '2027-01-31T00:00:00.000Z',
    });
    expect(byName.get('support-triage-agent')!.sponsor).toBe('person:erin@example.com');
    expect(byName.get('payments-ledger-db-client-cert')!.expires).toBe('2026-12-15T00:00:00.000Z');
    expect(byName.get('payments-ledger-db-client-cert')!.externalId).toBe(
      'CN=payments-api,OU=payments,O=Acme;serial=4F:2A:91:0C',
    );
    // only defined fields are present
    for (const i of r.identities) for (const v of Object.values(i)) expect(v).not.toBeUndefined();

    expect(r.services).toEqual([
      {
        file: path.join(EXAMPLES, 'catalog-info.yaml'),
        line: 2,
        kind: 'System',
        name: 'payments',
        owner: 'team:payments',
        description: 'Card and bank payments, settlement and reconciliation',
      },
      expect.objectContaining({
        kind: 'Component',
        name: 'payments-api',
        owner: 'team:payments',
        system: 'payments',
      }),
      expect.objectContaining({
        kind: 'Component',
        name: 'data-warehouse',
        owner: 'team:data',
        system: 'analytics',
      }),
      expect.objectContaining({
        kind: 'Component',
        name: 'support-portal',
        owner: 'person:erin',
        system: 'customer-support',
      }),
    ]);
  });

  it('every service named by the example manifests is in the catalog, and every owner is in the directory', async () => {
    const r = await parseManifestPaths([
      path.join(EXAMPLES, 'manifests'),
      path.join(EXAMPLES, 'catalog-info.yaml'),
    ]);
    const services = new Set(r.services.map((s) => s.name));
    for (const i of r.identities) if (i.service) expect(services).toContain(i.service);
    const csv = fs.readFileSync(path.join(EXAMPLES, 'directory.csv'), 'utf8');
    const known = new Set<string>();
    for (const row of csv.trim().split('\n').slice(1)) {
      const [type, id, , email] = row.split(',');
      known.add(type === 'person' ? `person:${email}` : `team:${id}`);
    }
    const refs = r.identities.flatMap((i) => [
      ...Object.values(i.owners ?? {}),
      ...(i.primaryTeam ? [i.primaryTeam] : []),
      ...(i.sharedWith ?? []),
      ...(i.sponsor ? [i.sponsor] : []),
      ...(i.approval?.approver ? [i.approval.approver] : []),
      ...(i.origin?.mergedBy ? [i.origin.mergedBy] : []),
      ...(i.revocation?.owner ? [i.revocation.owner] : []),
      ...(i.vendor?.contractingOwner ? [i.vendor.contractingOwner] : []),
    ]);
    for (const ref of refs) expect(known, ref).toContain(ref);
  });
});

describe('parseManifestPaths problems', () => {
  const BAD_TYPES = `${HEAD}metadata:
  name: bad-types
spec:
  type: robot
  sensitivity: extreme
  owners:
    business: alice@example.com
    technical: person:bob@example.com
  credentials:
    - id: k1
      expiresAt: next tuesday
      rotation:
        maxAge: 90 days
  sharedWith: team:data
  owner:
    business: person:x@example.com
  scope:
    - resource: s3
      actions: []
  revocation:
    triggers: [Decommission]
`;

  it('reports wrong types, bad refs, dates, durations and unknown fields with exact lines', async () => {
    const dir = tempDir({ 'bad.yaml': BAD_TYPES });
    const f = path.join(dir, 'bad.yaml');
    expect(lines(await problemsOf([dir]))).toEqual([
      `${f}:6: spec.type: expected one of service-account, api-key, access-key, oauth-app, token, certificate, ssh-key, deploy-key, k8s-service-account, workload, ai-agent, secret, got string "robot"`,
      `${f}:7: spec.sensitivity: expected one of critical, high, medium, low, got string "extreme"`,
      `${f}:9: spec.owners.business: expected person:<email> or team:<name>, got string "alice@example.com"`,
      `${f}:13: spec.credentials[0].expiresAt: expected date (YYYY-MM-DD) or ISO-8601 timestamp, got string "next tuesday"`,
      `${f}:15: spec.credentials[0].rotation.maxAge: expected duration like 90d, 12h, 52w or 1y, got string "90 days"`,
      `${f}:16: spec.sharedWith: expected list, got string "team:data"`,
      `${f}:17: spec.owner: unknown field`,
      `${f}:21: spec.scope[0].actions: expected non-empty list of actions, got empty list`,
      `${f}:23: spec.revocation.triggers[0]: expected kebab-case trigger such as decommission, compromise, role-change, owner-departure or contract-end, got string "Decommission"`,
    ]);
  });

  it('reports the same lines when the file is read by the yaml package (fallback path)', async () => {
    // A directive makes the file go through `yaml` itself; the directive and its marker shift lines by 2.
    const text = '%YAML 1.2\n---\n' + BAD_TYPES;
    expect(readYamlStream(text)).toBeUndefined();
    expect(readYamlStream(BAD_TYPES)).toBeDefined();
    const a = tempDir({ 'bad.yaml': text });
    const b = tempDir({ 'bad.yaml': BAD_TYPES });
    const strip = (ps: Problem[]) => ps.map((p) => ({ ...p, file: path.basename(p.file) }));
    const shifted = (ps: Problem[]) => strip(ps).map((p) => ({ ...p, line: p.line! - 2 }));
    expect(shifted(await problemsOf([a]))).toEqual(strip(await problemsOf([b])));
  });

  it('describes numbers, booleans, lists and mappings in "got"', async () => {
    const dir = tempDir({
      'n.yaml': `${HEAD}metadata:\n  name: 42\nspec:\n  purpose: true\n  owners: [person:a@example.com]\n  service:\n    name: x\n  approval:\n    ticket: 1234\n`,
    });
    const f = path.join(dir, 'n.yaml');
    expect(lines(await problemsOf([dir]))).toEqual([
      `${f}:4: metadata.name: expected string, got number 42`,
      `${f}:6: spec.purpose: expected string, got boolean true`,
      `${f}:7: spec.owners: expected mapping, got list`,
      `${f}:8: spec.service: expected string, got mapping`,
      `${f}:11: spec.approval.ticket: expected string, got number 1234`,
    ]);
  });

  it('reports missing required fields at the nearest parent', async () => {
    const dir = tempDir({
      'm.yaml': `${HEAD}metadata:\n  environment: prod\nspec:\n  vendor:\n    contractEnds: 2027-01-01\n  credentials:\n    - kind: x\n  scope:\n    - resource: '  '\n      actions: [read, '']\n`,
    });
    const f = path.join(dir, 'm.yaml');
    expect(lines(await problemsOf([dir]))).toEqual([
      `${f}:3: metadata.name: expected string, got nothing`,
      `${f}:6: spec.vendor.name: expected string, got nothing`,
      `${f}:9: spec.credentials[0].id: expected string, got nothing`,
      `${f}:11: spec.scope[0].resource: expected string, got empty string`,
      `${f}:12: spec.scope[0].actions[1]: expected string, got empty string`,
    ]);
  });

  it('reports YAML syntax errors with their line', async () => {
    const dir = tempDir({
      'syntax.yaml': `${HEAD}metadata:\n  name: x\n bad: indentation\n`,
      'quote.yaml': `${HEAD}metadata:\n  name: ok\nspec:\n  purpose: "unterminated\n  service: x\n`,
      'dup.yaml': `${HEAD}metadata:\n  name: x\n  name: y\n`,
    });
    const problems = await problemsOf([dir]);
    expect(problems.map((p) => [path.basename(p.file), p.line])).toEqual([
      ['dup.yaml', 5],
      ['quote.yaml', 8], // yaml reports a missing closing quote where the input ends
      ['syntax.yaml', 5],
    ]);
    for (const p of problems) expect(p.message).toMatch(/^invalid YAML: /);
    expect(problems[0]!.message).toContain('unique');
  });

  it('reports duplicate names and external ids at the second occurrence, naming the first', async () => {
    const doc = (name: string, ext: string) =>
      `${HEAD}metadata:\n  name: ${name}\nspec:\n  externalId: ${ext}\n`;
    const dir = tempDir({
      'a.yaml': doc('one', 'arn:aws:iam::1:role/x'),
      'b.yaml': `# second file\n${doc('two', 'ext-2')}---\n${doc('one', 'arn:aws:iam::1:role/x')}`,
    });
    const a = path.join(dir, 'a.yaml');
    const b = path.join(dir, 'b.yaml');
    expect(lines(await problemsOf([dir]))).toEqual([
      `${b}:12: metadata.name: expected a unique name, got "one" which is already used at ${a}:4`,
      `${b}:14: spec.externalId: expected a unique externalId, got "arn:aws:iam::1:role/x" which is already used at ${a}:6`,
    ]);
  });

  it('rejects other apiVersions and kinds, and non-mapping documents', async () => {
    const dir = tempDir({
      'k8s.yaml':
        'apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\n---\n- a\n- b\n---\napiVersion: steward/v1\nkind: Identity\n',
    });
    const f = path.join(dir, 'k8s.yaml');
    expect(lines(await problemsOf([dir]))).toEqual([
      `${f}:1: apiVersion: expected apiVersion steward/v1 kind NonHumanIdentity or a backstage.io entity, got apiVersion "v1" kind "Secret"`,
      `${f}:6: expected a mapping with apiVersion and kind, got list`,
      `${f}:10: kind: expected apiVersion steward/v1 kind NonHumanIdentity or a backstage.io entity, got apiVersion "steward/v1" kind "Identity"`,
    ]);
  });

  it('reports a path that does not exist, and collects problems from every file', async () => {
    const dir = tempDir({
      'ok.yaml': `${HEAD}metadata:\n  name: fine\n`,
      'bad.yaml': `${HEAD}metadata:\n  name: x\n  nmae: y\n`,
    });
    const missing = path.join(dir, 'nope');
    let err: unknown;
    try {
      await parseManifestPaths([dir, missing]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ValidationError);
    const v = err as ValidationError;
    expect(v.message.split('\n')[0]).toBe('2 problem(s) in manifests; nothing was imported');
    expect(lines(v.problems)).toEqual([
      `${missing}: path does not exist`,
      `${path.join(dir, 'bad.yaml')}:5: metadata.nmae: unknown field`,
    ]);
  });

  it('rejects a directory without manifests', async () => {
    const dir = tempDir({ 'readme.txt': 'hi' });
    expect(lines(await problemsOf([dir]))).toEqual([
      `${dir}: expected .yaml or .yml files in directory, got none`,
    ]);
  });
});

describe('parseManifestPaths normalisation', () => {
  it('walks directories in sorted order, skipping hidden entries and node_modules', async () => {
    const doc = (name: string) => `${HEAD}metadata:\n  name: ${name}\n`;
    const dir = tempDir({
      'b.yml': doc('b'),
      'a/z.yaml': doc('az'),
      'a/y.YAML': doc('ay'),
      '.hidden/x.yaml': doc('hidden'),
      'node_modules/x.yaml': doc('nm'),
      '.dot.yaml': doc('dot'),
      'notes.md': '# not yaml',
      'empty.yaml': '# nothing here\n---\n',
    });
    const r = await parseManifestPaths([dir, path.join(dir, 'b.yml')]);
    expect(r.identities.map((i) => i.name)).toEqual(['ay', 'az', 'b']);
    expect(r.files.map((f) => [path.relative(dir, f.path), f.documents])).toEqual([
      ['a/y.YAML', 1],
      ['a/z.yaml', 1],
      ['b.yml', 1],
      ['empty.yaml', 0],
    ]);
  });

  it('trims strings, treats empty values as missing, normalises times, keeps durations, ignores annotations', async () => {
    const dir = tempDir({
      'n.yaml': `---
# leading comment
${HEAD}metadata:
  name: "  spaced  "
  labels:
    tier: 1
    public: false
  annotations:
    anything: { goes: [1, 2] }
spec:
  purpose: ''
  service: ~
  owners:
    business: ' person:a@example.com '
    technical:
  approval:
    approvedAt: 2025-01-31 10:00:00+02:00
  expires: 2025-01-31
  rotation: { maxAge: 12h }
  credentials:
    - id: c1
      issuedAt: 2025-01-31T10:00:00Z
      rotation: { maxAge: 1y }
  revocation: {}
`,
    });
    const r = await parseManifestPaths([dir]);
    expect(r.identities).toEqual([
      {
        file: path.join(dir, 'n.yaml'),
        line: 3,
        name: 'spaced',
        labels: { tier: '1', public: 'false' },
        owners: { business: 'person:a@example.com' },
        approval: { approvedAt: '2025-01-31T08:00:00.000Z' },
        expires: '2025-01-31T00:00:00.000Z',
        rotation: { maxAge: '12h' },
        credentials: [{ id: 'c1', issuedAt: '2025-01-31T10:00:00.000Z', rotationMaxAge: '1y' }],
      },
    ]);
  });

  it('normalises Backstage owners', () => {
    expect(normaliseBackstageOwner('team-a')).toBe('team:team-a');
    expect(normaliseBackstageOwner('group:team-a')).toBe('team:team-a');
    expect(normaliseBackstageOwner('group:default/team-a')).toBe('team:team-a');
    expect(normaliseBackstageOwner('user:jdoe')).toBe('person:jdoe');
    expect(normaliseBackstageOwner('user:default/jdoe')).toBe('person:jdoe');
    expect(normaliseBackstageOwner('team:x')).toBe('team:x');
    expect(normaliseBackstageOwner('person:a@example.com')).toBe('person:a@example.com');
    expect(normaliseBackstageOwner('component:foo')).toBeUndefined();
  });

  it('normalises times', () => {
    expect(normaliseTime('2025-01-31')).toBe('2025-01-31T00:00:00.000Z');
    expect(normaliseTime('2025-01-31T10:00:00Z')).toBe('2025-01-31T10:00:00.000Z');
    expect(normaliseTime('2025-01-31T10:00:00.5-01:30')).toBe('2025-01-31T11:30:00.500Z');
    expect(normaliseTime('2025-01-31T10:00')).toBe('2025-01-31T10:00:00.000Z');
    expect(normaliseTime(new Date('2025-01-31T10:00:00Z'))).toBe('2025-01-31T10:00:00.000Z');
    for (const bad of ['2025-02-30', '2025-13-01', '31/01/2025', 'tomorrow', '2025-01-31T25:00:00Z', '']) {
      expect(normaliseTime(bad), bad).toBeUndefined();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The fast reader must agree with the yaml package whenever it accepts a file.
// ---------------------------------------------------------------------------------------------

/** Undefined when they agree, else a description of the difference. */
function disagreement(text: string): string | undefined {
  const fast = readYamlStream(text);
  if (!fast) return undefined;
  const lc = new LineCounter();
  const docs = parseAllDocuments(text, { prettyErrors: false, lineCounter: lc });
  const errors = 'empty' in docs ? docs.errors : docs.flatMap((d) => d.errors);
  if (errors.length) return `yaml reports ${errors[0]!.message}`;
  const ys = ('empty' in docs ? [] : docs)
    .map((d) => ({ d, v: d.toJS() as unknown }))
    .filter((x) => x.v !== null);
  const fs_ = fast.filter((d) => d.value !== null);
  if (ys.length !== fs_.length) return `documents ${ys.length} vs ${fs_.length}`;
  for (let k = 0; k < ys.length; k++) {
    const y = ys[k]!;
    const f = fs_[k]!;
    if (!isDeepStrictEqual(y.v, f.value))
      return `doc ${k}: yaml ${JSON.stringify(y.v)} fast ${JSON.stringify(f.value)}`;
    const range = (y.d.contents as { range?: [number, number, number] } | null)?.range;
    const line = range ? lc.linePos(range[0]).line : 0;
    if (line !== f.line) return `doc ${k}: line ${line} vs ${f.line}`;
  }
  return undefined;
}

describe('js-yaml reading agrees with the yaml package', () => {
  it('reads the examples (so they never pay for the slow path)', () => {
    for (const f of [
      ...fs.readdirSync(path.join(EXAMPLES, 'manifests')).map((n) => path.join('manifests', n)),
      'catalog-info.yaml',
    ]) {
      const text = fs.readFileSync(path.join(EXAMPLES, f), 'utf8');
      expect(readYamlStream(text), f).toBeDefined();
      expect(disagreement(text), f).toBeUndefined();
    }
  });

  it('agrees with the yaml package on hand-picked edge cases', () => {
    const cases = [
      'a: b\n\n\nc: d\n',
      'a: \'x\' # c\nb: "y"  \nc: [a, b] # c\nd:  #c\n',
      'a: x:y\nb: x :y\nc: x#y\nd: x  # c # d\ne: -x\nf: .x\ng: +x\n',
      'a: 1\r\nb: c  \r\n',
      '---\n---\n',
      'a:\n- b\n- c\nd: e\n',
      'a: "\\u00e9\\/\\"\\\\\\t"\n',
      'a: {x: y}\nb: { x: y }\nc: [ ]\nd: { }\ne: [] #x\n',
      "a: ''\nb: \"\"\nc: 'x''y'\n",
      'a:\n  b:\n    c: d\n  e: f\ng: h\n',
      'a:\n    - x\n    - y\n',
      '-\n- a\n',
      'a:\n\n  b: c\n',
      '---\n# c\napiVersion: x\n',
      'a: b #c\n  #d\n',
      'a: [x, "y,z", \'w\']\n',
      'a: ~\nb: Null\nc: TRUE\nd: tRUE\ne: yes\nf: on\n',
      'a:\n  - x\n  -\n  - y\n',
      'a: "é"\nb: 😀\nc: "\\ud83d\\ude00"\n',
      'a:    \n  b: c\n',
      'a: x,y\nb: x]\nc: x}\n',
      '- a: b\n  c: d\n- e\n',
      'a: "x\\"\n',
      'a: [a,\n b]\n',
      'a: b\n  c\n',
      'a: 012\nb: 0x1F\nc: 1e3\nd: .inf\ne: 1_000\n',
    ];
    for (const c of cases) expect(disagreement(c), JSON.stringify(c)).toBeUndefined();
  });

  it('reads many documents quickly', async () => {
    const doc = (i: number) => `---
${HEAD}metadata:
  name: svc-${i}
  environment: prod
spec:
  type: service-account
  externalId: arn:aws:iam::123456789012:role/svc-${i}
  owners:
    business: person:alice@example.com
    technical: team:payments
  sharedWith: [team:data, team:platform]
  credentials:
    - id: key-${i}
      issuedAt: 2025-01-31
      rotation: { maxAge: 90d }
`;
    const files: Record<string, string> = {};
    for (let f = 0; f < 10; f++)
      files[`f${f}.yaml`] = Array.from({ length: 1000 }, (_, i) => doc(f * 1000 + i)).join('');
    const dir = tempDir(files);
    const t0 = performance.now();
    const r = await parseManifestPaths([dir]);
    const ms = performance.now() - t0;
    expect(r.identities).toHaveLength(10_000);
    expect(r.identities[9_999]!.line).toBe(999 * 17 + 2);
    // generous bound: about 50 µs per document on a slow, shared machine
    expect(ms).toBeLessThan(10_000);
  });
});
