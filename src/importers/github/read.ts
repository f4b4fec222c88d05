import { StringDecoder } from 'node:string_decoder';
import type { Readable } from 'node:stream';
import { Assembler } from 'stream-json/assembler.js';
import { jsonParser, type Token } from 'stream-json/core/parser.js';
import { ValidationError } from '../../domain/errors.js';
import type { Problem } from '../../domain/problems.js';
import { ArrayReader, LineReader, type BadLineSink, type ValueLocation } from '../cloudtrail/index.js';

/**
 * Keys of a listing document whose array elements are records of their own (streamed one at a
 * time, each with its line): `{total_count, installations:[…]}`, `{repository, keys:[…]}`,
 * `{organization, personal_access_tokens:[…]}`.
 */
export const LIST_KEYS = ['installations', 'keys', 'personal_access_tokens'] as const;
export type ListKey = (typeof LIST_KEYS)[number];

/** Where a record came from; `list` names the listing key it is an element of, if any. */
export interface RecordLocation extends ValueLocation {
  list?: ListKey;
}

/** Called for each record (a JSON line, an array element, a listing element or a document). */
export type RecordSink = (value: unknown, at: RecordLocation) => void;

export type InputShape = 'lines' | 'array' | 'document';

/** A problem that stops reading an input: it cannot be read further. */
export function fatal(
  file: string,
  line: number | undefined,
  message: string,
  field?: string,
): ValidationError {
  const p: Problem = { file, message };
  if (line !== undefined) p.line = line;
  if (field) p.field = field;
  return new ValidationError(
    `${file}${line !== undefined ? `:${line}` : ''}: ${message}; nothing was imported`,
    [p],
  );
}

const WS = (c: number) => c === 32 || c === 10 || c === 13 || c === 9;

type Feed = (chunk: string | symbol) => { values?: Token[] } | symbol | undefined;
const NONE = Symbol.for('object-stream.none');
/** Longest piece of text handed to the tokenizer at once (lines are fed whole up to this). */
const PIECE = 64 * 1024;

/**
 * Reads one or more pretty-printed JSON documents (`gh api`, `jq .` and `curl` output) with
 * stream-json: the elements of a listing array (`installations`, `keys`,
 * `personal_access_tokens`) or of a top-level array are assembled and handed on one at a time
 * with the line they start on; the rest of a top-level object (`total_count`, `repository` …)
 * is handed on last, with each listing key kept as an empty array so that it still says what
 * it was. Any single value (an element, or the rest of a document) longer than `maxChars`
 * fails the input, so memory stays bounded whatever the file holds.
 */
class DocumentReader {
  private readonly feed = jsonParser({
    packValues: true,
    streamValues: false,
    jsonStreaming: true,
  }) as unknown as Feed;
  private line = 1;
  private depth = 0;
  /** The top-level value being read: an object (its keys) or an array (its elements). */
  private top: 'object' | 'array' | undefined;
  private head: Record<string, unknown> = {};
  private headLine = 1;
  private key: string | undefined;
  private list: ListKey | undefined;
  private index = 0;
  private asm: Assembler | undefined;
  private asmLine = 1;
  private asmPath = '';
  private asmChars = 0;
  private headChars = 0;
  private documents = 0;

  constructor(
    private readonly file: string,
    private readonly sink: RecordSink,
    private readonly maxChars: number,
  ) {}

  push(text: string): void {
    let i = 0;
    while (i < text.length) {
      const nl = text.indexOf('\n', i);
      let j = nl < 0 ? text.length : nl + 1;
      if (j - i > PIECE) j = i + PIECE;
      const piece = text.slice(i, j);
      if (this.asm) {
        this.asmChars += piece.length;
        if (this.asmChars > this.maxChars) throw this.tooLong();
      } else if (this.top === 'object') {
        this.headChars += piece.length;
        if (this.headChars > this.maxChars) throw this.tooLong();
      }
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
    if (this.depth !== 0 || this.asm)
      throw fatal(this.file, this.line, 'expected complete JSON, got the end of the input (truncated?)');
  }

  private tooLong(): ValidationError {
    return this.asm
      ? fatal(
          this.file,
          this.asmLine,
          `expected a JSON value of at most ${this.maxChars} characters, got a longer one`,
          this.asmPath || undefined,
        )
      : fatal(
          this.file,
          this.headLine,
          `expected a JSON document of at most ${this.maxChars} characters besides its listing, got a longer one`,
        );
  }

  private syntax(e: unknown, atEnd: boolean): ValidationError {
    // stream-json says "Parser cannot parse input: expected ','" or "Parser has expected a value".
    const detail = (e instanceof Error ? e.message : String(e))
      .replace(/^Parser cannot parse input: /, '')
      .replace(/^Parser has expected /, 'expected ');
    return fatal(
      this.file,
      this.line,
      atEnd
        ? `expected complete JSON, got the end of the input (truncated?): ${detail}`
        : `expected valid JSON, got a syntax error: ${detail}`,
    );
  }

  private startAssembly(t: Token, path: string): void {
    this.asm = new Assembler();
    this.asmLine = this.line;
    this.asmPath = path;
    this.asmChars = 0;
    this.consume(t);
  }

  /** Feeds the assembler; returns whether the value is complete (then it is handed on). */
  private consume(t: Token): void {
    const asm = this.asm!;
    asm.consume(t);
    if (!asm.done) return;
    const value: unknown = asm.current;
    this.asm = undefined;
    if (this.list !== undefined || this.top === 'array') {
      const at: RecordLocation = { line: this.asmLine, path: this.asmPath };
      if (this.list) at.list = this.list;
      this.index += 1;
      this.sink(value, at);
    } else if (this.key !== undefined && this.key !== '__proto__') this.head[this.key] = value;
  }

  private token(t: Token): void {
    if (this.asm) {
      this.consume(t);
      return;
    }
    const name = t.name;
    if (this.depth === 0) {
      this.documents += 1;
      if (name === 'startObject') {
        this.top = 'object';
        this.head = {};
        this.headLine = this.line;
        this.headChars = 0;
        this.depth = 1;
      } else if (name === 'startArray') {
        this.top = 'array';
        this.index = 0;
        this.depth = 1;
      } else
        throw fatal(
          this.file,
          this.line,
          `expected a JSON object or array, got ${name
            .replace(/Value$/, '')
            .replace(/^start/, '')
            .toLowerCase()}`,
        );
      return;
    }
    if (this.top === 'array') {
      if (name === 'endArray') {
        this.depth = 0;
        this.top = undefined;
        return;
      }
      this.startAssembly(t, `${this.prefix()}[${this.index}]`);
      return;
    }
    if (this.depth === 1) {
      if (name === 'keyValue') {
        this.key = t.value;
        return;
      }
      if (name === 'endObject') {
        this.depth = 0;
        this.top = undefined;
        this.sink(this.head, { line: this.headLine, path: this.documents > 1 ? `#${this.documents}` : '' });
        return;
      }
      const key = this.key;
      if (name === 'startArray' && key !== undefined && (LIST_KEYS as readonly string[]).includes(key)) {
        this.list = key as ListKey;
        this.head[key] = [];
        this.index = 0;
        this.depth = 2;
        return;
      }
      this.startAssembly(t, key ?? '');
      return;
    }
    // depth 2: the elements of a listing array
    if (name === 'endArray') {
      this.list = undefined;
      this.depth = 1;
      return;
    }
    this.startAssembly(t, `${this.prefix()}${this.list}[${this.index}]`);
  }

  private prefix(): string {
    return this.documents > 1 ? `#${this.documents}.` : '';
  }
}

/**
 * Streams one decoded input as records, deciding its shape from its first characters: `[` a JSON
 * array (elements streamed by the CloudTrail array scanner, with their lines); `{` on a first line
 * that is complete JSON, JSON lines (one record per line; a bad line is reported to `bad` and can
 * be skipped); `{` otherwise, pretty-printed JSON documents (stream-json). Lines, elements and
 * documents longer than `maxChars` fail the input after reading little more than that.
 */
export async function readRecords(
  stream: Readable,
  file: string,
  sink: RecordSink,
  bad: BadLineSink,
  maxChars: number,
): Promise<InputShape | undefined> {
  const decoder = new StringDecoder('utf8');
  let head = '';
  let reader: { push(s: string): void; end(): void } | undefined;
  let shape: InputShape | undefined;
  const decide = (final: boolean): void => {
    let i = head.charCodeAt(0) === 0xfeff ? 1 : 0;
    while (i < head.length && WS(head.charCodeAt(i))) i++;
    if (i >= head.length && !final) {
      if (head.length > maxChars)
        throw fatal(file, undefined, `expected JSON, got more than ${maxChars} whitespace characters`);
      return;
    }
    const c = head.charCodeAt(i);
    if (c === 91) {
      shape = 'array';
      const r = new ArrayReader(file, sink, maxChars, '');
      reader = r;
      r.begin(head, i + 1);
      head = '';
      return;
    }
    const text = head.slice(i);
    if (c === 123) {
      const nl = text.indexOf('\n');
      let whole = true; // one long first line (or the only line): JSON lines, the line reader judges it
      if (nl === -1) {
        if (!final && text.length <= maxChars) return; // wait for the whole first line
      } else {
        try {
          JSON.parse(text.slice(0, nl));
        } catch {
          whole = false;
        }
      }
      if (!whole) {
        shape = 'document';
        reader = new DocumentReader(file, sink, maxChars);
        // the lines before the document are blank: keep the count right
        reader.push(head.slice(head.charCodeAt(0) === 0xfeff ? 1 : 0));
        head = '';
        return;
      }
    }
    shape = 'lines';
    reader = new LineReader(file, sink, bad, maxChars);
    reader.push(head.charCodeAt(0) === 0xfeff ? head.slice(1) : head);
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
