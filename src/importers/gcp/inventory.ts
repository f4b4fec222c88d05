/**
 * What GCP lists: Cloud Asset Inventory assets (service accounts, their keys, custom roles, and
 * the IAM policy of any resource), `gcloud iam service-accounts keys list --format=json` entries
 * and `gcloud iam service-accounts list --format=json` entries. Each record is validated whole
 * and kept only when it has no problem; what is kept is normalised (accounts by email, their
 * keys, the grants naming them), never the raw asset.
 */
import { isoTime } from '../cloudtrail/index.js';
import { describeJson, isObject, type Json } from '../common.js';
import {
  KEY_NAME_EXPECTED,
  containerOfName,
  containerOfParent,
  isEmail,
  isUniqueId,
  normaliseEmail,
  parseAccountName,
  parseKeyName,
  projectOfEmail,
  type RecordCheck,
} from './names.js';

export const SERVICE_ACCOUNT = 'iam.googleapis.com/ServiceAccount';
export const SERVICE_ACCOUNT_KEY = 'iam.googleapis.com/ServiceAccountKey';
export const ROLE = 'iam.googleapis.com/Role';
export const PROJECT = 'cloudresourcemanager.googleapis.com/Project';

/** Where a record was read: for problems found only once every input is read. */
export interface Where {
  file: string;
  line: number;
  field: string;
}

/** A service-account key as listed (metadata only: a listing never holds private key data). */
export interface KeyRec {
  keyId: string;
  keyType: string | null;
  keyAlgorithm: string | null;
  keyOrigin: string | null;
  disabled: boolean;
  disableReason: string | null;
  /** Google found the private key exposed or compromised (disable reason or extended status). */
  exposed: boolean;
  validAfter: string | undefined;
  validBefore: string | undefined;
}

export interface Condition {
  title: string | null;
  description: string | null;
  expression: string;
}

/** One role binding naming a member, on the resource whose policy holds it. */
export interface Grant {
  resource: string;
  assetType: string;
  role: string;
  condition: Condition | null;
}

export type Reference = 'binding' | 'key' | 'audit-log';

/** A service account: listed (an asset or a list entry) or only referenced. */
export interface AccountRec {
  email: string;
  listed: boolean;
  projectId: string | null;
  uniqueId: string | null;
  displayName: string | null;
  description: string | null;
  oauth2ClientId: string | null;
  disabled: boolean;
  assetName: string | null;
  /** The project (or folder, organisation) the listing places it in. */
  container: string | null;
  references: Set<Reference>;
  keys: Map<string, KeyRec>;
  grants: Grant[];
}

/** What a listing says about an account. */
type AccountData = Omit<AccountRec, 'references' | 'keys' | 'grants' | 'listed' | 'container'>;

/** A Kubernetes service account granted through Workload Identity (`serviceAccount:p.svc.id.goog[ns/name]`). */
export interface WorkloadRec {
  externalId: string;
  pool: string;
  namespace: string;
  name: string;
  grants: Grant[];
}

export interface InventoryStats {
  /** Valid Cloud Asset Inventory assets read. */
  assets: number;
  /** Valid `keys list` / `service-accounts list` entries read. */
  listEntries: number;
  /** Service accounts listed (assets or list entries). */
  serviceAccounts: number;
  /** Keys listed. */
  keys: number;
  /** Role bindings read, and their members by kind. */
  bindings: number;
  members: { serviceAccount: number; workloadIdentity: number; deleted: number; other: number };
  /** Assets of types this importer does not read and without an IAM policy. */
  otherAssets: number;
}

const WORKLOAD_RE = /^([a-z0-9.-]+\.svc\.id\.goog)\[([^/\]]+)\/([^\]]+)\]$/;
const NEVER = '9999';

/** A timestamp field: ISO-8601 text, normalised to UTC with milliseconds. */
function time(c: RecordCheck, o: Json, keys: readonly string[], at: string): string | undefined {
  const { key, value } = c.pick(o, keys);
  if (value === undefined || value === null) return undefined;
  const rel = at === '' ? key : `${at}.${key}`;
  if (typeof value !== 'string') {
    c.fail(rel, `expected an ISO-8601 timestamp string, got ${describeJson(value)}`);
    return undefined;
  }
  const t = isoTime(value);
  if (t === undefined) c.fail(rel, `expected an ISO-8601 timestamp, got ${describeJson(value)}`);
  return t;
}

interface ParsedKey {
  account: string;
  project: string;
  key: KeyRec;
}

interface ParsedMember {
  kind: 'serviceAccount' | 'workloadIdentity' | 'deleted' | 'other';
  value: string;
}

/** Accumulates what the inventory inputs list, record by record. */
export class GcpInventory {
  readonly accounts = new Map<string, AccountRec>();
  readonly workloads = new Map<string, WorkloadRec>();
  /** Unique id → email, from listed accounts. */
  readonly uniqueIds = new Map<string, string>();
  /** A service account's CAI asset name → its email (for grants on a service account). */
  readonly accountAssets = new Map<string, string>();
  /** Custom role name → its permissions. */
  readonly customRoles = new Map<string, string[]>();
  /** Keys whose name gives the account's unique id: resolved once every input is read. */
  private readonly pendingKeys: { uniqueId: string; key: KeyRec; where: Where }[] = [];
  /** Distinct container chains (nearest first) of every record, and aliases `projects/<id>` → `projects/<number>`. */
  private readonly chains = new Map<string, string[]>();
  private readonly aliases = new Map<string, string>();
  observedAt: string | undefined;
  /** Inventory records seen, valid or not. */
  records = 0;
  readonly stats: InventoryStats = {
    assets: 0,
    listEntries: 0,
    serviceAccounts: 0,
    keys: 0,
    bindings: 0,
    members: { serviceAccount: 0, workloadIdentity: 0, deleted: 0, other: 0 },
    otherAssets: 0,
  };

  private account(email: string): AccountRec {
    let a = this.accounts.get(email);
    if (!a) {
      a = {
        email,
        listed: false,
        projectId: null,
        uniqueId: null,
        displayName: null,
        description: null,
        oauth2ClientId: null,
        disabled: false,
        assetName: null,
        container: null,
        references: new Set(),
        keys: new Map(),
        grants: [],
      };
      this.accounts.set(email, a);
    }
    return a;
  }

  private chain(chain: (string | undefined)[]): void {
    const c = chain.filter((x): x is string => x !== undefined);
    if (c.length) this.chains.set(c.join('>'), c);
  }

  // -------------------------------------------------------------------------------------------
  // Cloud Asset Inventory assets

  /** One CAI asset (`gcloud asset export` snake_case or `gcloud asset list` camelCase). */
  addAsset(v: Json, c: RecordCheck, where: Where): void {
    this.records++;
    const name = c.string(v, ['name'], '', true);
    const type = c.string(v, ['asset_type', 'assetType'], '', true);
    const ancestors: string[] = [];
    const anc = c.array(v, ['ancestors'], '');
    anc.value.forEach((x, i) => {
      if (typeof x === 'string') ancestors.push(x);
      else c.fail(`${anc.at}[${i}]`, `expected a string, got ${describeJson(x)}`);
    });
    const updated = time(c, v, ['update_time', 'updateTime'], '');
    const resource = c.object(v, ['resource'], '');
    let data: Json | undefined;
    let dataAt = 'resource.data';
    let parent: string | undefined;
    if (resource.value) {
      const d = c.object(resource.value, ['data'], resource.at);
      data = d.value;
      dataAt = d.at;
      parent = c.string(resource.value, ['parent'], resource.at);
    }
    const { grants, bindings } = this.readPolicy(v, c);
    if (name !== undefined && name !== '' && !name.startsWith('//'))
      c.fail('name', `expected a full resource name (//<service>/<path>), got ${describeJson(name)}`);

    let account: AccountData | undefined;
    let key: ParsedKey | undefined;
    let permissions: string[] | undefined;
    let projectAlias: [string, string] | undefined;
    if (type === SERVICE_ACCOUNT || type === SERVICE_ACCOUNT_KEY) {
      // an IAM_POLICY-only record of the same asset carries no resource data
      if (!data) {
        if (!this.hasPolicy(v))
          c.fail(dataAt, `expected the ${type.split('/')[1]} data (an object), got nothing`);
      } else if (type === SERVICE_ACCOUNT) account = this.readAccountData(data, dataAt, c, name ?? null);
      else if (name !== undefined) key = this.readKey(data, dataAt, name, 'name', c);
    } else if (type === ROLE && data) {
      const p = c.array(data, ['includedPermissions'], dataAt);
      permissions = p.value.filter((x): x is string => typeof x === 'string');
      if (permissions.length !== p.value.length)
        c.fail(p.at, 'expected an array of permission strings, got other values in it');
    } else if (type === PROJECT && data) {
      const id = c.string(data, ['projectId'], dataAt);
      const num = data.projectNumber;
      if (
        id !== undefined &&
        (typeof num === 'string' || typeof num === 'number') &&
        /^\d+$/.test(String(num))
      )
        projectAlias = [`projects/${id}`, `projects/${String(num)}`];
    }
    if (c.problems.length || name === undefined || type === undefined) return;

    // committed: the record is valid
    this.stats.assets++;
    this.stats.bindings += bindings;
    if (updated && (this.observedAt === undefined || updated > this.observedAt)) this.observedAt = updated;
    const container =
      ancestors[0] ??
      (parent !== undefined ? containerOfParent(parent) : undefined) ??
      (key && key.project !== '-' ? `projects/${key.project}` : undefined) ??
      containerOfName(name);
    this.chain(ancestors.length ? ancestors : [container]);
    if (projectAlias) this.aliases.set(projectAlias[0], projectAlias[1]);
    if (account) {
      if (account.projectId && container && /^projects\/\d+$/.test(container))
        this.aliases.set(`projects/${account.projectId}`, container);
      this.list(account, container ?? null);
      this.accountAssets.set(name, account.email);
    }
    if (key) this.listKey(key, where);
    if (permissions) this.customRoles.set(name.replace(/^\/\/iam\.googleapis\.com\//, ''), permissions);
    for (const g of grants)
      this.grant(g.member, { resource: name, assetType: type, role: g.role, condition: g.condition });
    if (!account && !key && !permissions && !projectAlias && grants.length === 0 && !this.hasPolicy(v))
      this.stats.otherAssets++;
  }

  private hasPolicy(v: Json): boolean {
    return isObject(v.iam_policy) || isObject(v.iamPolicy);
  }

  /** `iam_policy.bindings`: every member of every binding, with its role and condition. */
  private readPolicy(
    v: Json,
    c: RecordCheck,
  ): { grants: { member: ParsedMember; role: string; condition: Condition | null }[]; bindings: number } {
    const out: { member: ParsedMember; role: string; condition: Condition | null }[] = [];
    let count = 0;
    const policy = c.object(v, ['iam_policy', 'iamPolicy'], '');
    if (!policy.value) return { grants: out, bindings: 0 };
    const bindings = c.array(policy.value, ['bindings'], policy.at);
    bindings.value.forEach((b, i) => {
      const at = `${bindings.at}[${i}]`;
      if (!isObject(b)) {
        c.fail(at, `expected a role binding (an object with role and members), got ${describeJson(b)}`);
        return;
      }
      const role = c.string(b, ['role'], at, true);
      const members = c.pick(b, ['members']);
      if (!Array.isArray(members.value)) {
        c.fail(`${at}.members`, `expected an array of member strings, got ${describeJson(members.value)}`);
        return;
      }
      let condition: Condition | null = null;
      const cond = c.object(b, ['condition'], at);
      if (cond.value) {
        const expression = c.string(cond.value, ['expression'], cond.at, true);
        const title = c.string(cond.value, ['title'], cond.at) ?? null;
        const description = c.string(cond.value, ['description'], cond.at) ?? null;
        if (expression !== undefined) condition = { title, description, expression };
      }
      members.value.forEach((m, j) => {
        const mat = `${at}.members[${j}]`;
        if (typeof m !== 'string') {
          c.fail(
            mat,
            `expected a member string (serviceAccount:<email>, user:<email> …), got ${describeJson(m)}`,
          );
          return;
        }
        const member = parseMember(m);
        if (!member) {
          c.fail(mat, `expected serviceAccount:<email>, got ${describeJson(m)}`);
          return;
        }
        if (role !== undefined) out.push({ member, role, condition });
      });
      count++;
    });
    return { grants: out, bindings: count };
  }

  private grant(member: ParsedMember, g: Grant): void {
    this.stats.members[member.kind]++;
    if (member.kind === 'serviceAccount') {
      const a = this.account(member.value);
      a.references.add('binding');
      a.grants.push(g);
    } else if (member.kind === 'workloadIdentity') {
      const m = WORKLOAD_RE.exec(member.value)!;
      const externalId = `system:serviceaccount:${m[2]}:${m[3]}`;
      let w = this.workloads.get(externalId);
      if (!w) {
        w = { externalId, pool: m[1]!, namespace: m[2]!, name: m[3]!, grants: [] };
        this.workloads.set(externalId, w);
      }
      w.grants.push(g);
    }
  }

  /** `resource.data` of a ServiceAccount asset, or a `service-accounts list` entry. */
  private readAccountData(
    data: Json,
    at: string,
    c: RecordCheck,
    assetName: string | null,
  ): AccountData | undefined {
    const email = c.string(data, ['email'], at, true);
    if (email !== undefined && email !== '' && !isEmail(email.trim()))
      c.fail(at === '' ? 'email' : `${at}.email`, `expected an email address, got ${describeJson(email)}`);
    const rec = {
      email: email ? normaliseEmail(email) : '',
      projectId: c.string(data, ['projectId', 'project_id'], at) ?? null,
      uniqueId: c.string(data, ['uniqueId', 'unique_id'], at) ?? null,
      displayName: c.string(data, ['displayName', 'display_name'], at) ?? null,
      description: c.string(data, ['description'], at) ?? null,
      oauth2ClientId: c.string(data, ['oauth2ClientId', 'oauth2_client_id'], at) ?? null,
      disabled: c.boolean(data, ['disabled'], at) ?? false,
      assetName,
    };
    return email === undefined ? undefined : rec;
  }

  private list(a: AccountData, container: string | null): void {
    const rec = this.account(a.email);
    const had = rec.listed;
    Object.assign(rec, a, { listed: true, container });
    if (!had) this.stats.serviceAccounts++;
    if (a.uniqueId) this.uniqueIds.set(a.uniqueId, a.email);
  }

  /** A key's metadata: `resource.data` of a ServiceAccountKey asset, or a `keys list` entry. */
  private readKey(
    data: Json,
    at: string,
    name: string,
    nameField: string,
    c: RecordCheck,
  ): ParsedKey | undefined {
    const parsed = parseKeyName(name);
    if (!parsed) c.fail(nameField, `expected ${KEY_NAME_EXPECTED}, got ${describeJson(name)}`);
    const validAfter = time(c, data, ['validAfterTime', 'valid_after_time'], at);
    const validBefore = time(c, data, ['validBeforeTime', 'valid_before_time'], at);
    const keyType = c.string(data, ['keyType', 'key_type'], at) ?? null;
    const keyAlgorithm = c.string(data, ['keyAlgorithm', 'key_algorithm'], at) ?? null;
    const keyOrigin = c.string(data, ['keyOrigin', 'key_origin'], at) ?? null;
    const disabled = c.boolean(data, ['disabled'], at) ?? false;
    const disableReason = c.string(data, ['disableReason', 'disable_reason'], at) ?? null;
    let exposed = disableReason !== null && /EXPOSED|COMPROMISE/.test(disableReason);
    const ext = c.array(data, ['extendedStatus', 'extended_status'], at);
    ext.value.forEach((s, i) => {
      if (!isObject(s))
        return c.fail(`${ext.at}[${i}]`, `expected an object {key, value}, got ${describeJson(s)}`);
      const k = c.string(s, ['key'], `${ext.at}[${i}]`);
      if (k && /EXPOSED|COMPROMISE/.test(k)) exposed = true;
    });
    if (!parsed) return undefined;
    return {
      account: parsed.account,
      project: parsed.project,
      key: {
        keyId: parsed.keyId,
        keyType,
        keyAlgorithm,
        keyOrigin,
        disabled,
        disableReason,
        exposed,
        validAfter,
        validBefore,
      },
    };
  }

  private listKey(k: ParsedKey, where: Where): void {
    this.stats.keys++;
    if (isUniqueId(k.account)) {
      this.pendingKeys.push({ uniqueId: k.account, key: k.key, where });
      return;
    }
    const a = this.account(normaliseEmail(k.account));
    a.references.add('key');
    a.keys.set(k.key.keyId, k.key);
  }

  // -------------------------------------------------------------------------------------------
  // gcloud list outputs

  /** One `gcloud iam service-accounts keys list --format=json` entry. */
  addKeyEntry(v: Json, c: RecordCheck, where: Where): void {
    this.records++;
    const name = c.string(v, ['name'], '', true);
    const key = name !== undefined ? this.readKey(v, '', name, 'name', c) : undefined;
    if (c.problems.length || !key) return;
    this.stats.listEntries++;
    const project =
      key.project !== '-'
        ? `projects/${key.project}`
        : isEmail(key.account)
          ? projectOfEmail(key.account)
          : undefined;
    this.chain([project]);
    this.listKey(key, where);
  }

  /** One `gcloud iam service-accounts list --format=json` entry. */
  addAccountEntry(v: Json, c: RecordCheck): void {
    this.records++;
    const name = c.string(v, ['name'], '');
    const parsed = name !== undefined ? parseAccountName(name) : undefined;
    if (name !== undefined && !parsed)
      c.fail(
        'name',
        `expected a service account name (projects/<project>/serviceAccounts/<email>), got ${describeJson(name)}`,
      );
    const account = this.readAccountData(v, '', c, null);
    if (c.problems.length || !account) return;
    this.stats.listEntries++;
    const project =
      account.projectId ?? (parsed && parsed.project !== '-' ? parsed.project : undefined) ?? undefined;
    const container = project !== undefined ? `projects/${project}` : (projectOfEmail(account.email) ?? null);
    this.chain([container ?? undefined]);
    this.list(account, container);
  }

  // -------------------------------------------------------------------------------------------

  /**
   * Resolves keys named by their account's unique id; a key whose account is not listed anywhere
   * in the inputs is a problem (its owner cannot be told).
   */
  finish(problem: (where: Where, message: string) => void): void {
    for (const p of this.pendingKeys) {
      const email = this.uniqueIds.get(p.uniqueId);
      if (!email) {
        problem(
          p.where,
          `expected the service account ${p.uniqueId} this key belongs to among the inputs (the key names it by unique id), got no ServiceAccount asset with that uniqueId`,
        );
        continue;
      }
      const a = this.account(email);
      a.references.add('key');
      a.keys.set(p.key.keyId, p.key);
    }
    this.pendingKeys.length = 0;
  }

  /** Account referenced from elsewhere (an audit log): present in the batch, not listed. */
  reference(email: string, why: Reference): AccountRec {
    const a = this.account(email);
    a.references.add(why);
    return a;
  }

  /** `projects/<id>` → `projects/<number>` when the inputs tell both. */
  normalise(container: string): string {
    return this.aliases.get(container) ?? container;
  }

  /**
   * What the export covers: the nearest container every record shares (the project of a project
   * export, the organisation of an organisation export), else the sorted list of the nearest
   * containers. Undefined when no record names one.
   */
  scope(): string | undefined {
    const chains = [...this.chains.values()].map((c) => c.map((x) => this.normalise(x)));
    if (!chains.length) return undefined;
    let common = chains[0]!;
    for (const c of chains.slice(1)) {
      const set = new Set(c);
      common = common.filter((x) => set.has(x));
    }
    if (common.length) return common[0];
    return [...new Set(chains.map((c) => c[0]!))].sort().join(',');
  }

  /** Key validity end, or undefined for keys that never expire (`9999-12-31T23:59:59Z`). */
  static expiry(k: KeyRec): string | undefined {
    return k.validBefore !== undefined && !k.validBefore.startsWith(NEVER) ? k.validBefore : undefined;
  }
}

/** What an IAM member is: a service account (by email), a Kubernetes SA via Workload Identity, a deleted account, or someone else. */
export function parseMember(m: string): ParsedMember | undefined {
  if (m.startsWith('serviceAccount:')) {
    const rest = m.slice('serviceAccount:'.length).trim();
    if (WORKLOAD_RE.test(rest)) return { kind: 'workloadIdentity', value: rest };
    if (!isEmail(rest)) return undefined;
    return { kind: 'serviceAccount', value: normaliseEmail(rest) };
  }
  if (m.startsWith('deleted:')) return { kind: 'deleted', value: m };
  return { kind: 'other', value: m };
}
