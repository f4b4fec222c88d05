/**
 * Reads "ownership as code" manifests: `apiVersion: steward/v1`, `kind: NonHumanIdentity`
 * documents and Backstage catalog entities, from YAML files and directories.
 *
 * Every problem in every file is collected and reported at once, each with the file, the
 * 1-based line, the dotted field path and an `expected …, got …` message; if there is any,
 * nothing is returned (a `ValidationError` is thrown).
 *
 * Speed: the `yaml` package builds a full document model with source ranges, which costs
 * roughly 50–300 µs per identity document. So documents are read with `js-yaml` (values
 * only, several times faster), each document separately after splitting the stream at its
 * `---` markers (a marker at column 0 always ends a document in YAML 1.2). Source positions
 * are only needed when a problem is reported: then that document's text is re-parsed with
 * `yaml` to locate the offending node. A file `js-yaml` rejects is parsed whole by `yaml`,
 * whose messages report the syntax errors.
 */
import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { isMap, isScalar, isSeq, LineCounter, parseAllDocuments, parseDocument, type Document } from 'yaml';
import { load as jsYamlLoad, YAMLException, CORE_SCHEMA } from 'js-yaml';
import { ValidationError } from '../../domain/errors.js';
import type { Problem } from '../../domain/problems.js';
import {
  IDENTITY_TYPES,
  SENSITIVITIES,
  type BackstageService,
  type ManifestCredential,
  type ManifestIdentity,
  type ManifestParseResult,
  type ManifestScope,
} from './types.js';

// ---------------------------------------------------------------------------------------------
// Shared helpers (also used by the directory importer)
// ---------------------------------------------------------------------------------------------

/** Describes a raw input value for the `got …` half of a problem message. */
export function describeValue(v: unknown): string {
  if (v === undefined || v === null) return 'nothing';
  if (typeof v === 'string') {
    const t = v.trim();
    if (t === '') return 'empty string';
    return `string ${JSON.stringify(t.length > 80 ? t.slice(0, 77) + '...' : t)}`;
  }
  if (typeof v === 'number' || typeof v === 'bigint') return `number ${String(v)}`;
  if (typeof v === 'boolean') return `boolean ${String(v)}`;
  if (v instanceof Date)
    return Number.isNaN(v.getTime()) ? 'invalid timestamp' : `timestamp ${v.toISOString()}`;
  if (Array.isArray(v)) return v.length === 0 ? 'empty list' : 'list';
  if (typeof v === 'object') return 'mapping';
  return typeof v;
}

const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATETIME_RE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt]|[ \t]+)(\d{1,2}):(\d{2})(?::(\d{2})(\.\d+)?)?[ \t]*(Z|z|[+-]\d{1,2}(?::?\d{2})?)?$/;

function validDay(y: number, m: number, d: number): boolean {
  if (m < 1 || m > 12 || d < 1) return false;
  const dt = new Date(Date.UTC(y, m - 1, d));
  return dt.getUTCFullYear() === y && dt.getUTCMonth() === m - 1 && dt.getUTCDate() === d;
}

/**
 * Normalises a date (`2025-01-31`) or date-time (`2025-01-31T10:00:00Z`, `2025-01-31 10:00:00+02:00`)
 * to an ISO-8601 UTC string. A date-time without a zone is taken as UTC (as YAML timestamps are).
 * Returns undefined when the text is not a valid date.
 */
export function normaliseTime(input: string | Date): string | undefined {
  if (input instanceof Date) return Number.isNaN(input.getTime()) ? undefined : input.toISOString();
  const s = input.trim();
  let m = DATE_RE.exec(s);
  if (m) {
    const y = Number(m[1]);
    const mo = Number(m[2]);
    const d = Number(m[3]);
    if (!validDay(y, mo, d)) return undefined;
    return new Date(Date.UTC(y, mo - 1, d)).toISOString();
  }
  m = DATETIME_RE.exec(s);
  if (!m) return undefined;
  const y = Number(m[1]);
  const mo = Number(m[2]);
  const d = Number(m[3]);
  const h = Number(m[4]);
  const mi = Number(m[5]);
  const sec = m[6] === undefined ? 0 : Number(m[6]);
  if (!validDay(y, mo, d) || h > 23 || mi > 59 || sec > 59) return undefined;
  let ms = Date.UTC(y, mo - 1, d, h, mi, sec);
  if (m[7]) ms += Math.round(Number(`0${m[7]}`) * 1000);
  const tz = m[8];
  if (tz && tz !== 'Z' && tz !== 'z') {
    const tm = /^([+-])(\d{1,2})(?::?(\d{2}))?$/.exec(tz);
    if (!tm) return undefined;
    const oh = Number(tm[2]);
    const om = tm[3] === undefined ? 0 : Number(tm[3]);
    if (oh > 23 || om > 59) return undefined;
    ms -= (tm[1] === '-' ? -1 : 1) * (oh * 60 + om) * 60_000;
  }
  const out = new Date(ms);
  return Number.isNaN(out.getTime()) ? undefined : out.toISOString();
}

/** Formats a path like `spec.credentials[0].expiresAt`. */
export function formatFieldPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? seg : `.${seg}`;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Documents with lazily computed source positions
// ---------------------------------------------------------------------------------------------

type PathSeg = string | number;

interface SourceDocument {
  value: unknown;
  /** 1-based line of the document's first content. */
  line: number;
  /** 1-based line of the node at `path`, or of its nearest existing ancestor. */
  locate: (path: readonly PathSeg[]) => number;
}

/** Offset of the node at `path` (the key, for mapping entries), or of its nearest existing ancestor. */
function locateOffset(doc: Document, path: readonly PathSeg[]): number {
  let node: unknown = doc.contents;
  let off = rangeStart(node) ?? rangeStart(doc) ?? 0;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) break;
      off = rangeStart(pair.key) ?? off;
      node = pair.value;
      if (!node) break;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item: unknown = node.items[seg];
      const s = rangeStart(item);
      if (s === undefined) break;
      off = s;
      node = item;
    } else break;
  }
  return off;
}

function rangeStart(node: unknown): number | undefined {
  if (node && typeof node === 'object' && 'range' in node) {
    const r = (node as { range?: unknown }).range;
    if (Array.isArray(r) && typeof r[0] === 'number') return r[0];
  }
  return undefined;
}

const YAML_OPTIONS = { prettyErrors: false, keepSourceTokens: false } as const;

/** Splits a YAML stream at its document markers: each part's 0-based line span. */
function splitDocuments(lines: string[]): { startLine: number; endLine: number }[] {
  const parts: { startLine: number; endLine: number }[] = [];
  let start = 0;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.startsWith('---') && (l.length === 3 || l[3] === ' ' || l[3] === '\t' || l[3] === '\r')) {
      if (i > start) parts.push({ startLine: start, endLine: i });
      if (l.slice(3).trim() === '' || l.slice(3).trim().startsWith('#')) start = i + 1;
      else {
        // `--- value` starts the document on the marker line itself: blank the marker out.
        lines[i] = '   ' + l.slice(3);
        start = i;
      }
    } else if (l.startsWith('...') && (l.slice(3).trim() === '' || l.slice(3).trim().startsWith('#'))) {
      if (i > start) parts.push({ startLine: start, endLine: i });
      start = i + 1;
    }
  }
  if (start < lines.length) parts.push({ startLine: start, endLine: lines.length });
  return parts;
}

const CONTENT_LINE = /^\s*(?:#.*)?\r?$/;

/**
 * Reads a YAML stream with js-yaml (YAML 1.2 core schema): each non-empty document's value,
 * its 1-based first content line and its 0-based line span. Undefined when js-yaml rejects
 * the text (the caller then lets `yaml` report the errors).
 */
export function readYamlStream(
  text: string,
): { value: unknown; line: number; startLine: number; endLine: number; text: string }[] | undefined {
  if (text.startsWith('%')) return undefined; // directives: leave them to `yaml`
  const lines = text.split('\n');
  const out: { value: unknown; line: number; startLine: number; endLine: number; text: string }[] = [];
  try {
    for (const { startLine, endLine } of splitDocuments(lines)) {
      const part = lines.slice(startLine, endLine).join('\n');
      const value: unknown = jsYamlLoad(part, { schema: CORE_SCHEMA });
      if (value === null || value === undefined) continue; // empty document
      let first = startLine;
      while (first < endLine && CONTENT_LINE.test(lines[first]!)) first++;
      out.push({ value, line: first + 1, startLine, endLine, text: part });
    }
  } catch (e) {
    if (e instanceof YAMLException) return undefined;
    throw e;
  }
  return out;
}

/** Splits a file into documents, reporting YAML syntax errors. */
function loadDocuments(file: string, text: string, problems: Problem[]): SourceDocument[] {
  const fast = readYamlStream(text);
  if (fast) {
    return fast.map(({ value, line, startLine, text: part }) => {
      let located: { doc: Document; lc: LineCounter } | undefined;
      return {
        value,
        line,
        locate(path: readonly PathSeg[]): number {
          located ??= (() => {
            const lc = new LineCounter();
            return { doc: parseDocument(part, { ...YAML_OPTIONS, lineCounter: lc }), lc };
          })();
          return startLine + located.lc.linePos(locateOffset(located.doc, path)).line;
        },
      };
    });
  }

  const lc = new LineCounter();
  const docs = parseAllDocuments(text, { ...YAML_OPTIONS, lineCounter: lc });
  const lineOf = (offset: number): number => Math.max(1, lc.linePos(offset).line);
  const report = (errors: readonly { pos: [number, number]; message: string }[]): void => {
    const seen = new Set<string>();
    for (const err of errors) {
      const line = lineOf(err.pos[0]);
      const message = `invalid YAML: ${err.message}`;
      const key = `${line}\0${message}`;
      if (seen.has(key)) continue;
      seen.add(key);
      problems.push({ file, line, message });
    }
  };
  if ('empty' in docs) {
    report(docs.errors);
    return [];
  }
  const out: SourceDocument[] = [];
  for (const doc of docs) {
    if (doc.errors.length) {
      report(doc.errors);
      continue;
    }
    const value = doc.toJS({ maxAliasCount: 1000 }) as unknown;
    if (value === null || value === undefined) continue; // empty document
    const line = lineOf(rangeStart(doc.contents) ?? rangeStart(doc) ?? 0);
    out.push({
      value,
      line,
      locate: (path) => lineOf(locateOffset(doc, path)),
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Identity schema
// ---------------------------------------------------------------------------------------------

const PRINCIPAL_RE = /^(person|team):\S+$/;
const DURATION_RE = /^\d+[hdwy]$/;
const TRIGGER_RE = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
const FINGERPRINT_RE = /^hmac-sha256:[0-9a-f]{64}$/;

const MSG = {
  string: 'expected string',
  mapping: 'expected mapping',
  list: 'expected list',
  principal: 'expected person:<email> or team:<name>',
  time: 'expected date (YYYY-MM-DD) or ISO-8601 timestamp',
  duration: 'expected duration like 90d, 12h, 52w or 1y',
  type: `expected one of ${IDENTITY_TYPES.join(', ')}`,
  sensitivity: `expected one of ${SENSITIVITIES.join(', ')}`,
  actions: 'expected non-empty list of actions',
  fingerprint: 'expected hmac-sha256:<64 hex digits> from `steward fingerprint` (never the secret itself)',
  trigger:
    'expected kebab-case trigger such as decommission, compromise, role-change, owner-departure or contract-end',
} as const;

/** Trims strings; empty strings and null count as missing. */
function clean(v: unknown): unknown {
  if (v === null) return undefined;
  if (typeof v === 'string') {
    const t = v.trim();
    return t === '' ? undefined : t;
  }
  return v;
}

const req = <T extends z.ZodType>(s: T) => z.preprocess(clean, s);
const opt = <T extends z.ZodType>(s: T) => z.preprocess(clean, s.optional());

const text = () => z.string({ error: MSG.string });
const principal = () => z.string({ error: MSG.principal }).regex(PRINCIPAL_RE, { error: MSG.principal });
const duration = () => z.string({ error: MSG.duration }).regex(DURATION_RE, { error: MSG.duration });
const time = () =>
  z.preprocess(
    (v) => (v instanceof Date ? (normaliseTime(v) ?? v) : clean(v)),
    z
      .string({ error: MSG.time })
      .transform((s, ctx) => {
        const iso = cachedTime(s);
        if (iso !== undefined) return iso;
        ctx.issues.push({ code: 'custom', message: MSG.time, input: s });
        return z.NEVER;
      })
      .optional(),
  );
// Manifests repeat the same few dates a lot; normalising is comparatively costly.
const timeCache = new Map<string, string | undefined>();
function cachedTime(s: string): string | undefined {
  if (timeCache.has(s)) return timeCache.get(s);
  const iso = normaliseTime(s);
  if (timeCache.size >= 10_000) timeCache.clear();
  timeCache.set(s, iso);
  return iso;
}
const list = <T extends z.ZodType>(item: T) => z.array(item, { error: MSG.list });
const obj = <S extends z.ZodRawShape>(shape: S) => z.strictObject(shape, { error: MSG.mapping });

const labelValue = z.preprocess(
  (v) =>
    v === null
      ? ''
      : typeof v === 'number' || typeof v === 'boolean'
        ? String(v)
        : typeof v === 'string'
          ? v.trim()
          : v,
  z.string({ error: MSG.string }),
);

const rotationSchema = obj({ maxAge: opt(duration()) });

const identitySchema = obj({
  apiVersion: z.unknown(),
  kind: z.unknown(),
  metadata: req(
    obj({
      name: req(text()),
      environment: opt(text()),
      labels: opt(z.record(z.string(), labelValue, { error: MSG.mapping })),
      annotations: opt(z.record(z.string(), z.unknown(), { error: MSG.mapping })),
    }),
  ),
  spec: opt(
    obj({
      type: opt(z.enum(IDENTITY_TYPES, { error: MSG.type })),
      source: opt(text()),
      externalId: opt(text()),
      service: opt(text()),
      purpose: opt(text()),
      sensitivity: opt(z.enum(SENSITIVITIES, { error: MSG.sensitivity })),
      owners: opt(
        obj({ business: opt(principal()), technical: opt(principal()), control: opt(principal()) }),
      ),
      primaryTeam: opt(principal()),
      sharedWith: opt(list(req(principal()))),
      approval: opt(obj({ approver: opt(principal()), approvedAt: time(), ticket: opt(text()) })),
      origin: opt(obj({ kind: opt(text()), ref: opt(text()), mergedBy: opt(principal()) })),
      vendor: opt(obj({ name: req(text()), contractingOwner: opt(principal()), contractEnds: time() })),
      scope: opt(
        list(
          obj({
            resource: req(text()),
            actions: req(list(req(text())).min(1, { error: MSG.actions })),
          }),
        ),
      ),
      credentials: opt(
        list(
          obj({
            id: req(text()),
            kind: opt(text()),
            fingerprint: opt(
              z.string({ error: MSG.fingerprint }).regex(FINGERPRINT_RE, { error: MSG.fingerprint }),
            ),
            issuedAt: time(),
            lastRotatedAt: time(),
            expiresAt: time(),
            rotation: opt(rotationSchema),
            locations: opt(list(req(text()))),
          }),
        ),
      ),
      rotation: opt(rotationSchema),
      expires: time(),
      revocation: opt(
        obj({
          triggers: opt(
            list(req(z.string({ error: MSG.trigger }).regex(TRIGGER_RE, { error: MSG.trigger }))),
          ),
          owner: opt(principal()),
          runbook: opt(text()),
        }),
      ),
      sponsor: opt(principal()),
    }),
  ),
});

type IdentityDoc = z.output<typeof identitySchema>;

const backstageSchema = z.looseObject(
  {
    kind: req(text()),
    metadata: req(
      z.looseObject(
        { name: req(text()), namespace: opt(text()), description: opt(text()) },
        { error: MSG.mapping },
      ),
    ),
    spec: opt(z.looseObject({ owner: opt(text()), system: opt(text()) }, { error: MSG.mapping })),
  },
  { error: MSG.mapping },
);

/** Backstage kinds that describe people, groups or catalog plumbing rather than services. */
const NON_SERVICE_KINDS = new Set(['location', 'user', 'group', 'template']);

// ---------------------------------------------------------------------------------------------
// Mapping to output types (only defined fields are emitted)
// ---------------------------------------------------------------------------------------------

type Compact<T> = { [K in keyof T as undefined extends T[K] ? never : K]: T[K] } & {
  [K in keyof T as undefined extends T[K] ? K : never]?: Exclude<T[K], undefined>;
};

/** Drops undefined properties. */
function compact<T extends object>(o: T): Compact<T> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as Compact<T>;
}

/** Drops undefined properties; undefined when nothing is left. */
function compactOrNone<T extends object>(o: T | undefined): Compact<T> | undefined {
  if (!o) return undefined;
  const c = compact(o);
  return Object.keys(c).length ? c : undefined;
}

const nonEmpty = <T>(a: T[] | undefined): T[] | undefined => (a && a.length ? a : undefined);

function toIdentity(file: string, line: number, d: IdentityDoc): ManifestIdentity {
  const s = d.spec ?? {};
  const labels = d.metadata.labels && Object.keys(d.metadata.labels).length ? d.metadata.labels : undefined;
  const credentials = nonEmpty(
    s.credentials?.map((c): ManifestCredential =>
      compact({
        id: c.id,
        kind: c.kind,
        fingerprint: c.fingerprint,
        issuedAt: c.issuedAt,
        lastRotatedAt: c.lastRotatedAt,
        expiresAt: c.expiresAt,
        rotationMaxAge: c.rotation?.maxAge,
        locations: nonEmpty(c.locations),
      }),
    ),
  );
  const scope = nonEmpty(s.scope?.map((x): ManifestScope => ({ resource: x.resource, actions: x.actions })));
  return compact({
    file,
    line,
    name: d.metadata.name,
    environment: d.metadata.environment,
    labels,
    type: s.type,
    source: s.source,
    externalId: s.externalId,
    service: s.service,
    purpose: s.purpose,
    sensitivity: s.sensitivity,
    owners: compactOrNone(s.owners),
    primaryTeam: s.primaryTeam,
    sharedWith: nonEmpty(s.sharedWith),
    approval: compactOrNone(s.approval),
    origin: compactOrNone(s.origin),
    vendor: s.vendor ? compact(s.vendor) : undefined,
    scope,
    credentials,
    rotation: compactOrNone(s.rotation),
    expires: s.expires,
    revocation: compactOrNone(
      s.revocation ? { ...s.revocation, triggers: nonEmpty(s.revocation.triggers) } : undefined,
    ),
    sponsor: s.sponsor,
  });
}

/**
 * Normalises a Backstage owner entity reference to a principal ref:
 * `team-a`, `group:team-a`, `group:default/team-a` → `team:team-a`; `user:jdoe`, `user:default/jdoe` → `person:jdoe`;
 * `team:…`/`person:…` are kept. Returns undefined for other kinds.
 */
export function normaliseBackstageOwner(ref: string): string | undefined {
  const m = /^([A-Za-z][\w-]*):(.+)$/.exec(ref.trim());
  const kind = m ? (m[1] as string).toLowerCase() : 'group';
  let name = m ? (m[2] as string) : ref.trim();
  if (kind === 'team' || kind === 'person') return `${kind}:${name}`;
  if (name.startsWith('default/')) name = name.slice('default/'.length);
  if (kind === 'group') return `team:${name}`;
  if (kind === 'user') return `person:${name}`;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

const YAML_FILE_RE = /\.ya?ml$/i;

function errorText(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  if (code === 'ENOENT') return 'path does not exist';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  return e instanceof Error ? e.message : String(e);
}

async function walk(dir: string, out: string[], visited: Set<string>, problems: Problem[]): Promise<void> {
  let real: string;
  try {
    real = await realpath(dir);
  } catch (e) {
    problems.push({ file: dir, message: `cannot read directory: ${errorText(e)}` });
    return;
  }
  if (visited.has(real)) return;
  visited.add(real);
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    problems.push({ file: dir, message: `cannot read directory: ${errorText(e)}` });
    return;
  }
  for (const ent of entries) {
    if (ent.name.startsWith('.') || ent.name === 'node_modules') continue;
    const full = join(dir, ent.name);
    let isDir = ent.isDirectory();
    let isFile = ent.isFile();
    if (ent.isSymbolicLink()) {
      try {
        const st = await stat(full);
        isDir = st.isDirectory();
        isFile = st.isFile();
      } catch {
        continue; // dangling link
      }
    }
    if (isDir) await walk(full, out, visited, problems);
    else if (isFile && YAML_FILE_RE.test(ent.name)) out.push(full);
  }
}

const byCodeUnits = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Expands the input paths to a deterministic list of absolute file paths. */
async function collectFiles(paths: readonly string[], problems: Problem[]): Promise<string[]> {
  const files: string[] = [];
  const seen = new Set<string>();
  for (const p of paths) {
    const abs = resolve(p);
    let st;
    try {
      st = await stat(abs);
    } catch (e) {
      problems.push({ file: abs, message: errorText(e) });
      continue;
    }
    let found: string[];
    if (st.isDirectory()) {
      found = [];
      await walk(abs, found, new Set(), problems);
      found.sort(byCodeUnits);
      if (found.length === 0) {
        problems.push({ file: abs, message: 'expected .yaml or .yml files in directory, got none' });
      }
    } else if (st.isFile()) {
      found = [abs];
    } else {
      problems.push({ file: abs, message: 'expected a file or directory' });
      continue;
    }
    for (const f of found) {
      if (!seen.has(f)) {
        seen.add(f);
        files.push(f);
      }
    }
  }
  return files;
}

// ---------------------------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------------------------

function valueAt(root: unknown, path: readonly PathSeg[]): unknown {
  let v = root;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}

function issuesToProblems(
  file: string,
  doc: SourceDocument,
  issues: readonly z.core.$ZodIssue[],
  problems: Problem[],
): void {
  for (const issue of issues) {
    const path = issue.path.map((s): PathSeg => (typeof s === 'number' ? s : String(s)));
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const p = [...path, key];
        problems.push({ file, line: doc.locate(p), field: formatFieldPath(p), message: 'unknown field' });
      }
      continue;
    }
    const value = valueAt(doc.value, path);
    // A wrong fingerprint may be the secret itself, pasted by mistake: say its shape, never its content.
    const got =
      path[path.length - 1] === 'fingerprint' && typeof value === 'string'
        ? `a string of ${value.length} characters`
        : describeValue(value);
    const problem: Problem = { file, line: doc.locate(path), message: `${issue.message}, got ${got}` };
    if (path.length) problem.field = formatFieldPath(path);
    problems.push(problem);
  }
}

interface Seen {
  file: string;
  locate: SourceDocument['locate'];
  path: readonly PathSeg[];
}

/**
 * Reads manifests from files and directories (walked recursively for `*.yaml`/`*.yml`, skipping hidden
 * entries and `node_modules`). Throws a `ValidationError` listing every problem when anything is wrong.
 */
export async function parseManifestPaths(paths: string[]): Promise<ManifestParseResult> {
  const problems: Problem[] = [];
  const result: ManifestParseResult = { identities: [], services: [], files: [] };
  const files = await collectFiles(paths, problems);
  const names = new Map<string, Seen>();
  const externalIds = new Map<string, Seen>();

  for (const file of files) {
    let buf: Buffer;
    try {
      buf = await readFile(file);
    } catch (e) {
      problems.push({ file, message: `cannot read file: ${errorText(e)}` });
      continue;
    }
    const sha256 = createHash('sha256').update(buf).digest('hex');
    if (!isUtf8(buf)) {
      problems.push({ file, message: 'expected UTF-8 text, got invalid byte sequences' });
      result.files.push({ path: file, sha256, documents: 0 });
      continue;
    }
    const docs = loadDocuments(file, buf.toString('utf8'), problems);
    result.files.push({ path: file, sha256, documents: docs.length });

    for (const doc of docs) {
      const v = doc.value;
      if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Date) {
        problems.push({
          file,
          line: doc.line,
          message: `expected a mapping with apiVersion and kind, got ${describeValue(v)}`,
        });
        continue;
      }
      const rec = v as Record<string, unknown>;
      const apiVersion = typeof rec.apiVersion === 'string' ? rec.apiVersion.trim() : rec.apiVersion;
      const kind = typeof rec.kind === 'string' ? rec.kind.trim() : rec.kind;

      if (apiVersion === 'steward/v1' && kind === 'NonHumanIdentity') {
        checkUnique(file, doc, ['metadata', 'name'], 'name', names, problems);
        checkUnique(file, doc, ['spec', 'externalId'], 'externalId', externalIds, problems);
        const parsed = identitySchema.safeParse(v);
        if (!parsed.success) {
          issuesToProblems(file, doc, parsed.error.issues, problems);
          continue;
        }
        const identity = toIdentity(file, doc.line, parsed.data);
        checkCredentialIds(file, doc, identity, problems);
        result.identities.push(identity);
      } else if (typeof apiVersion === 'string' && apiVersion.startsWith('backstage.io/')) {
        if (typeof kind === 'string' && NON_SERVICE_KINDS.has(kind.toLowerCase())) continue;
        const parsed = backstageSchema.safeParse(v);
        if (!parsed.success) {
          issuesToProblems(file, doc, parsed.error.issues, problems);
          continue;
        }
        const d = parsed.data;
        let owner: string | undefined;
        if (d.spec?.owner !== undefined) {
          owner = normaliseBackstageOwner(d.spec.owner);
          if (owner === undefined) {
            problems.push({
              file,
              line: doc.locate(['spec', 'owner']),
              field: 'spec.owner',
              message: `expected group:<name> or user:<name>, got ${describeValue(d.spec.owner)}`,
            });
            continue;
          }
        }
        const service: BackstageService = compact({
          file,
          line: doc.line,
          kind: d.kind,
          name: d.metadata.name,
          namespace: d.metadata.namespace,
          owner,
          system: d.spec?.system,
          description: d.metadata.description,
        });
        result.services.push(service);
      } else {
        const field = apiVersion === 'steward/v1' ? 'kind' : 'apiVersion';
        const show = (label: string, x: unknown): string =>
          x === undefined || x === null || x === ''
            ? `no ${label}`
            : `${label} ${typeof x === 'string' ? JSON.stringify(x) : describeValue(x)}`;
        problems.push({
          file,
          line: doc.locate([field]),
          field,
          message: `expected apiVersion steward/v1 kind NonHumanIdentity or a backstage.io entity, got ${show('apiVersion', apiVersion)} ${show('kind', kind)}`,
        });
      }
    }
  }

  if (problems.length) {
    const order = new Map(files.map((f, i) => [f, i]));
    const sorted = problems
      .map((p, i) => ({ p, i }))
      .sort(
        (a, b) =>
          (order.get(a.p.file) ?? -1) - (order.get(b.p.file) ?? -1) ||
          (a.p.line ?? 0) - (b.p.line ?? 0) ||
          a.i - b.i,
      )
      .map((x) => x.p);
    throw new ValidationError(`${sorted.length} problem(s) in manifests; nothing was imported`, sorted);
  }
  return result;
}

function checkUnique(
  file: string,
  doc: SourceDocument,
  path: readonly PathSeg[],
  label: string,
  seen: Map<string, Seen>,
  problems: Problem[],
): void {
  const raw = valueAt(doc.value, path);
  if (typeof raw !== 'string' || raw.trim() === '') return;
  const key = raw.trim();
  const first = seen.get(key);
  if (first) {
    // Positions are computed only now: locating is comparatively expensive.
    problems.push({
      file,
      line: doc.locate(path),
      field: formatFieldPath(path),
      message: `expected a unique ${label}, got ${JSON.stringify(key)} which is already used at ${first.file}:${first.locate(first.path)}`,
    });
  } else {
    seen.set(key, { file, locate: doc.locate, path });
  }
}

function checkCredentialIds(
  file: string,
  doc: SourceDocument,
  identity: ManifestIdentity,
  problems: Problem[],
): void {
  const creds = identity.credentials;
  if (!creds || creds.length < 2) return;
  const seen = new Map<string, number>();
  creds.forEach((c, i) => {
    const first = seen.get(c.id);
    if (first === undefined) {
      seen.set(c.id, i);
      return;
    }
    const path = ['spec', 'credentials', i, 'id'];
    problems.push({
      file,
      line: doc.locate(path),
      field: formatFieldPath(path),
      message: `expected a unique credential id, got ${JSON.stringify(c.id)} which is already used by spec.credentials[${first}]`,
    });
  });
}
