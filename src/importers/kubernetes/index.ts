/**
 * Kubernetes RBAC discovery: ServiceAccounts, their long-lived token Secrets and what their
 * RoleBindings / ClusterRoleBindings grant, read from
 * `kubectl get serviceaccounts,secrets,roles,clusterroles,rolebindings,clusterrolebindings -A -o json`
 * (a `List`), a JSON array of such Lists, single objects, concatenated/line-delimited JSON, or
 * YAML (one or many documents, e.g. `-o yaml` or applied manifests). JSON or YAML is decided by
 * content (`{`/`[` first means JSON), never by file name; `.gz` inputs are gunzipped.
 *
 * JSON is streamed (stream-json): only the objects this importer understands are kept, so a
 * dump with thousands of ConfigMaps or Pods costs little memory. Objects of other kinds
 * (Pod excepted: its `serviceAccountName` is a reference) are ignored without validation.
 *
 * Identities: one `k8s-service-account` per ServiceAccount, external id
 * `system:serviceaccount:<ns>:<name>` (the account's Kubernetes user name). Accounts that are
 * not listed but referenced (binding subjects, Pods, token Secrets) are identities too, with
 * `attributes.listed: false` and `attributes.referencedBy`.
 *
 * Scope and cluster name: a kubectl dump does not name its cluster, and importers get no
 * options, so the cluster cannot be known here. The external id therefore stays unprefixed
 * (the same account name in two clusters is the same identity), and the snapshot scope is the
 * base name of the first input without `.gz`/`.json`/`.yaml` (`prod-eu.json` → `prod-eu`;
 * standard input → `cluster`). Keep one stable file name per cluster: a snapshot only vanishes
 * what was seen before in the same scope.
 *
 * Entitlements: for every binding subject that is a ServiceAccount, one entitlement per rule of
 * the bound role: resource `<scope> <apiGroups>/<resources>[/<resourceNames>]` (the core group
 * is `core`, lists are sorted and comma-joined; scope is `cluster` for a ClusterRoleBinding and
 * `ns:<namespace>` for a RoleBinding) or `<scope> urls:<nonResourceURLs>`; actions are the
 * verbs; grantedVia names binding and role
 * (`clusterrolebinding:<name> → clusterrole:<name>`, `rolebinding:<ns>/<name> → role:<ns>/<name>`).
 * Attributes: `wildcard` (a `*` in verbs, apiGroups, resources or URLs), `clusterAdmin` (a
 * ClusterRoleBinding to `cluster-admin` or to a `*`/`*`/`*` rule), `namespaceAdmin` (the same
 * through a RoleBinding: full control of one namespace, not of the cluster), `secretsAccess`
 * (get/list/watch on secrets). A binding to a role that is not in the input gives one
 * entitlement with `unresolvedRole` and no actions. Groups `system:serviceaccounts` and
 * `system:serviceaccounts:<ns>` grant to every known account (in that namespace), marked
 * `viaGroup`; a User subject `system:serviceaccount:<ns>:<name>` is that account. A ClusterRole
 * with an `aggregationRule` and no rules (a manifest, not a live dump) gets the rules of the
 * ClusterRoles its selectors match.
 *
 * Credentials: Secrets of type `kubernetes.io/service-account-token` → a `k8s-sa-token` on the
 * annotated account; the token is base64-decoded only to compute `keys.fingerprint(token)` and
 * is never kept, logged or put in a message. No other Secret's data is ever read.
 */
import path from 'node:path';
import { Buffer, isUtf8 } from 'node:buffer';
import { Readable } from 'node:stream';
import parser, { type Token } from 'stream-json/parser.js';
import Assembler from 'stream-json/assembler.js';
import { LineCounter, parseAllDocuments, parseDocument, isNode, type Document } from 'yaml';
import { ValidationError } from '../../domain/errors.js';
import type { Problem } from '../../domain/problems.js';
import type {
  DiscoveredCredential,
  DiscoveredEntitlement,
  DiscoveredIdentity,
  DiscoveryBatch,
} from '../../inventory/import-discovery.js';
import { describeValue, formatFieldPath, readYamlStream } from '../manifest/parse.js';
import { listFiles, normaliseTimestamp, openInput, sniff } from '../common.js';
import type { ReadOptions, ReadResult, SourceImporter } from '../source.js';

type Seg = string | number;
type Obj = Record<string, unknown>;

/** Where an object sits: its file, its path inside the file, and (YAML) how to find a line. */
interface Loc {
  file: string;
  path: Seg[];
  line?: number;
  /** YAML only: the 1-based line of a field path inside the document. */
  locate?: (p: Seg[]) => number | undefined;
}

interface Rule {
  verbs: string[];
  apiGroups: string[];
  resources: string[];
  resourceNames: string[];
  nonResourceURLs: string[];
}

interface Selector {
  matchLabels: Record<string, string>;
  matchExpressions: { key: string; operator: string; values: string[] }[];
}

interface RoleRec {
  kind: 'Role' | 'ClusterRole';
  ns: string | undefined;
  name: string;
  rules: Rule[];
  labels: Record<string, string>;
  aggregation: Selector[] | undefined;
}

interface Subject {
  kind: string;
  name: string;
  namespace: string | undefined;
}

interface BindingRec {
  kind: 'RoleBinding' | 'ClusterRoleBinding';
  ns: string | undefined;
  name: string;
  roleRef: { kind: 'Role' | 'ClusterRole'; name: string };
  subjects: Subject[];
}

interface AccountRec {
  ns: string;
  name: string;
  listed: boolean;
  createdAt: string | undefined;
  automount: boolean | undefined;
  uid: string | undefined;
  refs: Set<string>;
}

interface TokenRec {
  ns: string;
  name: string;
  account: string;
  fingerprint: string | undefined;
  createdAt: string | undefined;
  lastUsedAt: string | undefined;
  invalidSince: string | undefined;
}

const SOURCE = 'kubernetes';
const TOKEN_TYPE = 'kubernetes.io/service-account-token';
const SA_NAME_ANNOTATION = 'kubernetes.io/service-account.name';
const LAST_USED_LABEL = 'kubernetes.io/legacy-token-last-used';
const INVALID_SINCE_LABEL = 'kubernetes.io/legacy-token-invalid-since';
const KNOWN_KINDS = new Set([
  'ServiceAccount',
  'Secret',
  'Role',
  'ClusterRole',
  'RoleBinding',
  'ClusterRoleBinding',
  'Pod',
]);
const READ_VERBS = new Set(['get', 'list', 'watch', '*']);
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const SA_USER = /^system:serviceaccount:([^:]+):([^:]+)$/;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The shape of a value, never its content (for fields that may hold secrets). */
function shapeOf(v: unknown): string {
  if (v === undefined || v === null) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `a ${typeof v}`;
}

/** Collects the problems of one object; the object is kept only when it has none. */
class Checker {
  readonly problems: Problem[] = [];
  constructor(readonly loc: Loc) {}

  fail(sub: Seg[], message: string): undefined {
    const full = [...this.loc.path, ...sub];
    const field = formatFieldPath(full);
    const line = this.loc.locate?.(full) ?? this.loc.line;
    this.problems.push({
      file: this.loc.file,
      ...(line !== undefined ? { line } : {}),
      ...(field ? { field } : {}),
      message,
    });
    return undefined;
  }

  str(v: unknown, sub: Seg[], what: string): string | undefined {
    if (typeof v === 'string' && v.trim() !== '') return v;
    return this.fail(sub, `expected ${what}, got ${describeValue(v)}`);
  }

  optStr(v: unknown, sub: Seg[], what: string): string | undefined {
    if (v === undefined || v === null) return undefined;
    return this.str(v, sub, what);
  }

  /** A list of strings; absent or null is an empty list. */
  strList(v: unknown, sub: Seg[], what: string): string[] | undefined {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) return this.fail(sub, `expected a list of ${what}, got ${describeValue(v)}`);
    const out: string[] = [];
    let ok = true;
    v.forEach((x, i) => {
      if (typeof x === 'string') out.push(x);
      else {
        ok = false;
        this.fail([...sub, i], `expected a string (${what}), got ${describeValue(x)}`);
      }
    });
    return ok ? out : undefined;
  }

  strMap(v: unknown, sub: Seg[], what: string): Record<string, string> | undefined {
    if (v === undefined || v === null) return {};
    if (!isObj(v)) return this.fail(sub, `expected a mapping of ${what}, got ${describeValue(v)}`);
    const out: Record<string, string> = {};
    for (const [k, x] of Object.entries(v)) {
      if (typeof x === 'string') out[k] = x;
      else if (typeof x === 'number' || typeof x === 'boolean') out[k] = String(x);
      else return this.fail([...sub, k], `expected a string, got ${describeValue(x)}`);
    }
    return out;
  }
}

/** Everything read from all inputs, before it becomes identities. */
class Cluster {
  readonly accounts = new Map<string, AccountRec>();
  readonly roles = new Map<string, RoleRec>();
  readonly bindings = new Map<string, BindingRec>();
  readonly tokens = new Map<string, TokenRec>();
  readonly problems: Problem[] = [];
  /** Values seen (objects, Lists, anything else) and objects of kinds this importer does not read. */
  values = 0;
  /** Values that are Kubernetes objects (a kind) or Lists, valid or not. */
  objects = 0;
  ignored = 0;
  private aggregated = false;

  constructor(private readonly keys: ReadOptions['keys']) {}

  account(ns: string, name: string, ref: string): AccountRec {
    const key = `${ns}/${name}`;
    let a = this.accounts.get(key);
    if (!a) {
      a = {
        ns,
        name,
        listed: false,
        createdAt: undefined,
        automount: undefined,
        uid: undefined,
        refs: new Set(),
      };
      this.accounts.set(key, a);
    }
    if (!a.listed) a.refs.add(ref);
    return a;
  }

  /** One decoded value: a List (expanded), a known object (checked and kept), or ignored. */
  add(value: unknown, loc: Loc): void {
    this.values += 1;
    if (!isObj(value)) {
      this.report(
        loc,
        [],
        `expected a Kubernetes object (a mapping with kind and metadata.name), got ${shapeOf(value)}`,
      );
      return;
    }
    const kind = value.kind;
    if (typeof kind === 'string' && kind.trim() !== '') this.objects += 1;
    if (
      Array.isArray(value.items) &&
      (kind === undefined || (typeof kind === 'string' && kind.endsWith('List')))
    ) {
      if (kind === undefined) this.objects += 1;
      value.items.forEach((item, i) => this.add(item, { ...loc, path: [...loc.path, 'items', i] }));
      return;
    }
    if (typeof kind !== 'string' || kind.trim() === '') {
      this.report(
        loc,
        ['kind'],
        `expected a Kubernetes kind (ServiceAccount, RoleBinding …), got ${describeValue(kind)}`,
      );
      return;
    }
    if (!KNOWN_KINDS.has(kind)) {
      this.ignored += 1;
      return;
    }
    const c = new Checker(loc);
    const meta = value.metadata;
    if (!isObj(meta)) {
      c.fail(['metadata'], `expected a mapping with name, got ${describeValue(meta)}`);
      this.problems.push(...c.problems);
      return;
    }
    const name = c.str(meta.name, ['metadata', 'name'], 'the object name');
    const namespaced = kind !== 'ClusterRole' && kind !== 'ClusterRoleBinding';
    // A manifest without a namespace lands in `default` (as `kubectl apply` without -n would).
    const ns = namespaced
      ? (c.optStr(meta.namespace, ['metadata', 'namespace'], 'a namespace') ?? 'default')
      : undefined;
    if (name === undefined || c.problems.length) {
      this.problems.push(...c.problems);
      return;
    }
    switch (kind) {
      case 'ServiceAccount':
        this.addAccount(value, meta, ns!, name, c);
        break;
      case 'Secret':
        this.addSecret(value, meta, ns!, name, c);
        break;
      case 'Role':
      case 'ClusterRole':
        this.addRole(value, meta, kind, ns, name, c);
        break;
      case 'RoleBinding':
      case 'ClusterRoleBinding':
        this.addBinding(value, kind, ns, name, c);
        break;
      case 'Pod':
        this.addPod(value, ns!, c);
        break;
    }
    this.problems.push(...c.problems);
  }

  private report(loc: Loc, sub: Seg[], message: string): void {
    const c = new Checker(loc);
    c.fail(sub, message);
    this.problems.push(...c.problems);
  }

  private addAccount(v: Obj, meta: Obj, ns: string, name: string, c: Checker): void {
    const auto = v.automountServiceAccountToken;
    if (auto !== undefined && auto !== null && typeof auto !== 'boolean') {
      c.fail(['automountServiceAccountToken'], `expected true or false, got ${describeValue(auto)}`);
      return;
    }
    const uid = c.optStr(meta.uid, ['metadata', 'uid'], 'a uid');
    if (c.problems.length) return;
    const a = this.account(ns, name, 'listed');
    a.listed = true;
    a.refs.clear();
    a.createdAt = normaliseTimestamp(meta.creationTimestamp);
    a.automount = typeof auto === 'boolean' ? auto : undefined;
    a.uid = uid;
  }

  private addSecret(v: Obj, meta: Obj, ns: string, name: string, c: Checker): void {
    if (v.type !== TOKEN_TYPE) return; // other Secrets: never looked into
    const annotations = meta.annotations;
    const account = isObj(annotations)
      ? c.str(
          annotations[SA_NAME_ANNOTATION],
          ['metadata', 'annotations', SA_NAME_ANNOTATION],
          'the service account name',
        )
      : c.fail(
          ['metadata', 'annotations', SA_NAME_ANNOTATION],
          `expected the service account name, got nothing`,
        );
    const labels = c.strMap(meta.labels, ['metadata', 'labels'], 'labels');
    const data = v.data;
    let fingerprint: string | undefined;
    if (data !== undefined && data !== null) {
      if (!isObj(data)) c.fail(['data'], `expected a mapping of base64 values, got ${shapeOf(data)}`);
      else if (data.token !== undefined && data.token !== null) {
        const raw = data.token;
        // The value is a credential: its content never goes into a message.
        if (typeof raw !== 'string') c.fail(['data', 'token'], `expected base64 text, got ${shapeOf(raw)}`);
        else {
          const compact = raw.replace(/\s+/g, '');
          if (!BASE64.test(compact) || compact.length % 4 === 1)
            c.fail(['data', 'token'], 'expected base64 text, got text that is not base64 (value not shown)');
          else if (compact !== '')
            fingerprint = this.keys.fingerprint(Buffer.from(compact, 'base64').toString('utf8'));
        }
      }
    }
    if (account === undefined || labels === undefined || c.problems.length) return;
    const lastUsed = labels[LAST_USED_LABEL];
    const invalidSince = labels[INVALID_SINCE_LABEL];
    this.account(ns, account, 'secret');
    this.tokens.set(`${ns}/${name}`, {
      ns,
      name,
      account,
      fingerprint,
      createdAt: normaliseTimestamp(meta.creationTimestamp),
      lastUsedAt: lastUsed === undefined ? undefined : normaliseTimestamp(lastUsed),
      invalidSince:
        invalidSince === undefined ? undefined : (normaliseTimestamp(invalidSince) ?? invalidSince),
    });
  }

  private addRole(
    v: Obj,
    meta: Obj,
    kind: 'Role' | 'ClusterRole',
    ns: string | undefined,
    name: string,
    c: Checker,
  ): void {
    const labels = c.strMap(meta.labels, ['metadata', 'labels'], 'labels');
    const rules: Rule[] = [];
    const rawRules = v.rules;
    if (rawRules !== undefined && rawRules !== null && !Array.isArray(rawRules)) {
      c.fail(['rules'], `expected a list of rules, got ${describeValue(rawRules)}`);
    } else {
      (rawRules ?? []).forEach((r: unknown, i: number) => {
        const at = (f: string): Seg[] => ['rules', i, f];
        if (!isObj(r)) {
          c.fail(['rules', i], `expected a rule (a mapping with verbs), got ${describeValue(r)}`);
          return;
        }
        if (r.verbs === undefined || r.verbs === null) {
          c.fail(at('verbs'), 'expected a list of verbs, got nothing');
          return;
        }
        const verbs = c.strList(r.verbs, at('verbs'), 'verbs');
        const apiGroups = c.strList(r.apiGroups, at('apiGroups'), 'API groups');
        const resources = c.strList(r.resources, at('resources'), 'resources');
        const resourceNames = c.strList(r.resourceNames, at('resourceNames'), 'resource names');
        const nonResourceURLs = c.strList(r.nonResourceURLs, at('nonResourceURLs'), 'URLs');
        if (verbs && apiGroups && resources && resourceNames && nonResourceURLs)
          rules.push({ verbs, apiGroups, resources, resourceNames, nonResourceURLs });
      });
    }
    let aggregation: Selector[] | undefined;
    if (kind === 'ClusterRole' && v.aggregationRule !== undefined && v.aggregationRule !== null) {
      aggregation = this.selectors(v.aggregationRule, c);
    }
    if (labels === undefined || c.problems.length) return;
    const key = kind === 'Role' ? `Role/${ns}/${name}` : `ClusterRole/${name}`;
    this.roles.set(key, { kind, ns, name, rules, labels, aggregation });
  }

  private selectors(rule: unknown, c: Checker): Selector[] | undefined {
    const sub: Seg[] = ['aggregationRule', 'clusterRoleSelectors'];
    const list = isObj(rule) ? rule.clusterRoleSelectors : rule;
    if (list === undefined || list === null) return [];
    if (!Array.isArray(list))
      return c.fail(sub, `expected a list of label selectors, got ${describeValue(list)}`);
    const out: Selector[] = [];
    list.forEach((s: unknown, i: number) => {
      if (!isObj(s)) return void c.fail([...sub, i], `expected a label selector, got ${describeValue(s)}`);
      const matchLabels = c.strMap(s.matchLabels, [...sub, i, 'matchLabels'], 'labels') ?? {};
      const exprs: Selector['matchExpressions'] = [];
      const rawExprs = s.matchExpressions;
      if (Array.isArray(rawExprs)) {
        rawExprs.forEach((e: unknown, j: number) => {
          const at: Seg[] = [...sub, i, 'matchExpressions', j];
          if (!isObj(e)) return void c.fail(at, `expected a selector requirement, got ${describeValue(e)}`);
          const key = c.str(e.key, [...at, 'key'], 'a label key');
          const operator = c.str(e.operator, [...at, 'operator'], 'In, NotIn, Exists or DoesNotExist');
          const values = c.strList(e.values, [...at, 'values'], 'label values');
          if (key && operator && values) exprs.push({ key, operator, values });
        });
      } else if (rawExprs !== undefined && rawExprs !== null) {
        c.fail([...sub, i, 'matchExpressions'], `expected a list, got ${describeValue(rawExprs)}`);
      }
      out.push({ matchLabels, matchExpressions: exprs });
    });
    return out;
  }

  private addBinding(
    v: Obj,
    kind: 'RoleBinding' | 'ClusterRoleBinding',
    ns: string | undefined,
    name: string,
    c: Checker,
  ): void {
    const ref = v.roleRef;
    let roleRef: BindingRec['roleRef'] | undefined;
    if (!isObj(ref)) c.fail(['roleRef'], `expected a mapping with kind and name, got ${describeValue(ref)}`);
    else {
      const refKind = ref.kind;
      const refName = c.str(ref.name, ['roleRef', 'name'], 'the role name');
      if (refKind !== 'ClusterRole' && (refKind !== 'Role' || kind === 'ClusterRoleBinding')) {
        c.fail(
          ['roleRef', 'kind'],
          `expected ${kind === 'RoleBinding' ? 'Role or ClusterRole' : 'ClusterRole'}, got ${describeValue(refKind)}`,
        );
      } else if (refName !== undefined) roleRef = { kind: refKind, name: refName };
    }
    const subjects: Subject[] = [];
    const raw = v.subjects;
    if (raw !== undefined && raw !== null && !Array.isArray(raw)) {
      c.fail(['subjects'], `expected a list of subjects, got ${describeValue(raw)}`);
    } else {
      (raw ?? []).forEach((s: unknown, i: number) => {
        if (!isObj(s))
          return void c.fail(['subjects', i], `expected a subject (kind and name), got ${describeValue(s)}`);
        const sKind = c.str(s.kind, ['subjects', i, 'kind'], 'ServiceAccount, User or Group');
        const sName = c.str(s.name, ['subjects', i, 'name'], 'the subject name');
        let sNs = c.optStr(s.namespace, ['subjects', i, 'namespace'], 'a namespace');
        if (sKind === 'ServiceAccount' && sNs === undefined) {
          // A RoleBinding's ServiceAccount subject defaults to the binding's namespace.
          if (ns !== undefined) sNs = ns;
          else c.fail(['subjects', i, 'namespace'], 'expected the service account namespace, got nothing');
        }
        if (sKind !== undefined && sName !== undefined)
          subjects.push({ kind: sKind, name: sName, namespace: sNs });
      });
    }
    if (roleRef === undefined || c.problems.length) return;
    this.bindings.set(kind === 'RoleBinding' ? `RoleBinding/${ns}/${name}` : `ClusterRoleBinding/${name}`, {
      kind,
      ns,
      name,
      roleRef,
      subjects,
    });
    for (const s of subjects) {
      const sa = accountOf(s);
      if (sa) this.account(sa.ns, sa.name, 'binding');
    }
  }

  private addPod(v: Obj, ns: string, c: Checker): void {
    const spec = v.spec;
    if (!isObj(spec)) return;
    const raw = spec.serviceAccountName ?? spec.serviceAccount;
    const sa = c.optStr(raw, ['spec', 'serviceAccountName'], 'a service account name');
    if (sa !== undefined && !c.problems.length) this.account(ns, sa, 'pod');
  }

  /** ClusterRoles with an aggregation rule and no rules get the rules of the roles they select. */
  resolveAggregation(): void {
    if (this.aggregated) return;
    this.aggregated = true;
    const clusterRoles = [...this.roles.values()].filter((r) => r.kind === 'ClusterRole');
    for (const r of clusterRoles) {
      if (!r.aggregation?.length || r.rules.length) continue;
      for (const other of clusterRoles) {
        if (other === r || !r.aggregation.some((s) => matches(s, other.labels))) continue;
        r.rules.push(...other.rules);
      }
    }
  }

  identities(): DiscoveredIdentity[] {
    this.resolveAggregation();
    const grants = new Map<string, Map<string, DiscoveredEntitlement>>();
    const grant = (accountKey: string, e: DiscoveredEntitlement): void => {
      let m = grants.get(accountKey);
      if (!m) grants.set(accountKey, (m = new Map<string, DiscoveredEntitlement>()));
      const k = `${e.grantedVia ?? ''}|${e.resource}`;
      const prior = m.get(k);
      m.set(k, prior ? mergeGrant(prior, e) : e);
    };

    for (const b of [...this.bindings.values()].sort(byKey)) {
      const entitlements = this.entitlementsOf(b);
      for (const s of b.subjects) {
        const sa = accountOf(s);
        if (sa) {
          for (const e of entitlements) grant(`${sa.ns}/${sa.name}`, e);
          continue;
        }
        if (s.kind !== 'Group') continue;
        const m = /^system:serviceaccounts(?::([^:]+))?$/.exec(s.name);
        if (!m) continue;
        for (const [key, a] of this.accounts) {
          if (m[1] !== undefined && a.ns !== m[1]) continue;
          for (const e of entitlements)
            grant(key, { ...e, attributes: { ...e.attributes, viaGroup: s.name } });
        }
      }
    }

    const creds = new Map<string, DiscoveredCredential[]>();
    for (const t of [...this.tokens.values()].sort(byKey)) {
      const key = `${t.ns}/${t.account}`;
      const list = creds.get(key) ?? [];
      list.push({
        externalId: `secret:${t.ns}/${t.name}`,
        kind: 'k8s-sa-token',
        status: t.invalidSince !== undefined ? 'inactive' : 'active',
        ...(t.fingerprint !== undefined ? { fingerprint: t.fingerprint } : {}),
        ...(t.createdAt !== undefined ? { issuedAt: t.createdAt } : {}),
        ...(t.lastUsedAt !== undefined ? { lastUsedAt: t.lastUsedAt } : {}),
        locations: [`k8s-secret:${t.ns}/${t.name}`],
        attributes: {
          longLived: true,
          secret: `${t.ns}/${t.name}`,
          ...(t.invalidSince !== undefined ? { invalidSince: t.invalidSince } : {}),
        },
      });
      creds.set(key, list);
    }

    return [...this.accounts.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, a]) => {
        const attributes: Record<string, unknown> = {
          namespace: a.ns,
          default: a.name === 'default',
          listed: a.listed,
        };
        if (a.automount !== undefined || a.listed) attributes.automountToken = a.automount ?? true;
        if (a.uid !== undefined) attributes.uid = a.uid;
        if (!a.listed) attributes.referencedBy = [...a.refs].sort();
        return {
          externalId: `system:serviceaccount:${a.ns}:${a.name}`,
          name: `${a.ns}/${a.name}`,
          kind: 'k8s-service-account' as const,
          ...(a.createdAt !== undefined ? { createdAt: a.createdAt } : {}),
          attributes,
          credentials: creds.get(key) ?? [],
          entitlements: [...(grants.get(key)?.values() ?? [])],
        };
      });
  }

  /** What one binding grants each of its subjects. */
  private entitlementsOf(b: BindingRec): DiscoveredEntitlement[] {
    const cluster = b.kind === 'ClusterRoleBinding';
    const scope = cluster ? 'cluster' : `ns:${b.ns}`;
    const roleLabel =
      b.roleRef.kind === 'Role' ? `role:${b.ns}/${b.roleRef.name}` : `clusterrole:${b.roleRef.name}`;
    const via = `${cluster ? `clusterrolebinding:${b.name}` : `rolebinding:${b.ns}/${b.name}`} → ${roleLabel}`;
    const role = this.roles.get(
      b.roleRef.kind === 'Role' ? `Role/${b.ns}/${b.roleRef.name}` : `ClusterRole/${b.roleRef.name}`,
    );
    const boundToAdmin = b.roleRef.kind === 'ClusterRole' && b.roleRef.name === 'cluster-admin';
    if (!role) {
      return [
        {
          resource: `${scope} unresolved:${roleLabel}`,
          actions: [],
          grantedVia: via,
          attributes: {
            unresolvedRole: roleLabel,
            wildcard: false,
            clusterAdmin: cluster && boundToAdmin,
            ...(!cluster && boundToAdmin ? { namespaceAdmin: true } : {}),
            secretsAccess: false,
          },
        },
      ];
    }
    const out: DiscoveredEntitlement[] = [];
    for (const r of role.rules) {
      const wildcard = [r.verbs, r.apiGroups, r.resources, r.nonResourceURLs].some((l) =>
        l.some((x) => x.includes('*')),
      );
      const full = r.apiGroups.includes('*') && r.resources.includes('*') && r.verbs.includes('*');
      const admin = boundToAdmin || full;
      const secretsAccess =
        r.verbs.some((v) => READ_VERBS.has(v)) &&
        (r.resources.includes('secrets') || r.resources.includes('*')) &&
        (r.apiGroups.includes('') || r.apiGroups.includes('*'));
      const attributes = {
        wildcard,
        clusterAdmin: cluster && admin,
        ...(!cluster && admin ? { namespaceAdmin: true } : {}),
        secretsAccess,
      };
      if (r.resources.length) {
        const groups = r.apiGroups.length ? list(r.apiGroups.map((g) => (g === '' ? 'core' : g))) : '(none)';
        const names = r.resourceNames.length ? `/${list(r.resourceNames)}` : '';
        out.push({
          resource: `${scope} ${groups}/${list(r.resources)}${names}`,
          actions: [...r.verbs],
          grantedVia: via,
          attributes,
        });
      }
      if (r.nonResourceURLs.length) {
        out.push({
          resource: `${scope} urls:${list(r.nonResourceURLs)}`,
          actions: [...r.verbs],
          grantedVia: via,
          attributes,
        });
      }
    }
    return out;
  }
}

const list = (xs: string[]): string => [...new Set(xs)].sort().join(',');

const byKey = (
  a: { ns?: string | undefined; name: string },
  b: { ns?: string | undefined; name: string },
): number => {
  const ka = `${a.ns ?? ''}/${a.name}`;
  const kb = `${b.ns ?? ''}/${b.name}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
};

/** The service account a subject names, if it names one. */
function accountOf(s: Subject): { ns: string; name: string } | undefined {
  if (s.kind === 'ServiceAccount' && s.namespace !== undefined) return { ns: s.namespace, name: s.name };
  if (s.kind === 'User') {
    const m = SA_USER.exec(s.name);
    if (m) return { ns: m[1]!, name: m[2]! };
  }
  return undefined;
}

function matches(s: Selector, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(s.matchLabels)) if (labels[k] !== v) return false;
  for (const e of s.matchExpressions) {
    const v = labels[e.key];
    if (e.operator === 'In' && (v === undefined || !e.values.includes(v))) return false;
    if (e.operator === 'NotIn' && v !== undefined && e.values.includes(v)) return false;
    if (e.operator === 'Exists' && v === undefined) return false;
    if (e.operator === 'DoesNotExist' && v !== undefined) return false;
  }
  return Object.keys(s.matchLabels).length > 0 || s.matchExpressions.length > 0;
}

function mergeGrant(a: DiscoveredEntitlement, b: DiscoveredEntitlement): DiscoveredEntitlement {
  const attributes: Record<string, unknown> = { ...a.attributes };
  for (const [k, v] of Object.entries(b.attributes ?? {})) {
    attributes[k] =
      typeof v === 'boolean' && typeof attributes[k] === 'boolean'
        ? attributes[k] || v
        : (attributes[k] ?? v);
  }
  return { ...a, actions: [...new Set([...a.actions, ...b.actions])], attributes };
}

// ---------------------------------------------------------------------------------------------
// Reading: JSON streamed token by token, YAML document by document
// ---------------------------------------------------------------------------------------------

type Frame =
  | { t: 'root'; n: number }
  | { t: 'array'; path: Seg[]; n: number }
  | { t: 'object'; path: Seg[]; fields: Obj; key: string | null; items: boolean }
  | { t: 'items'; path: Seg[]; n: number };

/**
 * Turns a JSON token stream into objects without holding the whole input: a top-level object
 * (or each element of a top-level array, or each of several concatenated values) is a
 * container whose `items` elements are handed over one by one; a container without `items`
 * is itself handed over when it ends.
 */
class JsonObjects {
  private readonly stack: Frame[] = [{ t: 'root', n: 0 }];
  private asm: Assembler | null = null;
  private onAssembled: (v: unknown) => void = () => {};

  constructor(private readonly sink: (value: unknown, path: Seg[]) => void) {}

  push(tok: Token): void {
    if (this.asm) {
      this.asm.consume(tok);
      if (this.asm.done) this.finishValue();
      return;
    }
    const top = this.stack[this.stack.length - 1]!;
    if (tok.name === 'keyValue') {
      if (top.t === 'object') top.key = tok.value;
      return;
    }
    if (tok.name === 'endObject' || tok.name === 'endArray') {
      this.stack.pop();
      // A List whose items were handed over already still counts (an empty List is valid input).
      if (top.t === 'object') this.sink(top.items ? { ...top.fields, items: [] } : top.fields, top.path);
      return;
    }
    if (top.t === 'root' || top.t === 'array') {
      const path = top.t === 'root' ? (top.n === 0 ? [] : [`(value ${top.n + 1})`]) : [...top.path, top.n];
      top.n += 1;
      if (tok.name === 'startObject')
        this.stack.push({ t: 'object', path, fields: {}, key: null, items: false });
      else if (tok.name === 'startArray' && top.t === 'root') this.stack.push({ t: 'array', path, n: 0 });
      else this.assemble(tok, (v) => this.sink(v, path));
      return;
    }
    if (top.t === 'object') {
      const key = top.key ?? '';
      top.key = null;
      if (key === 'items' && tok.name === 'startArray') {
        top.items = true;
        this.stack.push({ t: 'items', path: [...top.path, 'items'], n: 0 });
      } else {
        this.assemble(tok, (v) => {
          if (key === '__proto__') Object.defineProperty(top.fields, key, { value: v, enumerable: true });
          else top.fields[key] = v;
        });
      }
      return;
    }
    const path = [...top.path, top.n];
    top.n += 1;
    this.assemble(tok, (v) => this.sink(v, path));
  }

  private assemble(tok: Token, then: (v: unknown) => void): void {
    this.asm = new Assembler();
    this.onAssembled = then;
    this.asm.consume(tok);
    if (this.asm.done) this.finishValue();
  }

  private finishValue(): void {
    const v = this.asm!.current;
    this.asm = null;
    this.onAssembled(v);
  }
}

async function readJson(file: string, all: Readable, add: (v: unknown, loc: Loc) => void): Promise<void> {
  const p = parser.asStream({ jsonStreaming: true, streamValues: false });
  all.on('error', (e) => p.destroy(e));
  all.pipe(p);
  const objects = new JsonObjects((v, path) => add(v, { file, path }));
  try {
    for await (const tok of p as AsyncIterable<Token>) objects.push(tok);
  } catch (e) {
    if (e instanceof ValidationError) throw e;
    const message = (e as Error).message.replace(/^Parser cannot parse input: /, '');
    throw new ValidationError(`${file}: not valid JSON; nothing was imported`, [
      { file, message: `expected complete JSON (truncated or malformed?), got a syntax error: ${message}` },
    ]);
  }
}

async function readYaml(file: string, all: Readable, add: (v: unknown, loc: Loc) => void): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of all) chunks.push(c as Buffer);
  const buf = Buffer.concat(chunks);
  if (!isUtf8(buf)) {
    throw new ValidationError(`${file}: not UTF-8 text; nothing was imported`, [
      { file, message: 'expected JSON or YAML text, got binary data' },
    ]);
  }
  const text = buf.toString('utf8').replace(/^\uFEFF/, '');
  const fast = readYamlStream(text);
  if (fast) {
    for (const d of fast) {
      let doc: { doc: Document; lc: LineCounter } | undefined;
      const locate = (p: Seg[]): number | undefined => {
        if (!doc) {
          const lc = new LineCounter();
          doc = { doc: parseDocument(d.text, { lineCounter: lc }), lc };
        }
        for (let n = p.length; n > 0; n--) {
          const node = doc.doc.getIn(p.slice(0, n), true);
          if (isNode(node) && node.range) return d.startLine + doc.lc.linePos(node.range[0]).line;
        }
        return d.line;
      };
      add(d.value, { file, path: [], line: d.line, locate });
    }
    return;
  }
  // js-yaml refused it: `yaml` says where the syntax errors are.
  const lc = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lc });
  const list = 'empty' in docs ? [] : docs;
  const errors = 'empty' in docs ? docs.errors : docs.flatMap((d) => d.errors);
  if (errors.length) {
    throw new ValidationError(
      `${file}: not valid YAML; nothing was imported`,
      errors.map((e) => ({
        file,
        line: Math.max(1, lc.linePos(e.pos[0]).line),
        message: `expected valid YAML, got ${e.message.split('\n')[0]}`,
      })),
    );
  }
  for (const d of list) {
    const value: unknown = d.toJS({ maxAliasCount: 1000 });
    if (value === null || value === undefined) continue;
    const start =
      d.contents && isNode(d.contents) && d.contents.range ? lc.linePos(d.contents.range[0]).line : 1;
    const locate = (p: Seg[]): number | undefined => {
      for (let n = p.length; n > 0; n--) {
        const node = d.getIn(p.slice(0, n), true);
        if (isNode(node) && node.range) return lc.linePos(node.range[0]).line;
      }
      return start;
    };
    add(value, { file, path: [], line: start, locate });
  }
}

/** The snapshot scope: the first input's base name without `.gz`/`.json`/`.yaml`, or `cluster`. */
function scopeOf(paths: string[]): string {
  const first = paths[0];
  if (first === undefined || first === '-') return 'cluster';
  const base = path
    .basename(path.resolve(first))
    .replace(/\.gz$/i, '')
    .replace(/\.(json|ya?ml)$/i, '');
  return base || 'cluster';
}

export const importer: SourceImporter = {
  source: SOURCE,
  description:
    'Kubernetes ServiceAccounts, token Secrets and RBAC bindings (kubectl get … -A -o json/yaml, or manifests)',
  async read(paths: string[], options: ReadOptions): Promise<ReadResult> {
    const files = listFiles(paths, (name) => /\.(json|ya?ml)(\.gz)?$/i.test(name));
    const cluster = new Cluster(options.keys);
    const add = (v: unknown, loc: Loc): void => cluster.add(v, loc);
    const read: DiscoveryBatch['files'] = [];
    for (const file of files) {
      const input = openInput(file, options.maxBytes);
      const { first, all } = await sniff(input);
      const before = { values: cluster.values, objects: cluster.objects };
      if (first === '{' || first === '[') await readJson(file, all, add);
      else await readYaml(file, all, add);
      if (cluster.objects === before.objects) {
        // An empty or foreign export is a failed export, not a cluster without accounts: it is
        // refused even with skipInvalid, so that the snapshot does not vanish everything.
        throw new ValidationError(`${file}: no Kubernetes objects; nothing was imported`, [
          {
            file,
            message: `expected Kubernetes objects or Lists (JSON or YAML), got ${
              cluster.values === before.values ? 'an empty input' : 'no value with a kind'
            }`,
          },
        ]);
      }
      read.push({ path: input.path, sha256: await input.sha256() });
    }
    if (cluster.problems.length && !options.skipInvalid) {
      throw new ValidationError(
        `${cluster.problems.length} problem(s) in the Kubernetes objects; nothing was imported`,
        cluster.problems,
      );
    }
    return {
      batch: {
        source: SOURCE,
        scope: scopeOf(paths),
        snapshot: true,
        files: read,
        identities: cluster.identities(),
      },
      skipped: options.skipInvalid ? cluster.problems : [],
    };
  },
};
