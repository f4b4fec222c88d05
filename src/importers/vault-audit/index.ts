/**
 * HashiCorp Vault audit device importer (the JSON file/socket device: one JSON object per line, a
 * `request` and a `response` line per API call): who used Vault, with which tokens, on which paths.
 *
 * Identity: the token's entity (`vault:entity:<entity_id>`) when it has one, else the token itself
 * (`vault:token:<accessor>`). Vault writes the accessor HMAC'd (`hmac-sha256:…`): it is kept exactly
 * as logged, as the token's id, and never reversed. Login responses (`response.auth`) name the
 * token they issue, so a login counts for the identity it logged in. Lines without an identity
 * (unauthenticated requests, KMIP) are counted, not imported. Lines stream one at a time; memory
 * grows with the number of identities and tokens, never with the number of lines.
 */
import { StringDecoder } from 'node:string_decoder';
import { ValidationError } from '../../domain/errors.js';
import type { Problem } from '../../domain/problems.js';
import type {
  DiscoveredCredential,
  DiscoveredIdentity,
  DiscoveryBatch,
} from '../../inventory/import-discovery.js';
import { LineReader, MAX_RECORD_CHARS, ProblemLog, isoTime } from '../cloudtrail/index.js';
import { describeJson, isObject, listFiles, openInput, type Json } from '../common.js';
import type { ReadOptions, ReadResult, SourceImporter } from '../source.js';

/** Distinct request paths kept per identity. */
export const MAX_PATHS = 200;
/** Distinct remote addresses kept per identity. */
export const MAX_REMOTE_ADDRESSES = 50;

export interface VaultReadOptions extends ReadOptions {
  /** Longest line accepted, in characters (default 16 Mi). */
  maxRecordChars?: number;
}

export interface VaultStats {
  /** Lines read, valid or not (blank lines aside). */
  lines: number;
  /** Valid lines attributed to an identity. */
  attributed: number;
  /** Valid lines with no identity, by kind: `unauthenticated`, `kmip-request`, … */
  unattributed: Record<string, number>;
  /** Lines skipped as invalid (`skipInvalid`). */
  skipped: number;
}

export interface VaultReadResult extends ReadResult {
  stats: VaultStats;
}

/** Auth methods recognised as the prefix of a token's display name (`oidc-…`, `approle`, `token-…`). */
const AUTH_METHODS = new Set([
  'alicloud',
  'approle',
  'aws',
  'azure',
  'cert',
  'cf',
  'gcp',
  'github',
  'jwt',
  'kerberos',
  'kubernetes',
  'ldap',
  'oci',
  'oidc',
  'okta',
  'radius',
  'saml',
  'scep',
  'spiffe',
  'token',
  'userpass',
]);

/** The auth method a display name shows: its prefix before the first `-` (`root` is a token). */
export function authMethodOfDisplayName(name: string): string | undefined {
  const prefix = name.split('-')[0]!.toLowerCase();
  if (prefix === 'root') return 'token';
  return AUTH_METHODS.has(prefix) ? prefix : undefined;
}

/** The auth block of a line, checked field by field. */
interface Auth {
  accessor: string | undefined;
  entityId: string | undefined;
  displayName: string | undefined;
  tokenType: string | undefined;
  ttl: number | undefined;
  issuedAt: string | undefined;
  policies: string[];
}

interface TokenAgg {
  last: string;
  ttl: number | undefined;
  issuedAt: string | undefined;
  tokenType: string | undefined;
}

interface IdentityAgg {
  externalId: string;
  name: string | undefined;
  nameAt: string;
  authMethod: string | undefined;
  tokenType: string | undefined;
  policies: Set<string>;
  requests: number;
  operations: Map<string, number>;
  paths: Set<string>;
  errors: number;
  remote: Set<string>;
  first: string;
  last: string;
  tokens: Map<string, TokenAgg>;
}

type Bad = (field: string | undefined, message: string) => void;

/** Aggregates Vault audit lines, one at a time, into per-identity usage. */
export class VaultAggregator {
  readonly identities = new Map<string, IdentityAgg>();
  readonly namespaces = new Set<string>();
  /** Auth method of tokens whose login was seen, by accessor. */
  private readonly loginMethod = new Map<string, string>();
  /** Requests whose error was counted on the request line (so the response line does not count it again). */
  private readonly erroredRequests = new Set<string>();
  observedAt: string | undefined;
  readonly stats: VaultStats = { lines: 0, attributed: 0, unattributed: {}, skipped: 0 };

  add(line: unknown, bad: Bad): void {
    this.stats.lines++;
    if (!isObject(line)) {
      bad(undefined, `expected a Vault audit entry (a JSON object), got ${describeJson(line)}`);
      return;
    }
    let ok = true;
    const problem = (field: string, message: string) => {
      if (ok) bad(field, message); // one problem per line: the first one found
      ok = false;
    };
    const str = (o: Json, key: string, prefix: string): string | undefined => {
      const v = o[key];
      if (v === undefined || v === null) return undefined;
      if (typeof v === 'string') return v;
      problem(prefix + key, `expected a string, got ${describeJson(v)}`);
      return undefined;
    };
    const obj = (o: Json, key: string, prefix: string): Json | undefined => {
      const v = o[key];
      if (v === undefined || v === null) return undefined;
      if (isObject(v)) return v;
      problem(prefix + key, `expected an object, got ${describeJson(v)}`);
      return undefined;
    };
    const readAuth = (a: Json, prefix: string): Auth => {
      const ttl = a.token_ttl;
      if (ttl !== undefined && ttl !== null && (typeof ttl !== 'number' || !Number.isFinite(ttl)))
        problem(`${prefix}token_ttl`, `expected a number of seconds, got ${describeJson(ttl)}`);
      const issued = str(a, 'token_issue_time', prefix);
      let issuedAt: string | undefined;
      if (issued !== undefined && (issuedAt = isoTime(issued)) === undefined)
        problem(`${prefix}token_issue_time`, `expected an ISO-8601 timestamp, got ${describeJson(issued)}`);
      const policies: string[] = [];
      const p = a.policies;
      if (p !== undefined && p !== null) {
        if (!Array.isArray(p) || p.some((x) => typeof x !== 'string'))
          problem(`${prefix}policies`, `expected a list of policy names, got ${describeJson(p)}`);
        else policies.push(...(p as string[]));
      }
      return {
        accessor: str(a, 'accessor', prefix) || undefined,
        entityId: str(a, 'entity_id', prefix) || undefined,
        displayName: str(a, 'display_name', prefix) || undefined,
        tokenType: str(a, 'token_type', prefix) || undefined,
        ttl: typeof ttl === 'number' ? ttl : undefined,
        issuedAt,
        policies,
      };
    };

    const rawTime = line.time;
    let time: string | undefined;
    if (typeof rawTime !== 'string')
      problem(
        'time',
        rawTime === undefined
          ? 'expected the entry time, got nothing'
          : `expected an ISO-8601 timestamp string, got ${describeJson(rawTime)}`,
      );
    else if ((time = isoTime(rawTime)) === undefined)
      problem('time', `expected an ISO-8601 timestamp, got ${describeJson(rawTime)}`);
    const type = line.type;
    if (typeof type !== 'string' || type === '')
      problem('type', `expected the entry type (request, response …), got ${describeJson(type)}`);
    const authObj = obj(line, 'auth', '');
    const request = obj(line, 'request', '');
    const response = obj(line, 'response', '');
    const error = str(line, 'error', '');
    const auth = authObj ? readAuth(authObj, 'auth.') : undefined;
    const responseAuthObj = response ? obj(response, 'auth', 'response.') : undefined;
    const login = responseAuthObj ? readAuth(responseAuthObj, 'response.auth.') : undefined;
    let path: string | undefined;
    let operation: string | undefined;
    let remote: string | undefined;
    let mountType: string | undefined;
    let requestId: string | undefined;
    if (request) {
      path = str(request, 'path', 'request.');
      operation = str(request, 'operation', 'request.');
      remote = str(request, 'remote_address', 'request.');
      mountType = str(request, 'mount_type', 'request.');
      requestId = str(request, 'id', 'request.');
      const ns = obj(request, 'namespace', 'request.');
      const nsId = ns ? str(ns, 'id', 'request.namespace.') : undefined;
      if (nsId) this.namespaces.add(nsId);
    }
    if (!ok || time === undefined) return;
    if (this.observedAt === undefined || time > this.observedAt) this.observedAt = time;

    if (type !== 'request' && type !== 'response') {
      this.count(type as string);
      return;
    }
    // who: the caller's token, or for a login the token it issued
    let who = auth?.accessor || auth?.entityId ? auth : undefined;
    if (login && (login.accessor || login.entityId)) {
      if (login.accessor && path?.startsWith('auth/'))
        this.loginMethod.set(login.accessor, mountType ?? path.split('/')[1]!);
      if (!who) who = login;
    }
    if (!who) {
      this.count('unauthenticated');
      return;
    }
    this.stats.attributed++;
    const externalId = who.entityId ? `vault:entity:${who.entityId}` : `vault:token:${who.accessor!}`;
    let a = this.identities.get(externalId);
    if (!a) {
      a = {
        externalId,
        name: undefined,
        nameAt: time,
        authMethod: undefined,
        tokenType: undefined,
        policies: new Set(),
        requests: 0,
        operations: new Map(),
        paths: new Set(),
        errors: 0,
        remote: new Set(),
        first: time,
        last: time,
        tokens: new Map(),
      };
      this.identities.set(externalId, a);
    }
    if (time < a.first) a.first = time;
    if (time >= a.last) a.last = time;
    if (who.displayName && (a.name === undefined || time >= a.nameAt)) {
      a.name = who.displayName;
      a.nameAt = time;
    }
    if (who.tokenType) a.tokenType = who.tokenType;
    for (const p of who.policies) a.policies.add(p);
    const method =
      (who.accessor && this.loginMethod.get(who.accessor)) ||
      (who.displayName && authMethodOfDisplayName(who.displayName));
    if (method) a.authMethod = method;

    if (type === 'request') {
      a.requests++;
      if (operation) a.operations.set(operation, (a.operations.get(operation) ?? 0) + 1);
      if (path && a.paths.size < MAX_PATHS) a.paths.add(path);
      if (remote && a.remote.size < MAX_REMOTE_ADDRESSES) a.remote.add(remote);
      if (error) {
        a.errors++;
        if (requestId) this.erroredRequests.add(requestId);
      }
    } else if (error) {
      if (requestId && this.erroredRequests.delete(requestId)) {
        // counted on its request line
      } else a.errors++;
    }

    if (who.accessor) {
      const t = a.tokens.get(who.accessor);
      if (!t) {
        a.tokens.set(who.accessor, {
          last: time,
          ttl: who.ttl,
          issuedAt: who.issuedAt ?? (who === login ? time : undefined),
          tokenType: who.tokenType,
        });
      } else {
        if (time > t.last) t.last = time;
        t.ttl ??= who.ttl;
        t.issuedAt ??= who.issuedAt;
        t.tokenType ??= who.tokenType;
      }
    }
  }

  private count(kind: string): void {
    this.stats.unattributed[kind] = (this.stats.unattributed[kind] ?? 0) + 1;
  }

  /** The batch: identities and their tokens, sorted; scope `vault`, or the one non-root namespace seen. */
  toBatch(files: { path: string; sha256: string }[]): DiscoveryBatch {
    const identities: DiscoveredIdentity[] = [];
    for (const id of [...this.identities.keys()].sort()) {
      const a = this.identities.get(id)!;
      const operations: Record<string, number> = {};
      for (const op of [...a.operations.keys()].sort()) operations[op] = a.operations.get(op)!;
      const credentials: DiscoveredCredential[] = [];
      for (const accessor of [...a.tokens.keys()].sort()) {
        const t = a.tokens.get(accessor)!;
        const c: DiscoveredCredential = { externalId: accessor, kind: 'vault-token', lastUsedAt: t.last };
        if (t.issuedAt) c.issuedAt = t.issuedAt;
        const attributes: Record<string, unknown> = {};
        if (t.ttl !== undefined) attributes.ttl = t.ttl;
        if (t.tokenType) attributes.tokenType = t.tokenType;
        if (Object.keys(attributes).length) c.attributes = attributes;
        credentials.push(c);
      }
      const attributes: Record<string, unknown> = {};
      if (a.authMethod) attributes.authMethod = a.authMethod;
      attributes.policies = [...a.policies].sort();
      if (a.tokenType) attributes.tokenType = a.tokenType;
      attributes.usage = {
        requests: a.requests,
        operations,
        paths: [...a.paths].sort(),
        errors: a.errors,
        remoteAddresses: [...a.remote].sort(),
        firstSeen: a.first,
        lastSeen: a.last,
      };
      identities.push({
        externalId: a.externalId,
        name: a.name ?? a.externalId.replace(/^vault:(entity|token):/, ''),
        kind: 'token',
        lastUsedAt: a.last,
        attributes,
        credentials,
      });
    }
    const nonRoot = [...this.namespaces].filter((n) => n !== 'root');
    const batch: DiscoveryBatch = {
      source: 'vault-audit',
      scope: nonRoot.length === 1 && !this.namespaces.has('root') ? `vault:${nonRoot[0]!}` : 'vault',
      snapshot: false,
      files,
      identities,
    };
    if (this.observedAt) batch.observedAt = this.observedAt;
    return batch;
  }
}

/** Reads Vault audit logs into one `vault-audit` batch (usage only: `snapshot: false`). */
export async function readVaultAudit(paths: string[], options: VaultReadOptions): Promise<VaultReadResult> {
  const files = listFiles(paths, (name) => /\.(log|json|jsonl|ndjson|gz)$/i.test(name));
  const agg = new VaultAggregator();
  const problems = new ProblemLog();
  const maxChars = options.maxRecordChars ?? MAX_RECORD_CHARS;
  const read: { path: string; sha256: string }[] = [];
  for (const file of files) {
    const input = openInput(file, options.maxBytes);
    const lines = new LineReader(
      file,
      (value, at) =>
        agg.add(value, (field, message) => {
          const p: Problem = { file, line: at.line, message };
          if (field) p.field = field;
          problems.add(p);
        }),
      (message, at) => {
        agg.stats.lines++;
        problems.add({ file, line: at.line, message });
      },
      maxChars,
    );
    const decoder = new StringDecoder('utf8');
    let first = true;
    for await (const chunk of input.stream) {
      let s = decoder.write(chunk as Buffer);
      if (first && s.length) {
        if (s.charCodeAt(0) === 0xfeff) s = s.slice(1);
        first = false;
      }
      lines.push(s);
    }
    lines.push(decoder.end());
    lines.end();
    read.push({ path: input.path, sha256: await input.sha256() });
  }
  if (problems.count && !options.skipInvalid) {
    throw new ValidationError(
      `${problems.count} invalid Vault audit line(s); nothing was imported (--skip-invalid skips them)`,
      problems.all(files[0] ?? '-'),
    );
  }
  agg.stats.skipped = problems.count;
  return { batch: agg.toBatch(read), skipped: problems.all(files[0] ?? '-'), stats: agg.stats };
}

export const importer: SourceImporter = {
  source: 'vault-audit',
  description:
    'HashiCorp Vault audit device logs (JSON lines, gzip): usage per entity and token, HMAC-ed accessors kept as logged',
  read: readVaultAudit,
};
