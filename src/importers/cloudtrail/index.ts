/**
 * AWS CloudTrail usage importer: who (which IAM user, role, root) used which access key, when, for
 * which services and with which errors.
 *
 * Inputs (files or folders of `*.json`, `*.jsonl`, `*.gz`; gzip detected by magic bytes):
 * - S3 delivery `{"Records":[…]}`, a bare JSON array of records (Stratus Red Team), or JSON lines;
 * - per line or element: a record, an EventBridge event `{detail: record}`, a Panther test row
 *   `{_source_file,_test_name,_expected,event}` (Panther's `p_*` keys are stripped), or a whole
 *   `{"Records":[…]}` document on one line.
 *
 * The shape is decided from the first non-whitespace characters. Nothing is loaded whole: JSON lines
 * are split and parsed one line at a time (`JSON.parse`, the fastest path); arrays and `Records` are
 * cut into elements by a small streaming scanner (strings, escapes and nesting tracked, the top level
 * validated) and each element is parsed with `JSON.parse`. A line or element longer than
 * `maxRecordChars` (16 Mi characters by default) fails the input with a clear error, so a 1 GB single
 * line costs at most that much memory. Records are aggregated per identity as they stream: memory grows
 * with the number of distinct identities and access keys, never with the number of events.
 */
import { StringDecoder } from 'node:string_decoder';
import type { Readable } from 'node:stream';
import { ValidationError } from '../../domain/errors.js';
import type { Problem } from '../../domain/problems.js';
import type {
  DiscoveredCredential,
  DiscoveredIdentity,
  DiscoveryBatch,
} from '../../inventory/import-discovery.js';
import { describeJson, isObject, listFiles, openInput, type Json } from '../common.js';
import { readCloudTrailFilesOnThreads, readsOnThreads } from './threaded.js';
import type { ReadOptions, ReadResult, SourceImporter } from '../source.js';

/** Longest JSON line or array element accepted, in characters (a longer one fails the input). */
export const MAX_RECORD_CHARS = 16 * 1024 * 1024;
/** Distinct event names kept per service, per identity. */
export const MAX_ACTIONS = 200;
/** Distinct source IP addresses kept per identity. */
export const MAX_SOURCE_IPS = 50;
/** Distinct user agents kept per identity. */
export const MAX_USER_AGENTS = 20;
/** Problems listed in an error or in `skipped`; the rest are counted in one closing entry. */
export const MAX_LISTED_PROBLEMS = 10_000;

export interface CloudTrailReadOptions extends ReadOptions {
  /** Longest line or array element accepted, in characters (default {@link MAX_RECORD_CHARS}). */
  maxRecordChars?: number;
}

/** What a read saw beyond the batch: counts for the run summary. */
export interface CloudTrailStats {
  /** Records read, valid or not. */
  records: number;
  /** Valid records attributed to an identity. */
  attributed: number;
  /** Valid records whose principal has no ARN (AWS services, other accounts, unknown), by `userIdentity.type`. */
  unattributed: Record<string, number>;
  /** Records skipped as invalid (`skipInvalid`). */
  skipped: number;
  /** Events whose access key id is neither `AKIA…` nor `ASIA…` (anonymised or synthetic samples): no credential is recorded. */
  unrecognisedKeyIds: number;
}

export interface CloudTrailReadResult extends ReadResult {
  stats: CloudTrailStats;
}

// ---------------------------------------------------------------------------------------------------
// Streaming JSON input: JSON lines, a bare array, or {"Records":[…]}

/** Where a value came from: 1-based line, and for arrays the JSON path of the element. */
export interface ValueLocation {
  line: number;
  /** `[12]` or `Records[12]` for array elements; empty for JSON lines. */
  path: string;
}

/** Called for each parsed line or array element, with where it was. */
export type ValueSink = (value: unknown, at: ValueLocation) => void;
/** Called for a JSON line that does not parse (lines are independent, so it can be skipped). */
export type BadLineSink = (message: string, at: ValueLocation) => void;

export type JsonShape = 'lines' | 'array' | 'records';

/** Fatal problem of one input: it cannot be read further. */
function fatal(file: string, line: number | undefined, message: string, field?: string): ValidationError {
  const p: Problem = { file, message };
  if (line !== undefined) p.line = line;
  if (field) p.field = field;
  return new ValidationError(
    `${file}${line !== undefined ? `:${line}` : ''}: ${message}; nothing was imported`,
    [p],
  );
}

const WS = (c: number) => c === 32 || c === 10 || c === 13 || c === 9;
const POSITION_RE = /at position (\d+)/;

/** `expected valid JSON, got …` from a JSON.parse error, and where in the text it happened. */
function syntaxMessage(e: unknown): { message: string; position: number | undefined } {
  const text = e instanceof Error ? e.message : String(e);
  const m = POSITION_RE.exec(text);
  return {
    message: `expected valid JSON, got ${text.split('\n')[0]}`,
    position: m ? Number(m[1]) : undefined,
  };
}

/**
 * Splits decoded text into lines and hands each non-blank line, parsed, to `sink`. A line that does not
 * parse goes to `bad`; a line longer than `maxChars` throws (after reading at most `maxChars` of it).
 */
export class LineReader {
  private rest = '';
  private line = 0;
  constructor(
    private readonly file: string,
    private readonly sink: ValueSink,
    private readonly bad: BadLineSink,
    private readonly maxChars: number,
  ) {}

  push(s: string): void {
    let start = 0;
    let i = s.indexOf('\n');
    if (this.rest !== '') {
      if (i === -1) {
        this.rest += s;
        if (this.rest.length > this.maxChars) throw this.tooLong(this.line + 1);
        return;
      }
      const head = this.rest + s.slice(0, i);
      this.rest = '';
      this.emit(head);
      start = i + 1;
      i = s.indexOf('\n', start);
    }
    while (i !== -1) {
      this.emit(s.slice(start, i));
      start = i + 1;
      i = s.indexOf('\n', start);
    }
    if (start < s.length) {
      this.rest = s.slice(start);
      if (this.rest.length > this.maxChars) throw this.tooLong(this.line + 1);
    }
  }

  end(): void {
    if (this.rest !== '') {
      const last = this.rest;
      this.rest = '';
      this.emit(last);
    }
  }

  private tooLong(line: number): ValidationError {
    return fatal(
      this.file,
      line,
      `expected a JSON line of at most ${this.maxChars} characters, got a longer line (truncated or not JSON lines?)`,
    );
  }

  private emit(text: string): void {
    const line = ++this.line;
    if (text.length > this.maxChars) throw this.tooLong(line);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      if (isBlank(text)) return;
      const { message, position } = syntaxMessage(e);
      this.bad(position !== undefined ? `${message} (column ${position + 1})` : message, { line, path: '' });
      return;
    }
    this.sink(value, { line, path: '' });
  }
}

function isBlank(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (!WS(s.charCodeAt(i))) return false;
  return true;
}

const SCALAR_END_RE = /[,\]\s]/g;

/**
 * Where the reader is: `first` after `[`, `value` after `,`, `sep` after an element; a bare array then
 * goes to `after` (only whitespace may follow); a `{"Records":[…]}` document to `close` (its `}` or
 * more keys), `tail` (more keys, checked at the end) or `docEnd` (closed: the end of the input, or the
 * next document of concatenated S3 files, `{"Records":[…]}{"Records":[…]}`).
 */
type ArrayState = 'first' | 'value' | 'sep' | 'after' | 'close' | 'tail' | 'docEnd';

/**
 * Streams the elements of a top-level JSON array (or of the `Records` array of `{"Records":[…]}`):
 * finds each element's extent (tracking strings, escapes and nesting), parses it with `JSON.parse`
 * and hands it to `sink`. The top level is checked as it goes (commas, brackets, what follows); any
 * syntax error throws with the line and character offset. Each chunk is scanned once where it lies
 * (an element spanning chunks is kept as pieces and joined once), so a long element costs linear
 * time; one longer than `maxChars` throws.
 */
export class ArrayReader {
  /** The chunk being scanned, and the scan position in it. */
  private buf = '';
  private pos = 0;
  /** Absolute character offset of `buf[0]`. */
  private base = 0;
  /** Line counting: `line` is the 1-based line at `buf[counted]`. */
  private counted = 0;
  private line = 1;
  private state: ArrayState = 'first';
  /** A few characters kept for the next chunk (the head of a next document). */
  private carry = '';
  // the element being read
  private inElement = false;
  /** Its start in `buf` (0 once it continues from an earlier chunk). */
  private elemStart = 0;
  private parts: string[] = [];
  private partsLength = 0;
  private elemLine = 0;
  private elemOffset = 0;
  private depth = 0;
  private inString = false;
  /** Backslashes that ended the previous chunk inside a string (they may escape a leading quote). */
  private slashes = 0;
  private index = 0;
  // what follows the Records array, checked at the end
  private tail = '';
  private tailLine = 0;

  constructor(
    private readonly file: string,
    private readonly sink: ValueSink,
    private readonly maxChars: number,
    private readonly prefix: '' | 'Records',
  ) {}

  /** Starts with the input's first text, scanning from `pos` (just after the opening `[`). */
  begin(text: string, pos: number): void {
    this.buf = text;
    this.pos = pos;
    this.scan(false);
    this.finishChunk();
  }

  push(s: string): void {
    if (this.state === 'tail') {
      this.addTail(s);
      return;
    }
    this.buf = this.carry ? this.carry + s : s;
    this.carry = '';
    this.pos = 0;
    this.counted = 0;
    this.scan(false);
    this.finishChunk();
  }

  end(): void {
    if (this.state !== 'tail') {
      this.buf = this.carry;
      this.carry = '';
      this.pos = 0;
      this.counted = 0;
      this.scan(true);
    }
    if (this.state === 'docEnd' || this.state === 'after') return;
    if (this.state === 'close' || this.state === 'tail') {
      try {
        JSON.parse(`{"Records":0${this.tail}`);
      } catch {
        const got = this.tail.trim();
        throw fatal(
          this.file,
          this.tailLine || this.lineAt(this.buf.length),
          `expected the end of the {"Records":[…]} document ("}"), got ${got ? JSON.stringify(got.length > 40 ? got.slice(0, 37) + '...' : got) : 'the end of the input (truncated file?)'}`,
        );
      }
      return;
    }
    throw fatal(
      this.file,
      this.inElement ? this.elemLine : this.lineAt(this.buf.length),
      `expected the end of the ${this.prefix || 'top-level'} array (']'), got the end of the input (truncated file?)`,
      this.inElement ? `${this.prefix}[${this.index}]` : undefined,
    );
  }

  private lineAt(p: number): number {
    if (p <= this.counted) return this.line;
    let i = this.buf.indexOf('\n', this.counted);
    while (i !== -1 && i < p) {
      this.line++;
      i = this.buf.indexOf('\n', i + 1);
    }
    this.counted = p;
    return this.line;
  }

  private syntax(at: number, expected: string): ValidationError {
    return fatal(
      this.file,
      this.lineAt(at),
      `expected ${expected}, got ${JSON.stringify(this.buf.charAt(at))} (offset ${this.base + at})`,
    );
  }

  private addTail(s: string): void {
    this.tail += s;
    if (this.tail.length > this.maxChars)
      throw fatal(
        this.file,
        this.tailLine,
        `expected the end of the document after the Records array, got more than ${this.maxChars} characters`,
      );
  }

  private tooLong(length: string): ValidationError {
    return fatal(
      this.file,
      this.elemLine,
      `expected an array element of at most ${this.maxChars} characters, got ${length}`,
      `${this.prefix}[${this.index}]`,
    );
  }

  /** Keeps what the chunk holds of an unfinished element, and counts its lines. */
  private finishChunk(): void {
    const len = this.buf.length;
    if (this.inElement) {
      if (this.inString) {
        let b = len - 1;
        while (b >= this.elemStart && this.buf.charCodeAt(b) === 92) b--;
        this.slashes = len - 1 - b + (b < this.elemStart && this.elemStart === 0 ? this.slashes : 0);
      }
      const piece = this.buf.slice(this.elemStart);
      this.parts.push(piece);
      this.partsLength += piece.length;
      this.elemStart = 0;
      if (this.partsLength > this.maxChars) throw this.tooLong('a longer one');
    }
    const end = len - this.carry.length;
    this.lineAt(end);
    this.base += end;
  }

  /** Backslashes right before `q` in the current string, counting those that ended the last chunk. */
  private slashesBefore(q: number): number {
    let b = q - 1;
    while (b >= 0 && this.buf.charCodeAt(b) === 92) b--;
    return b < 0 ? q + this.slashes : q - 1 - b;
  }

  private scan(atEnd: boolean): void {
    const buf = this.buf;
    const len = buf.length;
    let pos = this.pos;
    scan: for (;;) {
      if (this.inElement) {
        // inside an element: strings and nesting only; JSON.parse checks the rest
        if (this.inString) {
          const q = buf.indexOf('"', pos);
          if (q === -1) {
            pos = len;
            break;
          }
          pos = q + 1;
          if ((this.slashesBefore(q) & 1) === 0) {
            this.inString = false;
            this.slashes = 0;
            if (this.depth === 0) this.element(pos);
          }
          continue;
        }
        if (this.depth === 0) {
          // a bare scalar element (number, true, false, null)
          SCALAR_END_RE.lastIndex = pos;
          const m = SCALAR_END_RE.exec(buf);
          if (!m) {
            pos = len;
            if (atEnd) this.element(len);
            break;
          }
          pos = m.index;
          this.element(pos);
          continue;
        }
        // a plain charCodeAt loop outruns a regex here (strings are skipped with indexOf above)
        let depth = this.depth;
        let c = 0;
        while (pos < len) {
          c = buf.charCodeAt(pos++);
          if (c === 34) break;
          if (c === 123 || c === 91) depth++;
          else if ((c === 125 || c === 93) && --depth === 0) break;
        }
        this.depth = depth;
        if (c === 34) this.inString = true;
        else if (depth === 0) this.element(pos);
        else break;
        continue;
      }
      // between elements: the top level of the array, character by character
      while (pos < len && WS(buf.charCodeAt(pos))) pos++;
      if (pos >= len) break;
      const c = buf.charCodeAt(pos);
      switch (this.state) {
        case 'first':
          if (c === 93) {
            pos = this.arrayEnd(pos);
            continue;
          }
          pos = this.start(pos);
          continue;
        case 'value':
          if (c === 93) throw this.syntax(pos, 'an array element after ","');
          pos = this.start(pos);
          continue;
        case 'sep':
          if (c === 44) {
            this.state = 'value';
            pos++;
            continue;
          }
          if (c === 93) {
            pos = this.arrayEnd(pos);
            continue;
          }
          throw this.syntax(pos, '"," or "]" after an array element');
        case 'after':
          throw this.syntax(pos, 'the end of the input after the array');
        case 'close':
          if (c === 125) {
            this.state = 'docEnd';
            pos++;
            continue;
          }
          this.state = 'tail';
          this.tailLine = this.lineAt(pos);
          this.tail = '';
          continue;
        case 'docEnd': {
          // concatenated S3 files (zcat *.json.gz): the next {"Records":[ starts a new document
          RECORDS_NEXT_RE.lastIndex = pos;
          const m = RECORDS_NEXT_RE.exec(buf);
          if (m) {
            this.state = 'first';
            this.index = 0;
            pos += m[0].length;
            continue;
          }
          if (c === 123 && len - pos < 64 && !atEnd) {
            this.carry = buf.slice(pos); // wait for the whole head
            pos = len;
            break scan;
          }
          throw this.syntax(pos, 'the end of the input or another {"Records":[…]} document');
        }
        case 'tail':
          this.lineAt(pos);
          this.addTail(buf.slice(pos));
          pos = len;
          break scan;
      }
    }
    this.pos = pos;
  }

  /** Starts an element at `pos`; returns where scanning goes on. */
  private start(pos: number): number {
    const c = this.buf.charCodeAt(pos);
    this.inElement = true;
    this.elemStart = pos;
    this.elemLine = this.lineAt(pos);
    this.elemOffset = this.base + pos;
    this.parts = [];
    this.partsLength = 0;
    this.depth = 0;
    this.inString = false;
    this.slashes = 0;
    if (c === 123 || c === 91) {
      this.depth = 1;
      return pos + 1;
    }
    if (c === 34) {
      this.inString = true;
      return pos + 1;
    }
    if (c === 45 || (c >= 48 && c <= 57) || c === 116 || c === 102 || c === 110) return pos;
    this.inElement = false;
    throw this.syntax(pos, 'an array element (a JSON value)');
  }

  private arrayEnd(pos: number): number {
    this.state = this.prefix === 'Records' ? 'close' : 'after';
    return pos + 1;
  }

  private element(end: number): void {
    const length = this.partsLength + end - this.elemStart;
    if (length > this.maxChars) throw this.tooLong(String(length));
    const last = this.buf.slice(this.elemStart, end);
    const text = this.parts.length ? this.parts.join('') + last : last;
    this.parts = [];
    this.partsLength = 0;
    this.inElement = false;
    const path = `${this.prefix}[${this.index}]`;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      const { message, position } = syntaxMessage(e);
      const at = position ?? 0;
      let line = this.elemLine;
      for (let i = text.indexOf('\n'); i !== -1 && i < at; i = text.indexOf('\n', i + 1)) line++;
      throw fatal(
        this.file,
        line,
        `${message.replace(/ at position \d+/, '').replace(/ in JSON$/, '')} (offset ${this.elemOffset + at})`,
        path,
      );
    }
    this.index++;
    this.state = 'sep';
    this.sink(value, { line: this.elemLine, path });
  }
}

export const RECORDS_HEAD_RE = /^\{\s*"Records"\s*:\s*/;
const RECORDS_NEXT_RE = /\{\s*"Records"\s*:\s*\[/y;

/**
 * Streams one decoded input: decides its shape from the first non-whitespace characters (`[` an
 * array, `{"Records":` an S3 delivery document, anything else JSON lines) and feeds it, chunk by
 * chunk, to the matching reader.
 */
export async function readJsonValues(
  stream: AsyncIterable<unknown>,
  file: string,
  sink: ValueSink,
  bad: BadLineSink,
  maxChars: number,
  /** JSON lines whatever the first characters are (a later part of a file of lines). */
  linesOnly = false,
): Promise<JsonShape | undefined> {
  const decoder = new StringDecoder('utf8');
  let head = '';
  let reader: { push(s: string): void; end(): void } | undefined = linesOnly
    ? new LineReader(file, sink, bad, maxChars)
    : undefined;
  let shape: JsonShape | undefined = linesOnly ? 'lines' : undefined;
  /** Picks the reader once the head shows the shape (or the input ended); until then it waits. */
  const decide = (final: boolean): void => {
    let i = head.charCodeAt(0) === 0xfeff ? 1 : 0;
    while (i < head.length && WS(head.charCodeAt(i))) i++;
    if (i >= head.length && !final) {
      if (head.length > maxChars)
        throw fatal(file, undefined, `expected JSON, got more than ${maxChars} whitespace characters`);
      return;
    }
    const c = head.charCodeAt(i);
    // `{` may open {"Records":[…]} or a JSON line: wait for enough of it to see the first key
    if (c === 123 && !final && head.length - i < 64) return;
    const m = c === 123 ? RECORDS_HEAD_RE.exec(head.slice(i, i + 64)) : null;
    if (c === 91) {
      shape = 'array';
      const r = new ArrayReader(file, sink, maxChars, '');
      reader = r;
      r.begin(head, i + 1);
    } else if (m && head.charCodeAt(i + m[0].length) === 91) {
      shape = 'records';
      const r = new ArrayReader(file, sink, maxChars, 'Records');
      reader = r;
      r.begin(head, i + m[0].length + 1);
    } else {
      shape = 'lines';
      reader = new LineReader(file, sink, bad, maxChars);
      reader.push(i > 0 && head.charCodeAt(0) === 0xfeff ? head.slice(1) : head);
    }
    head = '';
  };
  for await (const chunk of stream) {
    const s = decoder.write(chunk as Buffer);
    if (reader) reader.push(s);
    else {
      head += s;
      decide(false);
    }
  }
  const last = decoder.end();
  if (reader) {
    if (last) reader.push(last);
  } else {
    head += last;
    if (head.length) decide(true);
  }
  reader?.end();
  return shape;
}

// ---------------------------------------------------------------------------------------------------
// CloudTrail records

const CANONICAL_TIME_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
const TIME_RE = /^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:\.(\d+))?\s*(Z|[+-]\d\d:?\d\d)?$/i;

/**
 * ISO-8601 UTC with milliseconds from the timestamp styles logs use: `2024-07-30T21:31:21Z` (the fast
 * path), fractions of any length (nanoseconds are cut to milliseconds), a space for `T`, an offset, or
 * none (UTC, as CloudTrail and Vault write). Undefined when it is not a timestamp.
 */
export function isoTime(s: string): string | undefined {
  // events come in bursts within one second: the previous answer is often this one's
  if (s === lastTime.in) return lastTime.out;
  const out = parseTime(s);
  lastTime.in = s;
  lastTime.out = out;
  return out;
}
const lastTime: { in: string | undefined; out: string | undefined } = { in: undefined, out: undefined };

function parseTime(s: string): string | undefined {
  if (s.length === 20 && CANONICAL_TIME_RE.test(s)) {
    const t = s.slice(0, 19) + '.000Z';
    return Number.isNaN(Date.parse(t)) ? undefined : t;
  }
  const m = TIME_RE.exec(s.trim());
  if (!m) return undefined;
  const frac = ((m[3] ?? '') + '000').slice(0, 3);
  const zone =
    m[4] === undefined || m[4].toUpperCase() === 'Z'
      ? 'Z'
      : m[4].length === 5
        ? `${m[4].slice(0, 3)}:${m[4].slice(3)}`
        : m[4];
  const ms = Date.parse(`${m[1]}T${m[2]}.${frac}${zone}`);
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
}

const MONTHS: Record<string, string> = {
  jan: '01',
  feb: '02',
  mar: '03',
  apr: '04',
  may: '05',
  jun: '06',
  jul: '07',
  aug: '08',
  sep: '09',
  oct: '10',
  nov: '11',
  dec: '12',
};
const STS_EXPIRATION_RE = /^([A-Za-z]{3}) (\d{1,2}), (\d{4}),? (\d{1,2}):(\d\d):(\d\d) ?(AM|PM)?$/i;

/** STS `responseElements.credentials.expiration` (`Jul 30, 2024, 9:46:15 PM`, UTC) or ISO-8601. */
export function stsExpiration(v: unknown): string | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? new Date(v).toISOString() : undefined;
  if (typeof v !== 'string') return undefined;
  const m = STS_EXPIRATION_RE.exec(v.trim());
  if (!m) return isoTime(v);
  const month = MONTHS[m[1]!.toLowerCase()];
  if (!month) return undefined;
  let h = Number(m[4]);
  const ampm = m[7]?.toUpperCase();
  if (ampm === 'PM' && h < 12) h += 12;
  if (ampm === 'AM' && h === 12) h = 0;
  const iso = `${m[3]}-${month}-${m[2]!.padStart(2, '0')}T${String(h).padStart(2, '0')}:${m[5]}:${m[6]}.000Z`;
  return Number.isNaN(Date.parse(iso)) ? undefined : iso;
}

const ASSUMED_ROLE_RE = /^arn:([^:]+):sts::([^:]*):assumed-role\/([^/]+)/;

/** `arn:aws:sts::A:assumed-role/R/session` → `arn:aws:iam::A:role/R`; other ARNs as they are. */
export function roleArnOfSession(arn: string): string {
  if (!arn.includes(':assumed-role/')) return arn;
  const m = ASSUMED_ROLE_RE.exec(arn);
  return m ? `arn:${m[1]}:iam::${m[2]}:role/${m[3]}` : arn;
}

const DENIED_RE = /AccessDenied|Unauthorized|Forbidden|AuthorizationError|NotAuthorized/i;

interface KeyAgg {
  last: string;
  /** `ASIA…`: temporary STS credentials; `AKIA…`: a long-term access key. */
  temporary: boolean;
  issuedAt: string | undefined;
}

interface ServiceAgg {
  actions: Set<string>;
  count: number;
}

export interface IdentityAgg {
  arn: string;
  events: number;
  first: string;
  last: string;
  services: Map<string, ServiceAgg>;
  errors: Map<string, number>;
  accessDenied: number;
  ips: Set<string>;
  agents: Set<string>;
  keys: Map<string, KeyAgg>;
}

const newIdentity = (arn: string, first: string, last: string): IdentityAgg => ({
  arn,
  events: 0,
  first,
  last,
  services: new Map(),
  errors: new Map(),
  accessDenied: 0,
  ips: new Set(),
  agents: new Set(),
  keys: new Map(),
});

/**
 * What aggregation needs of one valid record (plain data: a reader thread sends these to the
 * thread that aggregates).
 */
export interface RecordUsage {
  time: string;
  /** The identity it is attributed to (IAM user, role behind a session, root). */
  id?: string;
  /** Not attributed: its `userIdentity.type` (or `none`). */
  unattributed?: string;
  eventSource: string;
  eventName: string;
  errorCode?: string;
  ip?: string;
  agent?: string;
  keyId?: string;
  creationDate?: string;
  account?: string;
  /** Temporary credentials this event issued (STS), and when they expire. */
  issuedKey?: string;
  issuedExpires?: string;
}

/** An aggregator's usage so far (see `CloudTrailAggregator.state`): maps, sets and plain objects. */
export interface AggregatorState {
  identities: Map<string, IdentityAgg>;
  accounts: Set<string>;
  issued: Map<string, string>;
  observedAt: string | undefined;
  stats: CloudTrailStats;
}

/**
 * Aggregates CloudTrail records, one at a time, into per-identity usage: `addValue` checks and
 * reduces each record to its {@link RecordUsage}, `aggregate` adds that up. A reader thread adds
 * up its file (or part) and posts the {@link state}; the main thread merges those in input order.
 */
export class CloudTrailAggregator {
  /**
   * @param parts an aggregator of one of this many consecutive parts of an input keeps this many
   *   times the source IPs and user agents, so that merging the parts in order keeps exactly the
   *   first ones seen, as reading the whole input here would
   */
  constructor(private readonly parts = 1) {}

  /** What {@link merge} reads of this aggregator, as plain data: a reader thread posts it. */
  state(): AggregatorState {
    return {
      identities: this.identities,
      accounts: this.accounts,
      issued: this.issued,
      observedAt: this.observedAt,
      stats: this.stats,
    };
  }

  /** Adds what an aggregator of the next part of the input saw (its {@link state}; see `parts`). */
  merge(o: AggregatorState): void {
    for (const acct of o.accounts) this.accounts.add(acct);
    for (const [k, v] of o.issued) this.issued.set(k, v);
    if (o.observedAt !== undefined && (this.observedAt === undefined || o.observedAt > this.observedAt))
      this.observedAt = o.observedAt;
    this.stats.records += o.stats.records;
    this.stats.attributed += o.stats.attributed;
    this.stats.unrecognisedKeyIds += o.stats.unrecognisedKeyIds;
    for (const [k, n] of Object.entries(o.stats.unattributed))
      this.stats.unattributed[k] = (this.stats.unattributed[k] ?? 0) + n;
    const ipCap = MAX_SOURCE_IPS * this.parts;
    const agentCap = MAX_USER_AGENTS * this.parts;
    for (const [id, b] of o.identities) {
      let a = this.identities.get(id);
      if (!a) {
        a = newIdentity(id, b.first, b.last);
        this.identities.set(id, a);
      }
      a.events += b.events;
      if (b.first < a.first) a.first = b.first;
      if (b.last > a.last) a.last = b.last;
      for (const [name, sb] of b.services) {
        const sa = a.services.get(name);
        if (!sa) a.services.set(name, { actions: new Set(sb.actions), count: sb.count });
        else {
          sa.count += sb.count;
          for (const x of sb.actions) sa.actions.add(x);
        }
      }
      for (const [code, n] of b.errors) a.errors.set(code, (a.errors.get(code) ?? 0) + n);
      a.accessDenied += b.accessDenied;
      for (const ip of b.ips) if (a.ips.size < ipCap) a.ips.add(ip);
      for (const ag of b.agents) if (a.agents.size < agentCap) a.agents.add(ag);
      for (const [keyId, kb] of b.keys) {
        const ka = a.keys.get(keyId);
        if (!ka) a.keys.set(keyId, { ...kb });
        else {
          if (kb.last > ka.last) ka.last = kb.last;
          ka.issuedAt ??= kb.issuedAt;
        }
      }
    }
    this.lastId = '';
    this.lastAgg = undefined;
  }

  readonly identities = new Map<string, IdentityAgg>();
  readonly accounts = new Set<string>();
  /** Expiry of STS credentials issued in these logs, by access key id. */
  private readonly issued = new Map<string, string>();
  private readonly deniedCodes = new Map<string, boolean>();
  private lastId = '';
  private lastAgg: IdentityAgg | undefined;
  observedAt: string | undefined;
  readonly stats: CloudTrailStats = {
    records: 0,
    attributed: 0,
    unattributed: {},
    skipped: 0,
    unrecognisedKeyIds: 0,
  };

  /**
   * Adds one top-level value (a record or a wrapper of records). Problems go to `bad` with the
   * field path inside the value; the record is then left out.
   */
  addValue(value: unknown, path: string, bad: (field: string | undefined, message: string) => void): void {
    if (isObject(value)) {
      const records = value.Records;
      if (records !== undefined && value.eventTime === undefined && value.eventName === undefined) {
        if (!Array.isArray(records)) {
          this.stats.records++;
          bad(join(path, 'Records'), `expected an array of CloudTrail records, got ${describeJson(records)}`);
          return;
        }
        for (let i = 0; i < records.length; i++)
          this.addRecord(records[i], `${join(path, 'Records')}[${i}]`, bad);
        return;
      }
      if (value.event !== undefined && (value._source_file !== undefined || value._test_name !== undefined)) {
        // a Panther test row: the record is `event`, with Panther's own p_* fields removed
        const event = value.event;
        if (isObject(event)) {
          const clean: Json = {};
          for (const k in event) if (!k.startsWith('p_')) clean[k] = event[k];
          this.addRecord(clean, join(path, 'event'), bad);
        } else this.addRecord(event, join(path, 'event'), bad);
        return;
      }
      if (
        isObject(value.detail) &&
        value.eventTime === undefined &&
        (value['detail-type'] !== undefined || value.source !== undefined)
      ) {
        this.addRecord(value.detail, join(path, 'detail'), bad);
        return;
      }
    }
    this.addRecord(value, path, bad);
  }

  /** The first problem of the record being read. */
  private problemField: string | undefined;
  private problemMessage = '';

  private problem(field: string, message: string): void {
    if (this.problemField !== undefined) return;
    this.problemField = field;
    this.problemMessage = message;
  }

  /** A field that must be a string when present. */
  private str(v: unknown, field: string): string | undefined {
    if (typeof v === 'string') return v;
    if (v !== undefined && v !== null) this.problem(field, `expected a string, got ${describeJson(v)}`);
    return undefined;
  }

  private addRecord(
    r: unknown,
    path: string,
    bad: (field: string | undefined, message: string) => void,
  ): void {
    this.stats.records++;
    const dot = path === '' ? '' : `${path}.`;
    if (!isObject(r)) {
      bad(path || undefined, `expected a CloudTrail record (a JSON object), got ${describeJson(r)}`);
      return;
    }
    // named property reads and no per-record closure: this runs once per event
    this.problemField = undefined;
    const rawTime = r.eventTime;
    let time: string | undefined;
    if (typeof rawTime !== 'string')
      this.problem(
        'eventTime',
        rawTime === undefined
          ? 'expected the event time, got nothing'
          : `expected an ISO-8601 timestamp string, got ${describeJson(rawTime)}`,
      );
    else if ((time = isoTime(rawTime)) === undefined)
      this.problem('eventTime', `expected an ISO-8601 timestamp, got ${describeJson(rawTime)}`);
    const eventName = r.eventName;
    if (typeof eventName !== 'string' || eventName === '')
      this.problem('eventName', `expected the event name (a string), got ${describeJson(eventName)}`);
    const eventSource = this.str(r.eventSource, 'eventSource') ?? 'unknown';
    const errorCode = this.str(r.errorCode, 'errorCode');
    const ip = this.str(r.sourceIPAddress, 'sourceIPAddress');
    const agent = this.str(r.userAgent, 'userAgent');
    const recipient = this.str(r.recipientAccountId, 'recipientAccountId');
    const ui = r.userIdentity;
    let type: string | undefined;
    let arn: string | undefined;
    let accountId: string | undefined;
    let keyId: string | undefined;
    let issuerArn: string | undefined;
    let creationDate: string | undefined;
    if (ui !== undefined && ui !== null) {
      if (!isObject(ui)) this.problem('userIdentity', `expected an object, got ${describeJson(ui)}`);
      else {
        type = this.str(ui.type, 'userIdentity.type');
        arn = this.str(ui.arn, 'userIdentity.arn');
        accountId = this.str(ui.accountId, 'userIdentity.accountId');
        keyId = this.str(ui.accessKeyId, 'userIdentity.accessKeyId');
        const sc = ui.sessionContext;
        if (isObject(sc)) {
          const issuer = sc.sessionIssuer;
          if (isObject(issuer))
            issuerArn = this.str(issuer.arn, 'userIdentity.sessionContext.sessionIssuer.arn');
          const attrs = sc.attributes;
          if (isObject(attrs) && typeof attrs.creationDate === 'string') creationDate = attrs.creationDate;
        } else if (sc !== undefined && sc !== null)
          this.problem('userIdentity.sessionContext', `expected an object, got ${describeJson(sc)}`);
      }
    }
    // (the helpers above set it: read it back without the narrowing of the reset)
    const field = this.problemField as string | undefined;
    if (field !== undefined) {
      bad(dot + field, this.problemMessage); // one problem per record: the first one found
      return;
    }
    if (time === undefined) return;

    const u: RecordUsage = { time, eventSource, eventName: eventName as string };
    const account = recipient ?? accountId;
    if (account) u.account = account;
    if (eventSource === 'sts.amazonaws.com') {
      const c = isObject(r.responseElements) ? r.responseElements.credentials : undefined;
      if (isObject(c) && typeof c.accessKeyId === 'string') {
        const exp = stsExpiration(c.expiration);
        if (exp) {
          u.issuedKey = c.accessKeyId;
          u.issuedExpires = exp;
        }
      }
    }

    // who: the IAM user, the role behind a session, the account root
    let id: string | undefined;
    if ((type === 'AssumedRole' || type === 'FederatedUser') && issuerArn?.startsWith('arn:'))
      id = roleArnOfSession(issuerArn);
    else if (type === 'Root') {
      const acct = accountId ?? recipient;
      const partition = (arn?.startsWith('arn:') ? arn.split(':')[1] : undefined) ?? 'aws';
      id =
        arn?.startsWith('arn:') && arn.endsWith(':root')
          ? arn
          : acct
            ? `arn:${partition}:iam::${acct}:root`
            : undefined;
    } else if (arn?.startsWith('arn:')) id = roleArnOfSession(arn);
    if (id === undefined) u.unattributed = type ?? 'none';
    else u.id = id;
    if (errorCode) u.errorCode = errorCode;
    if (ip) u.ip = ip;
    if (agent) u.agent = agent;
    if (keyId) u.keyId = keyId;
    if (creationDate) u.creationDate = creationDate;
    this.aggregate(u);
  }

  /** Adds one valid record's usage. */
  private aggregate(u: RecordUsage): void {
    const { time, id } = u;
    if (this.observedAt === undefined || time > this.observedAt) this.observedAt = time;
    if (u.account) this.accounts.add(u.account);
    if (u.issuedKey && u.issuedExpires) this.issued.set(u.issuedKey, u.issuedExpires);
    if (id === undefined) {
      const k = u.unattributed ?? 'none';
      this.stats.unattributed[k] = (this.stats.unattributed[k] ?? 0) + 1;
      return;
    }
    this.stats.attributed++;

    // consecutive events often come from the same principal: skip the map lookup then
    let a = this.lastId === id ? this.lastAgg : this.identities.get(id);
    if (!a) {
      a = newIdentity(id, time, time);
      this.identities.set(id, a);
    }
    this.lastId = id;
    this.lastAgg = a;
    a.events++;
    if (time < a.first) a.first = time;
    if (time > a.last) a.last = time;
    let svc = a.services.get(u.eventSource);
    if (!svc) a.services.set(u.eventSource, (svc = { actions: new Set(), count: 0 }));
    svc.count++;
    svc.actions.add(u.eventName);
    const { errorCode, ip, agent, keyId, creationDate } = u;
    if (errorCode) {
      a.errors.set(errorCode, (a.errors.get(errorCode) ?? 0) + 1);
      let denied = this.deniedCodes.get(errorCode);
      if (denied === undefined) this.deniedCodes.set(errorCode, (denied = DENIED_RE.test(errorCode)));
      if (denied) a.accessDenied++;
    }
    if (ip && a.ips.size < MAX_SOURCE_IPS * this.parts) a.ips.add(ip);
    if (agent && a.agents.size < MAX_USER_AGENTS * this.parts) a.agents.add(agent);
    if (keyId) {
      const k = a.keys.get(keyId);
      if (k) {
        if (time > k.last) k.last = time;
        // a session's creation date is the same on all its events: normalised once
        if (k.issuedAt === undefined && k.temporary && creationDate) k.issuedAt = isoTime(creationDate);
      } else {
        const temporary = keyId.startsWith('ASIA');
        if (temporary || keyId.startsWith('AKIA')) {
          a.keys.set(keyId, {
            last: time,
            temporary,
            issuedAt: temporary && creationDate ? isoTime(creationDate) : undefined,
          });
        } else this.stats.unrecognisedKeyIds++;
      }
    }
  }

  /** The batch: identities and their keys, sorted; scope is the one account seen, or `multi`. */
  toBatch(files: { path: string; sha256: string }[]): DiscoveryBatch {
    const identities: DiscoveredIdentity[] = [];
    for (const a of [...this.identities.values()].sort((x, y) =>
      x.arn < y.arn ? -1 : x.arn > y.arn ? 1 : 0,
    )) {
      const services: Record<string, { actions: string[]; count: number }> = {};
      for (const s of [...a.services.keys()].sort()) {
        const v = a.services.get(s)!;
        services[s] = { actions: [...v.actions].sort().slice(0, MAX_ACTIONS), count: v.count };
      }
      const errors: Record<string, number> = {};
      for (const e of [...a.errors.keys()].sort()) errors[e] = a.errors.get(e)!;
      const credentials: DiscoveredCredential[] = [];
      for (const keyId of [...a.keys.keys()].sort()) {
        const k = a.keys.get(keyId)!;
        const c: DiscoveredCredential = {
          externalId: keyId,
          kind: k.temporary ? 'session-token' : 'access-key',
          lastUsedAt: k.last,
        };
        if (k.temporary) {
          c.attributes = { temporary: true };
          if (k.issuedAt) c.issuedAt = k.issuedAt;
          const exp = this.issued.get(keyId);
          if (exp) c.expiresAt = exp;
        }
        credentials.push(c);
      }
      identities.push({
        externalId: a.arn,
        name: lastSegment(a.arn),
        kind: 'service-account',
        lastUsedAt: a.last,
        attributes: {
          usage: {
            events: a.events,
            firstSeen: a.first,
            lastSeen: a.last,
            services,
            errors,
            accessDenied: a.accessDenied,
            sourceIps: [...a.ips].sort(),
            userAgents: [...a.agents].sort(),
          },
        },
        credentials,
      });
    }
    const batch: DiscoveryBatch = {
      source: 'cloudtrail',
      scope:
        this.accounts.size === 1 ? [...this.accounts][0]! : this.accounts.size === 0 ? 'unknown' : 'multi',
      snapshot: false,
      files,
      identities,
    };
    if (this.observedAt) batch.observedAt = this.observedAt;
    return batch;
  }
}

const join = (path: string, key: string): string => (path === '' ? key : `${path}.${key}`);

/** The last segment of an ARN: `user/ci/bot` → `bot`, `arn:aws:iam::1:root` → `root`. */
function lastSegment(arn: string): string {
  const resource = arn.split(':').slice(5).join(':');
  const parts = resource.split('/');
  return parts[parts.length - 1] || arn;
}

/** Collects problems: throws at the end unless skipping; lists at most {@link MAX_LISTED_PROBLEMS}. */
export class ProblemLog {
  readonly listed: Problem[] = [];
  count = 0;
  add(p: Problem): void {
    this.count++;
    if (this.listed.length < MAX_LISTED_PROBLEMS) this.listed.push(p);
  }
  /** The listed problems, with one closing entry counting those not listed. */
  all(file: string): Problem[] {
    if (this.count <= this.listed.length) return this.listed;
    return [
      ...this.listed,
      { file, message: `${this.count - this.listed.length} more problem(s) not listed` },
    ];
  }
}

/** One part of a plain file of JSON lines, read on its own: bytes `start` ≤ offset < `end`. */
export interface FilePart {
  start: number;
  end: number;
}

/**
 * Reads one file's records (or one part of a file of JSON lines) into `agg`, problems to
 * `problem`, on this thread; returns the file's path and, for a whole file, its SHA-256. `wrap`
 * may stand between the file and the reader (flow control).
 */
export async function readCloudTrailFile(
  file: string,
  agg: CloudTrailAggregator,
  problem: (p: Problem) => void,
  maxChars: number,
  maxBytes?: number,
  wrap: (s: Readable) => AsyncIterable<unknown> = (s) => s,
  part?: FilePart,
): Promise<{ path: string; sha256?: string }> {
  const input = openInput(file, maxBytes, part);
  // one problem callback per file (not a closure per record): it reads where the record was
  let line = 0;
  const onProblem = (field: string | undefined, message: string) => {
    const p: Problem = { file, line, message };
    if (field) p.field = field;
    problem(p);
  };
  await readJsonValues(
    wrap(input.stream),
    file,
    (value, at) => {
      line = at.line;
      agg.addValue(value, at.path, onProblem);
    },
    (message, at) => {
      agg.stats.records++;
      problem({ file, line: at.line, message });
    },
    maxChars,
    part !== undefined && part.start > 0,
  );
  return part ? { path: input.path } : { path: input.path, sha256: await input.sha256() };
}

/** Reads CloudTrail exports into one `cloudtrail` batch (usage only: `snapshot: false`). */
export async function readCloudTrail(
  paths: string[],
  options: CloudTrailReadOptions,
): Promise<CloudTrailReadResult> {
  const files = listFiles(paths, (name) => /\.(json|jsonl|ndjson|gz)$/i.test(name));
  const agg = new CloudTrailAggregator();
  const problems = new ProblemLog();
  const maxChars = options.maxRecordChars ?? MAX_RECORD_CHARS;
  const read: { path: string; sha256: string }[] = [];
  if (readsOnThreads(files)) {
    read.push(...(await readCloudTrailFilesOnThreads(files, agg, problems, maxChars, options.maxBytes)));
  } else {
    for (const file of files) {
      const r = await readCloudTrailFile(file, agg, (p) => problems.add(p), maxChars, options.maxBytes);
      read.push({ path: r.path, sha256: r.sha256! });
    }
  }
  if (problems.count && !options.skipInvalid) {
    throw new ValidationError(
      `${problems.count} invalid CloudTrail record(s); nothing was imported (--skip-invalid skips them)`,
      problems.all(files[0] ?? '-'),
    );
  }
  agg.stats.skipped = problems.count;
  return { batch: agg.toBatch(read), skipped: problems.all(files[0] ?? '-'), stats: agg.stats };
}

export const importer: SourceImporter = {
  source: 'cloudtrail',
  description:
    'AWS CloudTrail logs (S3 Records, JSON arrays, JSON lines, EventBridge; gzip): usage per IAM user, role and access key',
  read: readCloudTrail,
};
