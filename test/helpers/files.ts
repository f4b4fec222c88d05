import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';

/** Writes files into a new temp folder and returns its path. */
export function tempFiles(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'steward-files-'));
  for (const [name, content] of Object.entries(files)) {
    const p = path.join(dir, name);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, content);
  }
  return dir;
}

/** Runs `fn` with standard input replaced by these chunks (an importer reading `-`), then puts it back. */
export async function withStdin<T>(chunks: Buffer[], fn: () => Promise<T>): Promise<T> {
  const stdin = Object.getOwnPropertyDescriptor(process, 'stdin')!;
  Object.defineProperty(process, 'stdin', { value: Readable.from(chunks) });
  try {
    return await fn();
  } finally {
    Object.defineProperty(process, 'stdin', stdin);
  }
}

export const DIRECTORY_CSV = `type,id,name,email,team,manager,status,left_at
team,payments,Payments,,,,active,
team,platform,Platform,,,,active,
team,security,Security,,,,active,
person,alice,Alice Adams,alice@example.com,payments,,active,
person,bob,Bob Brown,bob@example.com,platform,alice,active,
person,carol,Carol Chen,carol@example.com,security,,active,
person,dave,Dave Diaz,dave@example.com,payments,alice,active,
`;

/** A manifest document with the given name and spec overrides (YAML text). */
export function nhi(name: string, spec: string, metadata = 'environment: prod'): string {
  return `apiVersion: steward/v1
kind: NonHumanIdentity
metadata:
  name: ${name}
  ${metadata}
spec:
${spec
  .trim()
  .split('\n')
  .map((l) => '  ' + l)
  .join('\n')}
`;
}

export const PAYMENTS_SPEC = `type: service-account
source: aws
externalId: arn:aws:iam::123456789012:role/payments-batch
service: payments-api
purpose: nightly settlement batch
sensitivity: high
owners:
  business: person:alice@example.com
  technical: person:bob@example.com
  control: team:security
primaryTeam: team:payments
approval:
  approver: person:carol@example.com
  approvedAt: 2025-06-01
  ticket: SEC-101
rotation:
  maxAge: 90d
revocation:
  triggers: [decommission, compromise]
  owner: team:platform
credentials:
  - id: AKIAEXAMPLE0001
    kind: access-key
    issuedAt: 2025-06-01
    locations: [vault:secret/payments]
scope:
  - resource: arn:aws:s3:::settlements
    actions: [s3:GetObject, s3:PutObject]`;

/** An identity's discovery attributes (kept per `source:scope`), folded into one object. */
export function sourceAttributes(json: string | null): Record<string, unknown> {
  const bySighting = JSON.parse(json ?? '{}') as Record<string, Record<string, unknown>>;
  return Object.assign({}, ...Object.values(bySighting)) as Record<string, unknown>;
}
