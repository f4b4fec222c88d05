/**
 * Found secrets as discovery records, shared by the secret scanners' importers (gitleaks reports,
 * the secretlint-based `secrets` scanner).
 *
 * Each distinct secret becomes one identity of kind `secret` (external id `secret:<fingerprint>`,
 * name `<rule> in <file>`, attributes `{unmanaged, rule, description?, awsAccessKeyId?}`) holding
 * one credential (external id = the fingerprint; `fingerprint` = the keyed hash of the secret;
 * every place it was found as a location `git:<file>:<line>@<commit>`, or `file:<file>:<line>`
 * without a commit; attributes `{rule, author, email, date, commit, awsAccessKeyId}` of its
 * earliest finding). A finding holds no secret value: only its keyed fingerprint.
 */
import type { DiscoveredIdentity } from '../inventory/import-discovery.js';

/** One finding of a secret: everything but the secret itself. */
export interface Finding {
  /** Keyed fingerprint of the secret (or of where it is, when `redacted`). */
  fingerprint: string;
  /** The scanner masked the value: the fingerprint is not a hash of the secret and must not be linked as one. */
  redacted: boolean;
  /** An AWS access key id (`AKIA…`/`ASIA…`) the secret belongs to: an identifier, not a secret. */
  awsAccessKeyId: string | undefined;
  rule: string;
  /** Credential kind, e.g. `aws-access-key`, `github-token`, `private-key`, `secret`. */
  kind: string;
  description: string | undefined;
  file: string;
  line: number;
  commit: string | undefined;
  author: string | undefined;
  email: string | undefined;
  date: string | undefined;
  /** Order found, to break ties between findings of the same date. */
  order: number;
}

/** AWS access key ids (long-term `AKIA`, session `ASIA`, and the other documented prefixes). */
export const AWS_KEY_ID = /\b((?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16})\b/;

/** Findings grouped by secret: one identity with one credential each. */
export function identitiesOf(findings: Finding[]): DiscoveredIdentity[] {
  const groups = new Map<string, Finding[]>();
  for (const f of findings) {
    const g = groups.get(f.fingerprint);
    if (g) g.push(f);
    else groups.set(f.fingerprint, [f]);
  }
  const out: DiscoveredIdentity[] = [];
  for (const [fp, group] of groups) {
    // The earliest finding (by commit date, then order found) speaks for the secret.
    const sorted = [...group].sort((a, b) => {
      const da = a.date !== undefined && /^\d{4}-/.test(a.date) ? a.date : '\uffff';
      const db = b.date !== undefined && /^\d{4}-/.test(b.date) ? b.date : '\uffff';
      return da < db ? -1 : da > db ? 1 : a.order - b.order;
    });
    const first = sorted[0]!;
    const redacted = first.redacted;
    const awsAccessKeyId = sorted.find((f) => f.awsAccessKeyId !== undefined)?.awsAccessKeyId;
    const locations = [
      ...new Set(
        group.map((f) => (f.commit ? `git:${f.file}:${f.line}@${f.commit}` : `file:${f.file}:${f.line}`)),
      ),
    ].sort();
    const credAttributes: Record<string, unknown> = { rule: first.rule };
    if (first.author !== undefined) credAttributes.author = first.author;
    if (first.email !== undefined) credAttributes.email = first.email;
    if (first.date !== undefined) credAttributes.date = first.date;
    if (first.commit !== undefined) credAttributes.commit = first.commit;
    if (redacted) credAttributes.redacted = true;
    if (awsAccessKeyId !== undefined) credAttributes.awsAccessKeyId = awsAccessKeyId;
    const idAttributes: Record<string, unknown> = { unmanaged: true, rule: first.rule };
    if (first.description !== undefined) idAttributes.description = first.description;
    if (redacted) idAttributes.redacted = true;
    if (awsAccessKeyId !== undefined) idAttributes.awsAccessKeyId = awsAccessKeyId;
    out.push({
      externalId: `secret:${fp}`,
      name: `${first.rule} in ${first.file}`,
      kind: 'secret',
      attributes: idAttributes,
      credentials: [
        {
          externalId: fp,
          kind: first.kind,
          ...(redacted ? {} : { fingerprint: fp }),
          locations,
          attributes: credAttributes,
        },
      ],
    });
  }
  return out;
}
