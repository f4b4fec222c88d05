import fs from 'node:fs';
import path from 'node:path';
import { createHash, type Hash } from 'node:crypto';
import { createGunzip } from 'node:zlib';
import { PassThrough, Readable, Transform } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { ValidationError } from '../domain/errors.js';

/** One input of an import run, opened for streaming. */
export interface OpenedInput {
  /** Absolute path, or `-` for standard input. */
  path: string;
  /** The decoded (gunzipped if needed) bytes. */
  stream: Readable;
  /** SHA-256 (hex) of the raw bytes as read; call once the stream has ended. */
  sha256(): Promise<string>;
}

const DEFAULT_MAX = 4 * 1024 ** 3;

/** Expands files and folders (recursively, sorted, hidden entries skipped) into files whose names match. */
export function listFiles(inputs: string[], accept: (name: string) => boolean): string[] {
  const out: string[] = [];
  const problems: { file: string; message: string }[] = [];
  const walk = (p: string) => {
    const st = fs.statSync(p);
    if (st.isDirectory()) {
      for (const name of fs.readdirSync(p).sort()) {
        if (name.startsWith('.') || name === 'node_modules') continue;
        const child = path.join(p, name);
        if (fs.statSync(child).isDirectory() || accept(name)) walk(child);
      }
    } else out.push(p);
  };
  for (const input of inputs) {
    if (input === '-') {
      out.push('-');
      continue;
    }
    const abs = path.resolve(input);
    if (!fs.existsSync(abs))
      problems.push({ file: input, message: 'expected a file or folder, got nothing at this path' });
    else walk(abs);
  }
  if (problems.length)
    throw new ValidationError(`${problems.length} input(s) not found; nothing was imported`, problems);
  if (out.length === 0)
    throw new ValidationError(
      'no input files found; nothing was imported',
      inputs.map((file) => ({ file, message: 'expected matching files in this folder' })),
    );
  return out;
}

/** Files from this size on are hashed on a worker thread (below it, starting one costs more). */
export const OFF_THREAD_BYTES = 16 << 20;

/** Hashes a file on a worker thread, reading it on its own: SHA-256 (hex) and the bytes hashed. */
const HASH_WORKER = `
const { workerData, parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const { createHash } = require('node:crypto');
const hash = createHash('sha256');
const fd = fs.openSync(workerData, 'r');
const buf = Buffer.allocUnsafe(1 << 20);
let bytes = 0;
for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; bytes += n) hash.update(buf.subarray(0, n));
fs.closeSync(fd);
parentPort.postMessage({ hex: hash.digest('hex'), bytes });
`;

/** The hash of a file read in parts or elsewhere, if it did not change while it was read. */
export function checkedHash(
  file: string,
  before: fs.Stats,
  hashed: { hex: string; bytes: number },
  read: number,
): string {
  const after = fs.statSync(file);
  if (hashed.bytes !== read || after.size !== before.size || after.mtimeMs !== before.mtimeMs)
    throw new ValidationError(`${file}: the file changed while it was being imported; nothing was imported`, [
      { file, message: 'expected the file to stay the same while it is read' },
    ]);
  return hashed.hex;
}

export function hashOffThread(file: string): {
  result: Promise<{ hex: string; bytes: number }>;
  stop(): void;
} {
  const worker = new Worker(HASH_WORKER, { eval: true, workerData: file });
  const result = new Promise<{ hex: string; bytes: number }>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`${file}: hashing stopped (exit code ${code})`)));
  });
  result.catch(() => {}); // awaited by sha256(); a stopped import never asks
  return { result, stop: () => void worker.terminate() };
}

/**
 * Opens an input for streaming: gunzips it when it starts with the gzip magic bytes, hashes
 * the raw bytes, and refuses inputs larger than `maxBytes` (a truncated or corrupt gzip
 * surfaces as a stream error naming the file). A large file is hashed on a worker thread that
 * reads it on its own (SHA-256 is a tenth of a CloudTrail import on the main thread); its size
 * and modification time must not change while it is read, or the import fails.
 */
export function openInput(
  file: string,
  maxBytes = DEFAULT_MAX,
  /** Only these bytes (`start` ≤ offset < `end`) of a plain file, not hashed: one part of a file read in parts. */
  range?: { start: number; end: number },
): OpenedInput {
  const stdin = file === '-';
  const before = stdin ? undefined : fs.statSync(file);
  const offThread =
    !range && before !== undefined && before.size >= OFF_THREAD_BYTES && before.size <= maxBytes;
  const raw: Readable = stdin
    ? process.stdin
    : fs.createReadStream(file, range ? { start: range.start, end: range.end - 1 } : {});
  const hash: Hash | undefined = offThread || range ? undefined : createHash('sha256');
  const background = offThread ? hashOffThread(file) : undefined;
  let digest: string | undefined;
  let total = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      total += chunk.length;
      if (total > maxBytes) {
        cb(
          new ValidationError(`${file}: input larger than ${maxBytes} bytes; nothing was imported`, [
            { file, message: `expected at most ${maxBytes} bytes` },
          ]),
        );
        return;
      }
      hash?.update(chunk);
      cb(null, chunk);
    },
    flush(cb) {
      if (hash) digest = hash.digest('hex');
      cb();
    },
  });
  const out = new PassThrough();
  const fail = (err: Error, gzip: boolean) => {
    background?.stop();
    if (out.destroyed) return;
    const code = (err as NodeJS.ErrnoException).code ?? '';
    out.destroy(
      gzip && code.startsWith('Z_')
        ? new ValidationError(`${file}: expected a complete gzip stream, got ${err.message}`, [
            { file, message: `corrupt or truncated gzip (${err.message})` },
          ])
        : err,
    );
  };
  raw.on('error', (e) => fail(e, false));
  counter.on('error', (e) => fail(e, false));
  out.on('close', () => {
    if (!out.readableEnded) background?.stop(); // given up before the end
  });
  raw.pipe(counter);
  const decode = (gzip: boolean) => {
    if (gzip) {
      const gunzip = createGunzip();
      gunzip.on('error', (e) => fail(e, true));
      counter.pipe(gunzip).pipe(out);
    } else counter.pipe(out);
  };
  if (stdin) sniffGzip(counter, decode);
  else decode(!range && startsWithGzipMagic(file));
  return {
    path: stdin ? '-' : path.resolve(file),
    stream: out,
    sha256: async () => {
      if (range) throw new Error('internal: a part of a file is not hashed');
      if (background) return checkedHash(file, before!, await background.result, total);
      if (digest === undefined) throw new Error('internal: input not fully read');
      return digest;
    },
  };
}

/**
 * Standard input cannot be peeked at like a file: waits for its first two bytes (or its end),
 * puts them back, then says whether they are the gzip magic bytes.
 */
function sniffGzip(stream: Readable, decide: (gzip: boolean) => void): void {
  let done = false;
  const settle = (head: Buffer | null) => {
    if (done) return;
    done = true;
    stream.off('readable', onReadable);
    stream.off('end', onEnd);
    if (head !== null && head.length > 0) stream.unshift(head);
    decide(head !== null && head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b);
  };
  const onReadable = () => {
    const head = stream.read(2) as Buffer | null; // null until two bytes are buffered, unless the input ended
    if (head !== null || stream.readableEnded) settle(head);
  };
  const onEnd = () => settle(null);
  stream.on('readable', onReadable);
  stream.on('end', onEnd);
}

function startsWithGzipMagic(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(2);
    return fs.readSync(fd, b, 0, 2, 0) === 2 && b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Normalises the timestamp styles exports use (`2023-03-09T10:41:45+00:00`, `…Z`,
 * `2023-03-09 10:41:45+00:00`, epoch milliseconds) to ISO-8601 UTC; undefined for
 * empty and sentinel values (`N/A`, `no_information`, `not_supported`, the zero date).
 */
export function normaliseTimestamp(v: unknown): string | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v === 'number') return Number.isFinite(v) ? new Date(v).toISOString() : undefined;
  if (typeof v !== 'string') return undefined;
  const s = v.trim();
  if (
    s === '' ||
    s === 'N/A' ||
    s === 'no_information' ||
    s === 'not_supported' ||
    s.startsWith('0001-01-01')
  )
    return undefined;
  if (/^\d{12,}$/.test(s)) return new Date(Number(s)).toISOString();
  const iso = s.replace(/^(\d{4}-\d{2}-\d{2}) (\d)/, '$1T$2');
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

/** The first non-whitespace character of the input, and the stream to read it all from. */
export async function sniff(input: OpenedInput): Promise<{ first: string | undefined; all: Readable }> {
  const it = input.stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const head: Buffer[] = [];
  let first: string | undefined;
  let pos = 0;
  const BOM = [0xef, 0xbb, 0xbf];
  while (first === undefined) {
    const r = await it.next();
    if (r.done) break;
    const b = r.value;
    head.push(b);
    for (let i = 0; i < b.length; i++, pos++) {
      const ch = b[i]!;
      if (ch === 0x20 || ch === 0x09 || ch === 0x0a || ch === 0x0d || (pos < 3 && ch === BOM[pos])) continue;
      first = String.fromCharCode(ch);
      break;
    }
  }
  async function* rest(): AsyncGenerator<Buffer> {
    yield* head;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  }
  return { first, all: Readable.from(rest(), { objectMode: false }) };
}

/** A JSON object (not an array, not null). */
export type Json = Record<string, unknown>;

export const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Describes a JSON value for the `got …` half of a problem message (JSON words: object, array). */
export function describeJson(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string')
    return v.trim() === ''
      ? 'an empty string'
      : `string ${JSON.stringify(v.length > 60 ? v.slice(0, 57) + '...' : v)}`;
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return `${typeof v} ${v}`;
  return typeof v;
}
