/**
 * `github`: GitHub's non-human identities from two kinds of input, told apart by content.
 *
 * **Audit logs** (usage: `snapshot: false`, like `cloudtrail`): the organisation audit log as
 * JSON lines or a JSON array (REST `GET /orgs/{org}/audit-log`, the streaming/enterprise shape,
 * Panther test rows `{_source_file, _test_name, event}` with their `p_*` keys dropped; gzip allowed).
 * Both generations of fields are read: `@timestamp`/`created_at` (epoch ms, or ISO with a space and
 * nanoseconds), `data{}` of the legacy shape. What it yields:
 * - **tokens** (`token`, `github:token:<token_id>`): every event carrying a `token_id` or a
 *   `hashed_token` (PATs classic and fine-grained, OAuth access tokens, pre-2021 tokens); the
 *   credential is the token id (`github-token`); attributes `owner` (the person it acts for, the
 *   latest actor: a PAT is human-bound, `humanBound: true`), `tokenTypes`, `scopes`, `hashedTokens`
 *   (GitHub's SHA-256 of the token, kept as logged: it is not the token). An event with only a hashed
 *   token is keyed `github:token:hashed:<hash>` unless another event pairs that hash with its id.
 * - **app installations** (`oauth-app`, `github:app-installation:<org>/<app-slug>`): bots (`*[bot]`,
 *   `actor_is_bot`) and short-lived GitHub App tokens (server-to-server, user-to-server) count as the
 *   use of their app's installation in the event's org; `integration_installation.*` events (the app
 *   named by `integration`/`name`, slugged as GitHub does) are its lifecycle. The audit log carries
 *   no installation id, but an app installs once per account, so org and slug name it in both
 *   sources; ids it does carry are kept as attributes.
 * - **deploy keys** (`deploy-key`, `github:deploy-key:<owner>/<repo>:SHA256:<fp>`): `public_key.*`
 *   with a `fingerprint`, and git events with a `deploy_key_fingerprint`. The audit log carries the
 *   key's fingerprint, not its id, so the fingerprint (computed from the listing's key) is the key.
 * - **OAuth apps** (`oauth-app`, `github:oauth-app:<org>/<id or slug>`): `org.oauth_app_access_*`,
 *   `oauth_application.*`, and the app behind an OAuth token.
 * - **secret-scanning alerts** (`secret`, `github:secret-scanning-alert:<owner>/<repo>#<n>`): an
 *   unmanaged leaked secret, `leaked{secretType, publiclyLeaked, detectedAt, state …}`.
 *
 * Each gets `usage{events, firstSeen, lastSeen, actions{action: count}, actors, userAgents,
 * sourceIps, repositories}` when it acted, and `createdBy`/`approvedBy`/`deletedBy` (`{actor, at,
 * action}`) and `changes{action: count}` from lifecycle events (`public_key.create`,
 * `integration_installation.create`, `org.oauth_app_access_approved`,
 * `personal_access_token.request_created` / `access_granted` …). Usage never sets a status, a creation
 * date or a credential's attributes, so a listing and a log of the same identity never undo each
 * other. Events by people without a token, and GitHub webhook deliveries (Panther `GitHub.Webhook`
 * rows), are counted and passed over. The time of an event is checked only when the event is used.
 *
 * **REST listings** (snapshots): `GET /repos/{owner}/{repo}/keys` (a JSON array of deploy keys),
 * `GET /orgs/{org}/installations` (`{total_count, installations:[…]}`, or a bare array), and
 * `GET /orgs/{org}/personal-access-tokens` (a JSON array of fine-grained PAT grants): pretty-printed,
 * compact, JSON lines or `--slurp`ed pages. A deploy key listing does not say whose keys they are,
 * nor a PAT listing which organisation granted them, so the file says it, by either
 * - its name: `<owner>__<repo>.keys.json`, `<org>.installations.json`,
 *   `<org>.personal-access-tokens.json` (`.gz` allowed), or
 * - a wrapper document: `{"repository": "owner/repo", "keys": […]}`,
 *   `{"organization": "acme", "personal_access_tokens": […]}` (`{"organization", "installations"}` too);
 * a deploy key's own `url` (`…/repos/{owner}/{repo}/keys/{id}`) serves when neither does, and must
 * agree with them. The listing's scope (`<owner>/<repo>:deploy-keys`, `<org>:installations`,
 * `<org>:personal-access-tokens`) is what a later listing of the same scope vanishes from; one run
 * reads one scope (several pages of it), never a mix of scopes or of listings and logs.
 * - a deploy key: its SHA-256 fingerprint is the credential (`deploy-key`, issued `created_at`, last
 *   used `last_used`, attributes id, key type, bits, MD5); the key text itself is never kept (it is
 *   public, but its fingerprint is all that identifies it and all that the audit log shows);
 *   `read_only` gives `contents:read` or also `contents:write` on `github:repo:<owner>/<repo>`;
 *   `added_by` is `createdBy`; `enabled: false` disables it.
 * - an installation: its permissions are entitlements on `github:org:<org>` (organisation
 *   permissions), `github:org:<org>/repositories:<all|selected>` and `github:org:<org>/users`, actions
 *   `<permission>:<level>`, flagged `write` and `admin`; `suspended_at` disables it.
 * - a PAT grant: identity `github:token:<token_id>` (the same as the audit log's), `owner` kept, the
 *   credential with `token_expires_at` and `token_last_used_at`, expired → `expired`/disabled;
 *   organisation and repository permissions as entitlements.
 *
 * Problems: a record with wrong types is named by file, line and JSON path (`installations[2].
 * permissions.contents`) and rejects the input unless `skipInvalid` (a skipped listing element is
 * then missing from the snapshot); so is a JSON line that does not parse. Malformed or truncated
 * JSON in an array or a document (a file whose first line is not complete JSON is read as one
 * pretty-printed document), an over-long line, element or document, a corrupt gzip and an
 * undecidable scope always fail. Inputs are streamed; memory grows with the identities, never with
 * the events.
 */
import path from 'node:path';
import { ValidationError } from '../../domain/errors.js';
import type { Problem } from '../../domain/problems.js';
import type { DiscoveredIdentity, DiscoveryBatch } from '../../inventory/import-discovery.js';
import { MAX_RECORD_CHARS, ProblemLog } from '../cloudtrail/index.js';
import { describeJson, isObject, listFiles, openInput, type Json } from '../common.js';
import type { ReadOptions, ReadResult, SourceImporter } from '../source.js';
import { AuditAggregator, type AuditStats } from './audit.js';
import { RecordCheck, joinPath } from './check.js';
import {
  deployKeyIdentity,
  installationIdentity,
  readDeployKey,
  readInstallation,
  readTokenGrant,
  tokenIdentity,
  type DeployKey,
  type Installation,
  type ListingKind,
  type TokenGrant,
} from './listings.js';
import { LIST_KEYS, fatal, readRecords, type ListKey, type RecordLocation } from './read.js';

export interface GitHubReadOptions extends ReadOptions {
  /** Longest line, array element or document accepted, in characters (default 16 Mi). */
  maxRecordChars?: number;
}

export interface GitHubStats extends AuditStats {
  /** Records read, valid or not: events, deliveries and listing elements. */
  records: number;
  /** Listing elements read, by listing. */
  listed: { deployKeys: number; installations: number; tokens: number };
  /** Records skipped as invalid (`skipInvalid`). */
  skipped: number;
}

export interface GitHubReadResult extends ReadResult {
  stats: GitHubStats;
}

/** What one file holds: audit-log events (or webhook deliveries) or one listing. */
type FileKind = 'log' | ListingKind;

const LIST_KIND: Record<ListKey, ListingKind> = {
  keys: 'deploy-keys',
  installations: 'installations',
  personal_access_tokens: 'tokens',
};

const KIND_WORDS: Record<FileKind, string> = {
  log: 'audit-log events',
  'deploy-keys': 'deploy keys (GET /repos/{owner}/{repo}/keys)',
  installations: 'app installations (GET /orgs/{org}/installations)',
  tokens: 'fine-grained PAT grants (GET /orgs/{org}/personal-access-tokens)',
};

const EXPECTED =
  'a GitHub audit-log event (an object with "action"), a deploy key (id, key, read_only), an app ' +
  'installation (id, app_slug, account), a fine-grained PAT grant (id, token_id, owner, access_granted_at), ' +
  'or a listing {total_count, installations:[…]}, {repository, keys:[…]}, {organization, personal_access_tokens:[…]}';

const LOGIN = '[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?';
const KEYS_NAME_RE = new RegExp(`^(${LOGIN})__([A-Za-z0-9_.-]+?)\\.keys\\.json(?:\\.gz)?$`, 'i');
const INSTALLATIONS_NAME_RE = new RegExp(`^(${LOGIN})\\.installations\\.json(?:\\.gz)?$`, 'i');
const TOKENS_NAME_RE = new RegExp(`^(${LOGIN})\\.personal-access-tokens\\.json(?:\\.gz)?$`, 'i');
const REPOSITORY_RE = new RegExp(`^${LOGIN}/[A-Za-z0-9_.-]+$`);
const ORG_RE = new RegExp(`^${LOGIN}$`);

/** What a file's name says it holds, by the naming convention. */
function nameHint(file: string): { kind: ListingKind; scope: string } | undefined {
  const base = path.basename(file);
  let m = KEYS_NAME_RE.exec(base);
  if (m) return { kind: 'deploy-keys', scope: `${m[1]}/${m[2]}` };
  m = INSTALLATIONS_NAME_RE.exec(base);
  if (m) return { kind: 'installations', scope: m[1]! };
  m = TOKENS_NAME_RE.exec(base);
  if (m) return { kind: 'tokens', scope: m[1]! };
  return undefined;
}

/** A listing element kept until its file ends (the wrapper may name the scope after the list). */
interface Pending<T> {
  value: T;
  at: { line: number; field: string };
}

/** One file being read. */
class FileState {
  kind: FileKind | undefined;
  kindAt: string | undefined;
  repository: string | undefined;
  organization: string | undefined;
  readonly keys: Pending<DeployKey>[] = [];
  readonly installations: Pending<Installation>[] = [];
  readonly tokens: Pending<TokenGrant>[] = [];
  constructor(
    readonly file: string,
    readonly hint: { kind: ListingKind; scope: string } | undefined,
  ) {}
}

/** A listing read from files: its scope and identities (a later page's element wins). */
interface Listing {
  kind: ListingKind;
  scope: string;
  file: string;
  identities: Map<string, DiscoveredIdentity>;
}

class GitHubReader {
  readonly audit = new AuditAggregator();
  readonly problems = new ProblemLog();
  records = 0;
  readonly listed = { deployKeys: 0, installations: 0, tokens: 0 };
  readonly logFiles: string[] = [];
  listing: Listing | undefined;

  constructor(private readonly maxChars: number) {}

  async readFile(file: string, maxBytes: number | undefined): Promise<{ path: string; sha256: string }> {
    const input = openInput(file, maxBytes);
    const state = new FileState(file, file === '-' ? undefined : nameHint(file));
    await readRecords(
      input.stream,
      file,
      (value, at) => this.record(state, value, at),
      (message, at) => {
        this.records++;
        this.problems.add({ file, line: at.line, message });
      },
      this.maxChars,
    );
    this.finish(state);
    return { path: input.path, sha256: await input.sha256() };
  }

  private problem(state: FileState, line: number, field: string, message: string): void {
    const p: Problem = { file: state.file, line, message };
    if (field) p.field = field;
    this.problems.add(p);
  }

  /** Whether `kind` may be added to the file (a file holds one kind); a problem otherwise. */
  private claim(state: FileState, kind: FileKind, at: RecordLocation, field: string): boolean {
    if (state.kind === undefined || state.kind === kind) {
      state.kind = kind;
      state.kindAt ??= `${at.line}`;
      return true;
    }
    this.records++;
    this.problem(
      state,
      at.line,
      field,
      `expected ${KIND_WORDS[state.kind]} like the rest of this file (from line ${state.kindAt}), got ${KIND_WORDS[kind]}`,
    );
    return false;
  }

  private record(state: FileState, value: unknown, at: RecordLocation, depth = 0): void {
    const p = at.path;
    if (at.list) {
      this.element(state, at.list, value, at.line, p);
      return;
    }
    if (Array.isArray(value)) {
      // a page of `gh api --paginate --slurp`: its elements are records
      if (depth > 0) {
        this.records++;
        this.problem(state, at.line, p, `expected ${EXPECTED}, got an array`);
        return;
      }
      for (let i = 0; i < value.length; i++)
        this.record(state, value[i], { line: at.line, path: joinPath(p, `[${i}]`) }, depth + 1);
      return;
    }
    if (!isObject(value)) {
      this.records++;
      this.problem(state, at.line, p, `expected ${EXPECTED}, got ${describeJson(value)}`);
      return;
    }
    if (value.event !== undefined && (value._source_file !== undefined || value._test_name !== undefined)) {
      // a Panther test row: the record is `event`, without Panther's own p_* fields
      const event = value.event;
      const clean: Json = {};
      if (isObject(event)) for (const k in event) if (!k.startsWith('p_')) clean[k] = event[k];
      this.record(
        state,
        isObject(event) ? clean : event,
        { line: at.line, path: joinPath(p, 'event') },
        depth + 1,
      );
      return;
    }
    const lists = LIST_KEYS.filter((k) => value[k] !== undefined);
    if (lists.length && value.action === undefined) {
      this.document(state, value, lists, at);
      return;
    }
    if (
      isObject(value.repository) ||
      isObject(value.sender) ||
      isObject(value.workflow_run) ||
      isObject(value.workflow_job)
    ) {
      // a webhook delivery (Panther GitHub.Webhook): not an audit event, nothing to key
      if (!this.claim(state, 'log', at, p)) return;
      this.records++;
      this.audit.stats.webhookDeliveries++;
      return;
    }
    if (value.action !== undefined) {
      if (!this.claim(state, 'log', at, p)) return;
      this.records++;
      this.audit.add(value, p, (field, message) => this.problem(state, at.line, field ?? p, message));
      return;
    }
    if (value.key !== undefined && value.id !== undefined) this.element(state, 'keys', value, at.line, p);
    else if (value.app_slug !== undefined || (value.app_id !== undefined && value.account !== undefined))
      this.element(state, 'installations', value, at.line, p);
    else if (value.token_id !== undefined && value.owner !== undefined)
      this.element(state, 'personal_access_tokens', value, at.line, p);
    else {
      this.records++;
      const keys = Object.keys(value);
      this.problem(
        state,
        at.line,
        p,
        `expected ${EXPECTED}, got ${keys.length ? `an object with keys ${keys.slice(0, 8).join(', ')}${keys.length > 8 ? ', …' : ''}` : 'an empty object'}`,
      );
    }
  }

  /** A listing document: its lists' elements (when it came whole, on one line) and its context. */
  private document(state: FileState, doc: Json, lists: ListKey[], at: RecordLocation): void {
    if (lists.length > 1) {
      this.records++;
      this.problem(state, at.line, at.path, `expected one listing per document, got ${lists.join(' and ')}`);
      return;
    }
    const list = lists[0]!;
    const items = doc[list];
    if (!this.claim(state, LIST_KIND[list], at, joinPath(at.path, list))) return;
    if (!Array.isArray(items)) {
      this.records++;
      this.problem(state, at.line, joinPath(at.path, list), `expected an array, got ${describeJson(items)}`);
      return;
    }
    const c = new RecordCheck(at.path);
    const repository = c.str(doc, 'repository');
    const organization = c.str(doc, 'organization');
    if (repository !== undefined && !REPOSITORY_RE.test(repository))
      c.fail('repository', `expected "owner/repo", got ${describeJson(repository)}`);
    if (organization !== undefined && !ORG_RE.test(organization))
      c.fail('organization', `expected an organisation login, got ${describeJson(organization)}`);
    if (repository !== undefined && list !== 'keys')
      c.fail('repository', `expected no repository on a listing of ${list} (it names an organisation)`);
    if (c.first) throw fatal(state.file, at.line, c.first.message, c.first.field);
    for (const [name, v] of [
      ['repository', repository],
      ['organization', organization],
    ] as const) {
      if (v === undefined) continue;
      const prior = state[name];
      if (prior !== undefined && prior.toLowerCase() !== v.toLowerCase())
        throw fatal(
          state.file,
          at.line,
          `expected one ${name} per file, got ${prior} and ${v}`,
          joinPath(at.path, name),
        );
      state[name] = v;
    }
    for (let i = 0; i < items.length; i++)
      this.element(state, list, items[i], at.line, joinPath(at.path, `${list}[${i}]`));
  }

  /** One element of a listing, checked and kept until the file ends. */
  private element(state: FileState, list: ListKey, value: unknown, line: number, p: string): void {
    const kind = LIST_KIND[list];
    if (!this.claim(state, kind, { line, path: p }, p)) return;
    this.records++;
    if (!isObject(value)) {
      this.problem(
        state,
        line,
        p,
        `expected ${KIND_WORDS[kind].replace(/s \(.*/, '')} (an object), got ${describeJson(value)}`,
      );
      return;
    }
    const c = new RecordCheck(p);
    const where = { line, field: p };
    if (kind === 'deploy-keys') {
      const k = readDeployKey(c, value);
      if (k) state.keys.push({ value: k, at: where });
    } else if (kind === 'installations') {
      const i = readInstallation(c, value);
      if (i) state.installations.push({ value: i, at: where });
    } else {
      const t = readTokenGrant(c, value);
      if (t) state.tokens.push({ value: t, at: where });
    }
    if (c.first) this.problem(state, line, c.first.field, c.first.message);
  }

  /** At the end of a file: its scope, and its listing elements as identities. */
  private finish(state: FileState): void {
    const hint = state.hint;
    const kind = state.kind ?? hint?.kind;
    if (kind === undefined) return; // an empty file (or only bad lines)
    if (hint && kind !== hint.kind)
      throw fatal(
        state.file,
        undefined,
        `expected ${KIND_WORDS[hint.kind]} as the file name says, got ${KIND_WORDS[kind]}`,
      );
    if (kind === 'log') {
      this.logFiles.push(state.file);
      this.adopt(undefined, state.file);
      return;
    }
    let scope: string;
    const identities = new Map<string, DiscoveredIdentity>();
    const stated = kind === 'deploy-keys' ? state.repository : state.organization;
    if (stated && hint && stated.toLowerCase() !== hint.scope.toLowerCase())
      throw fatal(
        state.file,
        undefined,
        `expected the ${kind === 'deploy-keys' ? 'repository' : 'organisation'} the file name says (${hint.scope}), got ${stated} in the document`,
      );
    if (kind === 'deploy-keys') {
      let repo = stated ?? hint?.scope;
      if (!repo) {
        const fromUrls = new Set(
          state.keys.flatMap((k) => (k.value.urlRepository ? [k.value.urlRepository.toLowerCase()] : [])),
        );
        const first = state.keys.find((k) => k.value.urlRepository)?.value.urlRepository;
        if (fromUrls.size === 1 && state.keys.every((k) => k.value.urlRepository)) repo = first!;
        else
          throw fatal(
            state.file,
            undefined,
            'expected to know whose deploy keys these are: name the file <owner>__<repo>.keys.json or wrap the listing as {"repository": "owner/repo", "keys": […]}' +
              (fromUrls.size > 1 ? `, got keys of ${[...fromUrls].sort().join(', ')}` : ''),
          );
      }
      scope = `${repo.toLowerCase()}:deploy-keys`;
      for (const { value: k, at } of state.keys) {
        if (k.urlRepository && k.urlRepository.toLowerCase() !== repo.toLowerCase()) {
          this.problem(
            state,
            at.line,
            joinPath(at.field, 'url'),
            `expected a key of ${repo}, got a key of ${k.urlRepository}`,
          );
          continue;
        }
        this.listed.deployKeys++;
        const d = deployKeyIdentity(repo, k);
        identities.set(d.externalId, d);
      }
    } else if (kind === 'installations') {
      const accounts = new Set(state.installations.map((i) => i.value.account.toLowerCase()));
      const org =
        stated ?? hint?.scope ?? (accounts.size === 1 ? state.installations[0]!.value.account : undefined);
      if (!org)
        throw fatal(
          state.file,
          undefined,
          accounts.size
            ? `expected the installations of one organisation, got ${[...accounts].sort().join(', ')}`
            : 'expected to know whose installations these are: name the file <org>.installations.json or wrap the listing as {"organization": "acme", "installations": […]}',
        );
      scope = `${org.toLowerCase()}:installations`;
      for (const { value: i, at } of state.installations) {
        if (i.account.toLowerCase() !== org.toLowerCase()) {
          this.problem(
            state,
            at.line,
            joinPath(at.field, 'account.login'),
            `expected an installation on ${org}, got one on ${i.account}`,
          );
          continue;
        }
        this.listed.installations++;
        const d = installationIdentity(org, i);
        identities.set(d.externalId, d);
      }
    } else {
      const org = stated ?? hint?.scope;
      if (!org)
        throw fatal(
          state.file,
          undefined,
          'expected to know which organisation granted these tokens: name the file <org>.personal-access-tokens.json or wrap the listing as {"organization": "acme", "personal_access_tokens": […]}',
        );
      scope = `${org.toLowerCase()}:personal-access-tokens`;
      for (const { value: t } of state.tokens) {
        this.listed.tokens++;
        const d = tokenIdentity(org, t);
        identities.set(d.externalId, d);
      }
    }
    this.adopt({ kind, scope, file: state.file, identities }, state.file);
  }

  /** Adds a file's listing (or log) to the run: one scope per run, never listings and logs together. */
  private adopt(listing: Listing | undefined, file: string): void {
    if (listing === undefined) {
      if (this.listing)
        throw fatal(
          file,
          undefined,
          `expected ${KIND_WORDS[this.listing.kind]} like ${this.listing.file} (a run imports either audit logs or one listing), got audit-log events`,
        );
      return;
    }
    if (this.logFiles.length)
      throw fatal(
        file,
        undefined,
        `expected audit-log events like ${this.logFiles[0]} (a run imports either audit logs or one listing), got ${KIND_WORDS[listing.kind]}`,
      );
    if (!this.listing) {
      this.listing = listing;
      return;
    }
    if (this.listing.scope !== listing.scope)
      throw fatal(
        file,
        undefined,
        `expected the listing of ${this.listing.scope} like ${this.listing.file} (one run imports one listing: run the import once per repository's deploy keys and once per organisation's installations or tokens), got ${listing.scope}`,
      );
    for (const [k, d] of listing.identities) {
      this.listing.identities.delete(k); // a later page wins
      this.listing.identities.set(k, d);
    }
  }

  batch(files: { path: string; sha256: string }[]): DiscoveryBatch {
    if (this.listing) {
      return {
        source: 'github',
        scope: this.listing.scope,
        snapshot: true,
        files,
        identities: [...this.listing.identities.values()].sort((a, b) =>
          a.externalId < b.externalId ? -1 : a.externalId > b.externalId ? 1 : 0,
        ),
      };
    }
    const orgs = this.audit.orgs;
    const batch: DiscoveryBatch = {
      source: 'github',
      scope: orgs.size === 1 ? [...orgs][0]! : orgs.size === 0 ? 'unknown' : 'multi',
      snapshot: false,
      files,
      identities: this.audit.identities(),
    };
    if (this.audit.observedAt) batch.observedAt = this.audit.observedAt;
    return batch;
  }
}

/** Reads GitHub audit logs (usage) or one REST listing (a snapshot) into one `github` batch. */
export async function readGitHub(paths: string[], options: GitHubReadOptions): Promise<GitHubReadResult> {
  const files = listFiles(paths, (name) => /\.(json|jsonl|ndjson|log|gz)$/i.test(name));
  const reader = new GitHubReader(options.maxRecordChars ?? MAX_RECORD_CHARS);
  const read: { path: string; sha256: string }[] = [];
  for (const file of files) read.push(await reader.readFile(file, options.maxBytes));
  const problems = reader.problems;
  if (problems.count && !options.skipInvalid) {
    throw new ValidationError(
      `${problems.count} invalid GitHub record(s); nothing was imported (--skip-invalid skips them)`,
      problems.all(files[0] ?? '-'),
    );
  }
  const stats: GitHubStats = {
    ...reader.audit.stats,
    records: reader.records,
    listed: reader.listed,
    skipped: problems.count,
  };
  return { batch: reader.batch(read), skipped: problems.all(files[0] ?? '-'), stats };
}

export const importer: SourceImporter = {
  source: 'github',
  description:
    'GitHub organisation audit logs (usage of tokens, apps, bots, deploy keys; secret-scanning alerts) or REST listings of deploy keys, app installations and fine-grained PATs',
  read: readGitHub,
};
