import type { DiscoveredIdentity } from '../../inventory/import-discovery.js';
import type { IdentityType } from '../manifest/types.js';
import { describeJson, isObject, type Json } from '../common.js';
import { RecordCheck, githubTime } from './check.js';
import { normaliseFingerprint } from './ssh.js';

/** Distinct actions kept per identity (usage and changes each). */
export const MAX_ACTIONS = 200;
/** Distinct actors, user agents, source IPs and repositories kept per identity. */
export const MAX_ACTORS = 50;
export const MAX_USER_AGENTS = 20;
export const MAX_SOURCE_IPS = 50;
export const MAX_REPOSITORIES = 200;

/** Who did something to an identity, and when (from an audit-log event). */
export interface Stamp {
  actor?: string;
  at?: string;
  action: string;
}

interface Usage {
  events: number;
  first: string | undefined;
  last: string | undefined;
  actions: Map<string, number>;
  actors: Set<string>;
  agents: Set<string>;
  ips: Set<string>;
  repos: Set<string>;
}

/** What the audit log says about one identity, aggregated as events stream by. */
interface Agg {
  externalId: string;
  kind: IdentityType;
  name: string;
  facts: Record<string, unknown>;
  lists: Map<string, Set<string>>;
  createdBy?: Stamp;
  approvedBy?: Stamp;
  deletedBy?: Stamp;
  changes: Map<string, number>;
  usage?: Usage;
  /** The latest dated actor of a token: the person it acts for. */
  owner?: { login: string; at: string | undefined };
  credential?: { externalId: string; kind: string; locations?: string[] };
}

/** A GitHub login or app name as the slug GitHub derives from it (`Create Issue Branch` → `create-issue-branch`). */
export function slugify(name: string): string {
  return name
    .trim()
    .replace(/\[bot\]$/i, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

/** External id of a GitHub App installation: one per app and account (an app installs once per org). */
export const installationId = (org: string, slug: string): string =>
  `github:app-installation:${org.toLowerCase()}/${slug}`;
/** External id of a deploy key: its repository and the key's SHA-256 fingerprint (what the audit log carries). */
export const deployKeyId = (repo: string, fingerprint: string): string =>
  `github:deploy-key:${repo.toLowerCase()}:${fingerprint}`;
/** External id of a token by its GitHub token id (the audit log's `token_id`, a PAT grant's `token_id`). */
export const tokenId = (id: string): string => `github:token:${id}`;

/** `programmatic_access_type` values of short-lived GitHub App tokens: their use is the app's. */
const APP_TOKEN_RE = /server-to-server|user-to-server|^github[ _]app|installation/i;
const DEPLOY_KEY_TOKEN_RE = /deploy[ _]key/i;
const BOT_RE = /\[bot\]$/i;
const REPO_RE = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/;
/** Time fields in the order they are trusted: when it happened, then when it was recorded. */
const TIME_KEYS = ['@timestamp', 'at_sign_timestamp', 'created_at', 'timestamp'] as const;

type Bad = (field: string | undefined, message: string) => void;

/** Counts of what the audit log held beyond the identities. */
export interface AuditStats {
  auditEvents: number;
  webhookDeliveries: number;
  /** Events attributed to a non-human identity, as actor or as subject. */
  attributed: number;
  /** NHI events that name no identity this importer can key (no token id, no app, no fingerprint …), by reason. */
  unattributed: Record<string, number>;
  /** Attributed events without any time (test rows, hand-made samples). */
  undated: number;
}

/**
 * Aggregates GitHub organisation audit-log events (both generations: the REST
 * `/orgs/{org}/audit-log` shape with `created_at` and `data{}`, and the streaming shape with
 * `@timestamp`, `actor_is_bot`, `programmatic_access_type`, `token_id`, `hashed_token` …) into
 * per-identity usage and lifecycle facts. Memory grows with the number of identities, never with
 * the number of events.
 */
export class AuditAggregator {
  private readonly aggs = new Map<string, Agg>();
  /** Token ids by hashed token, learnt from events that carry both. */
  private readonly hashToId = new Map<string, string>();
  readonly orgs = new Set<string>();
  observedAt: string | undefined;
  readonly stats: AuditStats = {
    auditEvents: 0,
    webhookDeliveries: 0,
    attributed: 0,
    unattributed: {},
    undated: 0,
  };

  private unattributed(reason: string): void {
    this.stats.unattributed[reason] = (this.stats.unattributed[reason] ?? 0) + 1;
  }

  private agg(externalId: string, kind: IdentityType, name: string): Agg {
    let a = this.aggs.get(externalId);
    if (!a) {
      a = { externalId, kind, name, facts: {}, lists: new Map(), changes: new Map() };
      this.aggs.set(externalId, a);
    }
    return a;
  }

  /** Adds one audit-log event; problems go to `bad` (one per event) and leave the event out. */
  add(e: Json, path: string, bad: Bad): void {
    this.stats.auditEvents++;
    const c = new RecordCheck(path);
    const data = isObject(e.data) ? e.data : undefined;
    /** A field of the event, else of its legacy `data` object, with the path it came from. */
    const pick = (key: string): { o: Json; field: string } =>
      e[key] === undefined && data && data[key] !== undefined
        ? { o: data, field: `data.${key}` }
        : { o: e, field: key };
    const str = (key: string) => {
      const p = pick(key);
      return c.str(p.o, key, p.field);
    };
    const id = (key: string) => {
      const p = pick(key);
      return c.id(p.o, key, p.field);
    };

    const action = c.required(e, 'action', 'the action (a string such as "repo.create")');
    const actor = c.str(e, 'actor') || undefined;
    if (!c.ok || action === undefined) {
      bad(c.first!.field, c.first!.message);
      return;
    }
    // the time: checked only on events this importer uses (others may carry what they like)
    let time: string | undefined;
    let timeField: string | undefined;
    for (const k of TIME_KEYS) {
      if (e[k] !== undefined && e[k] !== null && e[k] !== '') {
        timeField = k;
        time = githubTime(e[k]);
        break;
      }
    }

    const category = action.split('.')[0]!;
    const repoRaw = str('repo') ?? (typeof e.repository === 'string' ? e.repository : undefined);
    const repo = repoRaw && REPO_RE.test(repoRaw) ? repoRaw : undefined;
    const org = str('org') || (repo ? repo.split('/')[0] : undefined);
    const accessType = str('programmatic_access_type') || undefined;
    const token = id('token_id');
    const hashed = str('hashed_token') || undefined;
    const botFlag = c.bool(e, 'actor_is_bot');
    const isBot = botFlag === true || (actor !== undefined && BOT_RE.test(actor));
    const fpRaw =
      str('deploy_key_fingerprint') ?? (category === 'public_key' ? str('fingerprint') : undefined);
    const fingerprint = fpRaw ? normaliseFingerprint(fpRaw) : undefined;
    if (fpRaw && !fingerprint)
      c.fail(
        pick(e.deploy_key_fingerprint !== undefined ? 'deploy_key_fingerprint' : 'fingerprint').field,
        `expected an SSH key fingerprint (SHA256:… or aa:bb:…), got ${describeJson(fpRaw)}`,
      );
    const agent = str('user_agent') || undefined;
    const ip = str('actor_ip') || undefined;

    // What the event is about (its subject) and which NHI acted, if any: resolved here, applied
    // once the event has passed its checks.
    const plans: (() => void)[] = [];
    const missing: string[] = [];
    let relevant = false;

    const lifecycle = (a: Agg) => {
      const stamp: Stamp = { action };
      if (actor) stamp.actor = actor;
      if (time) stamp.at = time;
      const verb = action.slice(category.length + 1);
      if (/^(create|request_created|add)$/.test(verb)) a.createdBy = earlier(a.createdBy, stamp);
      else if (/approved|access_granted/.test(verb)) a.approvedBy = later(a.approvedBy, stamp);
      else if (/^(destroy|delete|remove|access_revoked|revoke|revoked)$/.test(verb))
        a.deletedBy = later(a.deletedBy, stamp);
      bump(a.changes, action, MAX_ACTIONS);
    };
    const use = (a: Agg) => {
      const u = (a.usage ??= newUsage());
      u.events++;
      if (time) {
        if (u.first === undefined || time < u.first) u.first = time;
        if (u.last === undefined || time > u.last) u.last = time;
      }
      bump(u.actions, action, MAX_ACTIONS);
      if (actor) add(u.actors, actor, MAX_ACTORS);
      if (agent) add(u.agents, agent, MAX_USER_AGENTS);
      if (ip) add(u.ips, ip, MAX_SOURCE_IPS);
      if (repo) add(u.repos, repo, MAX_REPOSITORIES);
    };
    /** The installation of the app named `source` in the event's org, or why there is none. */
    const installationOf = (source: string | undefined, why: string): (() => Agg) | undefined => {
      const slug = source ? slugify(source) : '';
      if (!slug || !org) {
        missing.push(slug ? 'app without organisation' : why);
        return undefined;
      }
      return () => {
        const a = this.agg(installationId(org, slug), 'oauth-app', `${slug}@${org}`);
        a.facts.org ??= org;
        a.facts.appSlug ??= slug;
        return a;
      };
    };
    /** The OAuth app named by id or name in the event's org, or why there is none. */
    const oauthAppOf = (appId: string | undefined, name: string | undefined): (() => Agg) | undefined => {
      const key = appId ?? (name ? slugify(name) : undefined);
      if (!key || !org) {
        missing.push(key ? 'OAuth app without organisation' : 'OAuth app event without app');
        return undefined;
      }
      return () => {
        const a = this.agg(
          `github:oauth-app:${org.toLowerCase()}/${key}`,
          'oauth-app',
          `${name ?? `OAuth app ${key}`}@${org}`,
        );
        a.facts.org ??= org;
        if (appId) a.facts.oauthApplicationId = appId;
        if (name) a.facts.oauthApplication = name;
        return a;
      };
    };

    // --- subjects: lifecycle events about an NHI, usually done by a person
    if (category === 'public_key') {
      relevant = true;
      const readOnly = c.bool(e, 'read_only');
      const title = str('title') || undefined;
      if (!repo || !fingerprint) missing.push('deploy key event without repository or fingerprint');
      else
        plans.push(() => {
          const a = this.deployKey(repo, fingerprint);
          if (readOnly !== undefined) a.facts.readOnly = readOnly;
          if (title) a.facts.title = title;
          lifecycle(a);
        });
    } else if (category === 'integration_installation') {
      relevant = true;
      const inst = c.obj(e, 'installation');
      const app =
        (inst && c.str(inst, 'app_slug', 'installation.app_slug')) ||
        str('app_slug') ||
        str('integration') ||
        str('name') ||
        undefined;
      const installId = (inst && c.id(inst, 'id', 'installation.id')) ?? id('installation_id');
      const appId =
        (inst && c.id(inst, 'app_id', 'installation.app_id')) ?? id('integration_id') ?? id('app_id');
      const selection = str('repository_selection') || undefined;
      const added = c.strings(
        pick('repositories_added_names').o,
        'repositories_added_names',
        pick('repositories_added_names').field,
      );
      const removed = c.strings(
        pick('repositories_removed_names').o,
        'repositories_removed_names',
        pick('repositories_removed_names').field,
      );
      const get = installationOf(app, 'app installation event without app name');
      if (get)
        plans.push(() => {
          const a = get();
          if (app && a.facts.app === undefined) a.facts.app = app;
          if (installId) a.facts.installationId = installId;
          if (appId) a.facts.appId = appId;
          if (selection) a.facts.repositorySelection = selection;
          for (const r of added ?? []) addTo(a, 'repositoriesAdded', r);
          for (const r of removed ?? []) addTo(a, 'repositoriesRemoved', r);
          lifecycle(a);
        });
    } else if (category === 'oauth_application' || action.startsWith('org.oauth_app_access_')) {
      relevant = true;
      const get = oauthAppOf(id('oauth_application_id'), str('oauth_application') || undefined);
      if (get) plans.push(() => lifecycle(get()));
    } else if (category === 'personal_access_token') {
      relevant = true;
      const owner = str('user') || (/request_created/.test(action) ? actor : undefined);
      if (!token) missing.push('personal access token event without token_id');
      else
        plans.push(() => {
          const a = this.token(token);
          if (owner) a.facts.owner = owner;
          a.facts.humanBound = true;
          addTo(a, 'tokenTypes', 'Fine-grained personal access token');
          if (org) a.facts.org ??= org;
          lifecycle(a);
        });
    } else if (category === 'secret_scanning_alert') {
      relevant = true;
      const number = id('number') ?? id('alert_number');
      const secretType = str('secret_type') || undefined;
      const display = str('secret_type_display_name') || undefined;
      const leaked = c.bool(e, 'publicly_leaked');
      const multi = c.bool(e, 'multi_repo');
      const verb = action.slice(category.length + 1);
      if (!repo || !number) missing.push('secret scanning alert without repository or number');
      else
        plans.push(() => {
          const a = this.agg(
            `github:secret-scanning-alert:${repo.toLowerCase()}#${number}`,
            'secret',
            `${display ?? secretType ?? 'secret'} in ${repo} (#${number})`,
          );
          a.facts.unmanaged = true;
          a.facts.repository ??= repo;
          const facts = (a.facts.leaked ??= { alertNumber: Number(number) }) as Record<string, unknown>;
          if (secretType) facts.secretType = secretType;
          if (display) facts.secretTypeDisplayName = display;
          if (leaked !== undefined) facts.publiclyLeaked = leaked;
          if (multi !== undefined) facts.multiRepo = multi;
          if (verb === 'create') {
            if (time && (facts.detectedAt === undefined || time < (facts.detectedAt as string)))
              facts.detectedAt = time;
            facts.state ??= 'open';
          } else if (/resolve/.test(verb)) facts.state = 'resolved';
          else if (/reopen/.test(verb)) facts.state = 'open';
          a.credential ??= {
            externalId: `${repo.toLowerCase()}#${number}`,
            kind: secretType ?? 'secret',
            locations: [`github:${repo}`],
          };
          lifecycle(a);
        });
    }

    // --- actors: an NHI that did this (a token, a deploy key, an app's bot)
    const appToken = accessType !== undefined && APP_TOKEN_RE.test(accessType);
    const keyToken = accessType !== undefined && DEPLOY_KEY_TOKEN_RE.test(accessType);
    if (fingerprint && category !== 'public_key') {
      relevant = true;
      if (!repo) missing.push('deploy key use without repository');
      else plans.push(() => use(this.deployKey(repo, fingerprint)));
    } else if (keyToken) {
      relevant = true;
      missing.push('deploy key use without fingerprint');
    } else if (appToken || (isBot && !token && !hashed)) {
      relevant = true;
      const get = installationOf(
        isBot ? actor : str('integration') || undefined,
        'app token use without app or bot',
      );
      if (get)
        plans.push(() => {
          const a = get();
          if (isBot && actor) a.facts.bot = actor;
          if (accessType) addTo(a, 'tokenTypes', accessType);
          use(a);
        });
    } else if (category !== 'personal_access_token' && (token || hashed || accessType)) {
      // (a personal_access_token event's token_id names its subject, not the token that acted)
      relevant = true;
      const scopes = str('token_scopes');
      const oauthId = id('oauth_application_id');
      const oauthName = str('oauth_application') || undefined;
      const app = oauthId || oauthName ? oauthAppOf(oauthId, oauthName) : undefined;
      if (!token && !hashed) missing.push('token use without token_id or hashed_token');
      else
        plans.push(() => {
          if (token && hashed) this.hashToId.set(hashed, token);
          const a = token ? this.token(token) : this.hashedToken(hashed!);
          if (hashed) addTo(a, 'hashedTokens', hashed);
          if (accessType) addTo(a, 'tokenTypes', accessType);
          for (const s of scopes?.split(/[\s,]+/) ?? []) if (s) addTo(a, 'scopes', s);
          if (oauthId) a.facts.oauthApplicationId = oauthId;
          if (oauthName) a.facts.oauthApplication = oauthName;
          if (org) a.facts.org ??= org;
          if (actor && !isBot) {
            a.facts.humanBound = true;
            if (!a.owner || (time !== undefined && (a.owner.at === undefined || time >= a.owner.at)))
              a.owner = { login: actor, at: time };
          }
          use(a);
          if (app) use(app());
        });
    }

    // a malformed NHI field makes the event one this importer would have used: say so
    const given = (k: string) => {
      const p = pick(k);
      return p.o[k] !== undefined && p.o[k] !== null;
    };
    if (!c.ok && ['token_id', 'hashed_token', 'programmatic_access_type', 'actor_is_bot'].some(given))
      relevant = true;
    if (relevant) {
      if (timeField !== undefined && time === undefined)
        c.fail(
          timeField,
          `expected epoch milliseconds or an ISO-8601 timestamp, got ${describeJson(e[timeField])}`,
        );
      if (!c.ok) {
        bad(c.first!.field, c.first!.message);
        return;
      }
    }
    if (time && (this.observedAt === undefined || time > this.observedAt)) this.observedAt = time;
    if (!relevant) return;
    for (const m of missing) this.unattributed(m);
    if (!plans.length) return;
    if (org) this.orgs.add(org.toLowerCase());
    for (const p of plans) p();
    this.stats.attributed++;
    if (!time) this.stats.undated++;
  }

  private deployKey(repo: string, fingerprint: string): Agg {
    const a = this.agg(deployKeyId(repo, fingerprint), 'deploy-key', `deploy key ${fingerprint} (${repo})`);
    a.facts.repository ??= repo;
    a.facts.fingerprint ??= fingerprint;
    a.credential ??= { externalId: fingerprint, kind: 'deploy-key' };
    return a;
  }

  private token(id: string): Agg {
    const a = this.agg(tokenId(id), 'token', `token ${id}`);
    a.facts.tokenId ??= id;
    a.credential ??= { externalId: id, kind: 'github-token' };
    return a;
  }

  private hashedToken(hash: string): Agg {
    const a = this.agg(`github:token:hashed:${hash}`, 'token', `token ${hash.slice(0, 12)}…`);
    a.credential ??= { externalId: `hashed:${hash}`, kind: 'github-token' };
    return a;
  }

  /** Token usage logged with only a hashed token moves to its token id when another event paired them. */
  private foldHashedTokens(): void {
    for (const [hash, id] of this.hashToId) {
      const from = this.aggs.get(`github:token:hashed:${hash}`);
      if (!from) continue;
      this.aggs.delete(from.externalId);
      mergeInto(this.token(id), from);
    }
  }

  /** The identities, sorted by external id. */
  identities(): DiscoveredIdentity[] {
    this.foldHashedTokens();
    const out: DiscoveredIdentity[] = [];
    for (const a of [...this.aggs.values()].sort((x, y) => cmp(x.externalId, y.externalId))) {
      const attributes: Record<string, unknown> = {};
      for (const k of Object.keys(a.facts).sort()) attributes[k] = a.facts[k];
      for (const [k, set] of [...a.lists].sort((x, y) => cmp(x[0], y[0]))) attributes[k] = [...set].sort();
      if (a.owner) attributes.owner = a.owner.login;
      if (a.createdBy) attributes.createdBy = a.createdBy;
      if (a.approvedBy) attributes.approvedBy = a.approvedBy;
      if (a.deletedBy) attributes.deletedBy = a.deletedBy;
      if (a.changes.size) attributes.changes = sortedCounts(a.changes);
      const u = a.usage;
      if (u) {
        const usage: Record<string, unknown> = { events: u.events };
        if (u.first) usage.firstSeen = u.first;
        if (u.last) usage.lastSeen = u.last;
        usage.actions = sortedCounts(u.actions);
        usage.actors = [...u.actors].sort();
        if (u.agents.size) usage.userAgents = [...u.agents].sort();
        if (u.ips.size) usage.sourceIps = [...u.ips].sort();
        if (u.repos.size) usage.repositories = [...u.repos].sort();
        attributes.usage = usage;
      }
      const d: DiscoveredIdentity = { externalId: a.externalId, name: a.name, kind: a.kind, attributes };
      if (u?.last) d.lastUsedAt = u.last;
      if (a.credential) {
        const cred: DiscoveredIdentity['credentials'] = [
          { externalId: a.credential.externalId, kind: a.credential.kind },
        ];
        if (u?.last) cred[0]!.lastUsedAt = u.last;
        if (a.credential.locations) cred[0]!.locations = a.credential.locations;
        d.credentials = cred;
      }
      out.push(d);
    }
    return out;
  }
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function newUsage(): Usage {
  return {
    events: 0,
    first: undefined,
    last: undefined,
    actions: new Map(),
    actors: new Set(),
    agents: new Set(),
    ips: new Set(),
    repos: new Set(),
  };
}

function bump(m: Map<string, number>, k: string, max: number): void {
  const n = m.get(k);
  if (n !== undefined) m.set(k, n + 1);
  else if (m.size < max) m.set(k, 1);
}

function add(s: Set<string>, v: string, max: number): void {
  if (s.size < max || s.has(v)) s.add(v);
}

function addTo(a: Agg, list: string, v: string): void {
  let s = a.lists.get(list);
  if (!s) a.lists.set(list, (s = new Set()));
  add(s, v, MAX_REPOSITORIES);
}

function sortedCounts(m: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of [...m.keys()].sort()) out[k] = m.get(k)!;
  return out;
}

/** The earlier of two stamps; a dated stamp wins over an undated one. */
function earlier(a: Stamp | undefined, b: Stamp): Stamp {
  if (!a) return b;
  if (a.at === undefined) return b.at === undefined ? a : b;
  return b.at !== undefined && b.at < a.at ? b : a;
}

/** The later of two stamps; a dated stamp wins over an undated one. */
function later(a: Stamp | undefined, b: Stamp): Stamp {
  if (!a) return b;
  if (b.at === undefined) return a;
  return a.at === undefined || b.at >= a.at ? b : a;
}

/** Folds what one aggregate holds into another (a hashed token into its token id). */
function mergeInto(into: Agg, from: Agg): void {
  for (const [k, v] of Object.entries(from.facts)) if (into.facts[k] === undefined) into.facts[k] = v;
  for (const [k, set] of from.lists) for (const v of set) addTo(into, k, v);
  if (from.createdBy) into.createdBy = earlier(into.createdBy, from.createdBy);
  if (from.approvedBy) into.approvedBy = later(into.approvedBy, from.approvedBy);
  if (from.deletedBy) into.deletedBy = later(into.deletedBy, from.deletedBy);
  for (const [k, n] of from.changes) into.changes.set(k, (into.changes.get(k) ?? 0) + n);
  if (
    from.owner &&
    (!into.owner ||
      (from.owner.at !== undefined && (into.owner.at === undefined || from.owner.at > into.owner.at)))
  )
    into.owner = from.owner;
  const f = from.usage;
  if (!f) return;
  const u = (into.usage ??= newUsage());
  u.events += f.events;
  if (f.first && (!u.first || f.first < u.first)) u.first = f.first;
  if (f.last && (!u.last || f.last > u.last)) u.last = f.last;
  for (const [k, n] of f.actions) u.actions.set(k, (u.actions.get(k) ?? 0) + n);
  for (const v of f.actors) add(u.actors, v, MAX_ACTORS);
  for (const v of f.agents) add(u.agents, v, MAX_USER_AGENTS);
  for (const v of f.ips) add(u.ips, v, MAX_SOURCE_IPS);
  for (const v of f.repos) add(u.repos, v, MAX_REPOSITORIES);
}
