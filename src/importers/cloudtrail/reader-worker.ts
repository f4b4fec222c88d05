/** Reads CloudTrail files (or parts of files) on a worker thread, one job at a time: see threaded.ts. */
import type { Readable } from 'node:stream';
import { parentPort } from 'node:worker_threads';
import { ValidationError } from '../../domain/errors.js';
import type { Problem } from '../../domain/problems.js';
import { CloudTrailAggregator, readCloudTrailFile } from './index.js';
import type { FromReader, ReaderJob, ToReader } from './threaded.js';

const port = parentPort!;
const post = (m: FromReader) => port.postMessage(m);

/** Problems (with --skip-invalid) per batch, and batches unacknowledged before reading pauses. */
const BATCH = 4000;
const MAX_UNACKNOWLEDGED = 8;

let unacknowledged = 0;
let resume: (() => void) | undefined;
const jobs: ReaderJob[] = [];
let running = false;

port.on('message', (m: ToReader) => {
  if (m === 'close') {
    port.close();
    return;
  }
  if ('ack' in m) {
    unacknowledged--;
    resume?.();
    resume = undefined;
    return;
  }
  jobs.push(m.job);
  if (!running) void run();
});

async function run(): Promise<void> {
  running = true;
  for (let job = jobs.shift(); job; job = jobs.shift()) await read(job);
  running = false;
}

async function read(job: ReaderJob): Promise<void> {
  let problems: Problem[] = [];
  /** Line breaks read (a part's lines: where the next part's line numbers start). */
  let lines = 0;
  const flush = () => {
    if (!problems.length) return;
    post({ type: 'batch', id: job.id, problems });
    problems = [];
    unacknowledged++;
  };
  // Added up here, merged in input order on the main thread (twice the capped sets: see `parts`).
  const agg = new CloudTrailAggregator(2);
  async function* paced(stream: Readable): AsyncGenerator<unknown> {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (job.part) for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
      while (unacknowledged >= MAX_UNACKNOWLEDGED) await new Promise<void>((r) => (resume = r));
      yield chunk;
    }
  }
  try {
    const r = await readCloudTrailFile(
      job.file,
      agg,
      (p) => {
        problems.push(p);
        if (problems.length >= BATCH) flush();
      },
      job.maxChars,
      job.maxBytes,
      paced,
      job.part,
    );
    flush();
    post({ type: 'end', id: job.id, ...r, lines, usage: agg.state() });
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    post({
      type: 'failed',
      id: job.id,
      message: err.message.split('\n')[0]!,
      ...(err instanceof ValidationError ? { problems: err.problems } : {}),
    });
  }
}
