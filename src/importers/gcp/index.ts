/**
 * `gcp`: Google Cloud service accounts, their keys and what IAM grants them, and their usage.
 *
 * Inputs (files or folders of `*.json`, `*.jsonl`, `*.ndjson`, `*.gz`; gzip detected by content;
 * `-` for standard input), each a JSON array or JSON lines of any mix of:
 * - Cloud Asset Inventory assets (`gcloud asset export` JSON lines, snake_case, or a JSON array as
 *   `gcloud asset list --format=json` gives, camelCase): `iam.googleapis.com/ServiceAccount`,
 *   `iam.googleapis.com/ServiceAccountKey`, custom roles (`iam.googleapis.com/Role`), and the
 *   `iam_policy` of any asset;
 * - `gcloud iam service-accounts keys list --format=json` and `gcloud iam service-accounts list
 *   --format=json` entries;
 * - Cloud Audit Log entries (`gcloud logging read --format=json`, a log sink's JSON lines, or Panther
 *   test rows `{_source_file,_test_name,_expected,event}`; keys Panther lower-cased, `protopayload`,
 *   `insertid`…, are read too).
 *
 * Identities: one `service-account` per service account, external id its email (lower-case), which
 * is what IAM bindings and audit logs name. An account named by a binding, a key or an audit log
 * but not listed is an identity too (`listed: false`, `referencedBy`). A Kubernetes service account
 * granted through Workload Identity (`serviceAccount:<pool>.svc.id.goog[<ns>/<name>]`) is the
 * `k8s-service-account` `system:serviceaccount:<ns>:<name>`, as the kubernetes importer names it.
 *
 * Credentials: each key, `gcp-service-account-key`, external id the key id (the last segment of its
 * name); issued at `validAfterTime`, expiring at `validBeforeTime` unless that is the 9999 date of
 * keys that never expire; `inactive` when disabled. Entitlements: one per (resource, role,
 * condition) binding naming the account: resource the asset the policy is attached to, actions
 * `[role]`, grantedVia `binding:<role>` (with the condition's title and a digest of its expression
 * when conditional). Usage from audit logs: last use per account and per key, methods per service,
 * error codes and denied calls, caller IPs, user agents, impersonators.
 *
 * Scope: an inventory import is a snapshot of what its records share (the project of a project
 * export, the organisation of an organisation export; else the sorted list of projects), so a later
 * export of the same scope vanishes what it no longer lists. An import of audit logs only is usage
 * (`snapshot: false`) under its own scope `audit-logs:<project>`, so it never replaces or vanishes
 * inventory facts. A record that does not have the expected shape rejects the whole input with its
 * file, line and JSON path, unless `skipInvalid` (then it is skipped and listed, and an inventory
 * read that skipped anything vanishes nothing). Malformed arrays, truncated gzip and over-long
 * records are always refused.
 */
import { createHash } from 'node:crypto';
import { ValidationError } from '../../domain/errors.js';
import type { Problem } from '../../domain/problems.js';
import type {
  DiscoveredCredential,
  DiscoveredEntitlement,
  DiscoveredIdentity,
  DiscoveryBatch,
} from '../../inventory/import-discovery.js';
import { MAX_RECORD_CHARS, ProblemLog, readJsonValues } from '../cloudtrail/index.js';
import { describeJson, isObject, listFiles, openInput, type Json } from '../common.js';
import type { ReadOptions, ReadResult, SourceImporter } from '../source.js';
import { GcpUsage, type UsageAgg, type UsageStats } from './audit-log.js';
import {
  GcpInventory,
  SERVICE_ACCOUNT,
  type AccountRec,
  type Grant,
  type InventoryStats,
  type KeyRec,
  type Where,
} from './inventory.js';
import { RecordCheck, classifyAccount, isUniqueId, parseAccountName, roleFlags } from './names.js';

export { classifyAccount, parseKeyName, roleFlags, grpcCodeName } from './names.js';
export { parseMember } from './inventory.js';

const SOURCE = 'gcp';
export const KEY_KIND = 'gcp-service-account-key';
/** Scope prefix of usage-only imports: their facts never share a `source:scope` with a listing's. */
export const USAGE_SCOPE_PREFIX = 'audit-logs:';

export interface GcpReadOptions extends ReadOptions {
  /** Longest JSON line or array element accepted, in characters (default 16 Mi). */
  maxRecordChars?: number;
}

export interface GcpStats {
  inventory: InventoryStats;
  usage: UsageStats;
  /** Records skipped as invalid (`skipInvalid`). */
  skipped: number;
  /** Accounts and keys the logs name only by a unique id that no listing among the inputs resolves: not imported. */
  unresolved: number;
}

export interface GcpReadResult extends ReadResult {
  stats: GcpStats;
}

const join = (path: string, key: string): string => (path === '' ? key : `${path}.${key}`);

type RecordKind = 'asset' | 'key' | 'account' | 'log';

const has = (v: Json, ...keys: string[]): boolean => keys.some((k) => v[k] !== undefined);

/** Which kind of record an object is, by the keys only that kind has. */
function kindOf(v: Json, wrapped: boolean): RecordKind | undefined {
  if (has(v, 'asset_type', 'assetType')) return 'asset';
  if (wrapped || has(v, 'protoPayload', 'protopayload', 'logName', 'logname', 'insertId', 'insertid'))
    return 'log';
  if (has(v, 'jsonPayload', 'textPayload')) return 'log';
  if (has(v, 'keyAlgorithm', 'keyOrigin', 'keyType', 'validAfterTime', 'validBeforeTime')) return 'key';
  if (typeof v.name === 'string' && /\/keys\/[^/]*$/.test(v.name)) return 'key';
  if (has(v, 'email') && has(v, 'uniqueId', 'name', 'projectId')) return 'account';
  return undefined;
}

const EXPECTED_RECORD =
  'a Cloud Asset Inventory asset, a service account key (keys list), a service account (service-accounts list) or a Cloud Audit Log entry';

/** Reads GCP exports into one `gcp` batch. */
export async function readGcp(paths: string[], options: GcpReadOptions): Promise<GcpReadResult> {
  const files = listFiles(paths, (name) => /\.(json|jsonl|ndjson|gz)$/i.test(name));
  const inventory = new GcpInventory();
  const usage = new GcpUsage();
  const problems = new ProblemLog();
  const maxChars = options.maxRecordChars ?? MAX_RECORD_CHARS;
  const read: { path: string; sha256: string }[] = [];
  /** An inventory record (or a record of unknown kind) was skipped: the listing is not complete. */
  let incomplete = false;

  const report = (file: string, line: number, c: RecordCheck, inventoryRecord: boolean): void => {
    if (!c.problems.length) return;
    if (inventoryRecord) incomplete = true;
    if (options.skipInvalid) {
      // one entry per skipped record: its first problem, and how many more it had
      const [first, ...rest] = c.problems;
      const p: Problem = {
        file,
        line,
        message: rest.length
          ? `${first!.message} (and ${rest.length} more problem(s) in this record)`
          : first!.message,
      };
      if (first!.field) p.field = first!.field;
      problems.add(p);
      return;
    }
    for (const q of c.problems) {
      const p: Problem = { file, line, message: q.message };
      if (q.field) p.field = q.field;
      problems.add(p);
    }
  };

  for (const file of files) {
    const input = openInput(file, options.maxBytes);
    await readJsonValues(
      input.stream,
      file,
      (value, at) => {
        let v = value;
        let base = at.path;
        let wrapped = false;
        if (
          isObject(v) &&
          v.event !== undefined &&
          (v._source_file !== undefined || v._test_name !== undefined)
        ) {
          // a Panther test row: the entry is `event`, less Panther's own p_* fields
          base = join(base, 'event');
          wrapped = true;
          const event = v.event;
          if (isObject(event)) {
            const clean: Json = {};
            for (const k in event) if (!k.startsWith('p_')) clean[k] = event[k];
            v = clean;
          } else v = event;
        }
        const c = new RecordCheck(base);
        if (!isObject(v)) {
          c.fail('', `expected ${EXPECTED_RECORD} (a JSON object), got ${describeJson(v)}`);
          return report(file, at.line, c, !wrapped);
        }
        const kind = kindOf(v, wrapped);
        const where: Where = { file, line: at.line, field: join(base, 'name') };
        switch (kind) {
          case 'asset':
            inventory.addAsset(v, c, where);
            break;
          case 'key':
            inventory.addKeyEntry(v, c, where);
            break;
          case 'account':
            inventory.addAccountEntry(v, c);
            break;
          case 'log':
            usage.addEntry(v, c);
            break;
          default: {
            const keys = Object.keys(v);
            c.fail(
              '',
              `expected ${EXPECTED_RECORD}, got ${keys.length ? `an object with keys ${keys.slice(0, 8).join(', ')}` : 'an empty object'}`,
            );
          }
        }
        report(file, at.line, c, kind !== 'log');
      },
      (message, at) => {
        // a JSON line that does not parse: what it was cannot be told
        incomplete = true;
        problems.add({ file, line: at.line, message });
      },
      maxChars,
    );
    read.push({ path: input.path, sha256: await input.sha256() });
  }
  inventory.finish((where, message) => {
    incomplete = true;
    problems.add({ file: where.file, line: where.line, field: where.field, message });
  });

  if (problems.count && !options.skipInvalid) {
    throw new ValidationError(
      `${problems.count} invalid GCP record(s); nothing was imported (--skip-invalid skips them)`,
      problems.all(files[0] ?? '-'),
    );
  }
  const unresolved = { n: 0 };
  const valid = inventory.stats.assets + inventory.stats.listEntries;
  let scope: string;
  if (valid > 0) {
    const s = inventory.scope();
    if (s === undefined)
      throw new ValidationError(
        `${SOURCE}: cannot tell which project, folder or organisation this export covers; nothing was imported`,
        [
          {
            file: files.join(', '),
            message:
              'expected assets with ancestors, a parent project or a name under projects/, folders/ or organizations/, got none',
          },
        ],
      );
    scope = s;
  } else scope = `${USAGE_SCOPE_PREFIX}${usage.scope()}`;

  const batch: DiscoveryBatch = {
    source: SOURCE,
    scope,
    // A listing that skipped a record is not a complete picture: nothing may be vanished from it.
    snapshot: valid > 0 && !incomplete,
    files: read,
    identities:
      valid > 0
        ? inventoryIdentities(inventory, usage, unresolved)
        : usageIdentities(inventory, usage, unresolved),
  };
  const stats: GcpStats = {
    inventory: inventory.stats,
    usage: usage.stats,
    skipped: problems.count,
    unresolved: unresolved.n,
  };
  const observed = [inventory.observedAt, usage.observedAt]
    .filter((t): t is string => t !== undefined)
    .sort();
  if (observed.length) batch.observedAt = observed[observed.length - 1]!;
  const result: GcpReadResult = { batch, skipped: problems.all(files[0] ?? '-'), stats };
  const notes = notesOf(stats, valid > 0 && incomplete);
  if (notes.length) result.notes = notes;
  return result;
}

/** What the person running the import should know: what was read but not imported, and why. */
function notesOf(stats: GcpStats, partialListing: boolean): string[] {
  const notes: string[] = [];
  const callers = Object.entries(stats.usage.unattributed).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const others = callers.reduce((n, [, v]) => n + v, 0);
  if (others)
    notes.push(
      `${others} audit log entr${others === 1 ? 'y' : 'ies'} by callers that are not service accounts (${callers.map(([k, v]) => `${k}: ${v}`).join(', ')}): counted, not imported`,
    );
  if (stats.usage.nonAudit)
    notes.push(
      `${stats.usage.nonAudit} log entr${stats.usage.nonAudit === 1 ? 'y is not an audit log' : 'ies are not audit logs'}: ignored`,
    );
  const deleted = stats.inventory.members.deleted;
  if (deleted)
    notes.push(
      `${deleted} binding member(s) name deleted service accounts (deleted:serviceAccount:…): not imported`,
    );
  if (stats.unresolved)
    notes.push(
      `${stats.unresolved} account(s) or key(s) the audit logs name only by unique id, with no listing among the inputs to resolve it: not imported`,
    );
  if (partialListing)
    notes.push(
      'records of the listing were skipped: it is not taken as complete, so nothing was marked vanished',
    );
  return notes;
}

// ---------------------------------------------------------------------------------------------
// The batch

const byExternalId = (a: DiscoveredIdentity, b: DiscoveredIdentity): number =>
  a.externalId < b.externalId ? -1 : a.externalId > b.externalId ? 1 : 0;

/** An account named by its unique id in the logs, by its email once the listing tells it. */
function resolveRef(ref: string, inventory: GcpInventory): string | undefined {
  return ref.startsWith('uid:') ? inventory.uniqueIds.get(ref.slice(4)) : ref;
}

/** Key usage by account email, then key id. */
function keyUsage(
  inventory: GcpInventory,
  usage: GcpUsage,
  unresolved: { n: number },
): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  for (const k of usage.keys.values()) {
    const email = resolveRef(k.owner, inventory);
    if (email === undefined) {
      unresolved.n++;
      continue;
    }
    let m = out.get(email);
    if (!m) out.set(email, (m = new Map<string, string>()));
    const prior = m.get(k.keyId);
    if (prior === undefined || k.last > prior) m.set(k.keyId, k.last);
  }
  return out;
}

/** Account usage by email (accounts named by unique id merged into their email once resolved). */
function accountUsage(
  inventory: GcpInventory,
  usage: GcpUsage,
  unresolved: { n: number },
): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>();
  const byEmail = new Map<string, UsageAgg[]>();
  for (const a of usage.accounts.values()) {
    const email = resolveRef(a.ref, inventory);
    if (email === undefined) {
      unresolved.n++;
      continue;
    }
    const list = byEmail.get(email) ?? [];
    list.push(a);
    byEmail.set(email, list);
  }
  for (const [email, list] of byEmail) {
    const [merged, ...rest] = list as [UsageAgg, ...UsageAgg[]];
    for (const r of rest) {
      merged.events += r.events;
      if (r.first < merged.first) merged.first = r.first;
      if (r.last > merged.last) merged.last = r.last;
      for (const [s, v] of r.services) {
        const m = merged.services.get(s);
        if (!m) merged.services.set(s, v);
        else {
          m.count += v.count;
          for (const x of v.actions) m.actions.add(x);
        }
      }
      for (const [e, n] of r.errors) merged.errors.set(e, (merged.errors.get(e) ?? 0) + n);
      merged.accessDenied += r.accessDenied;
      for (const x of r.ips) merged.ips.add(x);
      for (const x of r.agents) merged.agents.add(x);
      for (const x of r.impersonatedBy) merged.impersonatedBy.add(x);
    }
    out.set(email, GcpUsage.attributes(merged));
  }
  return out;
}

function credential(k: KeyRec, lastUsedAt: string | undefined): DiscoveredCredential {
  const c: DiscoveredCredential = {
    externalId: k.keyId,
    kind: KEY_KIND,
    status: k.disabled ? 'inactive' : 'active',
    attributes: {
      keyType: k.keyType,
      keyAlgorithm: k.keyAlgorithm,
      keyOrigin: k.keyOrigin,
      disabled: k.disabled,
      disableReason: k.disableReason,
      exposed: k.exposed,
      neverExpires: k.validBefore !== undefined && GcpInventory.expiry(k) === undefined,
    },
  };
  if (k.validAfter) c.issuedAt = k.validAfter;
  const exp = GcpInventory.expiry(k);
  if (exp) c.expiresAt = exp;
  if (lastUsedAt) c.lastUsedAt = lastUsedAt;
  return c;
}

/** A key seen only in the logs: its id and last use (a usage log says nothing else about it). */
const usedKey = (keyId: string, lastUsedAt: string): DiscoveredCredential => ({
  externalId: keyId,
  kind: KEY_KIND,
  lastUsedAt,
});

const digest = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 12);

/** The account a grant on a service-account asset is about (impersonation targets). */
function targetOf(g: Grant, inventory: GcpInventory): string | null {
  if (g.assetType !== SERVICE_ACCOUNT) return null;
  const known = inventory.accountAssets.get(g.resource);
  if (known) return known;
  const p = parseAccountName(g.resource);
  if (!p) return null;
  return isUniqueId(p.account) ? (inventory.uniqueIds.get(p.account) ?? null) : p.account.toLowerCase();
}

function entitlement(g: Grant, inventory: GcpInventory): DiscoveredEntitlement {
  const flags = roleFlags(g.role);
  const attributes: Record<string, unknown> = {
    ...flags,
    condition: g.condition,
    assetType: g.assetType,
  };
  const permissions = inventory.customRoles.get(g.role);
  if (permissions) attributes.permissions = [...permissions].sort();
  if (g.assetType === SERVICE_ACCOUNT) attributes.targetServiceAccount = targetOf(g, inventory);
  const grantedVia = g.condition
    ? `binding:${g.role} [condition${g.condition.title ? ` "${g.condition.title}"` : ''} #${digest(g.condition.expression)}]`
    : `binding:${g.role}`;
  return { resource: g.resource, actions: [g.role], grantedVia, attributes };
}

function accountAttributes(a: AccountRec): Record<string, unknown> {
  const cls = classifyAccount(a.email);
  const container = a.container;
  const number = container && /^projects\/\d+$/.test(container) ? container.slice('projects/'.length) : null;
  // Every key is always present: a source's attributes replace what it said before, so a fact that
  // stops being true is overwritten, never just left out.
  return {
    listed: a.listed,
    referencedBy: [...a.references].sort(),
    projectId: a.projectId,
    projectNumber: number ?? cls.projectNumber,
    uniqueId: a.uniqueId,
    displayName: a.displayName,
    description: a.description,
    oauth2ClientId: a.oauth2ClientId,
    disabled: a.disabled,
    defaultAccount: cls.defaultAccount,
    googleManaged: cls.googleManaged,
    assetName: a.assetName,
  };
}

/** An account's last use: its own calls, or any use of one of its keys. */
function lastUse(u: Record<string, unknown> | undefined, keys: Map<string, string>): string | undefined {
  let last = u ? (u.lastSeen as string) : undefined;
  for (const t of keys.values()) if (last === undefined || t > last) last = t;
  return last;
}

/** A listing (with or without logs): accounts, keys and grants; usage merged in when logs were read. */
function inventoryIdentities(
  inventory: GcpInventory,
  usage: GcpUsage,
  unresolved: { n: number },
): DiscoveredIdentity[] {
  const withLogs = usage.stats.attributed > 0;
  const used = accountUsage(inventory, usage, unresolved);
  const keysUsed = keyUsage(inventory, usage, unresolved);
  for (const email of used.keys()) inventory.reference(email, 'audit-log');
  for (const email of keysUsed.keys()) inventory.reference(email, 'audit-log');
  const out: DiscoveredIdentity[] = [];
  for (const a of inventory.accounts.values()) {
    const u = used.get(a.email);
    const attributes = accountAttributes(a);
    if (withLogs) attributes.usage = u ?? null;
    const keyUse = keysUsed.get(a.email) ?? new Map<string, string>();
    const credentials = [...a.keys.values()]
      .sort((x, y) => (x.keyId < y.keyId ? -1 : x.keyId > y.keyId ? 1 : 0))
      .map((k) => credential(k, keyUse.get(k.keyId)));
    for (const [keyId, last] of [...keyUse].sort())
      if (!a.keys.has(keyId)) credentials.push(usedKey(keyId, last));
    const d: DiscoveredIdentity = {
      externalId: a.email,
      name: a.email,
      kind: 'service-account',
      attributes,
      credentials,
      entitlements: a.grants.map((g) => entitlement(g, inventory)),
    };
    if (a.listed) d.status = a.disabled ? 'disabled' : 'active';
    const last = lastUse(u, keyUse);
    if (last) d.lastUsedAt = last;
    out.push(d);
  }
  for (const w of inventory.workloads.values()) {
    out.push({
      externalId: w.externalId,
      name: `${w.namespace}/${w.name}`,
      kind: 'k8s-service-account',
      attributes: {
        listed: false,
        referencedBy: ['binding'],
        workloadIdentityPool: w.pool,
        namespace: w.namespace,
      },
      entitlements: w.grants.map((g) => entitlement(g, inventory)),
    });
  }
  return out.sort(byExternalId);
}

/** Audit logs only: usage per account and key, nothing about what exists. */
function usageIdentities(
  inventory: GcpInventory,
  usage: GcpUsage,
  unresolved: { n: number },
): DiscoveredIdentity[] {
  const used = accountUsage(inventory, usage, unresolved);
  const keysUsed = keyUsage(inventory, usage, unresolved);
  const emails = new Set([...used.keys(), ...keysUsed.keys()]);
  const out: DiscoveredIdentity[] = [];
  for (const email of emails) {
    const u = used.get(email);
    const keyUse = keysUsed.get(email) ?? new Map<string, string>();
    const d: DiscoveredIdentity = {
      externalId: email,
      name: email,
      kind: 'service-account',
      credentials: [...keyUse].sort().map(([keyId, last]) => usedKey(keyId, last)),
    };
    const last = lastUse(u, keyUse);
    if (last) d.lastUsedAt = last;
    if (u) d.attributes = { usage: u };
    out.push(d);
  }
  return out.sort(byExternalId);
}

export const importer: SourceImporter = {
  source: SOURCE,
  description:
    'Google Cloud service accounts, keys and IAM bindings (Cloud Asset Inventory exports, gcloud keys/service-accounts list JSON) and their usage (Cloud Audit Logs)',
  read: readGcp,
};
