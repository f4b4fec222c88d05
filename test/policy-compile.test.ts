import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { loadRules, exampleDocument, testRule } from '../src/policy/rules.js';
import { compile } from '../src/policy/compile.js';
import { createEnvironment } from '../src/policy/environment.js';
import type { NhiDocument } from '../src/policy/document.js';

const rules = loadRules();

function outcome(f: () => unknown): unknown {
  try {
    return f();
  } catch {
    return 'error';
  }
}

const time = fc
  .integer({ min: Date.parse('2018-01-01'), max: Date.parse('2028-01-01') })
  .map((t) => new Date(t).toISOString());
const word = fc.constantFrom(
  'prod',
  'dev',
  'staging',
  'tbd',
  'payments',
  'ci',
  '',
  'AKIA0000',
  'arn:aws:iam::1:role/x',
);
const principal = fc.record(
  {
    ref: fc.constantFrom('person:a@x.io', 'team:payments', 'person:b@x.io'),
    status: fc.constantFrom('active', 'departed', 'unknown'),
    known: fc.boolean(),
    leftAt: time,
  },
  { requiredKeys: ['ref'] },
);
/** Attribute values of any JSON type, as sources write them (integers become CEL ints). */
const attribute = fc.oneof(
  fc.boolean(),
  fc.integer({ min: 0, max: 50 }),
  fc.double({ min: 0, max: 5, noNaN: true }),
  word,
  fc.array(word, { maxLength: 3 }),
  fc.dictionary(
    fc.constantFrom('errors', 'accessDenied', 'userAgents', 'sourceIps', 'events'),
    fc.oneof(
      fc.integer({ min: 0, max: 30 }),
      fc.array(word, { maxLength: 2 }),
      fc.dictionary(word, fc.integer({ min: 0, max: 9 }), { maxKeys: 2 }),
    ),
    { maxKeys: 3 },
  ),
);
const attributes = fc.dictionary(
  fc.constantFrom(
    'unmanaged',
    'thirdParty',
    'consolePassword',
    'passwordEnabled',
    'usage',
    'serviceLinked',
    'defaultAccount',
    'publisher',
    'signOff',
    'trustedPrincipals',
    'account',
    'ttl',
    'root',
    'kind',
  ),
  attribute,
  { maxKeys: 5 },
);
const credential = fc.record(
  {
    id: word,
    kind: fc.constantFrom('access-key', 'token', 'client-secret', 'certificate', 'aws-access-key'),
    status: fc.constantFrom('active', 'inactive', 'expired', 'vanished'),
    issuedAt: time,
    lastRotatedAt: time,
    expiresAt: time,
    rotationMaxAgeDays: fc.integer({ min: 1, max: 400 }),
    locations: fc.array(
      fc.constantFrom('vault:secret/prod/x', 'git:app/.env:3@abc', 'file:dev/config:1', 'k8s:staging/ns'),
      { maxLength: 3 },
    ),
    lastUsedAt: time,
    attributes,
  },
  { requiredKeys: ['id'] },
);
const entitlement = fc.record(
  {
    resource: fc.constantFrom('*', 'arn:aws:s3:::prod-bucket', 'projects/dev-1', 'entra:app:graph'),
    actions: fc.array(
      fc.constantFrom(
        '*',
        's3:*',
        's3:GetObject',
        'roles/owner',
        'cluster-admin',
        '!iam:*',
        'Directory.ReadWrite.All',
      ),
      { maxLength: 3 },
    ),
    status: fc.constantFrom('active', 'revoked'),
    grantedAt: time,
    lastUsedAt: time,
    admin: fc.boolean(),
    wildcard: fc.boolean(),
    attributes,
  },
  { requiredKeys: ['resource'] },
);
const document = fc.record(
  {
    kind: fc.constantFrom(
      'service-account',
      'access-key',
      'api-key',
      'token',
      'ai-agent',
      'secret',
      'k8s-service-account',
      'workload',
    ),
    source: fc.constantFrom('manifest', 'aws-iam', 'kubernetes', 'github', 'gitleaks'),
    environment: word,
    status: fc.constantFrom('active', 'active', 'disabled', 'vanished', 'linked'),
    sensitivity: fc.constantFrom('critical', 'high', 'medium', 'low'),
    purpose: word,
    labels: fc.dictionary(fc.constantFrom('env', 'sign-off', 'team'), word, { maxKeys: 2 }),
    owners: fc.record(
      { business: principal, technical: principal, control: principal },
      { requiredKeys: [] },
    ),
    primaryTeam: principal,
    sharedWith: fc.array(principal, { maxLength: 3 }),
    approval: fc.record({ approver: principal, approvedAt: time, ticket: word }, { requiredKeys: [] }),
    vendor: fc.record(
      { name: word, contractingOwner: principal, contractEnds: time },
      { requiredKeys: ['name'] },
    ),
    rotation: fc.record({ maxAgeDays: fc.integer({ min: 1, max: 400 }) }, { requiredKeys: [] }),
    expiresAt: time,
    revocation: fc.record(
      { triggers: fc.array(word, { maxLength: 2 }), owner: principal, runbook: word },
      { requiredKeys: [] },
    ),
    sponsor: principal,
    declared: fc.boolean(),
    sightings: fc.array(
      fc.constantFrom('aws-iam:1', 'kubernetes:prod', 'kubernetes:dev', 'gitleaks:r.json'),
      { maxLength: 2 },
    ),
    unmanaged: fc.boolean(),
    linked: fc.boolean(),
    attributes,
    createdAt: time,
    firstSeen: time,
    lastUsedAt: time,
    lastReviewedAt: time,
    credentials: fc.array(credential, { maxLength: 3 }),
    entitlements: fc.array(entitlement, { maxLength: 3 }),
    findings: fc.array(
      fc.record({
        rule: fc.constantFrom('credential-exposed-in-code', 'unmanaged-credential'),
        status: fc.constantFrom('open', 'excepted', 'resolved'),
        firstSeen: time,
      }),
      { maxLength: 2 },
    ),
  },
  { requiredKeys: [] },
);

describe('compiled rules answer exactly as the CEL interpreter', () => {
  it('every built-in rule is compiled, and passes its own examples compiled', () => {
    expect(rules.filter((r) => !r.compiled).map((r) => r.id)).toEqual([]);
    for (const r of rules)
      expect(
        testRule(r).filter((e) => !e.ok),
        r.id,
      ).toEqual([]);
  });

  it('on random documents: the same answer or the same error, for every rule (property)', () => {
    fc.assert(
      fc.property(document, time, (raw, at) => {
        const { doc, error } = exampleDocument(raw);
        expect(error).toBeUndefined();
        const now = new Date(at);
        for (const rule of rules) {
          const ctx = { nhi: doc as NhiDocument, now, params: rule.params };
          expect(
            outcome(() => rule.test(ctx)),
            rule.id,
          ).toBe(outcome(() => rule.interpret(ctx)));
        }
      }),
      { numRuns: 400 },
    );
  });

  it("an install's param overrides change what the compiled rule answers (params are fixed in its code)", () => {
    const id = 'ci-pipeline-static-cloud-key';
    const doc = (raw: Record<string, unknown>) => {
      const { doc: d, error } = exampleDocument(raw);
      expect(error).toBeUndefined();
      return d!;
    };
    const answers = (rule: (typeof rules)[number]) =>
      [
        // the name pattern (a compiled regular expression)
        doc({ name: 'ci-deployer', credentials: [{ id: 'AKIA1', kind: 'access-key' }] }),
        doc({ name: 'nightly-runner', credentials: [{ id: 'AKIA2', kind: 'access-key' }] }),
        // the static kinds (a set of strings)
        doc({ name: 'nightly-runner', credentials: [{ id: 't1', kind: 'token' }] }),
      ].map((nhi) => {
        const ctx = { nhi, now: new Date(), params: rule.params };
        const got = rule.test(ctx);
        expect(got, 'compiled and interpreted agree').toBe(rule.interpret(ctx));
        return got;
      });
    expect(answers(rules.find((r) => r.id === id)!)).toEqual([true, false, false]);
    const [overridden] = loadRules({
      overrides: { [id]: { pipelineNamePattern: '(^|-)runner$', staticKinds: ['access-key', 'token'] } },
    }).filter((r) => r.id === id);
    expect(answers(overridden!)).toEqual([false, true, true]);
    expect(overridden!.params.staticKinds).toEqual(['access-key', 'token']);
  });

  it('CEL corner cases: error absorption in && || exists all, numbers across int and double, has(), membership', () => {
    const env = createEnvironment({ dynamic: true });
    const cases = [
      'nhi.nope == 1 || true',
      'true || nhi.nope == 1',
      'nhi.nope == 1 && false',
      'nhi.nope == 1 && true',
      '[1, 2].exists(x, x == 2 || nhi.nope)',
      '[1, 2].all(x, x == 3 && nhi.nope)',
      '[1, 2].exists(x, nhi.nope == x)',
      'nhi.attributes.d == 3 && nhi.attributes.d >= params.p && 2 > 1.5',
      'nhi.attributes.d + 1 == 4',
      'null == nhi.attributes.d',
      'has(nhi.attributes.a) && nhi.attributes.a == 3',
      "'x' in ['x', 'y'] && !('z' in {'x': 1})",
      "type(nhi.attributes.a) == int && type('s') == string && type(nhi.attributes) == map",
      '[1, 2, 3].filter(x, x > 1).map(x, x * 2) == [4, 6]',
      '[1, 2, 3].exists_one(x, x > 2)',
      "'a:b:c'.split(':')[1] == 'b' && size('héllo') == 5",
      'nhi.attributes.l[5] == 1',
      "int('12') + 1 == 13 && double(3) == 3.0 && string(7) == '7'",
      '(true ? 1 : nhi.nope) == 1',
      '-nhi.attributes.a < 0',
      'nhi.attributes.a / 0 == 1',
    ];
    // attributes as sources store them: JSON numbers (doubles) beside CEL ints
    const ctx = { nhi: { attributes: { a: 3n, d: 3, l: [1n] } }, now: new Date(), params: { p: 2n } };
    for (const c of cases) {
      const program = env.parse(c);
      const compiled = compile(program.ast);
      expect(compiled, c).toBeDefined();
      expect(
        outcome(() => compiled!(ctx)),
        c,
      ).toEqual(outcome(() => program(ctx)));
    }
  });
});
