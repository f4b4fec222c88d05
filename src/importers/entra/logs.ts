/**
 * Entra and Azure logs as usage of applications: service-principal and managed-identity sign-ins,
 * directory audit entries (credential additions and removals, creation, consent and permission
 * grants, owners — and every operation an application itself initiated), and Azure Activity log
 * calls made by applications. Everything is keyed by appId; an entry that names its application
 * by object id only is resolved through the other entries of the same import (a sign-in names
 * both ids; an audit target names its appId in `TargetId.ServicePrincipalNames`, `AppId` or
 * `AppPrincipalId`), and reported as unresolved when it cannot be.
 */
import type { DiscoveredCredential, DiscoveredIdentity } from '../../inventory/import-discovery.js';
import { isObject, type Json } from '../common.js';
import { isoTime } from '../cloudtrail/index.js';

/** Most recent entries kept per list (credential additions, grants …) per application. */
export const MAX_EVENTS = 100;
/** Distinct values kept per set (source IPs, resources, operations). */
export const MAX_VALUES = 50;

const GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** What one log read saw, for the run summary. */
export interface LogStats {
  /** Log records read (all kinds). */
  records: number;
  directoryAudits: number;
  servicePrincipalSignIns: number;
  managedIdentitySignIns: number;
  /** Sign-ins of people: not usage of an application's own credentials, not imported. */
  userSignIns: number;
  /** Azure Activity log records, and those whose caller is an application. */
  activity: number;
  activityByApplications: number;
  /** Other Azure resource logs (storage, Kubernetes audit …): not imported. */
  otherResourceLogs: number;
  /** Records that said something about an application. */
  attributed: number;
  /** Directory audit operations that say nothing about an application's credentials or grants, by name. */
  ignoredOperations: Record<string, number>;
  /** Applications named by object id only, that no entry of the import resolves to an appId. */
  unresolved: UnresolvedTarget[];
}

export interface UnresolvedTarget {
  objectId: string;
  type: 'ServicePrincipal' | 'Application';
  name: string | undefined;
  /** What the entries say about it (the attributes it would have had). */
  facts: Record<string, unknown>;
}

type Event = Record<string, unknown> & { at: string };

interface SignIns {
  count: number;
  failed: number;
  first: string;
  last: string;
  lastSucceeded: string | undefined;
  errors: Map<string, number>;
  resources: Set<string>;
  ips: Set<string>;
  /** keyId → last successful and failed use, and the credential kind the sign-in says. */
  keys: Map<string, KeyUse>;
}

interface KeyUse {
  used: string | undefined;
  failed: string | undefined;
  kind: string | undefined;
}

interface Calls {
  count: number;
  failed: number;
  first: string;
  last: string;
  operations: Map<string, { name: string; count: number }>;
  ips: Set<string>;
}

interface Agg {
  key: string;
  name: string | undefined;
  nameAt: string;
  workload: boolean;
  tenants: Set<string>;
  spIds: Set<string>;
  appObjectIds: Set<string>;
  lastUsed: string | undefined;
  signIns: SignIns | undefined;
  activity: Calls | undefined;
  directory: Calls | undefined;
  additions: Event[];
  removals: Event[];
  grants: Event[];
  owners: Event[];
  created: Event | undefined;
  deleted: Event | undefined;
}

type Bad = (field: string, message: string) => void;

const lower = (r: Json): Map<string, unknown> => {
  const m = new Map<string, unknown>();
  for (const k of Object.keys(r)) {
    const l = k.toLowerCase();
    if (!m.has(l)) m.set(l, r[k]);
  }
  return m;
};

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v : undefined);

/** Operation names as Entra writes them, compared without case, dash style or trailing spaces. */
export const normaliseOperation = (s: string): string =>
  s
    .replace(/[\u2010-\u2015]/g, '-')
    .replace(/\s+/g, ' ')
    .trim()
    .toLowerCase();

/** A modified property's value: Entra writes JSON inside strings (`"\"Password\""`). */
function decode(v: unknown): unknown {
  if (typeof v !== 'string') return v;
  const t = v.trim();
  if (t === '') return undefined;
  if (t.startsWith('"') || t.startsWith('[') || t.startsWith('{')) {
    try {
      return JSON.parse(t) as unknown;
    } catch {
      return v;
    }
  }
  return v;
}

interface KeyDesc {
  keyId?: string;
  keyType?: string;
  usage?: string;
  displayName?: string;
}

const KEY_FIELD_RE = /(KeyIdentifier|KeyType|KeyUsage|DisplayName)=/g;

/** `[KeyIdentifier=…, KeyType=Password, KeyUsage=Verify, DisplayName=…]` entries of a KeyDescription. */
export function keyDescriptions(v: unknown): KeyDesc[] {
  const value = decode(v);
  const items = Array.isArray(value) ? value : value === undefined || value === null ? [] : [value];
  const out: KeyDesc[] = [];
  for (const item of items) {
    if (typeof item !== 'string' || item.trim() === '') continue;
    const s = item.trim().replace(/^\[/, '').replace(/\]$/, '');
    const marks = [...s.matchAll(KEY_FIELD_RE)];
    if (!marks.length) {
      out.push({ displayName: item.trim() });
      continue;
    }
    const d: KeyDesc = {};
    for (let i = 0; i < marks.length; i++) {
      const m = marks[i]!;
      const end = i + 1 < marks.length ? marks[i + 1]!.index : s.length;
      const val = s
        .slice(m.index + m[0].length, end)
        .replace(/,\s*$/, '')
        .trim();
      if (!val) continue;
      if (m[1] === 'KeyIdentifier') d.keyId = val.toLowerCase();
      else if (m[1] === 'KeyType') d.keyType = val;
      else if (m[1] === 'KeyUsage') d.usage = val;
      else d.displayName = val;
    }
    out.push(d);
  }
  return out;
}

/** The Steward credential kind of an Entra key type (`Password`, `AsymmetricX509Cert`, `Symmetric`). */
export function kindOfKeyType(t: string | undefined): string | undefined {
  if (!t) return undefined;
  if (/x509|cert/i.test(t)) return 'certificate';
  if (/password|secret|symmetric/i.test(t)) return 'client-secret';
  return undefined;
}

/** The Steward credential kind of a sign-in's `clientCredentialType`. */
function kindOfClientCredential(t: unknown): string | undefined {
  if (t === 'clientSecret') return 'client-secret';
  if (t === 'certificate' || t === 'clientAssertion') return 'certificate';
  return undefined;
}

const CREDENTIAL_ADD = new Set(['add service principal credentials']);
const CREDENTIAL_REMOVE = new Set(['remove service principal credentials']);
const CREDENTIAL_UPDATE = new Set([
  'update application - certificates and secrets management',
  'create application - certificates and secrets management',
  'update service principal - certificates and secrets management',
]);
const CREATED = new Set(['add service principal', 'add application']);
const DELETED = new Set([
  'delete service principal',
  'delete application',
  'hard delete application',
  'hard delete service principal',
]);
const CONSENT = new Set(['consent to application']);
const GRANTS = new Set([
  'add delegated permission grant',
  'remove delegated permission grant',
  'add app role assignment to service principal',
  'remove app role assignment from service principal',
]);
const OWNERS = new Set([
  'add owner to application',
  'add owner to service principal',
  'remove owner from application',
  'remove owner from service principal',
]);

const isAppTarget = (t: Json): boolean => {
  const type = typeof t.type === 'string' ? t.type.toLowerCase() : '';
  return type === 'serviceprincipal' || type === 'application';
};

/** Aggregates log records, one at a time, into usage per application. */
export class LogAggregator {
  private readonly aggs = new Map<string, Agg>();
  private readonly spToApp = new Map<string, string>();
  private readonly appObjToApp = new Map<string, string>();
  readonly tenants = new Set<string>();
  observedAt: string | undefined;
  private readonly ignored = new Map<string, number>();
  readonly stats: LogStats = {
    records: 0,
    directoryAudits: 0,
    servicePrincipalSignIns: 0,
    managedIdentitySignIns: 0,
    userSignIns: 0,
    activity: 0,
    activityByApplications: 0,
    otherResourceLogs: 0,
    attributed: 0,
    ignoredOperations: {},
    unresolved: [],
  };

  /** Whether a record looks like an Entra or Azure log record (diagnostic-settings or Graph shape). */
  static recognises(r: Json): boolean {
    const k = lower(r);
    if (k.has('operationname') && (k.has('time') || k.has('category') || k.has('properties'))) return true;
    if (k.has('category') && (k.has('properties') || k.has('time'))) return true;
    if (k.has('time') && k.has('resourceid')) return true;
    if (typeof r.activityDisplayName === 'string' && ('targetResources' in r || 'initiatedBy' in r))
      return true;
    return (
      'createdDateTime' in r &&
      'appId' in r &&
      'status' in r &&
      ('servicePrincipalId' in r || 'signInEventTypes' in r || 'userPrincipalName' in r)
    );
  }

  private agg(key: string): Agg {
    let a = this.aggs.get(key);
    if (!a) {
      a = {
        key,
        name: undefined,
        nameAt: '',
        workload: false,
        tenants: new Set(),
        spIds: new Set(),
        appObjectIds: new Set(),
        lastUsed: undefined,
        signIns: undefined,
        activity: undefined,
        directory: undefined,
        additions: [],
        removals: [],
        grants: [],
        owners: [],
        created: undefined,
        deleted: undefined,
      };
      this.aggs.set(key, a);
    }
    return a;
  }

  private touch(a: Agg, time: string, tenant: string | undefined, name: string | undefined): void {
    if (tenant) a.tenants.add(tenant.toLowerCase());
    if (name && time >= a.nameAt) {
      a.name = name;
      a.nameAt = time;
    }
    if (this.observedAt === undefined || time > this.observedAt) this.observedAt = time;
  }

  private learnSp(spId: string | undefined, appId: string | undefined): void {
    if (spId && appId) this.spToApp.set(spId.toLowerCase(), appId.toLowerCase());
  }

  /** Adds one record; its problems go to `bad` (with the field path inside the record). */
  add(r: Json, bad: Bad): void {
    this.stats.records += 1;
    const top = lower(r);
    let props: Json = r;
    let graph = true;
    if (!(
      typeof r.activityDisplayName === 'string' ||
      ('createdDateTime' in r && 'appId' in r && 'status' in r)
    )) {
      graph = false;
      const p = top.get('properties');
      if (p !== undefined && p !== null && !isObject(p)) {
        bad(
          'properties',
          `expected an object, got ${typeof p === 'string' ? 'a string' : Array.isArray(p) ? 'an array' : typeof p}`,
        );
        return;
      }
      props = isObject(p) ? p : {};
    }
    const tenant = this.tenantOf(top, props);
    if (tenant) this.tenants.add(tenant);
    const rawOp = top.get('operationname');
    const opName =
      typeof rawOp === 'string'
        ? rawOp
        : isObject(rawOp) && typeof rawOp.value === 'string'
          ? rawOp.value
          : undefined;
    const category =
      typeof top.get('category') === 'string' ? (top.get('category') as string).toLowerCase() : '';
    const eventTypes = Array.isArray(props.signInEventTypes) ? props.signInEventTypes : [];
    if (category === 'serviceprincipalsigninlogs' || category === 'managedidentitysigninlogs') {
      this.signIn(top, props, tenant, category === 'managedidentitysigninlogs', bad);
      return;
    }
    if (
      category.endsWith('signinlogs') ||
      opName === 'Sign-in activity' ||
      (graph && 'createdDateTime' in r && 'status' in r && typeof r.activityDisplayName !== 'string')
    ) {
      if (eventTypes.includes('servicePrincipal') || eventTypes.includes('managedIdentity'))
        this.signIn(top, props, tenant, eventTypes.includes('managedIdentity'), bad);
      else this.stats.userSignIns += 1;
      return;
    }
    if (
      typeof props.activityDisplayName === 'string' ||
      'targetResources' in props ||
      'initiatedBy' in props
    ) {
      this.audit(top, props, tenant, opName, graph, bad);
      return;
    }
    if ((opName !== undefined && opName.includes('/')) || top.has('identity')) {
      this.activityCall(top, tenant, opName, bad);
      return;
    }
    this.stats.otherResourceLogs += 1;
  }

  private tenantOf(top: Map<string, unknown>, props: Json): string | undefined {
    const t = str(top.get('tenantid')) ?? str(props.resourceTenantId) ?? str(props.tenantId);
    if (t) return t.toLowerCase();
    const rid = str(top.get('resourceid'));
    const m = rid ? /^\/tenants\/([^/]+)\//i.exec(rid) : null;
    return m ? m[1]!.toLowerCase() : undefined;
  }

  private time(v: unknown, field: string, bad: Bad): string | undefined {
    const t = typeof v === 'string' ? isoTime(v) : undefined;
    if (t === undefined)
      bad(
        field,
        v === undefined || v === null
          ? 'expected the time of the entry, got nothing'
          : `expected an ISO-8601 timestamp, got ${typeof v === 'string' ? JSON.stringify(v.slice(0, 40)) : typeof v}`,
      );
    return t;
  }

  private signIn(
    top: Map<string, unknown>,
    props: Json,
    tenant: string | undefined,
    managed: boolean,
    bad: Bad,
  ): void {
    if (managed) this.stats.managedIdentitySignIns += 1;
    else this.stats.servicePrincipalSignIns += 1;
    const appId = str(props.appId);
    if (!appId) {
      bad(
        'properties.appId',
        `expected the application id, got ${props.appId === undefined ? 'nothing' : JSON.stringify(props.appId)}`,
      );
      return;
    }
    const time =
      props.createdDateTime !== undefined
        ? this.time(props.createdDateTime, 'properties.createdDateTime', bad)
        : this.time(top.get('time'), 'time', bad);
    if (!time) return;
    const status = props.status;
    const code = isObject(status) ? status.errorCode : top.get('resulttype');
    const ok = code === 0 || code === '0' || code === undefined || code === 'Success';
    const spId = str(props.servicePrincipalId);
    this.learnSp(spId, appId);
    this.stats.attributed += 1;
    const a = this.agg(`app:${appId.toLowerCase()}`);
    this.touch(a, time, tenant, str(props.servicePrincipalName) ?? str(props.appDisplayName));
    if (managed || (typeof props.managedIdentityType === 'string' && props.managedIdentityType !== 'none'))
      a.workload = true;
    if (spId) a.spIds.add(spId.toLowerCase());
    const s: SignIns = (a.signIns ??= {
      count: 0,
      failed: 0,
      first: time,
      last: time,
      lastSucceeded: undefined,
      errors: new Map<string, number>(),
      resources: new Set<string>(),
      ips: new Set<string>(),
      keys: new Map<string, KeyUse>(),
    });
    s.count += 1;
    if (time < s.first) s.first = time;
    if (time > s.last) s.last = time;
    if (ok) {
      if (s.lastSucceeded === undefined || time > s.lastSucceeded) s.lastSucceeded = time;
      if (a.lastUsed === undefined || time > a.lastUsed) a.lastUsed = time;
    } else {
      s.failed += 1;
      const c = typeof code === 'number' || typeof code === 'string' ? String(code) : 'unknown';
      s.errors.set(c, (s.errors.get(c) ?? 0) + 1);
    }
    const resource = str(props.resourceDisplayName);
    if (resource && s.resources.size < MAX_VALUES) s.resources.add(resource);
    const ip = str(props.ipAddress) ?? str(top.get('calleripaddress'));
    if (ip && s.ips.size < MAX_VALUES) s.ips.add(ip);
    const keyId = str(props.servicePrincipalCredentialKeyId)?.toLowerCase();
    if (keyId) {
      const k: KeyUse = s.keys.get(keyId) ?? { used: undefined, failed: undefined, kind: undefined };
      k.kind ??= kindOfClientCredential(props.clientCredentialType);
      if (ok && (k.used === undefined || time > k.used)) k.used = time;
      if (!ok && (k.failed === undefined || time > k.failed)) k.failed = time;
      s.keys.set(keyId, k);
    }
  }

  private calls(
    c: Calls | undefined,
    time: string,
    op: string | undefined,
    failed: boolean,
    ip: string | undefined,
  ): Calls {
    const x: Calls = c ?? {
      count: 0,
      failed: 0,
      first: time,
      last: time,
      operations: new Map<string, { name: string; count: number }>(),
      ips: new Set<string>(),
    };
    x.count += 1;
    if (failed) x.failed += 1;
    if (time < x.first) x.first = time;
    if (time > x.last) x.last = time;
    if (op) {
      const k = op.toLowerCase();
      const o = x.operations.get(k);
      if (o) o.count += 1;
      else if (x.operations.size < MAX_VALUES) x.operations.set(k, { name: op, count: 1 });
    }
    if (ip && x.ips.size < MAX_VALUES) x.ips.add(ip);
    return x;
  }

  private activityCall(
    top: Map<string, unknown>,
    tenant: string | undefined,
    op: string | undefined,
    bad: Bad,
  ): void {
    this.stats.activity += 1;
    const identity = top.get('identity');
    const claims = isObject(identity) && isObject(identity.claims) ? identity.claims : undefined;
    if (!claims) return;
    const appId = str(claims.appid) ?? str(claims.azp);
    const idtyp = str(claims.idtyp);
    const name = str(claims.name);
    const user =
      str(claims.upn) ??
      str(claims.unique_name) ??
      str(claims['http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn']) ??
      (name?.includes('@') ? name : undefined);
    if (!appId || idtyp === 'user' || (idtyp !== 'app' && user)) return;
    if (!GUID_RE.test(appId)) {
      bad(
        'identity.claims.appid',
        `expected an application id (a GUID), got ${JSON.stringify(appId.slice(0, 40))}`,
      );
      return;
    }
    const time = this.time(top.get('time'), 'time', bad);
    if (!time) return;
    this.stats.activityByApplications += 1;
    this.stats.attributed += 1;
    const oid =
      str(claims.oid) ?? str(claims['http://schemas.microsoft.com/identity/claims/objectidentifier']);
    this.learnSp(oid, appId);
    const a = this.agg(`app:${appId.toLowerCase()}`);
    this.touch(a, time, tenant, undefined);
    if (oid) a.spIds.add(oid.toLowerCase());
    const result = str(top.get('resulttype'));
    a.activity = this.calls(
      a.activity,
      time,
      op,
      result?.toLowerCase() === 'failure',
      str(top.get('calleripaddress')),
    );
    if (a.lastUsed === undefined || time > a.lastUsed) a.lastUsed = time;
  }

  private audit(
    top: Map<string, unknown>,
    props: Json,
    tenant: string | undefined,
    opName: string | undefined,
    graph: boolean,
    bad: Bad,
  ): void {
    this.stats.directoryAudits += 1;
    const raw = str(props.activityDisplayName) ?? str(props.operationName) ?? opName;
    if (!raw) {
      bad(
        graph ? 'activityDisplayName' : 'properties.activityDisplayName',
        'expected the name of the operation, got nothing',
      );
      return;
    }
    const op = normaliseOperation(raw);
    const tf = graph
      ? 'activityDateTime'
      : props.activityDateTime !== undefined
        ? 'properties.activityDateTime'
        : 'time';
    const time = this.time(props.activityDateTime ?? top.get('time'), tf, bad);
    if (!time) return;
    const pre = graph ? '' : 'properties.';
    const result = props.result;
    const success =
      result === undefined ||
      result === null ||
      result === 0 ||
      (typeof result === 'string' && result.toLowerCase() === 'success');
    const ib = props.initiatedBy;
    if (ib !== undefined && ib !== null && !isObject(ib)) {
      bad(`${pre}initiatedBy`, `expected an object, got ${Array.isArray(ib) ? 'an array' : typeof ib}`);
      return;
    }
    const targetsRaw = props.targetResources;
    if (targetsRaw !== undefined && targetsRaw !== null && !Array.isArray(targetsRaw)) {
      bad(
        `${pre}targetResources`,
        `expected an array, got ${isObject(targetsRaw) ? 'an object' : typeof targetsRaw}`,
      );
      return;
    }
    const targets: Json[] = [];
    for (const [i, t] of (targetsRaw ?? []).entries()) {
      if (!isObject(t)) {
        bad(
          `${pre}targetResources[${i}]`,
          `expected an object, got ${Array.isArray(t) ? 'an array' : typeof t}`,
        );
        return;
      }
      if (
        t.modifiedProperties !== undefined &&
        t.modifiedProperties !== null &&
        !Array.isArray(t.modifiedProperties)
      ) {
        bad(
          `${pre}targetResources[${i}].modifiedProperties`,
          `expected an array, got ${isObject(t.modifiedProperties) ? 'an object' : typeof t.modifiedProperties}`,
        );
        return;
      }
      targets.push(t);
    }
    const user = isObject(ib) && isObject(ib.user) ? ib.user : undefined;
    const app = isObject(ib) && isObject(ib.app) ? ib.app : undefined;
    const by = user
      ? (str(user.userPrincipalName) ?? str(user.displayName) ?? str(user.id))
      : app
        ? `app:${str(app.appId) ?? str(app.servicePrincipalId) ?? '?'}${str(app.displayName) ? ` (${str(app.displayName)})` : ''}`
        : undefined;
    let attributed = false;
    // an application that acts on the directory used its credentials
    const actorApp = app ? str(app.appId)?.toLowerCase() : undefined;
    if (app && actorApp) {
      const spId = str(app.servicePrincipalId);
      this.learnSp(spId, actorApp);
      const a = this.agg(`app:${actorApp}`);
      this.touch(a, time, tenant, str(app.displayName));
      if (spId) a.spIds.add(spId.toLowerCase());
      a.directory = this.calls(a.directory, time, raw.trim(), !success, undefined);
      if (a.lastUsed === undefined || time > a.lastUsed) a.lastUsed = time;
      attributed = true;
    }
    const details = new Map<string, unknown>();
    if (Array.isArray(props.additionalDetails))
      for (const d of props.additionalDetails)
        if (isObject(d) && typeof d.key === 'string') details.set(d.key.toLowerCase(), d.value);

    const known =
      CREDENTIAL_ADD.has(op) ||
      CREDENTIAL_REMOVE.has(op) ||
      CREDENTIAL_UPDATE.has(op) ||
      CREATED.has(op) ||
      DELETED.has(op) ||
      CONSENT.has(op) ||
      GRANTS.has(op) ||
      OWNERS.has(op);
    const target = targets.find(isAppTarget);
    const mods = target ? modifiedProperties(target) : new Map<string, { old: unknown; new: unknown }>();
    // the client of a grant is named by the ServicePrincipal.* properties; the target is the resource
    const clientApp = str(decode(mods.get('serviceprincipal.appid')?.new));
    const clientSp = str(decode(mods.get('serviceprincipal.objectid')?.new));
    if (!known || !target || (GRANTS.has(op) && !clientApp && !clientSp)) {
      if (attributed) this.stats.attributed += 1;
      else this.ignored.set(raw.trim(), (this.ignored.get(raw.trim()) ?? 0) + 1);
      return;
    }
    this.stats.attributed += 1;
    if (!success) return; // a failed change changed nothing
    const targetType =
      String(target.type).toLowerCase() === 'application' ? 'Application' : 'ServicePrincipal';
    const targetId = str(target.id)?.toLowerCase();
    const appId = appIdOf(mods, details);
    if (targetId && appId) {
      if (targetType === 'ServicePrincipal') this.learnSp(targetId, appId);
      else this.appObjToApp.set(targetId, appId);
    }
    const name = str(target.displayName);
    const on = targetType === 'Application' ? 'application' : 'servicePrincipal';
    // credential events name their actor addedBy / removedBy; the others by
    const ev = (extra: Record<string, unknown>, who: string = 'by'): Event =>
      defined({ at: time, operation: raw.trim(), [who]: by, ...extra }) as Event;

    let a: Agg;
    if (GRANTS.has(op)) {
      this.learnSp(clientSp, clientApp);
      a = this.agg(clientApp ? `app:${clientApp.toLowerCase()}` : `sp:${clientSp!.toLowerCase()}`);
      this.touch(a, time, tenant, str(decode(mods.get('serviceprincipal.displayname')?.new)));
      if (clientSp) a.spIds.add(clientSp.toLowerCase());
      const permissions =
        str(decode(mods.get('delegatedpermissiongrant.scope')?.new)) ??
        str(decode(mods.get('delegatedpermissiongrant.scope')?.old)) ??
        str(decode(mods.get('approle.value')?.new)) ??
        str(decode(mods.get('approle.value')?.old));
      record(a.grants, ev({ permissions, resource: name, resourceId: targetId }));
      return;
    }
    a = this.agg(appId ? `app:${appId}` : `${on === 'application' ? 'appobj' : 'sp'}:${targetId ?? '?'}`);
    this.touch(a, time, tenant, on === 'servicePrincipal' ? name : (a.name ?? name));
    if (targetId) (on === 'application' ? a.appObjectIds : a.spIds).add(targetId);

    if (CREDENTIAL_ADD.has(op) || CREDENTIAL_REMOVE.has(op) || CREDENTIAL_UPDATE.has(op)) {
      const kd = mods.get('keydescription');
      const before = keyDescriptions(kd?.old);
      const after = keyDescriptions(kd?.new);
      const keyType = str(decode(mods.get('keytype')?.new));
      const same = (x: KeyDesc, y: KeyDesc) =>
        x.keyId !== undefined || y.keyId !== undefined
          ? x.keyId === y.keyId
          : JSON.stringify(x) === JSON.stringify(y);
      const added = after.filter((x) => !before.some((y) => same(x, y)));
      const removed = before.filter((x) => !after.some((y) => same(x, y)));
      const entry = (k: KeyDesc) => {
        const type = k.keyType ?? keyType;
        return {
          keyId: k.keyId,
          keyType: type,
          kind: kindOfKeyType(type),
          displayName: k.displayName,
          usage: k.usage,
          on,
        };
      };
      if (CREDENTIAL_REMOVE.has(op)) {
        for (const k of removed.length ? removed : before) record(a.removals, ev(entry(k), 'removedBy'));
      } else {
        for (const k of added) record(a.additions, ev(entry(k), 'addedBy'));
        for (const k of removed) record(a.removals, ev(entry(k), 'removedBy'));
        if (!added.length && !removed.length && CREDENTIAL_ADD.has(op))
          record(a.additions, ev({ keyType, kind: kindOfKeyType(keyType), on }, 'addedBy'));
      }
    } else if (CREATED.has(op)) {
      a.created = ev({ on });
    } else if (DELETED.has(op)) {
      a.deleted = ev({ on });
    } else if (CONSENT.has(op)) {
      record(
        a.grants,
        ev({
          permissions: str(decode(mods.get('consentaction.permissions')?.new)),
          adminConsent: decode(mods.get('consentcontext.isadminconsent')?.new) === 'True' ? true : undefined,
          onBehalfOfAll: decode(mods.get('consentcontext.onbehalfofall')?.new) === 'True' ? true : undefined,
        }),
      );
    } else if (OWNERS.has(op)) {
      const owner = targets.find((t) => t !== target);
      record(
        a.owners,
        ev({
          owner: owner
            ? (str(owner.userPrincipalName) ?? str(owner.displayName) ?? str(owner.id))
            : undefined,
        }),
      );
    }
  }

  /** The identities, resolved to appIds; sorted by external id. */
  identities(): DiscoveredIdentity[] {
    // entries that named an object id only, resolved through what the other entries taught
    for (const [key, a] of [...this.aggs]) {
      const [type, id] = key.split(':', 2) as [string, string];
      if (type === 'app') continue;
      const appId = (type === 'sp' ? this.spToApp : this.appObjToApp).get(id);
      if (!appId) continue;
      this.aggs.delete(key);
      merge(this.agg(`app:${appId}`), a);
    }
    const out: DiscoveredIdentity[] = [];
    this.stats.unresolved = [];
    for (const a of [...this.aggs.values()].sort((x, y) => (x.key < y.key ? -1 : 1))) {
      const [type, id] = a.key.split(':', 2) as [string, string];
      if (type !== 'app') {
        this.stats.unresolved.push({
          objectId: id,
          type: type === 'sp' ? 'ServicePrincipal' : 'Application',
          name: a.name,
          facts: facts(a, undefined),
        });
        continue;
      }
      const credentials: DiscoveredCredential[] = [];
      for (const [keyId, k] of [...(a.signIns?.keys ?? new Map<string, never>())].sort()) {
        if (!k.kind || !k.used) continue;
        credentials.push({ externalId: keyId, kind: k.kind, lastUsedAt: k.used });
      }
      const d: DiscoveredIdentity = {
        externalId: `entra:app:${id}`,
        name: a.name ?? id,
        kind: a.workload ? 'workload' : 'service-account',
        attributes: facts(a, id),
        credentials,
      };
      if (a.lastUsed) d.lastUsedAt = a.lastUsed;
      out.push(d);
    }
    this.stats.ignoredOperations = Object.fromEntries([...this.ignored].sort());
    return out;
  }
}

function modifiedProperties(t: Json): Map<string, { old: unknown; new: unknown }> {
  const m = new Map<string, { old: unknown; new: unknown }>();
  if (!Array.isArray(t.modifiedProperties)) return m;
  for (const p of t.modifiedProperties) {
    if (!isObject(p) || typeof p.displayName !== 'string') continue;
    m.set(p.displayName.toLowerCase(), { old: p.oldValue, new: p.newValue });
  }
  return m;
}

/** The appId an audit target names: `AppId`, `AppPrincipalId`, `TargetId.ServicePrincipalNames`, or `additionalDetails`. */
function appIdOf(
  mods: Map<string, { old: unknown; new: unknown }>,
  details: Map<string, unknown>,
): string | undefined {
  const candidates: unknown[] = [
    mods.get('appid')?.new,
    mods.get('appid')?.old,
    mods.get('appprincipalid')?.new,
    mods.get('appprincipalid')?.old,
    details.get('appid'),
  ];
  for (const c of candidates) {
    const v = decode(c);
    const s: unknown = Array.isArray(v) ? v[0] : v;
    if (typeof s === 'string' && GUID_RE.test(s.trim())) return s.trim().toLowerCase();
  }
  const spn = decode(
    mods.get('targetid.serviceprincipalnames')?.new ?? mods.get('targetid.serviceprincipalnames')?.old,
  );
  const names = (Array.isArray(spn) ? spn : [spn]).flatMap((x) =>
    typeof x === 'string' ? x.split(';') : [],
  );
  const guid = names.map((x) => x.trim()).find((x) => GUID_RE.test(x));
  return guid?.toLowerCase();
}

function defined(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out;
}

/** The most recent events, each once (overlapping exports repeat entries), oldest first. */
function newest(events: Event[]): Event[] {
  const seen = new Set<string>();
  const out: Event[] = [];
  for (const e of [...events].sort((x, y) => (x.at < y.at ? -1 : x.at > y.at ? 1 : 0))) {
    const k = JSON.stringify(e);
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(e);
  }
  return out.slice(-MAX_EVENTS);
}

/** Appends an event, trimming the list to the newest ones when it grows: memory stays bounded. */
function record(list: Event[], e: Event): void {
  list.push(e);
  if (list.length > 4 * MAX_EVENTS) list.splice(0, list.length, ...newest(list));
}

function mergeCalls(a: Calls | undefined, b: Calls | undefined): Calls | undefined {
  if (!a || !b) return a ?? b;
  const out: Calls = {
    count: a.count + b.count,
    failed: a.failed + b.failed,
    first: a.first < b.first ? a.first : b.first,
    last: a.last > b.last ? a.last : b.last,
    operations: new Map(a.operations),
    ips: new Set([...a.ips, ...b.ips].slice(0, MAX_VALUES)),
  };
  for (const [k, v] of b.operations) {
    const o = out.operations.get(k);
    if (o) o.count += v.count;
    else if (out.operations.size < MAX_VALUES) out.operations.set(k, { ...v });
  }
  return out;
}

/** Folds what was learnt under an object id into the application's aggregate. */
function merge(into: Agg, from: Agg): void {
  if (from.name && (into.name === undefined || from.nameAt > into.nameAt)) {
    into.name = from.name;
    into.nameAt = from.nameAt;
  }
  into.workload ||= from.workload;
  for (const t of from.tenants) into.tenants.add(t);
  for (const s of from.spIds) into.spIds.add(s);
  for (const s of from.appObjectIds) into.appObjectIds.add(s);
  if (from.lastUsed && (into.lastUsed === undefined || from.lastUsed > into.lastUsed))
    into.lastUsed = from.lastUsed;
  if (from.signIns) {
    if (!into.signIns) into.signIns = from.signIns;
    else {
      const s = into.signIns;
      const f = from.signIns;
      s.count += f.count;
      s.failed += f.failed;
      if (f.first < s.first) s.first = f.first;
      if (f.last > s.last) s.last = f.last;
      if (f.lastSucceeded && (s.lastSucceeded === undefined || f.lastSucceeded > s.lastSucceeded))
        s.lastSucceeded = f.lastSucceeded;
      for (const [c, n] of f.errors) s.errors.set(c, (s.errors.get(c) ?? 0) + n);
      for (const r of f.resources) if (s.resources.size < MAX_VALUES) s.resources.add(r);
      for (const ip of f.ips) if (s.ips.size < MAX_VALUES) s.ips.add(ip);
      for (const [k, v] of f.keys) {
        const cur = s.keys.get(k);
        if (!cur) s.keys.set(k, v);
        else {
          cur.kind ??= v.kind;
          if (v.used && (cur.used === undefined || v.used > cur.used)) cur.used = v.used;
          if (v.failed && (cur.failed === undefined || v.failed > cur.failed)) cur.failed = v.failed;
        }
      }
    }
  }
  into.activity = mergeCalls(into.activity, from.activity);
  into.directory = mergeCalls(into.directory, from.directory);
  into.additions.push(...from.additions);
  into.removals.push(...from.removals);
  into.grants.push(...from.grants);
  into.owners.push(...from.owners);
  if (from.created && (!into.created || from.created.at < into.created.at)) into.created = from.created;
  if (from.deleted && (!into.deleted || from.deleted.at > into.deleted.at)) into.deleted = from.deleted;
}

function callsOut(c: Calls | undefined): Record<string, unknown> | undefined {
  if (!c) return undefined;
  return {
    count: c.count,
    failed: c.failed,
    firstSeen: c.first,
    lastSeen: c.last,
    operations: Object.fromEntries(
      [...c.operations.values()].sort((x, y) => (x.name < y.name ? -1 : 1)).map((o) => [o.name, o.count]),
    ),
    ...(c.ips.size ? { sourceIps: [...c.ips].sort() } : {}),
  };
}

/** The attributes of an application's aggregate (sorted, so that the same logs give the same facts). */
function facts(a: Agg, appId: string | undefined): Record<string, unknown> {
  const s = a.signIns;
  const keys = [...(s?.keys ?? new Map<string, never>())].sort();
  const used = keys.filter(([, k]) => k.used).map(([id, k]) => [id, k.used]);
  const failed = keys.filter(([, k]) => k.failed).map(([id, k]) => [id, k.failed]);
  const usage = defined({
    signIns: s
      ? defined({
          count: s.count,
          failed: s.failed,
          firstSeen: s.first,
          lastSeen: s.last,
          lastSucceeded: s.lastSucceeded,
          errors: s.errors.size ? Object.fromEntries([...s.errors].sort()) : undefined,
          resources: s.resources.size ? [...s.resources].sort() : undefined,
          sourceIps: s.ips.size ? [...s.ips].sort() : undefined,
          credentialsUsed: used.length ? Object.fromEntries(used) : undefined,
          credentialsFailed: failed.length ? Object.fromEntries(failed) : undefined,
        })
      : undefined,
    activity: callsOut(a.activity),
    directory: callsOut(a.directory),
  });
  return defined({
    appId,
    tenants: a.tenants.size ? [...a.tenants].sort() : undefined,
    servicePrincipalIds: a.spIds.size ? [...a.spIds].sort() : undefined,
    applicationObjectIds: a.appObjectIds.size ? [...a.appObjectIds].sort() : undefined,
    usage: Object.keys(usage).length ? usage : undefined,
    created: a.created,
    deleted: a.deleted,
    credentialAdditions: a.additions.length ? newest(a.additions) : undefined,
    credentialRemovals: a.removals.length ? newest(a.removals) : undefined,
    permissionGrants: a.grants.length ? newest(a.grants) : undefined,
    ownersAdded: a.owners.length ? newest(a.owners) : undefined,
  });
}
