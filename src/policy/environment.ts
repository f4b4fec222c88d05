import { Environment } from '@marcbachmann/cel-js';

const TS = 'google.protobuf.Timestamp';
const DAY_MS = 86_400_000;

/**
 * The CEL types of the NHI document (see `document.ts`): every field a rule may name. A rule's
 * `when` is type-checked against them when it is loaded, so a misspelt or made-up field is an
 * error at load time, not a silent `false` at evaluation.
 */
const TYPES: [string, Record<string, string>][] = [
  [
    'Principal',
    {
      ref: 'string',
      kind: 'string',
      status: 'string',
      known: 'bool',
      name: 'string',
      email: 'string',
      leftAt: TS,
    },
  ],
  ['Owners', { business: 'Principal', technical: 'Principal', control: 'Principal' }],
  ['Approval', { approver: 'Principal', approvedAt: TS, ticket: 'string' }],
  ['Origin', { kind: 'string', ref: 'string', mergedBy: 'string' }],
  ['Vendor', { name: 'string', contractingOwner: 'Principal', contractEnds: TS }],
  ['Rotation', { maxAgeDays: 'int' }],
  ['Revocation', { triggers: 'list<string>', owner: 'Principal', runbook: 'string' }],
  [
    'Credential',
    {
      id: 'string',
      kind: 'string',
      status: 'string',
      hasFingerprint: 'bool',
      issuedAt: TS,
      lastRotatedAt: TS,
      expiresAt: TS,
      rotationMaxAgeDays: 'int',
      locations: 'list<string>',
      lastUsedAt: TS,
      source: 'string',
      attributes: 'map<string, dyn>',
    },
  ],
  [
    'Entitlement',
    {
      resource: 'string',
      actions: 'list<string>',
      status: 'string',
      grantedVia: 'string',
      grantedAt: TS,
      lastUsedAt: TS,
      source: 'string',
      admin: 'bool',
      wildcard: 'bool',
      attributes: 'map<string, dyn>',
    },
  ],
  ['PriorFinding', { rule: 'string', status: 'string', firstSeen: TS }],
  [
    'NHI',
    {
      id: 'string',
      name: 'string',
      kind: 'string',
      source: 'string',
      externalId: 'string',
      environment: 'string',
      status: 'string',
      sensitivity: 'string',
      service: 'string',
      purpose: 'string',
      labels: 'map<string, string>',
      owners: 'Owners',
      primaryTeam: 'Principal',
      sharedWith: 'list<Principal>',
      approval: 'Approval',
      origin: 'Origin',
      vendor: 'Vendor',
      rotation: 'Rotation',
      expiresAt: TS,
      revocation: 'Revocation',
      sponsor: 'Principal',
      declared: 'bool',
      sightings: 'list<string>',
      unmanaged: 'bool',
      linked: 'bool',
      attributes: 'map<string, dyn>',
      createdAt: TS,
      firstSeen: TS,
      lastUsedAt: TS,
      lastReviewedAt: TS,
      credentials: 'list<Credential>',
      entitlements: 'list<Entitlement>',
      findings: 'list<PriorFinding>',
    },
  ],
];

/** Each document type's fields and their CEL types (for coercing example documents). */
export const TYPE_FIELDS = new Map(TYPES);

/** Whole days from `a` to `b` (negative when `b` is earlier). */
const daysBetween = (a: Date, b: Date): bigint => BigInt(Math.floor((b.getTime() - a.getTime()) / DAY_MS));

/**
 * The environment every rule is checked in (with `dynamic`: the one it runs in, where the
 * document is a plain map): `nhi` (the document), `now` (the evaluation time, a
 * timestamp), `params` (the rule's parameters with install overrides applied), and helpers:
 * `daysBetween(a, b)` (whole days from timestamp a to b), `daysSince(t, now)` (same), and
 * `isPlaceholder(s)` (a purpose such as "tbd", "todo", "n/a", "test", "-" or "xxx").
 */
export function createEnvironment(opts: { dynamic?: boolean } = {}): Environment {
  let env = new Environment({
    homogeneousAggregateLiterals: false,
    limits: { maxAstNodes: 5000, maxDepth: 100 },
  });
  if (!opts.dynamic) for (const [name, fields] of TYPES) env = env.registerType(name, { fields });
  return env
    .registerVariable('nhi', opts.dynamic ? 'map<string, dyn>' : 'NHI')
    .registerVariable('now', TS)
    .registerVariable('params', 'map<string, dyn>')
    .registerFunction(`daysBetween(${TS}, ${TS}): int`, daysBetween)
    .registerFunction(`daysSince(${TS}, ${TS}): int`, daysBetween)
    .registerFunction('isPlaceholder(string): bool', isPlaceholder);
}

const PLACEHOLDERS = new Set([
  '',
  '-',
  '--',
  '?',
  '.',
  'n/a',
  'na',
  'none',
  'null',
  'tbd',
  'tba',
  'todo',
  'fixme',
  'test',
  'testing',
  'temp',
  'tmp',
  'xxx',
  'unknown',
  'placeholder',
  'purpose',
  'description',
  'changeme',
]);

/** A purpose (or any free text) that says nothing. */
export function isPlaceholder(s: string): boolean {
  return PLACEHOLDERS.has(
    s
      .trim()
      .toLowerCase()
      .replace(/[.!]+$/, ''),
  );
}
