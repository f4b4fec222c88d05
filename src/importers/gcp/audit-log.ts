/**
 * Cloud Audit Log entries (`LogEntry` with an `AuditLog` protoPayload), read one at a time into
 * usage per service account: last use, methods per service, denied calls and error codes, caller
 * IPs and user agents, who impersonated it; and per key (`serviceAccountKeyName`) its last use.
 * Memory grows with the number of distinct accounts and keys, never with the number of entries.
 */
import { MAX_ACTIONS, MAX_SOURCE_IPS, MAX_USER_AGENTS, isoTime } from '../cloudtrail/index.js';
import { describeJson, isObject, type Json } from '../common.js';
import {
  KEY_NAME_EXPECTED,
  grpcCodeName,
  isServiceAccountEmail,
  isUniqueId,
  normaliseEmail,
  parseKeyName,
  type RecordCheck,
} from './names.js';

/** Distinct impersonating principals kept per account. */
export const MAX_IMPERSONATORS = 20;

const LOG_NAME_RE = /^((?:projects|organizations|folders|billingAccounts)\/[^/]+)\/logs\//;

/** An account as the logs name it: its email, or `uid:<unique id>` until the inventory resolves it. */
export type AccountRef = string;

export interface UsageAgg {
  ref: AccountRef;
  events: number;
  first: string;
  last: string;
  services: Map<string, { actions: Set<string>; count: number }>;
  errors: Map<string, number>;
  accessDenied: number;
  ips: Set<string>;
  agents: Set<string>;
  impersonatedBy: Set<string>;
}

/** Last use of one key, and whose key it is. */
export interface KeyUse {
  keyId: string;
  /** The account the key name gives (email, or `uid:<unique id>`), else the calling account. */
  owner: AccountRef;
  last: string;
}

export interface UsageStats {
  /** Audit log entries read, valid or not. */
  entries: number;
  /** Valid entries attributed to a service account. */
  attributed: number;
  /** Valid entries whose caller is not a service account, by kind (`user`, `kubernetes`, `federated`, `none`, `other`). */
  unattributed: Record<string, number>;
  /** Entries that are not audit logs (`jsonPayload`, `textPayload`): counted, not read. */
  nonAudit: number;
}

/** The key of one of `names` in `o`, trying a lower-cased spelling too (Panther lower-cases some keys). */
const spellings = (...names: string[]): string[] => {
  const out: string[] = [];
  for (const n of names) {
    out.push(n);
    if (n.toLowerCase() !== n) out.push(n.toLowerCase());
  }
  return out;
};

const PROTO = spellings('protoPayload');
const TIMESTAMP = spellings('timestamp', 'receiveTimestamp');
const LOG_NAME = spellings('logName');
const AUTHN = spellings('authenticationInfo');
const AUTHZ = spellings('authorizationInfo');
const REQUEST_METADATA = spellings('requestMetadata');
const CALLER_IP = ['callerIp', 'callerIP', 'callerip'];
const USER_AGENT = spellings('callerSuppliedUserAgent');
const PRINCIPAL = spellings('principalEmail');
const KEY_NAME = spellings('serviceAccountKeyName');
const DELEGATION = spellings('serviceAccountDelegationInfo');
const SERVICE = spellings('serviceName');
const METHOD = spellings('methodName');

/** What kind of caller a principal email is, for counting the entries not attributed. */
function callerKind(principal: string | undefined, subject: string | undefined): string {
  if (principal === undefined || principal === '') return subject ? 'federated' : 'none';
  if (principal.startsWith('system:')) return 'kubernetes';
  if (principal.includes('@')) return 'user';
  return 'other';
}

/** Aggregates audit log entries, one at a time, into per-account usage. */
export class GcpUsage {
  readonly accounts = new Map<AccountRef, UsageAgg>();
  readonly keys = new Map<string, KeyUse>();
  readonly projects = new Set<string>();
  observedAt: string | undefined;
  readonly stats: UsageStats = { entries: 0, attributed: 0, unattributed: {}, nonAudit: 0 };

  /** One log entry; its problems go to `c` and then nothing of it is counted. */
  addEntry(e: Json, c: RecordCheck): void {
    this.stats.entries++;
    const proto = c.pick(e, PROTO);
    if (proto.value === undefined || proto.value === null) {
      if (e.jsonPayload !== undefined || e.textPayload !== undefined) {
        this.stats.nonAudit++;
        return;
      }
      c.fail(proto.key, 'expected protoPayload (the AuditLog of a Cloud Audit Log entry), got nothing');
      return;
    }
    if (!isObject(proto.value)) {
      c.fail(proto.key, `expected an AuditLog object, got ${describeJson(proto.value)}`);
      return;
    }
    const p = proto.value;
    const pAt = proto.key;
    const ts = c.pick(e, TIMESTAMP);
    let time: string | undefined;
    if (ts.value === undefined || ts.value === null)
      c.fail('timestamp', "expected the entry's timestamp, got nothing");
    else if (typeof ts.value !== 'string')
      c.fail(ts.key, `expected an ISO-8601 timestamp string, got ${describeJson(ts.value)}`);
    else if ((time = isoTime(ts.value)) === undefined)
      c.fail(ts.key, `expected an ISO-8601 timestamp, got ${describeJson(ts.value)}`);
    const logName = c.string(e, LOG_NAME, '');
    let project = logName !== undefined ? LOG_NAME_RE.exec(logName)?.[1] : undefined;
    if (!project) {
      const res = c.object(e, ['resource'], '');
      const labels = res.value ? c.object(res.value, ['labels'], res.at) : undefined;
      const id = labels?.value ? c.string(labels.value, ['project_id'], labels.at) : undefined;
      if (id) project = `projects/${id}`;
    }
    const service = c.string(p, SERVICE, pAt);
    const method = c.string(p, METHOD, pAt);

    const authn = c.object(p, AUTHN, pAt);
    let principal: string | undefined;
    let subject: string | undefined;
    let keyName: string | undefined;
    const impersonators: string[] = [];
    if (authn.value) {
      principal = c.string(authn.value, PRINCIPAL, authn.at);
      subject = c.string(authn.value, ['principalSubject', 'principalsubject'], authn.at);
      keyName = c.string(authn.value, KEY_NAME, authn.at);
      const del = c.array(authn.value, DELEGATION, authn.at);
      del.value.forEach((d, i) => {
        const at = `${del.at}[${i}]`;
        if (!isObject(d)) return c.fail(at, `expected an object, got ${describeJson(d)}`);
        const first = c.object(d, ['firstPartyPrincipal'], at);
        const email = first.value ? c.string(first.value, PRINCIPAL, first.at) : undefined;
        if (email) impersonators.push(email);
      });
    }
    const key = keyName !== undefined ? parseKeyName(keyName) : undefined;
    if (keyName !== undefined && !key)
      c.fail(
        `${authn.at}.serviceAccountKeyName`,
        `expected ${KEY_NAME_EXPECTED}, got ${describeJson(keyName)}`,
      );

    let denied = false;
    const authz = c.array(p, AUTHZ, pAt);
    authz.value.forEach((a, i) => {
      const at = `${authz.at}[${i}]`;
      if (!isObject(a)) return c.fail(at, `expected an object, got ${describeJson(a)}`);
      if (c.boolean(a, ['granted'], at) === false) denied = true;
    });
    let code: number | undefined;
    const status = c.object(p, ['status'], pAt);
    if (status.value && status.value.code !== undefined && status.value.code !== null) {
      const v = status.value.code;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0)
        c.fail(`${status.at}.code`, `expected a google.rpc.Code number, got ${describeJson(v)}`);
      else code = v;
    }
    const meta = c.object(p, REQUEST_METADATA, pAt);
    const ip = meta.value ? c.string(meta.value, CALLER_IP, meta.at) : undefined;
    const agent = meta.value ? c.string(meta.value, USER_AGENT, meta.at) : undefined;
    if (c.problems.length || time === undefined) return;

    // valid: count it
    if (this.observedAt === undefined || time > this.observedAt) this.observedAt = time;
    if (project) this.projects.add(project);
    // The account a key name gives: an email, or a unique id the inventory may resolve.
    const named: AccountRef | undefined = key
      ? isServiceAccountEmail(key.account)
        ? normaliseEmail(key.account)
        : isUniqueId(key.account)
          ? `uid:${key.account}`
          : undefined
      : undefined;
    const caller = principal && isServiceAccountEmail(principal) ? normaliseEmail(principal) : undefined;
    // The caller is the principal when it is a service account, else the account whose key was used.
    const actor = caller ?? named;
    // A key is its named account's; one named by unique id is the caller's (it authenticated with it).
    const owner = named !== undefined && !named.startsWith('uid:') ? named : (caller ?? named);
    if (actor === undefined) {
      const k = callerKind(principal, subject);
      this.stats.unattributed[k] = (this.stats.unattributed[k] ?? 0) + 1;
      return;
    }
    this.stats.attributed++;
    let a = this.accounts.get(actor);
    if (!a) {
      a = {
        ref: actor,
        events: 0,
        first: time,
        last: time,
        services: new Map(),
        errors: new Map(),
        accessDenied: 0,
        ips: new Set(),
        agents: new Set(),
        impersonatedBy: new Set(),
      };
      this.accounts.set(actor, a);
    }
    a.events++;
    if (time < a.first) a.first = time;
    if (time > a.last) a.last = time;
    const svcName = service ?? 'unknown';
    let svc = a.services.get(svcName);
    if (!svc) a.services.set(svcName, (svc = { actions: new Set(), count: 0 }));
    svc.count++;
    if (method && svc.actions.size < MAX_ACTIONS) svc.actions.add(method);
    if (code !== undefined && code !== 0) {
      const name = grpcCodeName(code);
      a.errors.set(name, (a.errors.get(name) ?? 0) + 1);
    }
    if (denied || code === 7 || code === 16) a.accessDenied++;
    if (ip && a.ips.size < MAX_SOURCE_IPS) a.ips.add(ip);
    if (agent && a.agents.size < MAX_USER_AGENTS) a.agents.add(agent);
    for (const who of impersonators)
      if (a.impersonatedBy.size < MAX_IMPERSONATORS) a.impersonatedBy.add(normaliseEmail(who));
    if (key) {
      const keyOwner = owner ?? actor;
      const k = `${keyOwner}|${key.keyId}`;
      const use = this.keys.get(k);
      if (!use) this.keys.set(k, { keyId: key.keyId, owner: keyOwner, last: time });
      else if (time > use.last) use.last = time;
    }
  }

  /** The usage attributes of one account, in the shape the CloudTrail importer gives them. */
  static attributes(a: UsageAgg): Record<string, unknown> {
    const services: Record<string, { actions: string[]; count: number }> = {};
    for (const s of [...a.services.keys()].sort()) {
      const v = a.services.get(s)!;
      services[s] = { actions: [...v.actions].sort(), count: v.count };
    }
    const errors: Record<string, number> = {};
    for (const e of [...a.errors.keys()].sort()) errors[e] = a.errors.get(e)!;
    return {
      events: a.events,
      firstSeen: a.first,
      lastSeen: a.last,
      services,
      errors,
      accessDenied: a.accessDenied,
      sourceIps: [...a.ips].sort(),
      userAgents: [...a.agents].sort(),
      impersonatedBy: [...a.impersonatedBy].sort(),
    };
  }

  /** Where the logs come from: the one project (or organisation, folder) they name, `multi`, or `unknown`. */
  scope(): string {
    return this.projects.size === 1 ? [...this.projects][0]! : this.projects.size === 0 ? 'unknown' : 'multi';
  }
}
