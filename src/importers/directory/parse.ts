/**
 * Reads the people-and-teams feed: a CSV file with a header row (`type,id,name,email,team,manager,status,left_at`,
 * any order) or, for `*.json`, an array of objects with the same keys (`left_at` or `leftAt`).
 *
 * Every problem is collected and reported at once (file, line, column, `expected …, got …`); if there is any,
 * a `ValidationError` is thrown and nothing is returned.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { CsvError, parse } from 'csv-parse';
import { ValidationError } from '../../domain/errors.js';
import type { Problem } from '../../domain/problems.js';
import { describeValue, normaliseTime } from '../manifest/parse.js';
import type { DirectoryParseResult, DirectoryRow } from './types.js';

const COLUMNS = ['type', 'id', 'name', 'email', 'team', 'manager', 'status', 'left_at'] as const;
type Column = (typeof COLUMNS)[number];
const REQUIRED: readonly Column[] = ['type', 'id'];
const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const TIME_MSG = 'expected date (YYYY-MM-DD) or ISO-8601 timestamp';

/** Raw values of one row, keyed by column, and the name each column had in the input (for messages). */
interface RawRow {
  line: number;
  values: Partial<Record<Column, unknown>>;
  names: Partial<Record<Column, string>>;
}

function problemsError(problems: Problem[]): ValidationError {
  return new ValidationError(
    `${problems.length} problem(s) in directory file; nothing was imported`,
    problems,
  );
}

function errorText(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  if (code === 'ENOENT') return 'file does not exist';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  return e instanceof Error ? e.message : String(e);
}

/** Trimmed string, or undefined for null/empty; other types are returned as they are (and rejected by the caller). */
function cleanValue(v: unknown): unknown {
  if (v === null || v === undefined) return undefined;
  if (typeof v === 'string') {
    const t = v.trim();
    return t === '' ? undefined : t;
  }
  return v;
}

class RowValidator {
  readonly rows: DirectoryRow[] = [];
  private readonly ids = new Map<string, number>();
  private readonly emails = new Map<string, number>();

  constructor(
    private readonly file: string,
    private readonly problems: Problem[],
  ) {}

  private problem(line: number, field: string | undefined, message: string): void {
    const p: Problem = { file: this.file, line, message };
    if (field !== undefined) p.field = field;
    this.problems.push(p);
  }

  add(raw: RawRow): void {
    const { line } = raw;
    const before = this.problems.length;
    const name = (c: Column): string => raw.names[c] ?? c;
    const str = (c: Column): string | undefined => {
      const v = cleanValue(raw.values[c]);
      if (v === undefined || typeof v === 'string') return v;
      this.problem(line, name(c), `expected string, got ${describeValue(v)}`);
      return undefined;
    };

    /** The cleaned value when it is a string (or missing); otherwise undefined, reported with `message`. */
    const oneOf = (c: Column, message: string): string | undefined => {
      const v = cleanValue(raw.values[c]);
      if (v === undefined || typeof v === 'string') return v;
      this.problem(line, name(c), `${message}, got ${describeValue(v)}`);
      return undefined;
    };

    const typeRaw = oneOf('type', 'expected person or team');
    const type = typeRaw?.toLowerCase();
    if (
      type !== 'person' &&
      type !== 'team' &&
      (typeRaw !== undefined || cleanValue(raw.values.type) === undefined)
    ) {
      this.problem(
        line,
        name('type'),
        `expected person or team, got ${describeValue(cleanValue(raw.values.type))}`,
      );
    }
    const id = oneOf('id', 'expected an id');
    if (id === undefined && cleanValue(raw.values.id) === undefined) {
      this.problem(line, name('id'), `expected an id, got ${describeValue(cleanValue(raw.values.id))}`);
    }
    const displayName = str('name');
    const email = str('email');
    if (email !== undefined && !EMAIL_RE.test(email)) {
      this.problem(line, name('email'), `expected an email address, got ${describeValue(email)}`);
    }
    const team = str('team');
    const manager = str('manager');
    const statusRaw = oneOf('status', 'expected active or departed');
    const status =
      statusRaw === undefined
        ? cleanValue(raw.values.status) === undefined
          ? 'active'
          : undefined
        : statusRaw.toLowerCase();
    if (statusRaw !== undefined && status !== 'active' && status !== 'departed') {
      this.problem(line, name('status'), `expected active or departed, got ${describeValue(statusRaw)}`);
    }
    const leftRaw = oneOf('left_at', TIME_MSG);
    let leftAt: string | undefined;
    if (leftRaw !== undefined) {
      leftAt = normaliseTime(leftRaw);
      if (leftAt === undefined)
        this.problem(line, name('left_at'), `${TIME_MSG}, got ${describeValue(leftRaw)}`);
      else if (status === 'active') {
        this.problem(
          line,
          name('left_at'),
          `expected no left_at when status is active, got ${describeValue(leftRaw)}`,
        );
      }
    } else if (status === 'departed' && cleanValue(raw.values.left_at) === undefined) {
      this.problem(line, name('left_at'), 'expected a date when status is departed, got nothing');
    }

    if ((type === 'person' || type === 'team') && id !== undefined) {
      const key = `${type}:${id}`;
      const first = this.ids.get(key);
      if (first !== undefined) {
        this.problem(
          line,
          name('id'),
          `expected a unique ${type} id, got ${JSON.stringify(id)} which is already used at ${this.file}:${first}`,
        );
      } else this.ids.set(key, line);
      if (type === 'person' && email !== undefined) {
        const ekey = email.toLowerCase();
        const firstEmail = this.emails.get(ekey);
        if (firstEmail !== undefined) {
          this.problem(
            line,
            name('email'),
            `expected a unique email, got ${JSON.stringify(email)} which is already used at ${this.file}:${firstEmail}`,
          );
        } else this.emails.set(ekey, line);
      }
    }

    if (this.problems.length !== before || (type !== 'person' && type !== 'team') || id === undefined) return;
    if (status !== 'active' && status !== 'departed') return;
    const row: DirectoryRow = { file: this.file, line, type, id, status };
    if (displayName !== undefined) row.name = displayName;
    if (email !== undefined) row.email = email;
    if (team !== undefined) row.team = team;
    if (manager !== undefined) row.manager = manager;
    if (leftAt !== undefined) row.leftAt = leftAt;
    this.rows.push(row);
  }
}

// ---------------------------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------------------------

function normaliseHeader(h: string): string {
  const t = h.trim().toLowerCase();
  return t === 'leftat' ? 'left_at' : t;
}

interface CsvRecord {
  record: string[];
  raw: string;
  info: { lines: number };
}

/** 1-based line where a record starts: csv-parse reports where it ends, and `raw` may carry skipped blank lines. */
function recordStartLine(rec: CsvRecord): number {
  const body = rec.raw.replace(/^(?:[ \t]*\r?\n)+/, '').replace(/\r?\n$/, '');
  let newlines = 0;
  for (let i = body.indexOf('\n'); i >= 0; i = body.indexOf('\n', i + 1)) newlines++;
  return rec.info.lines - newlines;
}

async function parseCsv(
  file: string,
  problems: Problem[],
): Promise<{ rows: DirectoryRow[]; sha256: string }> {
  const hash = createHash('sha256');
  const validator = new RowValidator(file, problems);
  let header: { columns: (Column | undefined)[]; names: string[] } | undefined;
  let headerOk = true;
  let sawHeader = false;

  const consume = async (records: AsyncIterable<CsvRecord>): Promise<void> => {
    for await (const rec of records) {
      const line = recordStartLine(rec);
      if (!sawHeader) {
        sawHeader = true;
        const names = rec.record.map((h) => h.trim());
        const columns: (Column | undefined)[] = [];
        const seen = new Set<string>();
        names.forEach((n) => {
          const norm = normaliseHeader(n);
          const col = (COLUMNS as readonly string[]).includes(norm) ? (norm as Column) : undefined;
          if (!col) {
            problems.push({
              file,
              line,
              field: n,
              message: `unknown column; expected columns ${COLUMNS.join(', ')}`,
            });
          } else if (seen.has(col)) {
            problems.push({ file, line, field: n, message: 'duplicate column' });
          }
          if (col) seen.add(col);
          columns.push(col && !columns.includes(col) ? col : undefined);
        });
        const missing = REQUIRED.filter((c) => !seen.has(c));
        if (missing.length) {
          headerOk = false;
          problems.push({
            file,
            line,
            message: `missing required column${missing.length > 1 ? 's' : ''} ${missing.join(', ')}; expected a header row with columns ${COLUMNS.join(', ')} (type and id required), got ${JSON.stringify(names.join(','))}`,
          });
        }
        header = { columns, names };
        continue;
      }
      if (!headerOk || !header) continue; // keep reading (and hashing) to the end
      if (rec.record.length !== header.columns.length) {
        problems.push({
          file,
          line,
          message: `expected ${header.columns.length} fields as in the header, got ${rec.record.length}`,
        });
        continue;
      }
      const raw: RawRow = { line, values: {}, names: {} };
      header.columns.forEach((col, i) => {
        if (!col) return;
        raw.values[col] = rec.record[i];
        raw.names[col] = header?.names[i] ?? col;
      });
      validator.add(raw);
    }
  };

  try {
    await pipeline(
      createReadStream(file),
      async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          hash.update(chunk);
          yield chunk;
        }
      },
      parse({
        bom: true,
        trim: true,
        info: true,
        raw: true,
        relax_column_count: true,
        skip_empty_lines: true,
        skip_records_with_empty_values: true,
      }),
      consume,
    );
  } catch (e) {
    if (e instanceof CsvError) {
      const lines = (e as CsvError & { lines?: unknown }).lines;
      const p: Problem = { file, message: `invalid CSV: ${e.message}` };
      if (typeof lines === 'number') p.line = lines;
      problems.push(p);
    } else {
      problems.push({ file, message: `cannot read file: ${errorText(e)}` });
    }
    // The hash of a file that failed to parse is not needed: the import is refused.
  }
  if (!sawHeader && !problems.length) {
    problems.push({
      file,
      line: 1,
      message: `expected a header row with columns ${COLUMNS.join(', ')}, got an empty file`,
    });
  }
  return { rows: validator.rows, sha256: hash.digest('hex') };
}

// ---------------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------------

/** 1-based line of each element of the top-level JSON array (text must be valid JSON). */
function jsonElementLines(text: string): number[] {
  const lines: number[] = [];
  let line = 1;
  let depth = 0;
  let inString = false;
  let expecting = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) {
      line++;
      continue;
    }
    if (inString) {
      if (c === 92) i++;
      else if (c === 34) inString = false;
      continue;
    }
    if (c === 32 || c === 9 || c === 13) continue;
    if (depth === 1 && expecting && c !== 93) {
      lines.push(line);
      expecting = false;
    }
    if (c === 34) inString = true;
    else if (c === 91 || c === 123) {
      depth++;
      if (depth === 1 && c === 91) expecting = true;
    } else if (c === 93 || c === 125) depth--;
    else if (c === 44 && depth === 1) expecting = true;
  }
  return lines;
}

function jsonErrorLine(text: string, e: unknown): number | undefined {
  const msg = e instanceof Error ? e.message : '';
  const lm = /line (\d+)/.exec(msg);
  if (lm) return Number(lm[1]);
  const pm = /position (\d+)/.exec(msg);
  if (!pm) return undefined;
  const pos = Number(pm[1]);
  let line = 1;
  for (let i = text.indexOf('\n'); i >= 0 && i < pos; i = text.indexOf('\n', i + 1)) line++;
  return line;
}

const JSON_KEYS: Record<string, Column> = {
  type: 'type',
  id: 'id',
  name: 'name',
  email: 'email',
  team: 'team',
  manager: 'manager',
  status: 'status',
  left_at: 'left_at',
  leftAt: 'left_at',
};

async function parseJson(
  file: string,
  problems: Problem[],
): Promise<{ rows: DirectoryRow[]; sha256: string }> {
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch (e) {
    problems.push({ file, message: `cannot read file: ${errorText(e)}` });
    return { rows: [], sha256: '' };
  }
  const sha256 = createHash('sha256').update(buf).digest('hex');
  const validator = new RowValidator(file, problems);
  const text = buf.toString('utf8').replace(/^\uFEFF/, '');
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    const p: Problem = { file, message: `invalid JSON: ${e instanceof Error ? e.message : String(e)}` };
    const line = jsonErrorLine(text, e);
    if (line !== undefined) p.line = line;
    problems.push(p);
    return { rows: [], sha256 };
  }
  if (!Array.isArray(data)) {
    problems.push({
      file,
      line: 1,
      message: `expected a JSON array of people and teams, got ${describeValue(data)}`,
    });
    return { rows: [], sha256 };
  }
  const lines = jsonElementLines(text);
  data.forEach((el: unknown, i) => {
    const line = lines[i] ?? 1;
    if (el === null || typeof el !== 'object' || Array.isArray(el)) {
      problems.push({ file, line, field: `[${i}]`, message: `expected an object, got ${describeValue(el)}` });
      return;
    }
    const raw: RawRow = { line, values: {}, names: {} };
    for (const [k, v] of Object.entries(el as Record<string, unknown>)) {
      const col = Object.hasOwn(JSON_KEYS, k) ? JSON_KEYS[k] : undefined;
      if (!col) {
        problems.push({ file, line, field: k, message: 'unknown field' });
        continue;
      }
      if (raw.names[col] !== undefined) {
        problems.push({ file, line, field: k, message: `duplicate field: ${raw.names[col]} is also given` });
        continue;
      }
      raw.values[col] = v;
      raw.names[col] = k;
    }
    validator.add(raw);
  });
  return { rows: validator.rows, sha256 };
}

// ---------------------------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------------------------

/**
 * Reads a people-and-teams file (CSV, or JSON for `*.json`). Throws a `ValidationError` listing every
 * problem when anything is wrong.
 */
export async function parseDirectoryFile(path: string): Promise<DirectoryParseResult> {
  const file = resolve(path);
  try {
    const st = await stat(file);
    if (!st.isFile())
      throw problemsError([{ file, message: 'expected a file, got a directory or other non-file' }]);
  } catch (e) {
    if (e instanceof ValidationError) throw e;
    throw problemsError([{ file, message: `cannot read file: ${errorText(e)}` }]);
  }
  const problems: Problem[] = [];
  const { rows, sha256 } =
    extname(file).toLowerCase() === '.json'
      ? await parseJson(file, problems)
      : await parseCsv(file, problems);
  if (problems.length) {
    const sorted = problems
      .map((p, i) => ({ p, i }))
      .sort((a, b) => (a.p.line ?? 0) - (b.p.line ?? 0) || a.i - b.i)
      .map((x) => x.p);
    throw problemsError(sorted);
  }
  return { rows, file: { path: file, sha256 } };
}
