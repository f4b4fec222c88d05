/**
 * `aws-iam`: reads `aws iam get-account-authorization-details` exports (one JSON file per account, or
 * several pages of one account; gzip allowed) into a discovery batch: one identity per IAM user and
 * per role, with the role's trust (who may assume it), and one entitlement per (policy, resource)
 * expanded from the default version of every attached managed policy, every inline policy and, for
 * users, the policies of their groups.
 *
 * The file is streamed (stream-json tokens, one top-level list element assembled at a time); what is
 * kept is the normalised users and roles (as compressed JSON lines: a large account has a million),
 * the groups, and the statements of each managed policy's default version. The identities are made
 * from them a chunk at a time as the import asks for them (`batch.stream`), with what a managed or
 * group policy grants expanded once and shared. A record that does not have the expected shape is a
 * problem naming the file, the line where the record starts and its JSON path
 * (`RoleDetailList[3].Arn`); the whole input is refused unless `skipInvalid`, which skips and lists
 * such records. Malformed or truncated JSON is always refused: a partial export read as a snapshot
 * would vanish what it failed to list.
 */
import { StringDecoder } from 'node:string_decoder';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { Assembler } from 'stream-json/assembler.js';
import { jsonParser, type Token } from 'stream-json/core/parser.js';
import { ValidationError } from '../../domain/errors.js';
import type { Problem } from '../../domain/problems.js';
import type {
  DiscoveredEntitlement,
  DiscoveredIdentity,
  DiscoveryBatch,
  IdentityStream,
} from '../../inventory/import-discovery.js';
import { listFiles, normaliseTimestamp, openInput } from '../common.js';
import type { ReadOptions, ReadResult, SourceImporter } from '../source.js';

const SOURCE = 'aws-iam';
const LISTS = ['UserDetailList', 'GroupDetailList', 'RoleDetailList', 'Policies'] as const;
type ListName = (typeof LISTS)[number];
const ADMIN_POLICY = 'arn:aws:iam::aws:policy/AdministratorAccess';
/** Longest piece of text handed to the tokenizer at once (lines are fed whole up to this). */
const PIECE = 64 * 1024;
/** Identities made at a time from the spool for the import. */
const IDENTITY_CHUNK = 2000;
/** Stop collecting problems after this many (the first ones are what a person fixes first). */
const MAX_PROBLEMS = 200;

// ---------------------------------------------------------------------------------------------
// Normalised shapes

/** One policy statement, normalised (single values become lists). */
export interface Statement {
  effect: 'Allow' | 'Deny';
  actions: string[];
  /** `NotAction`: the statement covers every action except `actions`. */
  notAction: boolean;
  resources: string[];
  /** `NotResource`: the statement covers every resource except `resources`. */
  notResource: boolean;
  condition?: Record<string, unknown>;
  /** Trust policies only: the statement's `Principal` as written. */
  principal?: unknown;
}

export interface TrustedPrincipal {
  type: 'service' | 'account' | 'federated' | 'aws';
  value: string;
  /** Every statement letting this principal assume the role requires `sts:ExternalId`. */
  externalIdCondition: boolean;
}

interface InlinePolicy {
  name: string;
  statements: Statement[];
}

interface Principal {
  type: 'user' | 'role';
  arn: string;
  account: string;
  name: string;
  uniqueId: string | null;
  path: string | null;
  createdAt?: string;
  lastUsedAt?: string;
  lastUsedRegion: string | null;
  tags: Record<string, string>;
  groups: string[];
  attached: string[];
  inline: InlinePolicy[];
  permissionsBoundary: string | null;
  trustedPrincipals: TrustedPrincipal[];
  instanceProfiles: string[];
}

interface Group {
  name: string;
  attached: string[];
  inline: InlinePolicy[];
}

// ---------------------------------------------------------------------------------------------
// Validation helpers

/** How a value is named in `expected …, got …` messages. */
export function describeJson(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (typeof v === 'string') {
    if (v.trim() === '') return 'empty string';
    return `string ${JSON.stringify(v.length > 80 ? v.slice(0, 77) + '...' : v)}`;
  }
  if (typeof v === 'number' || typeof v === 'boolean') return `${typeof v} ${String(v)}`;
  if (Array.isArray(v)) return v.length === 0 ? 'empty array' : `array of ${v.length}`;
  if (typeof v === 'object') return 'object';
  return typeof v;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const SENTINELS = new Set(['', 'N/A', 'no_information', 'not_supported']);

/** A record under validation: collects its problems, each with file, line and JSON path. */
class Check {
  readonly problems: Problem[] = [];
  constructor(
    readonly file: string,
    readonly line: number | undefined,
  ) {}

  fail(field: string, expected: string, got: unknown): void {
    this.problems.push({
      file: this.file,
      ...(this.line !== undefined ? { line: this.line } : {}),
      field,
      message: `expected ${expected}, got ${describeJson(got)}`,
    });
  }

  string(o: Record<string, unknown>, key: string, path: string, required: boolean): string | undefined {
    const v = o[key];
    if (v === undefined || v === null) {
      if (required) this.fail(`${path}.${key}`, 'string', v);
      return undefined;
    }
    if (typeof v !== 'string' || (required && v.trim() === '')) {
      this.fail(`${path}.${key}`, required ? 'non-empty string' : 'string', v);
      return undefined;
    }
    return v;
  }

  arn(o: Record<string, unknown>, key: string, path: string): string | undefined {
    const v = o[key];
    if (typeof v !== 'string' || !/^arn:aws[\w-]*:[\w-]+:[^:]*:[^:]*:.+/.test(v)) {
      this.fail(`${path}.${key}`, 'ARN string (arn:aws:…)', v);
      return undefined;
    }
    return v;
  }

  time(o: Record<string, unknown>, key: string, path: string): string | undefined {
    const v = o[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string' && SENTINELS.has(v.trim())) return undefined;
    const ok =
      (typeof v === 'string' && /^\s*(\d{4}-\d{2}-\d{2}|\d{12,}\s*$)/.test(v)) || typeof v === 'number';
    const t = ok ? normaliseTimestamp(v) : undefined;
    if (t === undefined) this.fail(`${path}.${key}`, 'ISO-8601 timestamp', v);
    return t;
  }

  list(o: Record<string, unknown>, key: string, path: string): unknown[] {
    const v = o[key];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) {
      this.fail(`${path}.${key}`, 'array', v);
      return [];
    }
    return v;
  }

  stringList(o: Record<string, unknown>, key: string, path: string): string[] {
    const out: string[] = [];
    this.list(o, key, path).forEach((v, i) => {
      if (typeof v === 'string') out.push(v);
      else this.fail(`${path}.${key}[${i}]`, 'string', v);
    });
    return out;
  }

  /** `[{Key, Value}]` → `{Key: Value}`. */
  tags(o: Record<string, unknown>, path: string): Record<string, string> {
    const out: Record<string, string> = {};
    this.list(o, 'Tags', path).forEach((t, i) => {
      const p = `${path}.Tags[${i}]`;
      if (!isObject(t)) return this.fail(p, 'object {Key, Value}', t);
      const k = this.string(t, 'Key', p, true);
      const v = t.Value === undefined || t.Value === null ? '' : this.string(t, 'Value', p, false);
      if (k !== undefined && v !== undefined) out[k] = v;
    });
    return out;
  }

  attached(o: Record<string, unknown>, path: string): string[] {
    const out: string[] = [];
    this.list(o, 'AttachedManagedPolicies', path).forEach((a, i) => {
      const p = `${path}.AttachedManagedPolicies[${i}]`;
      if (!isObject(a)) return this.fail(p, 'object {PolicyName, PolicyArn}', a);
      const arn = this.arn(a, 'PolicyArn', p);
      if (arn !== undefined) out.push(arn);
    });
    return out;
  }

  inline(o: Record<string, unknown>, key: string, path: string): InlinePolicy[] {
    const out: InlinePolicy[] = [];
    this.list(o, key, path).forEach((a, i) => {
      const p = `${path}.${key}[${i}]`;
      if (!isObject(a)) return this.fail(p, 'object {PolicyName, PolicyDocument}', a);
      const name = this.string(a, 'PolicyName', p, true);
      const statements = this.document(a.PolicyDocument, `${p}.PolicyDocument`, false);
      if (name !== undefined && statements) out.push({ name, statements });
    });
    return out;
  }

  /**
   * A policy document: an object, or JSON text (URL-encoded as the raw API returns it). Trust
   * documents need `Principal` rather than `Resource`.
   */
  document(doc: unknown, path: string, trust: boolean): Statement[] | undefined {
    let d = doc;
    if (typeof d === 'string') {
      const text = d.trim();
      try {
        d = JSON.parse(text.startsWith('{') ? text : decodeURIComponent(text)) as unknown;
      } catch {
        this.fail(path, 'policy document (JSON object, or JSON text, URL-encoded or not)', doc);
        return undefined;
      }
    }
    if (!isObject(d)) {
      this.fail(path, 'policy document (object with Statement)', d);
      return undefined;
    }
    const raw = d.Statement;
    const list = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
    if (raw !== undefined && !Array.isArray(raw) && !isObject(raw)) {
      this.fail(`${path}.Statement`, 'object or array of statements', raw);
      return undefined;
    }
    const out: Statement[] = [];
    const before = this.problems.length;
    list.forEach((s, i) => {
      const p = Array.isArray(raw) ? `${path}.Statement[${i}]` : `${path}.Statement`;
      const st = this.statement(s, p, trust);
      if (st) out.push(st);
    });
    return this.problems.length > before ? undefined : out;
  }

  private statement(s: unknown, p: string, trust: boolean): Statement | undefined {
    if (!isObject(s)) {
      this.fail(p, 'statement object', s);
      return undefined;
    }
    const effect = s.Effect;
    if (effect !== 'Allow' && effect !== 'Deny') this.fail(`${p}.Effect`, '"Allow" or "Deny"', effect);
    const act = this.oneOf(s, 'Action', 'NotAction', p, true);
    const res = this.oneOf(s, 'Resource', 'NotResource', p, !trust);
    let condition: Record<string, unknown> | undefined;
    if (s.Condition !== undefined && s.Condition !== null) {
      if (isObject(s.Condition)) condition = s.Condition;
      else this.fail(`${p}.Condition`, 'object', s.Condition);
    }
    if (trust && s.Principal !== undefined && s.Principal !== '*' && !isObject(s.Principal))
      this.fail(`${p}.Principal`, 'object or "*"', s.Principal);
    if ((effect !== 'Allow' && effect !== 'Deny') || !act || !res) return undefined;
    const st: Statement = {
      effect,
      actions: act.values,
      notAction: act.not,
      resources: res.values,
      notResource: res.not,
    };
    if (condition) st.condition = condition;
    if (trust) st.principal = s.Principal;
    return st;
  }

  private oneOf(
    s: Record<string, unknown>,
    key: string,
    notKey: string,
    p: string,
    required: boolean,
  ): { values: string[]; not: boolean } | undefined {
    const not = s[key] === undefined && s[notKey] !== undefined;
    const k = not ? notKey : key;
    const v = s[k];
    if (v === undefined) {
      if (!required) return { values: [], not: false };
      this.fail(`${p}.${key}`, `string or array of strings (or ${notKey})`, v);
      return undefined;
    }
    const values = typeof v === 'string' ? [v] : v;
    if (!Array.isArray(values) || values.length === 0 || values.some((x) => typeof x !== 'string')) {
      this.fail(`${p}.${k}`, 'string or non-empty array of strings', v);
      return undefined;
    }
    return { values: values as string[], not };
  }
}

// ---------------------------------------------------------------------------------------------
// Records

const ACCOUNT_RE = /^\d{12}$/;

/** The account field of an ARN (`arn:aws:iam::123456789012:role/x` → `123456789012`). */
export function arnAccount(arn: string): string {
  return arn.split(':')[4] ?? '';
}

/** Who may assume a role, from the Allow statements of its trust policy that grant `sts:AssumeRole*`. */
export function trustedPrincipals(statements: Statement[]): TrustedPrincipal[] {
  const byKey = new Map<string, TrustedPrincipal>();
  for (const st of statements) {
    if (st.effect !== 'Allow' || st.notAction) continue;
    if (!st.actions.some((a) => /^(\*|sts:\*|sts:AssumeRole.*)$/i.test(a))) continue;
    const ext = hasExternalId(st.condition);
    const add = (type: TrustedPrincipal['type'], value: string) => {
      const key = `${type}|${value}`;
      const prior = byKey.get(key);
      // A principal that may assume the role without an external id in any statement does not need one.
      if (prior) prior.externalIdCondition &&= ext;
      else byKey.set(key, { type, value, externalIdCondition: ext });
    };
    const principal = st.principal;
    if (principal === '*') {
      add('aws', '*');
      continue;
    }
    if (!isObject(principal)) continue;
    for (const [k, raw] of Object.entries(principal)) {
      for (const v of Array.isArray(raw) ? raw : [raw]) {
        if (typeof v !== 'string') continue;
        if (k === 'Service') add('service', v);
        else if (k === 'Federated') add('federated', v);
        else if (k === 'AWS') {
          const root = /^arn:aws[\w-]*:iam::(\d{12}):root$/.exec(v);
          if (ACCOUNT_RE.test(v)) add('account', v);
          else if (root?.[1]) add('account', root[1]);
          else add('aws', v);
        } else add('aws', v); // CanonicalUser and anything newer
      }
    }
  }
  return [...byKey.values()];
}

function hasExternalId(condition: Record<string, unknown> | undefined): boolean {
  if (!condition) return false;
  return Object.values(condition).some(
    (block) => isObject(block) && Object.keys(block).some((k) => k.toLowerCase() === 'sts:externalid'),
  );
}

/** An AWS principal in another account than the role's (or anyone: `*`). */
export function isCrossAccount(principals: TrustedPrincipal[], account: string): boolean {
  return principals.some((p) => {
    if (p.type === 'account') return p.value !== account;
    if (p.type !== 'aws') return false;
    if (p.value === '*') return true;
    const m = /^arn:aws[\w-]*:(?:iam|sts)::(\d{12}):/.exec(p.value);
    return m?.[1] !== undefined && m[1] !== account;
  });
}

function readPrincipal(
  c: Check,
  r: Record<string, unknown>,
  path: string,
  type: 'user' | 'role',
): Principal | undefined {
  const arn = c.arn(r, 'Arn', path);
  const name = c.string(r, type === 'user' ? 'UserName' : 'RoleName', path, true);
  const uniqueId = c.string(r, type === 'user' ? 'UserId' : 'RoleId', path, false) ?? null;
  const p: Principal = {
    type,
    arn: arn ?? '',
    account: arn ? arnAccount(arn) : '',
    name: name ?? '',
    uniqueId,
    path: c.string(r, 'Path', path, false) ?? null,
    lastUsedRegion: null,
    tags: c.tags(r, path),
    groups: type === 'user' ? c.stringList(r, 'GroupList', path) : [],
    attached: c.attached(r, path),
    inline: c.inline(r, type === 'user' ? 'UserPolicyList' : 'RolePolicyList', path),
    permissionsBoundary: null,
    trustedPrincipals: [],
    instanceProfiles: [],
  };
  const created = c.time(r, 'CreateDate', path);
  if (created) p.createdAt = created;
  const pb = r.PermissionsBoundary;
  if (pb !== undefined && pb !== null) {
    if (!isObject(pb)) c.fail(`${path}.PermissionsBoundary`, 'object', pb);
    else p.permissionsBoundary = c.arn(pb, 'PermissionsBoundaryArn', `${path}.PermissionsBoundary`) ?? null;
  }
  if (type === 'role') {
    const doc = r.AssumeRolePolicyDocument;
    if (doc !== undefined && doc !== null) {
      const trust = c.document(doc, `${path}.AssumeRolePolicyDocument`, true);
      if (trust) p.trustedPrincipals = trustedPrincipals(trust);
    }
    const used = r.RoleLastUsed;
    if (used !== undefined && used !== null) {
      if (!isObject(used)) c.fail(`${path}.RoleLastUsed`, 'object', used);
      else {
        const at = c.time(used, 'LastUsedDate', `${path}.RoleLastUsed`);
        if (at) p.lastUsedAt = at;
        p.lastUsedRegion = c.string(used, 'Region', `${path}.RoleLastUsed`, false) ?? null;
      }
    }
    c.list(r, 'InstanceProfileList', path).forEach((ip, i) => {
      if (!isObject(ip)) return c.fail(`${path}.InstanceProfileList[${i}]`, 'object', ip);
      const a = c.arn(ip, 'Arn', `${path}.InstanceProfileList[${i}]`);
      if (a) p.instanceProfiles.push(a);
    });
  }
  return arn && name ? p : undefined;
}

function readGroup(
  c: Check,
  r: Record<string, unknown>,
  path: string,
): (Group & { arn: string }) | undefined {
  const arn = c.arn(r, 'Arn', path);
  const name = c.string(r, 'GroupName', path, true);
  const attached = c.attached(r, path);
  const inline = c.inline(r, 'GroupPolicyList', path);
  return arn && name ? { arn, name, attached, inline } : undefined;
}

function readPolicy(
  c: Check,
  r: Record<string, unknown>,
  path: string,
): { arn: string; statements: Statement[] } | undefined {
  const arn = c.arn(r, 'Arn', path);
  const defaultId = c.string(r, 'DefaultVersionId', path, false);
  const versions = c.list(r, 'PolicyVersionList', path);
  const i = versions.findIndex(
    (v) =>
      isObject(v) && (v.IsDefaultVersion === true || (defaultId !== undefined && v.VersionId === defaultId)),
  );
  const v = versions[i];
  if (!isObject(v)) {
    c.fail(`${path}.PolicyVersionList`, 'the default version (IsDefaultVersion true)', r.PolicyVersionList);
    return undefined;
  }
  const statements = c.document(v.Document, `${path}.PolicyVersionList[${i}].Document`, false);
  return arn && statements ? { arn, statements } : undefined;
}

// ---------------------------------------------------------------------------------------------
// Streaming one file

interface Accumulator {
  principals: PrincipalSpool;
  groups: Map<string, Group>;
  policies: Map<string, Statement[]>;
  /** Expanded managed and group policies, shared by the identities that have them. */
  expanded: Map<string, Expanded>;
  accounts: Set<string>;
  problems: Problem[];
  /** Records (or broken files) skipped with `skipInvalid`: what they held is missing from the batch. */
  skipped: Problem[];
  /** Files skipped with `skipInvalid` that are not authorization-details exports at all. */
  otherFiles: Problem[];
  files: { path: string; sha256: string }[];
  /** Files whose `IsTruncated` is true (one page of a paginated export), and all others. */
  truncatedPages: string[];
  completeFiles: number;
}

/** Internal: stops reading a file that is not an authorization-details export. */
class NotThisFormat extends Error {
  /**
   * @param broken the file is an authorization-details export with a broken structure (some of
   *   what it lists may be missing), not some other document
   */
  constructor(
    readonly problem: Problem,
    readonly broken = false,
  ) {
    super(problem.message);
  }
}

/**
 * A copy of a parsed value that shares no memory with the input text. The tokenizer's strings are
 * slices of the text it was fed, and V8 keeps a whole 64 KiB chunk alive for any slice of it that is
 * kept: what stays in memory until the end of the read (groups, policies, ARNs) is copied.
 */
function detached<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

/** Characters of JSON lines per compressed block of the spool. */
const SPOOL_BLOCK = 4 * 1024 * 1024;

/**
 * The users and roles read so far, kept compact until the import asks for them: one JSON line per
 * principal, deflated in blocks (an export lists users before the groups and policies they need, so
 * they must be kept until its end; a million of them as objects take gigabytes, as compressed text
 * a few dozen megabytes). A principal listed again (a later page or file) replaces the earlier
 * record, and takes its place in the order.
 */
class PrincipalSpool {
  private readonly blocks: Buffer[] = [];
  private lines: string[] = [];
  private chars = 0;
  /**
   * The ARN of each record, or undefined once a later record of the same ARN replaced it. The
   * principals read back carry these very strings, so that the import's own set of the ARNs it
   * has seen takes no second copy of them.
   */
  private readonly arns: (string | undefined)[] = [];
  /** While reading: the record of each ARN. */
  private byArn: Map<string, number> | undefined = new Map();
  private distinct = 0;

  add(p: Principal): void {
    if (!this.byArn) throw new Error('internal: the spool is sealed');
    const prior = this.byArn.get(p.arn);
    const arn = prior === undefined ? detached(p.arn) : this.arns[prior]!;
    if (prior === undefined) this.distinct += 1;
    else this.arns[prior] = undefined;
    this.byArn.set(arn, this.arns.length);
    this.arns.push(arn);
    const json = JSON.stringify(p);
    this.lines.push(json);
    this.chars += json.length;
    if (this.chars >= SPOOL_BLOCK) this.compress();
  }

  /** Distinct principals. */
  get size(): number {
    return this.distinct;
  }

  /** Ends the reading: compresses the rest and lets go of the lookup by ARN. */
  seal(): void {
    this.compress();
    this.byArn = undefined;
  }

  private compress(): void {
    if (!this.lines.length) return;
    this.blocks.push(deflateRawSync(this.lines.join('\n'), { level: 1 }));
    this.lines = [];
    this.chars = 0;
  }

  /** The principals in order (each at its last record); may be read more than once, once sealed. */
  *principals(): Generator<Principal> {
    if (this.byArn) throw new Error('internal: the spool is not sealed');
    let n = 0;
    for (const block of this.blocks) {
      for (const line of inflateRawSync(block).toString('utf8').split('\n')) {
        const arn = this.arns[n++];
        if (arn === undefined) continue;
        const p = JSON.parse(line) as Principal;
        p.arn = arn;
        yield p;
      }
    }
  }
}

type Feed = (chunk: string | symbol) => { values?: Token[] } | symbol | undefined;
const NONE = Symbol.for('object-stream.none');

function syntaxError(file: string, line: number, e: unknown, atEnd: boolean): ValidationError {
  // stream-json says "Parser cannot parse input: expected ','" or "Parser has expected a value".
  const detail = (e instanceof Error ? e.message : String(e))
    .replace(/^Parser cannot parse input: /, '')
    .replace(/^Parser has expected /, 'expected ');
  const problem: Problem = atEnd
    ? { file, line, message: `expected complete JSON, got the end of the input (truncated?): ${detail}` }
    : { file, line, message: `expected valid JSON, got a syntax error: ${detail}` };
  return new ValidationError(`${file}: not valid JSON; nothing was imported`, [problem]);
}

async function readFile(file: string, acc: Accumulator, options: ReadOptions): Promise<void> {
  const input = openInput(file, options.maxBytes);
  const shown = input.path;
  const feed = jsonParser({ packValues: true, streamValues: false }) as unknown as Feed;
  let line = 1;
  // Top-level walk: depth 0 before the root object, 1 inside it, 2 inside one of the lists.
  let depth = 0;
  let key: string | undefined;
  let list: ListName | undefined;
  let index = 0;
  let skipDepth = 0;
  let asm: Assembler | undefined;
  let elementLine = 1;
  let truncated: boolean | undefined;
  const keys: string[] = [];

  const notFormat = (got: string) =>
    new NotThisFormat({
      file: shown,
      message: `expected an \`aws iam get-account-authorization-details\` export (an object with ${LISTS.join(', ')}), got ${got}`,
    });

  const element = (value: unknown) => {
    if (!list) return;
    const path = `${list}[${index}]`;
    index += 1;
    const c = new Check(shown, elementLine);
    let ok = false;
    if (!isObject(value)) c.fail(path, 'object', value);
    else if (list === 'UserDetailList' || list === 'RoleDetailList') {
      const p = readPrincipal(c, value, path, list === 'UserDetailList' ? 'user' : 'role');
      if (p && !c.problems.length) {
        ok = true;
        acc.principals.add(p);
      }
    } else if (list === 'GroupDetailList') {
      const g = readGroup(c, detached<Record<string, unknown>>(value), path);
      if (g && !c.problems.length) {
        ok = true;
        acc.groups.set(`${arnAccount(g.arn)}|${g.name}`, g);
      }
    } else {
      const p = readPolicy(c, detached<Record<string, unknown>>(value), path);
      if (p && !c.problems.length) {
        ok = true;
        acc.policies.set(p.arn, p.statements);
      }
    }
    if (ok) {
      const a = isObject(value) && typeof value.Arn === 'string' ? arnAccount(value.Arn) : '';
      if (ACCOUNT_RE.test(a)) acc.accounts.add(a);
      return;
    }
    if (options.skipInvalid) {
      const [first, ...rest] = c.problems;
      if (first)
        acc.skipped.push(
          rest.length
            ? { ...first, message: `${first.message} (and ${rest.length} more problem(s) in this record)` }
            : first,
        );
    } else if (acc.problems.length < MAX_PROBLEMS) {
      acc.problems.push(...c.problems.slice(0, MAX_PROBLEMS - acc.problems.length));
    }
  };

  const token = (t: Token) => {
    if (asm) {
      asm.consume(t);
      if (asm.done) {
        const v = asm.current;
        asm = undefined;
        element(v);
      }
      return;
    }
    if (skipDepth > 0) {
      if (t.name === 'startObject' || t.name === 'startArray') skipDepth += 1;
      else if (t.name === 'endObject' || t.name === 'endArray') skipDepth -= 1;
      return;
    }
    if (depth === 0) {
      if (t.name !== 'startObject')
        throw notFormat(t.name === 'startArray' ? 'an array' : `a ${t.name.replace(/Value$/, '')} value`);
      depth = 1;
      return;
    }
    if (depth === 1) {
      if (t.name === 'keyValue') {
        key = t.value;
        keys.push(key);
        return;
      }
      if (t.name === 'endObject') {
        depth = 0;
        return;
      }
      if ((LISTS as readonly string[]).includes(key ?? '')) {
        if (t.name !== 'startArray')
          throw new NotThisFormat(
            {
              file: shown,
              line,
              field: String(key),
              message: `expected array, got ${t.name === 'startObject' ? 'object' : t.name.replace(/Value$/, '')}`,
            },
            true,
          );
        list = key as ListName;
        index = 0;
        depth = 2;
        return;
      }
      if (key === 'IsTruncated') {
        truncated = t.name === 'trueValue';
        return;
      }
      if (t.name === 'startObject' || t.name === 'startArray') skipDepth = 1; // Marker, or anything newer
      return;
    }
    // depth 2: elements of a list
    if (t.name === 'endArray') {
      depth = 1;
      list = undefined;
      return;
    }
    elementLine = line;
    asm = new Assembler();
    asm.consume(t);
    if (asm.done) {
      const v = asm.current;
      asm = undefined;
      element(v);
    }
  };

  const run = (text: string) => {
    let i = 0;
    while (i < text.length) {
      const nl = text.indexOf('\n', i);
      let j = nl < 0 ? text.length : nl + 1;
      if (j - i > PIECE) j = i + PIECE;
      const piece = text.slice(i, j);
      let out: ReturnType<Feed>;
      try {
        out = feed(piece);
      } catch (e) {
        throw syntaxError(shown, line, e, false);
      }
      if (out && typeof out === 'object' && out.values) for (const t of out.values) token(t);
      if (piece.endsWith('\n')) line += 1;
      i = j;
    }
  };

  const decoder = new StringDecoder('utf8');
  let first = true;
  try {
    for await (const chunk of input.stream as AsyncIterable<Buffer>) {
      let text = decoder.write(chunk);
      if (first && text.length) {
        if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
        first = false;
      }
      run(text);
    }
    run(decoder.end());
    let out: ReturnType<Feed>;
    try {
      out = feed(NONE);
    } catch (e) {
      throw syntaxError(shown, line, e, true);
    }
    if (out && typeof out === 'object' && out.values) for (const t of out.values) token(t);
  } catch (e) {
    input.stream.destroy();
    if (!(e instanceof NotThisFormat)) throw e;
    if (!options.skipInvalid) acc.problems.push(e.problem);
    else if (e.broken) acc.skipped.push(e.problem);
    else acc.otherFiles.push(e.problem);
    return;
  }
  if (!keys.some((k) => (LISTS as readonly string[]).includes(k))) {
    const p = notFormat(keys.length ? `keys ${keys.slice(0, 8).join(', ')}` : 'an empty object').problem;
    if (options.skipInvalid) acc.otherFiles.push(p);
    else acc.problems.push(p);
    return;
  }
  if (truncated) acc.truncatedPages.push(shown);
  else acc.completeFiles += 1;
  acc.files.push({ path: shown, sha256: await input.sha256() });
}

// ---------------------------------------------------------------------------------------------
// Entitlements

interface Grant {
  actions: Set<string>;
  wildcard: boolean;
  admin: boolean;
  notAction: boolean;
  conditions: Record<string, unknown>[];
}

interface PolicySource {
  grantedVia: string;
  policyArn?: string;
  statements: Statement[];
}

/** What one policy grants: its entitlements in the order of their resources, and its Deny statements. */
interface Expanded {
  entitlements: DiscoveredEntitlement[];
  denies: number;
}

/** The entitlements of one policy source, one per resource (see {@link expandPolicies}). */
function expandSource(src: PolicySource): Expanded {
  const out: DiscoveredEntitlement[] = [];
  let denies = 0;
  const byResource = new Map<string, Grant>();
  const isAdminPolicy = src.policyArn === ADMIN_POLICY;
  for (const st of src.statements) {
    if (st.effect === 'Deny') {
      denies += 1;
      continue;
    }
    const actions = st.notAction ? st.actions.map((a) => `!${a}`) : st.actions;
    const resources = st.notResource ? [`!${[...st.resources].sort().join(',')}`] : st.resources;
    const actionWild = st.notAction || st.actions.some((a) => a.includes('*'));
    const allActions = !st.notAction && st.actions.includes('*');
    for (const resource of resources) {
      let g = byResource.get(resource);
      if (!g)
        byResource.set(
          resource,
          (g = { actions: new Set(), wildcard: false, admin: false, notAction: false, conditions: [] }),
        );
      for (const a of actions) g.actions.add(a);
      g.wildcard ||= actionWild || st.notResource || resource.includes('*');
      g.admin ||= isAdminPolicy || (allActions && !st.notResource && resource === '*');
      g.notAction ||= st.notAction;
      if (st.condition && !g.conditions.some((c) => JSON.stringify(c) === JSON.stringify(st.condition)))
        g.conditions.push(st.condition);
    }
  }
  for (const [resource, g] of byResource) {
    const attributes: Record<string, unknown> = { effect: 'Allow', wildcard: g.wildcard, admin: g.admin };
    if (g.notAction) attributes.notAction = true;
    if (g.conditions.length)
      attributes.condition = g.conditions.length === 1 ? g.conditions[0] : g.conditions;
    if (src.policyArn) attributes.policyArn = src.policyArn;
    out.push({ resource, actions: [...g.actions].sort(), grantedVia: src.grantedVia, attributes });
  }
  return { entitlements: out, denies };
}

/** By grant, then resource (a stable sort: equal keys keep the order of their sources). */
function byGrantThenResource(a: DiscoveredEntitlement, b: DiscoveredEntitlement): number {
  const ga = a.grantedVia ?? '';
  const gb = b.grantedVia ?? '';
  return ga < gb ? -1 : ga > gb ? 1 : a.resource < b.resource ? -1 : a.resource > b.resource ? 1 : 0;
}

/**
 * One entitlement per (policy, resource) with every action its Allow statements grant there.
 * `NotAction` actions are written `!action`, a `NotResource` list as one resource `!a,b`.
 */
export function expandPolicies(sources: PolicySource[]): Expanded {
  const out: DiscoveredEntitlement[] = [];
  let denies = 0;
  for (const src of sources) {
    const e = expandSource(src);
    out.push(...e.entitlements);
    denies += e.denies;
  }
  out.sort(byGrantThenResource);
  return { entitlements: out, denies };
}

/** AdministratorAccess is known even when an export left its document out. */
const KNOWN_POLICIES: Record<string, Statement[]> = {
  [ADMIN_POLICY]: [
    { effect: 'Allow', actions: ['*'], notAction: false, resources: ['*'], notResource: false },
  ],
};

/**
 * What a managed policy or a group's policy grants is the same for every identity that has it:
 * expanded once per read and shared (the entitlement objects are frozen; nothing may change them).
 * With a million identities, copies per identity would be gigabytes.
 */
function sharedExpansion(acc: Accumulator, key: string, src: () => PolicySource): Expanded {
  let e = acc.expanded.get(key);
  if (!e) {
    e = expandSource(src());
    for (const ent of e.entitlements) {
      Object.freeze(ent.actions);
      Object.freeze(ent.attributes);
      Object.freeze(ent);
    }
    Object.freeze(e.entitlements);
    acc.expanded.set(key, e);
  }
  return e;
}

function toIdentity(p: Principal, acc: Accumulator): DiscoveredIdentity {
  const unresolved: string[] = [];
  const entitlements: DiscoveredEntitlement[] = [];
  let denies = 0;
  const add = (e: Expanded) => {
    for (const ent of e.entitlements) entitlements.push(ent);
    denies += e.denies;
  };
  const managed = (arn: string, grantedVia: string, key: string) => {
    const statements = acc.policies.get(arn) ?? KNOWN_POLICIES[arn];
    if (statements) add(sharedExpansion(acc, key, () => ({ grantedVia, policyArn: arn, statements })));
    else if (!unresolved.includes(arn)) unresolved.push(arn);
  };
  for (const arn of p.attached) managed(arn, arn, `managed|${arn}`);
  for (const pol of p.inline)
    add(expandSource({ grantedVia: `inline:${pol.name}`, statements: pol.statements }));
  for (const name of p.groups) {
    const groupKey = `${p.account}|${name}`;
    const g = acc.groups.get(groupKey);
    if (!g) {
      unresolved.push(`group:${name}`);
      continue;
    }
    for (const arn of g.attached) managed(arn, `group:${name}/${arn}`, `group|${groupKey}|${arn}`);
    g.inline.forEach((pol, i) => {
      const grantedVia = `group:${name}/inline:${pol.name}`;
      add(sharedExpansion(acc, `group|${groupKey}|${i}`, () => ({ grantedVia, statements: pol.statements })));
    });
  }
  entitlements.sort(byGrantThenResource);
  // Every key is always present: a source's attributes merge into what is recorded, so a fact that
  // stops being true must be overwritten, never just left out.
  const attributes: Record<string, unknown> = {
    principalType: p.type,
    account: p.account,
    uniqueId: p.uniqueId,
    path: p.path,
    tags: p.tags,
    permissionsBoundary: p.permissionsBoundary,
    denies,
    unresolvedPolicies: unresolved,
  };
  if (p.type === 'user') attributes.groups = p.groups;
  else {
    attributes.serviceLinked = (p.path ?? '').startsWith('/aws-service-role/');
    attributes.trustedPrincipals = p.trustedPrincipals;
    attributes.crossAccount = isCrossAccount(p.trustedPrincipals, p.account);
    attributes.lastUsedRegion = p.lastUsedRegion;
    attributes.instanceProfiles = p.instanceProfiles;
  }
  const d: DiscoveredIdentity = {
    externalId: p.arn,
    name: p.name,
    kind: 'service-account',
    status: 'active',
    attributes,
    entitlements,
  };
  if (p.createdAt) d.createdAt = p.createdAt;
  if (p.lastUsedAt) d.lastUsedAt = p.lastUsedAt;
  return d;
}

// ---------------------------------------------------------------------------------------------

async function read(paths: string[], options: ReadOptions): Promise<ReadResult> {
  const files = listFiles(paths, (name) => /\.json(\.gz)?$/i.test(name));
  const acc: Accumulator = {
    principals: new PrincipalSpool(),
    groups: new Map(),
    policies: new Map(),
    expanded: new Map(),
    accounts: new Set(),
    problems: [],
    skipped: [],
    otherFiles: [],
    files: [],
    truncatedPages: [],
    completeFiles: 0,
  };
  for (const file of files) await readFile(file, acc, options);

  if (acc.truncatedPages.length && acc.completeFiles === 0) {
    const p: Problem = {
      file: acc.truncatedPages[0] ?? '',
      field: 'IsTruncated',
      message:
        'expected a complete export (or all its pages), got only page(s) with IsTruncated true; pass the last page too (the AWS CLI paginates for you)',
    };
    acc.problems.push(p);
  }
  if (acc.problems.length)
    throw new ValidationError(
      `${acc.problems.length} problem(s) in ${SOURCE} input; nothing was imported`,
      acc.problems,
    );

  if (acc.accounts.size === 0) {
    throw new ValidationError(
      `${SOURCE}: cannot tell which AWS account this export covers; nothing was imported`,
      [
        {
          file: files.join(', '),
          message: 'expected user, role or customer-managed policy ARNs naming a 12-digit account, got none',
        },
      ],
    );
  }
  acc.principals.seal();
  // The identities are made from the spool a chunk at a time, as the import asks for them; the
  // `identities` list is only made if someone reads it (a test, a small export).
  const stream: IdentityStream = {
    count: acc.principals.size,
    *chunks() {
      let chunk: DiscoveredIdentity[] = [];
      for (const p of acc.principals.principals()) {
        chunk.push(toIdentity(p, acc));
        if (chunk.length === IDENTITY_CHUNK) {
          yield chunk;
          chunk = [];
        }
      }
      if (chunk.length) yield chunk;
    },
  };
  let identities: DiscoveredIdentity[] | undefined;
  const batch: DiscoveryBatch = {
    source: SOURCE,
    scope: [...acc.accounts].sort().join(','),
    // A read that skipped a record is not a complete picture: nothing may be vanished from it.
    // (A skipped file that is some other document takes nothing away from the picture.)
    snapshot: acc.skipped.length === 0,
    files: acc.files,
    get identities() {
      return (identities ??= [...stream.chunks()].flat());
    },
  };
  // Not enumerable: a copy of the batch (`{...batch, identities: other}`) is a plain list again.
  Object.defineProperty(batch, 'stream', { value: stream, enumerable: false });
  return { batch, skipped: [...acc.otherFiles, ...acc.skipped] };
}

export const importer: SourceImporter = {
  source: SOURCE,
  description:
    'AWS IAM users and roles, with trust and expanded policy entitlements (aws iam get-account-authorization-details JSON)',
  read,
};
