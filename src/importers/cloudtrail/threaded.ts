/**
 * CloudTrail files read on worker threads (`reader-worker.ts`, decision record 0007): a pool of
 * two workers reads, decodes, splits, `JSON.parse`s and checks the records, and adds up each file
 * (or part of one) in its own aggregator, posting the aggregator's state when it ends; this
 * thread merges those in input order (see `CloudTrailAggregator.merge`), with a second part's line
 * numbers moved on by the first part's lines. Parsing is most of an import's time, so the two
 * workers take files in turn (S3 deliveries: many files), and a large plain file of JSON lines is
 * read as two parts at once, cut at a line break. Problems (with `--skip-invalid`) come in
 * acknowledged batches, and a worker stops reading while eight are unacknowledged (bounded
 * memory). If a file fails, it is read again on this thread, so the error is the one a one-thread
 * read gives, naming its line.
 */
import fs from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ValidationError } from '../../domain/errors.js';
import type { Problem } from '../../domain/problems.js';
import { checkedHash, hashOffThread, OFF_THREAD_BYTES } from '../common.js';
import {
  CloudTrailAggregator,
  ProblemLog,
  RECORDS_HEAD_RE,
  readCloudTrailFile,
  type AggregatorState,
  type FilePart,
} from './index.js';

/** One file, or one part of one, for a worker. */
export interface ReaderJob {
  id: number;
  file: string;
  maxChars: number;
  maxBytes?: number;
  part?: FilePart;
}

/** This thread → worker. */
export type ToReader = { job: ReaderJob } | { ack: number } | 'close';
/** Worker → this thread. */
export type FromReader =
  | { type: 'batch'; id: number; problems: Problem[] }
  | { type: 'end'; id: number; path: string; sha256?: string; lines: number; usage: AggregatorState }
  | { type: 'failed'; id: number; message: string; problems?: Problem[] };

const READER_SCRIPT = new URL('./reader-worker.js', import.meta.url);

/**
 * Whether files are read on worker threads: 16 MB or more of files (not standard input), from
 * compiled JavaScript (the test runner's TypeScript sources have no worker script).
 */
export function readsOnThreads(files: string[]): boolean {
  if (files.includes('-')) return false;
  let total = 0;
  for (const f of files) total += fs.statSync(f, { throwIfNoEntry: false })?.size ?? 0;
  return total >= OFF_THREAD_BYTES && fs.existsSync(fileURLToPath(READER_SCRIPT));
}

/** Where a plain file of JSON lines can be cut in two (just after a line break), if it can. */
function cutOfLines(file: string, size: number, maxChars: number): number | undefined {
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(4096);
    const n = fs.readSync(fd, head, 0, head.length, 0);
    if (n >= 2 && head[0] === 0x1f && head[1] === 0x8b) return undefined; // gzip
    const text = head
      .subarray(0, n)
      .toString('utf8')
      .replace(/^\uFEFF/, '')
      .trimStart();
    // JSON lines only: not an array, not a {"Records": […]} document (the reader's own test)
    const m = RECORDS_HEAD_RE.exec(text);
    if (!text.startsWith('{') || (m && text.charCodeAt(m[0].length) === 91)) return undefined;
    const window = Buffer.alloc(1 << 16);
    for (let at = Math.floor(size / 2); at < size && at - size / 2 < maxChars; at += window.length) {
      const got = fs.readSync(fd, window, 0, window.length, at);
      const nl = window.subarray(0, got).indexOf(10);
      if (nl !== -1) return at + nl + 1 < size ? at + nl + 1 : undefined;
    }
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

interface FileRead {
  file: string;
  before: fs.Stats;
  jobs: Job[];
  hashing?: ReturnType<typeof hashOffThread>;
  /** Lines of its parts merged so far. */
  lines: number;
}

interface Job {
  job: ReaderJob;
  read: FileRead;
  problems: ProblemLog;
  end?: { path: string; sha256?: string; lines: number };
  /** What the worker added up, once it is done. */
  usage?: AggregatorState;
}

/**
 * Reads `files` on worker threads into `agg` and `problems`, in order; returns each file's path
 * and SHA-256, as the one-thread read does.
 */
export async function readCloudTrailFilesOnThreads(
  files: string[],
  agg: CloudTrailAggregator,
  problems: ProblemLog,
  maxChars: number,
  maxBytes?: number,
): Promise<{ path: string; sha256: string }[]> {
  const queue: Job[] = [];
  let id = 0;
  for (const file of files) {
    const before = fs.statSync(file);
    const limit = maxBytes !== undefined ? { maxBytes } : {};
    const cut =
      before.size >= OFF_THREAD_BYTES && before.size <= (maxBytes ?? Infinity)
        ? cutOfLines(file, before.size, maxChars)
        : undefined;
    const parts: (FilePart | undefined)[] =
      cut === undefined
        ? [undefined]
        : [
            { start: 0, end: cut },
            { start: cut, end: before.size },
          ];
    const read: FileRead = { file, before, jobs: [], lines: 0 };
    for (const part of parts) {
      const j: Job = {
        job: { id: id++, file, maxChars, ...limit, ...(part ? { part } : {}) },
        read,
        problems: new ProblemLog(),
      };
      read.jobs.push(j);
      queue.push(j);
    }
  }
  const hashes: { path: string; sha256: Promise<string> | string }[] = [];
  // Jobs are merged in input order as soon as they and all before them are done (and let go).
  let merged = 0;
  const mergeDone = () => {
    for (let j = queue[merged]; j?.end; j = queue[++merged]) {
      const r = j.read;
      agg.merge(j.usage!);
      for (const p of j.problems.listed)
        problems.add(p.line === undefined ? p : { ...p, line: p.line + r.lines });
      problems.count += j.problems.count - j.problems.listed.length;
      r.lines += j.end.lines;
      if (j === r.jobs[r.jobs.length - 1]) {
        const first = r.jobs[0]!.end!;
        const hashing = r.hashing;
        const checked = hashing?.result.then((h) => checkedHash(r.file, r.before, h, r.before.size));
        checked?.catch(() => {}); // awaited below, in order
        hashes.push({ path: first.path, sha256: checked ?? first.sha256! });
      }
      // let go of what is merged
      delete j.usage;
      j.problems = new ProblemLog();
    }
  };
  const byId = new Map(queue.map((j) => [j.job.id, j]));
  const workers: Worker[] = [];
  const count = Math.min(2, Math.max(1, os.availableParallelism()), queue.length);
  let failedFile: string | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      let next = 0;
      let finished = 0;
      let stopped = false;
      const stop = (e: unknown, file?: string) => {
        if (stopped) return;
        stopped = true;
        failedFile = file;
        reject(e instanceof Error ? e : new Error(String(e)));
      };
      const give = (w: Worker) => {
        const j = queue[next++];
        if (!j) return;
        if (j.job.part && !j.read.hashing) j.read.hashing = hashOffThread(j.read.file);
        w.postMessage({ job: j.job } satisfies ToReader);
      };
      for (let k = 0; k < count; k++) {
        const w = new Worker(READER_SCRIPT, { resourceLimits: { maxYoungGenerationSizeMb: 192 } });
        workers.push(w);
        w.on('message', (m: FromReader) => {
          const j = byId.get(m.id)!;
          if (m.type === 'batch') {
            for (const p of m.problems) j.problems.add(p);
            w.postMessage({ ack: m.id } satisfies ToReader);
          } else if (m.type === 'end') {
            const { usage, ...end } = m;
            j.end = end;
            j.usage = usage;
            mergeDone();
            if (++finished === queue.length) resolve();
            else give(w);
          } else {
            const e = m.problems ? new ValidationError(m.message, m.problems) : new Error(m.message);
            stop(e, j.job.file);
          }
        });
        w.on('error', (e) => stop(e));
        w.on('exit', (code) => {
          if (finished < queue.length)
            stop(new Error(`the CloudTrail reading thread stopped (exit code ${code})`));
        });
        give(w);
      }
    });
  } catch (e) {
    for (const w of workers) void w.terminate();
    for (const j of queue) j.read.hashing?.stop();
    if (failedFile === undefined) throw e;
    // the exact error, as one thread reads the file (its own line numbers)
    await readCloudTrailFile(failedFile, new CloudTrailAggregator(), () => {}, maxChars, maxBytes);
    throw e;
  }
  for (const w of workers) w.postMessage('close' satisfies ToReader);
  const out: { path: string; sha256: string }[] = [];
  for (const h of hashes) out.push({ path: h.path, sha256: await h.sha256 });
  return out;
}
