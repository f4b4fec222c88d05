/**
 * A synthetic but realistic estate: a people-and-teams directory, services, vendors, and
 * non-human identities with owners, approval, scope, a credential, rotation and revocation.
 * Everything is derived from a seeded Rng, so runs are comparable.
 */
import type { DirectoryRow } from '../../src/importers/directory/types.js';
import type { Rng } from './common.js';

const FIRST = [
  'alice',
  'bob',
  'carol',
  'dan',
  'erin',
  'frank',
  'grace',
  'heidi',
  'ivan',
  'judy',
  'mallory',
  'niaj',
  'olivia',
  'peggy',
  'rupert',
  'sybil',
  'trent',
  'victor',
  'walter',
  'yusuf',
];
const LAST = [
  'smith',
  'jones',
  'garcia',
  'chen',
  'kumar',
  'nguyen',
  'okafor',
  'rossi',
  'schmidt',
  'tanaka',
  'dubois',
  'silva',
  'novak',
  'haddad',
  'larsen',
];
const DOMAINS = [
  'payments',
  'ledger',
  'identity',
  'search',
  'checkout',
  'data',
  'platform',
  'security',
  'mobile',
  'growth',
  'billing',
  'infra',
  'ml',
  'support',
  'risk',
];
const ENVIRONMENTS = ['prod', 'prod', 'staging', 'dev'];
const SENSITIVITIES = ['critical', 'high', 'medium', 'low'] as const;
const TYPES = [
  'service-account',
  'access-key',
  'api-key',
  'oauth-app',
  'token',
  'k8s-service-account',
  'workload',
  'ai-agent',
] as const;
const SOURCES = ['aws-iam', 'gcp-iam', 'entra-id', 'github', 'kubernetes', 'vault'];
const VENDORS = [
  'datadog',
  'snowflake',
  'stripe',
  'twilio',
  'pagerduty',
  'github',
  'okta',
  'sentry',
  'segment',
  'salesforce',
];
const ACTIONS = [
  'read',
  'write',
  'list',
  'delete',
  'admin',
  's3:GetObject',
  's3:PutObject',
  'sqs:SendMessage',
  'kms:Decrypt',
  'secretsmanager:GetSecretValue',
];
const TRIGGERS = ['owner-departed', 'leak-detected', 'contract-ended', 'unused-90d', 'incident'];

export interface Directory {
  teams: string[]; // canonical refs team:<id>
  people: string[]; // canonical refs person:<email>
  rows: DirectoryRow[];
}

/** People and teams: `people` people spread over `teams` teams, each with a manager. */
export function makeDirectory(rng: Rng, people: number, teams: number, file: string): Directory {
  const rows: DirectoryRow[] = [];
  const teamIds: string[] = [];
  for (let t = 0; t < teams; t++) {
    const id = `${DOMAINS[t % DOMAINS.length]!}-${Math.floor(t / DOMAINS.length) + 1}`;
    teamIds.push(id);
    rows.push({ file, line: rows.length + 2, type: 'team', id, name: `${id} team`, status: 'active' });
  }
  const emails: string[] = [];
  for (let p = 0; p < people; p++) {
    const email = `${rng.pick(FIRST)}.${rng.pick(LAST)}${p}@example.com`;
    emails.push(email);
    const row: DirectoryRow = {
      file,
      line: rows.length + 2,
      type: 'person',
      id: `u${String(p).padStart(6, '0')}`,
      name: email.split('@')[0]!,
      email,
      team: teamIds[p % teams]!,
      status: 'active',
    };
    // Managers: the first person of each team manages the others.
    if (p >= teams) row.manager = emails[p % teams]!;
    rows.push(row);
  }
  return { teams: teamIds.map((t) => `team:${t}`), people: emails.map((e) => `person:${e}`), rows };
}

/** One identity as a manifest declares it (the YAML document's content). */
export interface IdentitySpec {
  name: string;
  environment: string;
  labels: Record<string, string>;
  type: string;
  source: string;
  externalId?: string;
  service: string;
  purpose: string;
  sensitivity: string;
  owners: { business: string; technical: string; control: string };
  primaryTeam: string;
  approval: { approver: string; approvedAt: string; ticket: string };
  origin: { kind: string; ref: string; mergedBy: string };
  vendor?: { name: string };
  scope: { resource: string; actions: string[] }[];
  credentials: {
    id: string;
    kind: string;
    issuedAt: string;
    lastRotatedAt: string;
    rotationMaxAge: string;
    locations: string[];
  }[];
  rotation: { maxAge: string };
  expires?: string;
  revocation: { triggers: string[]; owner: string; runbook: string };
}

const DAY = 86_400_000;
const EPOCH = Date.parse('2024-06-01T00:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** The i-th identity of the estate. */
export function makeIdentity(i: number, rng: Rng, dir: Directory): IdentitySpec {
  const domain = DOMAINS[i % DOMAINS.length]!;
  const env = rng.pick(ENVIRONMENTS);
  const type = rng.pick(TYPES);
  const name = `${domain}-${type}-${env}-${String(i).padStart(7, '0')}`;
  const team = dir.teams[rng.int(dir.teams.length)]!;
  const person = () => dir.people[rng.int(dir.people.length)]!;
  const approved = EPOCH + rng.int(500) * DAY;
  const credKind =
    type === 'access-key'
      ? 'access-key'
      : type === 'api-key'
        ? 'api-key'
        : type === 'oauth-app'
          ? 'client-secret'
          : 'token';
  const maxAge = rng.pick(['30d', '90d', '180d']);
  const spec: IdentitySpec = {
    name,
    environment: env,
    labels: { app: `${domain}-app-${i % 97}`, tier: rng.pick(['frontend', 'backend', 'batch', 'data']) },
    type,
    source: rng.pick(SOURCES),
    service: `${domain}-svc-${i % 211}`,
    purpose: `${rng.pick(['Deploys', 'Reads', 'Reconciles', 'Exports', 'Monitors', 'Rotates'])} ${domain} ${rng.pick(['artifacts', 'events', 'reports', 'secrets', 'metrics'])} for the ${domain} service`,
    sensitivity: rng.pick(SENSITIVITIES),
    owners: { business: person(), technical: person(), control: 'team:security-1' },
    primaryTeam: team,
    approval: { approver: person(), approvedAt: iso(approved), ticket: `SEC-${10000 + rng.int(90000)}` },
    origin: {
      kind: 'pull-request',
      ref: `https://git.example.com/${domain}/infra/pull/${1 + rng.int(9000)}`,
      mergedBy: person(),
    },
    scope: [
      {
        resource: `arn:aws:s3:::${domain}-${env}-bucket-${i % 503}`,
        actions: [rng.pick(ACTIONS), rng.pick(ACTIONS)].filter((a, k, all) => all.indexOf(a) === k),
      },
      {
        resource: `arn:aws:sqs:eu-west-1:123456789012:${domain}-queue-${i % 307}`,
        actions: ['sqs:SendMessage'],
      },
    ],
    credentials: [
      {
        id: `${credKind === 'access-key' ? 'AKIA' : 'cred-'}${rng.hex(16).toUpperCase()}`,
        kind: credKind,
        issuedAt: iso(approved + DAY),
        lastRotatedAt: iso(approved + (1 + rng.int(60)) * DAY),
        rotationMaxAge: maxAge,
        locations: [`vault:secret/${domain}/${name}`],
      },
    ],
    rotation: { maxAge },
    revocation: {
      triggers: [rng.pick(TRIGGERS), 'leak-detected'].filter((a, k, all) => all.indexOf(a) === k),
      owner: 'team:security-1',
      runbook: `https://runbooks.example.com/revoke/${domain}`,
    },
  };
  // Most identities live in a cloud account and carry its id; some are internal tokens.
  if (i % 10 !== 0) spec.externalId = `arn:aws:iam::123456789012:role/${name}`;
  if (i % 7 === 0) spec.vendor = { name: VENDORS[i % VENDORS.length]! };
  if (i % 5 === 0) spec.expires = iso(approved + 365 * DAY);
  return spec;
}

/** The identity as a `steward/v1` `NonHumanIdentity` YAML document. */
export function identityYaml(s: IdentitySpec): string {
  const l: string[] = [
    '---',
    'apiVersion: steward/v1',
    'kind: NonHumanIdentity',
    'metadata:',
    `  name: ${s.name}`,
    `  environment: ${s.environment}`,
    '  labels:',
    ...Object.entries(s.labels).map(([k, v]) => `    ${k}: ${v}`),
    'spec:',
    `  type: ${s.type}`,
    `  source: ${s.source}`,
  ];
  if (s.externalId) l.push(`  externalId: "${s.externalId}"`);
  l.push(
    `  service: ${s.service}`,
    `  purpose: ${s.purpose}`,
    `  sensitivity: ${s.sensitivity}`,
    '  owners:',
    `    business: ${s.owners.business}`,
    `    technical: ${s.owners.technical}`,
    `    control: ${s.owners.control}`,
    `  primaryTeam: ${s.primaryTeam}`,
    '  approval:',
    `    approver: ${s.approval.approver}`,
    `    approvedAt: ${s.approval.approvedAt}`,
    `    ticket: ${s.approval.ticket}`,
    '  origin:',
    `    kind: ${s.origin.kind}`,
    `    ref: ${s.origin.ref}`,
    `    mergedBy: ${s.origin.mergedBy}`,
  );
  if (s.vendor) l.push('  vendor:', `    name: ${s.vendor.name}`);
  l.push('  scope:');
  for (const sc of s.scope)
    l.push(
      `    - resource: "${sc.resource}"`,
      `      actions: [${sc.actions.map((a) => `"${a}"`).join(', ')}]`,
    );
  l.push('  credentials:');
  for (const c of s.credentials) {
    l.push(
      `    - id: ${c.id}`,
      `      kind: ${c.kind}`,
      `      issuedAt: ${c.issuedAt}`,
      `      lastRotatedAt: ${c.lastRotatedAt}`,
      '      rotation:',
      `        maxAge: ${c.rotationMaxAge}`,
      `      locations: ["${c.locations.join('", "')}"]`,
    );
  }
  l.push('  rotation:', `    maxAge: ${s.rotation.maxAge}`);
  if (s.expires) l.push(`  expires: ${s.expires}`);
  l.push(
    '  revocation:',
    `    triggers: [${s.revocation.triggers.join(', ')}]`,
    `    owner: ${s.revocation.owner}`,
    `    runbook: ${s.revocation.runbook}`,
  );
  return l.join('\n') + '\n';
}
