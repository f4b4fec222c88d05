/**
 * Streams the records of a JSON input whatever its packaging: one value, JSON lines, concatenated
 * values (pages appended by a script), a top-level array, or wrapper objects whose `value`
 * (Microsoft Graph pages), `records` (Azure diagnostic-settings blobs) or `Records` array holds the
 * records. Each record is assembled alone (stream-json tokens), with the 1-based line it starts on
 * and its JSON path, so memory is bounded by the largest record, never by the input.
 *
 * Limits: a record longer than `maxRecordChars` characters fails the input (after reading little
 * more than the limit: strings are counted as they stream, before they are joined); a record nested
 * deeper than `maxDepth` levels is reported through `problem` and skipped without being kept. A
 * syntax error or a truncated input fails the whole input with its line.
 */
import { StringDecoder } from 'node:string_decoder';
import { Assembler } from 'stream-json/assembler.js';
import { jsonParser, type Token } from 'stream-json/core/parser.js';
import { ValidationError } from '../../domain/errors.js';
import type { Problem } from '../../domain/problems.js';
import type { Json } from '../common.js';

/** Longest record accepted, in characters (a longer one fails the input). */
export const MAX_RECORD_CHARS = 16 * 1024 * 1024;
/** Deepest nesting accepted in a record, wrapper levels included. */
export const MAX_DEPTH = 64;

/** Where a record is: its first line, its JSON path (`value[3]`, `[0]`, or empty for a whole value). */
export interface RecordAt {
  line: number;
  path: string;
}

/** The wrapper object a record was found in (a Graph page), with the keys read before the record. */
export interface Page {
  /** `value`, `records` or `Records`. */
  key: string;
  fields: Json;
  line: number;
  /** Records of the page handed over so far. */
  items: number;
}

export interface RecordSink {
  record(value: unknown, at: RecordAt, page: Page | undefined): void;
  /** A wrapper object has ended: all its keys are known. */
  pageEnd(page: Page): void;
  /** A record that could not be read (too deeply nested); it was skipped. */
  problem(at: RecordAt, message: string): void;
}

export interface RecordLimits {
  maxRecordChars: number;
  maxDepth: number;
}

const PAGE_KEYS = new Set(['value', 'records', 'Records']);
const NONE = Symbol.for('object-stream.none');
/** Longest piece of text handed to the parser at once (pieces never span a line break). */
const PIECE = 64 * 1024;

type Feed = (chunk: string | symbol) => { values?: Token[] } | symbol | undefined;

interface Unit {
  at: RecordAt;
  chars: number;
}

interface Top {
  kind: 'object' | 'array';
  unit: Unit;
  fields: Json;
  key: string | null;
  page: Page | undefined;
  items: number;
}

function fatal(file: string, line: number, message: string, field?: string): ValidationError {
  const p: Problem = { file, line, message };
  if (field) p.field = field;
  return new ValidationError(`${file}:${line}: ${message}; nothing was imported`, [p]);
}

const isValueStart = (n: Token['name']): boolean =>
  n === 'startObject' ||
  n === 'startArray' ||
  n === 'startString' ||
  n === 'startNumber' ||
  n === 'stringValue' ||
  n === 'numberValue' ||
  n === 'trueValue' ||
  n === 'falseValue' ||
  n === 'nullValue';

/** Tokens the assembler builds values from (the streamed pieces before them are only counted). */
const assembles = (n: Token['name']): boolean =>
  n === 'startObject' ||
  n === 'startArray' ||
  n === 'stringValue' ||
  n === 'numberValue' ||
  n === 'trueValue' ||
  n === 'falseValue' ||
  n === 'nullValue';

/** Turns decoded text into records; see the module comment. */
export class JsonRecordReader {
  private readonly feed = jsonParser({
    packValues: true,
    streamValues: true,
    jsonStreaming: true,
  }) as unknown as Feed;
  private line = 1;
  private depth = 0;
  private top: Top | undefined;
  /** A scalar at the top level being read (its unit only). */
  private scalar: Unit | undefined;
  private inPage = false;
  /** The page element or top-level array element being read. */
  private elem: Unit | undefined;
  private asm: Assembler | undefined;
  private asmFor: 'field' | 'element' | undefined;
  /** While skipping a too-deep record: the depth at which it ends, and the unit to report. */
  private skipTo = -1;
  private skipped: Unit | undefined;
  private first = true;

  constructor(
    private readonly file: string,
    private readonly sink: RecordSink,
    private readonly limits: RecordLimits,
  ) {}

  push(text: string): void {
    if (this.first && text.length) {
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      this.first = false;
    }
    let i = 0;
    while (i < text.length) {
      const nl = text.indexOf('\n', i);
      let j = nl < 0 ? text.length : nl + 1;
      if (j - i > PIECE) j = i + PIECE;
      const piece = text.slice(i, j);
      let out: ReturnType<Feed>;
      try {
        out = this.feed(piece);
      } catch (e) {
        throw this.syntax(e, false);
      }
      if (out && typeof out === 'object' && out.values) for (const t of out.values) this.token(t);
      if (piece.endsWith('\n')) this.line += 1;
      i = j;
    }
  }

  end(): void {
    let out: ReturnType<Feed>;
    try {
      out = this.feed(NONE);
    } catch (e) {
      throw this.syntax(e, true);
    }
    if (out && typeof out === 'object' && out.values) for (const t of out.values) this.token(t);
    if (this.depth !== 0 || this.top || this.scalar)
      throw this.syntax(new Error('the value is not closed'), true);
  }

  private current(): Unit | undefined {
    return this.elem ?? this.top?.unit ?? this.scalar;
  }

  private syntax(e: unknown, atEnd: boolean): ValidationError {
    const detail = (e instanceof Error ? e.message : String(e))
      .replace(/^Parser cannot parse input: /, '')
      .replace(/^Parser has expected /, 'expected ');
    // the tokens of the piece that failed are lost: between elements of an array, the error is
    // in the element that follows
    const top = this.top;
    const path =
      this.elem?.at.path ??
      (top && (this.inPage || top.kind === 'array')
        ? top.page
          ? `${top.page.key}[${top.items}]`
          : `[${top.items}]`
        : undefined);
    return fatal(
      this.file,
      this.line,
      atEnd
        ? `expected complete JSON, got the end of the input (truncated?): ${detail}`
        : `expected valid JSON, got a syntax error: ${detail}`,
      path,
    );
  }

  private token(t: Token): void {
    const name = t.name;
    // the unit this token belongs to: opened lazily by the first token of a record
    let opensTop = false;
    if (!this.top && !this.scalar && this.depth === 0 && isValueStart(name)) {
      const unit = { at: { line: this.line, path: '' }, chars: 0 };
      if (name === 'startObject' || name === 'startArray') {
        const kind = name === 'startObject' ? 'object' : 'array';
        this.top = { kind, unit, fields: {}, key: null, page: undefined, items: 0 };
        opensTop = true;
      } else this.scalar = unit;
    } else if (
      !this.elem &&
      this.top &&
      ((this.inPage && this.depth === 2) || (this.top.kind === 'array' && this.depth === 1)) &&
      isValueStart(name)
    ) {
      const path = this.top.page ? `${this.top.page.key}[${this.top.items}]` : `[${this.top.items}]`;
      this.elem = { at: { line: this.line, path }, chars: 0 };
    }
    const unit = this.current();
    if (unit) {
      unit.chars += name === 'stringChunk' || name === 'numberChunk' ? t.value.length : 1;
      if (unit.chars > this.limits.maxRecordChars)
        throw fatal(
          this.file,
          unit.at.line,
          `expected a record of at most ${this.limits.maxRecordChars} characters, got a longer one (truncated or not JSON?)`,
          unit.at.path || undefined,
        );
    }
    const opens = name === 'startObject' || name === 'startArray';
    const closes = name === 'endObject' || name === 'endArray';
    if (opens) this.depth += 1;
    else if (closes) this.depth -= 1;
    if (opensTop) return;

    if (this.skipTo >= 0) {
      if (closes && this.depth === this.skipTo) this.endSkip();
      return;
    }
    if (opens && this.depth > this.limits.maxDepth) {
      this.startSkip();
      return;
    }
    if (this.asm) {
      this.asm.consume(t);
      if (this.asm.done) this.assembled();
      return;
    }
    if (this.scalar) {
      if (assembles(name)) {
        const at = this.scalar.at;
        this.scalar = undefined;
        this.sink.record((t as { value: unknown }).value, at, undefined);
      }
      return;
    }
    const top = this.top;
    if (!top) return;
    if (top.kind === 'array') {
      if (closes && this.depth === 0) {
        this.top = undefined;
        return;
      }
      if (assembles(name)) this.assemble(t, 'element');
      return;
    }
    if (this.inPage) {
      if (closes && this.depth === 1) {
        this.inPage = false;
        return;
      }
      if (assembles(name)) this.assemble(t, 'element');
      return;
    }
    // the fields of a top-level object
    if (name === 'keyValue') {
      top.key = t.value;
      return;
    }
    if (closes && this.depth === 0) {
      this.top = undefined;
      if (top.page) this.sink.pageEnd(top.page);
      else this.sink.record(top.fields, top.unit.at, undefined);
      return;
    }
    if (name === 'startArray' && !top.page && top.key !== null && PAGE_KEYS.has(top.key)) {
      top.page = { key: top.key, fields: top.fields, line: top.unit.at.line, items: 0 };
      top.key = null;
      this.inPage = true;
      return;
    }
    if (assembles(name)) this.assemble(t, 'field');
  }

  private assemble(t: Token, what: 'field' | 'element'): void {
    this.asm = new Assembler();
    this.asmFor = what;
    this.asm.consume(t);
    if (this.asm.done) this.assembled();
  }

  private assembled(): void {
    const value: unknown = this.asm!.current;
    const what = this.asmFor;
    this.asm = undefined;
    this.asmFor = undefined;
    const top = this.top!;
    if (what === 'field') {
      const key = top.key ?? '';
      top.key = null;
      if (key === '__proto__') Object.defineProperty(top.fields, key, { value, enumerable: true });
      else top.fields[key] = value;
      return;
    }
    const at = this.elem!.at;
    this.elem = undefined;
    top.items += 1;
    if (top.page) top.page.items = top.items;
    this.sink.record(value, at, top.page);
  }

  private startSkip(): void {
    this.asm = undefined;
    if (this.elem && this.asmFor === 'element') {
      // the element ends where its array holds the next one
      this.skipTo = this.inPage ? 2 : 1;
      this.skipped = this.elem;
    } else {
      this.skipTo = 0;
      this.skipped = this.top?.unit;
    }
    this.asmFor = undefined;
  }

  private endSkip(): void {
    const unit = this.skipped!;
    this.skipTo = -1;
    this.skipped = undefined;
    if (this.elem === unit) {
      this.elem = undefined;
      this.top!.items += 1;
      if (this.top!.page) this.top!.page.items = this.top!.items;
    } else {
      this.top = undefined;
      this.inPage = false;
      this.elem = undefined;
    }
    this.sink.problem(
      unit.at,
      `expected a record nested at most ${this.limits.maxDepth} levels deep, got a deeper one`,
    );
  }
}

/** Reads a decoded stream into records through `sink`; resolves once the input has ended. */
export async function readJsonRecords(
  stream: AsyncIterable<unknown>,
  file: string,
  sink: RecordSink,
  limits: RecordLimits,
): Promise<void> {
  const reader = new JsonRecordReader(file, sink, limits);
  const decoder = new StringDecoder('utf8');
  for await (const chunk of stream) reader.push(decoder.write(chunk as Buffer));
  const last = decoder.end();
  if (last) reader.push(last);
  reader.end();
}
