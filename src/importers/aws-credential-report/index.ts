/**
 * `aws-credential-report`: reads the IAM credential report, either the CSV itself or the
 * `aws iam get-credential-report` JSON wrapper `{Content, GeneratedTime, ReportFormat}` whose
 * `Content` is base64 (as the API returns it) or plain CSV (as some tools store it). One identity
 * per row (the `<root_account>` row is named `root`), with its access keys and signing certificates
 * as credentials: the report never shows a key id, so a key is known by its slot
 * (`<arn>#access_key_1`). A console password is an attribute of the identity: a human signal on a
 * non-human identity.
 *
 * A report is at most a few thousand rows, so each input is read whole (within the size limit).
 * A header without the report's columns is refused naming the missing ones; a bad row (wrong
 * number of fields, a value that is not a timestamp, boolean or sentinel) is a problem with its
 * file and line, and refuses the whole input unless `skipInvalid`, which skips and lists it.
 */
import { CsvError } from 'csv-parse';
import { parse } from 'csv-parse/sync';
import { ValidationError } from '../../domain/errors.js';
import type { Problem } from '../../domain/problems.js';
import type { DiscoveredCredential, DiscoveredIdentity } from '../../inventory/import-discovery.js';
import { listFiles, normaliseTimestamp, openInput } from '../common.js';
import type { ReadOptions, ReadResult, SourceImporter } from '../source.js';

const SOURCE = 'aws-credential-report';

/** The report's 22 columns, in the order AWS writes them (read by name, any order). */
export const COLUMNS = [
  'user',
  'arn',
  'user_creation_time',
  'password_enabled',
  'password_last_used',
  'password_last_changed',
  'password_next_rotation',
  'mfa_active',
  'access_key_1_active',
  'access_key_1_last_rotated',
  'access_key_1_last_used_date',
  'access_key_1_last_used_region',
  'access_key_1_last_used_service',
  'access_key_2_active',
  'access_key_2_last_rotated',
  'access_key_2_last_used_date',
  'access_key_2_last_used_region',
  'access_key_2_last_used_service',
  'cert_1_active',
  'cert_1_last_rotated',
  'cert_2_active',
  'cert_2_last_rotated',
] as const;
type Column = (typeof COLUMNS)[number];

const ROOT_USER = '<root_account>';
const ACCOUNT_RE = /^arn:aws[\w-]*:iam::(\d{12}):/;
/** Values meaning "none" or "unknown" in the report. */
const SENTINELS = new Set(['', 'N/A', 'no_information', 'not_supported']);
const MAX_PROBLEMS = 200;

type Row = Record<Column, string>;

/** One report as read from one input: its CSV text and where problems point. */
interface Report {
  csv: string;
  /** When the report was generated (the JSON wrapper's `GeneratedTime`). */
  generatedAt?: string;
  /** Set for the JSON wrapper: problems name the `Content` field. */
  field?: string;
}

const describe = (v: string): string =>
  v === '' ? 'empty value' : `${JSON.stringify(v.length > 60 ? v.slice(0, 57) + '...' : v)}`;

/** Recognises the JSON wrapper and decodes its `Content` (base64 or plain). */
export function unwrapReport(text: string, file: string): Report {
  const body = text.replace(/^\uFEFF/, '');
  if (!body.trimStart().startsWith('{')) return { csv: body };
  const fail = (field: string | undefined, message: string): never => {
    throw new ValidationError(`${file}: not a credential report; nothing was imported`, [
      { file, ...(field ? { field } : {}), message },
    ]);
  };
  let doc: unknown;
  try {
    doc = JSON.parse(body) as unknown;
  } catch (e) {
    return fail(
      undefined,
      `expected the get-credential-report JSON {Content, GeneratedTime, ReportFormat}, got invalid JSON (${(e as Error).message})`,
    );
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    return fail(
      undefined,
      `expected the get-credential-report JSON object, got ${Array.isArray(doc) ? 'array' : typeof doc}`,
    );
  const o = doc as Record<string, unknown>;
  const content = o.Content;
  if (typeof content !== 'string')
    return fail(
      'Content',
      `expected the report as a string (CSV, or base64 of it), got ${content === undefined ? 'nothing' : typeof content}`,
    );
  const format = o.ReportFormat;
  if (format !== undefined && format !== 'text/csv')
    return fail('ReportFormat', `expected "text/csv", got ${JSON.stringify(format)}`);
  let csv: string | undefined;
  if (/^\s*user,arn/.test(content)) csv = content;
  else if (/^[A-Za-z0-9+/=\s]+$/.test(content)) {
    const decoded = Buffer.from(content, 'base64')
      .toString('utf8')
      .replace(/^\uFEFF/, '');
    if (/^\s*user,arn/.test(decoded)) csv = decoded;
  }
  if (csv === undefined)
    return fail(
      'Content',
      `expected the CSV report (starting "user,arn"), plain or base64-encoded, got ${describe(content)}`,
    );
  const report: Report = { csv, field: 'Content' };
  if (o.GeneratedTime !== undefined && o.GeneratedTime !== null) {
    const t = typeof o.GeneratedTime === 'string' ? strictTime(o.GeneratedTime) : undefined;
    if (t === undefined)
      return fail('GeneratedTime', `expected ISO-8601 timestamp, got ${JSON.stringify(o.GeneratedTime)}`);
    report.generatedAt = t;
  }
  return report;
}

/** A report timestamp (either style), or undefined when the value is not one. */
function strictTime(v: string): string | undefined {
  return /^\s*\d{4}-\d{2}-\d{2}/.test(v) ? normaliseTimestamp(v) : undefined;
}

/** Where a row's problems point: file and line of a CSV, or file and field of the JSON wrapper. */
type Where = { file: string; line: number } | { file: string; field: string };

/** The values of one row, checked; `problems` gets each bad field. */
class RowReader {
  readonly problems: Problem[] = [];
  constructor(
    private readonly row: Row,
    private readonly where: Where,
  ) {}

  fail(column: Column, expected: string): void {
    const field = 'field' in this.where ? `${this.where.field}.${column}` : column;
    this.problems.push({
      ...this.where,
      field,
      message: `expected ${expected}, got ${describe(this.row[column])}`,
    });
  }

  /** A timestamp, or undefined for a sentinel. */
  time(c: Column): string | undefined {
    const v = this.row[c].trim();
    if (SENTINELS.has(v)) return undefined;
    const t = strictTime(v);
    if (t === undefined) this.fail(c, 'ISO-8601 timestamp or N/A, no_information, not_supported');
    return t;
  }

  /** true / false, or undefined for a sentinel. */
  bool(c: Column): boolean | undefined {
    const v = this.row[c].trim().toLowerCase();
    if (v === 'true') return true;
    if (v === 'false') return false;
    if (SENTINELS.has(this.row[c].trim())) return undefined;
    this.fail(c, 'true, false or not_supported');
    return undefined;
  }

  /** Free text (a region or a service), null for a sentinel. */
  text(c: Column): string | null {
    const v = this.row[c].trim();
    return SENTINELS.has(v) ? null : v;
  }
}

const later = (a: string | undefined, b: string | undefined): string | undefined =>
  a === undefined ? b : b === undefined ? a : a > b ? a : b;

/** One report row as an identity with its keys and certificates; undefined (with problems) if bad. */
export function rowToIdentity(row: Row, r: RowReader): DiscoveredIdentity | undefined {
  const arn = row.arn.trim();
  const user = row.user.trim();
  const root = user === ROOT_USER;
  const created = r.time('user_creation_time');
  const passwordEnabled = r.bool('password_enabled');
  const passwordLastUsed = r.time('password_last_used');
  const passwordLastChanged = r.time('password_last_changed');
  const passwordNextRotation = r.time('password_next_rotation');
  const mfa = r.bool('mfa_active');
  const credentials: DiscoveredCredential[] = [];
  let lastUsed = passwordLastUsed;
  for (const n of [1, 2] as const) {
    const active = r.bool(`access_key_${n}_active`);
    const rotated = r.time(`access_key_${n}_last_rotated`);
    const used = r.time(`access_key_${n}_last_used_date`);
    const region = r.text(`access_key_${n}_last_used_region`);
    const service = r.text(`access_key_${n}_last_used_service`);
    if (active !== true && rotated === undefined) continue; // no key in this slot
    const c: DiscoveredCredential = {
      externalId: `${arn}#access_key_${n}`,
      kind: 'access-key',
      status: active ? 'active' : 'inactive',
      attributes: { slot: `access_key_${n}`, lastUsedService: service, lastUsedRegion: region },
    };
    if (rotated) c.lastRotatedAt = rotated;
    if (used) c.lastUsedAt = used;
    credentials.push(c);
    lastUsed = later(lastUsed, used);
  }
  for (const n of [1, 2] as const) {
    const active = r.bool(`cert_${n}_active`);
    const rotated = r.time(`cert_${n}_last_rotated`);
    if (active !== true && rotated === undefined) continue;
    const c: DiscoveredCredential = {
      externalId: `${arn}#cert_${n}`,
      kind: 'certificate',
      status: active ? 'active' : 'inactive',
      attributes: { slot: `cert_${n}` },
    };
    if (rotated) c.lastRotatedAt = rotated;
    credentials.push(c);
  }
  if (!ACCOUNT_RE.test(arn)) r.fail('arn', 'IAM ARN (arn:aws:iam::<12-digit account>:…)');
  if (user === '') r.fail('user', 'user name');
  if (r.problems.length) return undefined;
  const d: DiscoveredIdentity = {
    externalId: arn,
    name: root ? 'root' : user,
    kind: 'service-account',
    status: 'active',
    // Every key is always present: attributes merge into what is recorded, so a fact that stops
    // being true (a password removed) must be overwritten, not left out.
    attributes: {
      principalType: root ? 'root' : 'user',
      root,
      // not_supported (the root row of older reports): unknown
      consolePassword: passwordEnabled ?? null,
      passwordLastUsed: passwordLastUsed ?? null,
      passwordLastChanged: passwordLastChanged ?? null,
      passwordNextRotation: passwordNextRotation ?? null,
      mfaActive: mfa ?? null,
    },
    credentials,
  };
  if (created) d.createdAt = created;
  if (lastUsed) d.lastUsedAt = lastUsed;
  return d;
}

interface CsvRecord {
  record: string[];
  info: { lines: number };
}

/** Reads one report's rows into identities; problems (and skipped rows) are collected. */
export function readReport(
  report: Report,
  file: string,
  skipInvalid: boolean,
  out: {
    identities: Map<string, DiscoveredIdentity>;
    accounts: Set<string>;
    problems: Problem[];
    skipped: Problem[];
  },
): void {
  // In the JSON wrapper a line is one of the decoded report's, not of the file: it goes in the field.
  const where = (line: number): Where =>
    report.field ? { file, field: `${report.field} (report line ${line})` } : { file, line };
  let records: CsvRecord[];
  try {
    records = parse(report.csv, {
      info: true,
      relax_column_count: true,
      skip_empty_lines: true,
      relax_quotes: false,
    }) as unknown as CsvRecord[];
  } catch (e) {
    const lines = e instanceof CsvError ? (e as CsvError & { lines?: unknown }).lines : undefined;
    out.problems.push({
      file,
      ...(typeof lines === 'number' ? { line: lines } : {}),
      ...(report.field ? { field: report.field } : {}),
      message: `expected CSV, got ${(e as Error).message}`,
    });
    return;
  }
  const [head, ...rows] = records;
  if (!head) {
    out.problems.push({
      file,
      line: 1,
      message: `expected the credential report header (${COLUMNS.join(',')}), got an empty file`,
    });
    return;
  }
  const names = head.record.map((h) => h.trim().toLowerCase());
  const missing = COLUMNS.filter((c) => !names.includes(c));
  if (missing.length) {
    out.problems.push({
      ...where(head.info.lines),
      message: `expected the credential report header (${COLUMNS.length} columns: ${COLUMNS.join(',')}), got a header missing column${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`,
    });
    return;
  }
  const index = new Map(COLUMNS.map((c) => [c, names.indexOf(c)]));
  for (const rec of rows) {
    const line = rec.info.lines;
    let problems: Problem[];
    if (rec.record.length !== names.length) {
      problems = [
        {
          ...where(line),
          message: `expected ${names.length} fields as in the header, got ${rec.record.length}`,
        },
      ];
    } else {
      const row = Object.fromEntries(COLUMNS.map((c) => [c, rec.record[index.get(c) ?? -1] ?? ''])) as Row;
      const r = new RowReader(row, where(line));
      const d = rowToIdentity(row, r);
      problems = r.problems;
      if (d && !problems.length) {
        out.identities.delete(d.externalId);
        out.identities.set(d.externalId, d);
        const account = ACCOUNT_RE.exec(d.externalId)?.[1];
        if (account) out.accounts.add(account);
        continue;
      }
    }
    if (skipInvalid) {
      const [first, ...rest] = problems;
      if (first)
        out.skipped.push(
          rest.length
            ? { ...first, message: `${first.message} (and ${rest.length} more problem(s) in this row)` }
            : first,
        );
    } else if (out.problems.length < MAX_PROBLEMS)
      out.problems.push(...problems.slice(0, MAX_PROBLEMS - out.problems.length));
  }
}

async function readInput(
  file: string,
  maxBytes: number | undefined,
): Promise<{ text: string; path: string; sha256: string }> {
  const input = openInput(file, maxBytes);
  const chunks: Buffer[] = [];
  for await (const chunk of input.stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return { text: Buffer.concat(chunks).toString('utf8'), path: input.path, sha256: await input.sha256() };
}

async function read(paths: string[], options: ReadOptions): Promise<ReadResult> {
  const files = listFiles(paths, (name) => /\.(csv|json)(\.gz)?$/i.test(name));
  const out = {
    identities: new Map<string, DiscoveredIdentity>(),
    accounts: new Set<string>(),
    problems: [] as Problem[],
    skipped: [] as Problem[],
  };
  const inputs: { path: string; sha256: string }[] = [];
  const generated: (string | undefined)[] = [];
  for (const file of files) {
    const input = await readInput(file, options.maxBytes);
    const report = unwrapReport(input.text, input.path);
    readReport(report, input.path, options.skipInvalid, out);
    inputs.push({ path: input.path, sha256: input.sha256 });
    generated.push(report.generatedAt);
  }
  if (out.problems.length)
    throw new ValidationError(
      `${out.problems.length} problem(s) in ${SOURCE} input; nothing was imported`,
      out.problems,
    );
  if (out.accounts.size === 0)
    throw new ValidationError(`${SOURCE}: the report lists no user; nothing was imported`, [
      {
        file: files.join(', '),
        message: 'expected at least one row naming the account (arn:aws:iam::<account>:…), got none',
      },
    ]);
  // When every report says when it was generated, that is when its facts were observed (the latest,
  // when several are read together: nothing is dated before it was seen).
  const times = generated.filter((t): t is string => t !== undefined).sort();
  const observedAt = times.length === generated.length ? times[times.length - 1] : undefined;
  return {
    batch: {
      source: SOURCE,
      scope: [...out.accounts].sort().join(','),
      // A read that skipped anything is not a complete picture: nothing may be vanished from it.
      snapshot: out.skipped.length === 0,
      ...(observedAt ? { observedAt } : {}),
      files: inputs,
      identities: [...out.identities.values()],
    },
    skipped: out.skipped,
  };
}

export const importer: SourceImporter = {
  source: SOURCE,
  description:
    'AWS IAM credential report: users, root, access keys and certificates with rotation and last use (CSV, or the get-credential-report JSON)',
  read,
};
