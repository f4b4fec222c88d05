import fs from 'node:fs';
import path from 'node:path';
import { LineCounter, parseAllDocuments, isNode, type Document } from 'yaml';
import { z } from 'zod';
import type { Environment } from '@marcbachmann/cel-js';
import { ValidationError } from '../domain/errors.js';
import type { Problem } from '../domain/problems.js';
import { packageFile } from '../domain/package-files.js';
import { createEnvironment, TYPE_FIELDS } from './environment.js';
import { compile } from './compile.js';
import { loadCatalog, type Catalog } from './standards.js';
import type { NhiDocument } from './document.js';

export const SEVERITIES = ['critical', 'high', 'medium', 'low'] as const;
export type Severity = (typeof SEVERITIES)[number];
export const ROUTES = ['business', 'technical', 'control', 'primary', 'revocation'] as const;
export type Route = (typeof ROUTES)[number];

/** What a compiled rule's `when` is called with. */
export interface RuleContext {
  nhi: NhiDocument;
  now: Date;
  params: Record<string, unknown>;
}

export interface RuleExample {
  name: string;
  doc: NhiDocument;
  now: Date;
  expect: boolean;
  line: number;
}

export interface Rule {
  id: string;
  title: string;
  severity: Severity;
  description: string;
  remediation: string;
  routeTo: Route;
  /** Canonical control ids per framework (CSF 1.1 ids already mapped to CSF 2.0). */
  frameworks: Record<string, string[]>;
  /** Parameters with install overrides applied (integers as CEL ints). */
  params: Record<string, unknown>;
  when: string;
  examples: RuleExample[];
  file: string;
  line: number;
  builtin: boolean;
  /** The compiled `when`: true when the identity has the problem (throws when CEL would error). */
  test(ctx: RuleContext): boolean;
  /** The same, on cel-js's interpreter over the typed document: the reference semantics. */
  interpret(ctx: RuleContext): boolean;
  /** Whether `test` runs compiled closures (else the interpreter over a dynamic document). */
  compiled: boolean;
}

/** Folder of the built-in rule pack shipped with Steward. */
export const BUILTIN_RULES = packageFile('rules');

const RULE_SCHEMA = z
  .object({
    id: z.string().regex(/^[a-z0-9]+(?:-[a-z0-9]+)*$/, { error: 'expected a kebab-case id' }),
    title: z.string().min(1),
    severity: z.enum(SEVERITIES),
    description: z.string().min(1),
    remediation: z.string().min(1),
    routeTo: z.enum(ROUTES),
    frameworks: z.record(z.string(), z.array(z.string()).min(1)),
    params: z
      .record(z.string(), z.union([z.number(), z.string(), z.boolean(), z.array(z.string())]))
      .optional(),
    when: z.string().min(1),
    examples: z
      .array(
        z
          .object({
            name: z.string().optional(),
            now: z.string().optional(),
            expect: z.boolean(),
            doc: z.record(z.string(), z.unknown()),
          })
          .strict(),
      )
      .min(2, { error: 'expected at least two examples (one where the rule holds, one where it does not)' }),
  })
  .strict();

type RawRule = z.infer<typeof RULE_SCHEMA>;

/** Default evaluation time of examples that do not say. */
const EXAMPLE_NOW = '2026-06-01T00:00:00Z';

/** Integers become CEL ints (bigint), recursively; everything else stays as it is. */
export function toCel(v: unknown): unknown {
  if (typeof v === 'number') return Number.isInteger(v) ? BigInt(v) : v;
  if (Array.isArray(v)) return v.map(toCel);
  if (typeof v === 'object' && v !== null && !(v instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = toCel(x);
    return out;
  }
  return v;
}

const TS = 'google.protobuf.Timestamp';

/** Defaults of each document type's always-present fields, for example documents. */
const DEFAULTS: Record<string, () => Record<string, unknown>> = {
  NHI: () => ({
    id: 'nhi-example',
    name: 'example',
    status: 'active',
    labels: {},
    owners: {},
    sharedWith: [],
    approval: {},
    origin: {},
    rotation: {},
    revocation: {},
    declared: true,
    sightings: [],
    unmanaged: false,
    linked: false,
    attributes: {},
    credentials: [],
    entitlements: [],
    findings: [],
  }),
  Revocation: () => ({ triggers: [] }),
  Credential: () => ({
    id: 'cred-example',
    status: 'active',
    hasFingerprint: false,
    locations: [],
    attributes: {},
  }),
  Entitlement: () => ({
    resource: 'example',
    actions: [],
    status: 'active',
    admin: false,
    wildcard: false,
    attributes: {},
  }),
  Principal: () => ({ kind: 'person', status: 'active', known: true }),
};

/**
 * Turns an example's partial document (YAML: timestamps as strings, integers as numbers) into
 * a document of the declared types, with defaults for what it leaves out; names the path of a
 * field that does not exist or has the wrong type.
 */
export function exampleDocument(raw: Record<string, unknown>): { doc?: NhiDocument; error?: string } {
  const coerce = (v: unknown, type: string, at: string): unknown => {
    if (type === TS) {
      const d = v instanceof Date ? v : typeof v === 'string' ? new Date(v) : undefined;
      if (!d || Number.isNaN(d.getTime()))
        throw new Error(`${at}: expected a timestamp, got ${JSON.stringify(v)}`);
      return d;
    }
    if (type === 'int') {
      if (typeof v !== 'number' || !Number.isInteger(v))
        throw new Error(`${at}: expected an integer, got ${JSON.stringify(v)}`);
      return BigInt(v);
    }
    if (type === 'string' || type === 'bool') {
      if (typeof v !== (type === 'bool' ? 'boolean' : 'string'))
        throw new Error(
          `${at}: expected ${type === 'bool' ? 'true or false' : 'a string'}, got ${JSON.stringify(v)}`,
        );
      return v;
    }
    const list = /^list<(.+)>$/.exec(type);
    if (list) {
      if (!Array.isArray(v)) throw new Error(`${at}: expected a list`);
      return v.map((x, i) => coerce(x, list[1]!, `${at}[${i}]`));
    }
    if (type.startsWith('map<')) {
      if (typeof v !== 'object' || v === null || Array.isArray(v))
        throw new Error(`${at}: expected a mapping`);
      return toCel(v);
    }
    const fields = TYPE_FIELDS.get(type);
    if (!fields) throw new Error(`${at}: internal: unknown type ${type}`);
    if (type === 'Principal' && typeof v === 'string')
      v = { ref: v, kind: v.startsWith('team:') ? 'team' : 'person' };
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${at}: expected a mapping`);
    const out: Record<string, unknown> = DEFAULTS[type]?.() ?? {};
    for (const [k, x] of Object.entries(v)) {
      const t = fields[k];
      if (!t)
        throw new Error(
          `${at ? at + '.' : ''}${k}: no such field (fields: ${Object.keys(fields).join(', ')})`,
        );
      out[k] = coerce(x, t, at ? `${at}.${k}` : k);
    }
    return out;
  };
  try {
    return { doc: coerce(raw, 'NHI', '') as NhiDocument };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

/** Line of a field inside a parsed YAML document, falling back to the nearest parent's. */
function lineOf(doc: Document, lc: LineCounter, p: (string | number)[]): number {
  for (let n = p.length; n >= 0; n--) {
    const node = n ? doc.getIn(p.slice(0, n), true) : doc.contents;
    if (isNode(node) && node.range) return lc.linePos(node.range[0]).line;
  }
  return 1;
}

/** Parameter overrides per install: `{ <rule id>: { <param>: value } }`. */
export type ParamOverrides = Record<string, Record<string, unknown>>;

export interface LoadOptions {
  /** Load the built-in pack (default true). */
  builtin?: boolean;
  /** Folders or files of the install's own rules; a rule with a built-in rule's id replaces it. */
  paths?: string[];
  overrides?: ParamOverrides;
  /** File the overrides came from, for problems. */
  overridesFile?: string;
}

let environment: Environment | undefined;
const env = (): Environment => (environment ??= createEnvironment());
let dynamicEnvironment: Environment | undefined;
/** Where rules run: the same functions, with `nhi` as a plain map (no per-call typed wrapping). */
const runtimeEnv = (): Environment => (dynamicEnvironment ??= createEnvironment({ dynamic: true }));

/**
 * A rule's `when` as it runs: compiled to JavaScript where the compiler knows every operator,
 * else on the interpreter over the dynamic document. Also how a worker thread rebuilds a rule
 * from its text (functions do not cross threads).
 */
export function ruleTest(
  when: string,
  params: Record<string, unknown>,
): { test: (ctx: RuleContext) => boolean; compiled: boolean } {
  const dynamic = runtimeEnv().parse(when);
  const fast = compile(dynamic.ast, params);
  return fast
    ? { test: (ctx) => fast(ctx as unknown as Record<string, unknown>) === true, compiled: true }
    : { test: (ctx) => dynamic(ctx) === true, compiled: false };
}

function listRuleFiles(p: string): string[] {
  const st = fs.statSync(p, { throwIfNoEntry: false });
  if (!st) return [];
  if (st.isFile()) return [p];
  return fs
    .readdirSync(p, { withFileTypes: true })
    .flatMap((d) =>
      d.isDirectory()
        ? listRuleFiles(path.join(p, d.name))
        : /\.ya?ml$/.test(d.name)
          ? [path.join(p, d.name)]
          : [],
    )
    .sort();
}

function compileOne(
  raw: RawRule,
  file: string,
  line: (p: (string | number)[]) => number,
  catalog: Catalog,
  builtin: boolean,
  problems: Problem[],
): Rule | undefined {
  const before = problems.length;
  const at = (p: (string | number)[], message: string) =>
    problems.push({ file, line: line(p), field: p.join('.'), message });
  const frameworks: Record<string, string[]> = {};
  for (const [fw, ids] of Object.entries(raw.frameworks)) {
    ids.forEach((id, i) => {
      const r = catalog.resolve(fw, id);
      if ('error' in r) return at(['frameworks', fw, i], r.error);
      frameworks[r.framework] = [...new Set([...(frameworks[r.framework] ?? []), ...r.ids])].sort();
    });
  }
  const params = (toCel(raw.params ?? {}) ?? {}) as Record<string, unknown>;
  const checked = env().check(raw.when);
  if (!checked.valid) {
    at(['when'], `CEL: ${checked.error?.message.split('\n')[0] ?? 'does not compile'}`);
  } else if (checked.type !== 'bool') {
    at(['when'], `expected a CEL expression of type bool, got ${String(checked.type)}`);
  }
  for (const m of raw.when.matchAll(/\bparams\.([A-Za-z_][A-Za-z0-9_]*)/g)) {
    if (!(m[1]! in params)) at(['when'], `CEL: params.${m[1]!} is not declared in params`);
  }
  const examples: RuleExample[] = [];
  raw.examples.forEach((e, i) => {
    const { doc, error } = exampleDocument(e.doc);
    if (!doc) return at(['examples', i, 'doc'], error!);
    const now = new Date(e.now ?? EXAMPLE_NOW);
    if (Number.isNaN(now.getTime()))
      return at(['examples', i, 'now'], `expected a timestamp, got ${JSON.stringify(e.now)}`);
    examples.push({
      name: e.name ?? `example ${i + 1}`,
      doc,
      now,
      expect: e.expect,
      line: line(['examples', i]),
    });
  });
  if (!raw.examples.some((e) => e.expect) || !raw.examples.some((e) => !e.expect)) {
    at(['examples'], 'expected at least one example with expect: true and one with expect: false');
  }
  if (problems.length > before) return undefined;
  const program = env().parse(raw.when);
  const { test, compiled } = ruleTest(raw.when, params);
  return {
    id: raw.id,
    title: raw.title,
    severity: raw.severity,
    description: raw.description.trim(),
    remediation: raw.remediation.trim(),
    routeTo: raw.routeTo,
    frameworks,
    params,
    when: raw.when.trim(),
    examples,
    file,
    line: line([]),
    builtin,
    test,
    interpret: (ctx) => program(ctx) === true,
    compiled,
  };
}

/** Reads, validates and compiles rule files; every problem is listed (`file:line: field: …`). */
export function loadRules(opts: LoadOptions = {}): Rule[] {
  const catalog = loadCatalog();
  const problems: Problem[] = [];
  const byId = new Map<string, Rule>();
  const sources: { p: string; builtin: boolean }[] = [
    ...(opts.builtin === false ? [] : [{ p: BUILTIN_RULES, builtin: true }]),
    ...(opts.paths ?? []).map((p) => ({ p, builtin: false })),
  ];
  for (const { p, builtin } of sources) {
    if (!builtin && !fs.existsSync(p)) {
      problems.push({ file: p, message: 'expected a rule file or folder, got nothing at this path' });
      continue;
    }
    const ownIds = new Set<string>();
    for (const file of listRuleFiles(p)) {
      const lc = new LineCounter();
      const docs = parseAllDocuments(fs.readFileSync(file, 'utf8'), { lineCounter: lc });
      for (const doc of Array.isArray(docs) ? docs : [docs]) {
        if (doc.errors.length) {
          for (const e of doc.errors)
            problems.push({
              file,
              line: lc.linePos(e.pos[0]).line,
              message: `YAML: ${e.message.split('\n')[0]}`,
            });
          continue;
        }
        if (doc.contents === null) continue;
        const line = (q: (string | number)[]) => lineOf(doc, lc, q);
        const parsed = RULE_SCHEMA.safeParse(doc.toJS());
        if (!parsed.success) {
          for (const issue of parsed.error.issues) {
            const q = issue.path.map((s) => (typeof s === 'number' ? s : String(s)));
            const keys = issue.code === 'unrecognized_keys' ? issue.keys : [undefined];
            for (const k of keys) {
              const full = k === undefined ? q : [...q, k];
              problems.push({
                file,
                line: line(full),
                field: full.join('.'),
                message: k === undefined ? issue.message : 'unknown field',
              });
            }
          }
          continue;
        }
        const rule = compileOne(parsed.data, file, line, catalog, builtin, problems);
        if (!rule) continue;
        if (ownIds.has(rule.id)) {
          problems.push({
            file,
            line: rule.line,
            field: 'id',
            message: `expected a unique rule id, got ${rule.id} again`,
          });
          continue;
        }
        ownIds.add(rule.id);
        byId.set(rule.id, rule); // an install's rule replaces the built-in rule of the same id
      }
    }
  }
  for (const [ruleId, values] of Object.entries(opts.overrides ?? {})) {
    const rule = byId.get(ruleId);
    const file = opts.overridesFile ?? 'params';
    if (!rule) {
      problems.push({ file, field: ruleId, message: 'expected the id of a loaded rule' });
      continue;
    }
    for (const [k, v] of Object.entries(values)) {
      if (!(k in rule.params)) {
        problems.push({
          file,
          field: `${ruleId}.${k}`,
          message: `expected one of the rule's params (${Object.keys(rule.params).join(', ') || 'none'})`,
        });
        continue;
      }
      const cur = rule.params[k];
      const next = toCel(v);
      if (typeof cur !== typeof next) {
        problems.push({
          file,
          field: `${ruleId}.${k}`,
          message: `expected a value like ${JSON.stringify(String(cur))}, got ${JSON.stringify(v)}`,
        });
        continue;
      }
      rule.params = { ...rule.params, [k]: next };
    }
    // the compiled test holds the params it was compiled with
    Object.assign(rule, ruleTest(rule.when, rule.params));
  }
  if (problems.length)
    throw new ValidationError(`rules: ${problems.length} problem(s); no rule was loaded`, problems);
  return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
}

/** Runs a rule's own examples; each result says whether the rule answered as the example expects. */
export function testRule(
  rule: Rule,
): { name: string; line: number; expect: boolean; got: boolean | string; ok: boolean }[] {
  return rule.examples.map((e) => {
    let got: boolean | string;
    try {
      got = rule.test({ nhi: e.doc, now: e.now, params: rule.params });
    } catch (err) {
      got = `error: ${(err as Error).message.split('\n')[0]}`;
    }
    return { name: e.name, line: e.line, expect: e.expect, got, ok: got === e.expect };
  });
}
