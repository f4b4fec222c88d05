/** Reads one CloudTrail file on a worker thread: see threaded.ts. */
import type { Readable } from 'node:stream';
import { parentPort, workerData } from 'node:worker_threads';
import { ValidationError } from '../../domain/errors.js';
import type { Problem } from '../../domain/problems.js';
import { CloudTrailAggregator, readCloudTrailFile, type RecordUsage } from './index.js';
import type { FromReader, ReaderInput } from './threaded.js';

const port = parentPort!;
const input = workerData as ReaderInput;
const post = (m: FromReader) => port.postMessage(m);

/** Records (or problems) per batch, and batches unacknowledged before reading pauses. */
const BATCH = 4000;
const MAX_UNACKNOWLEDGED = 8;

let usages: RecordUsage[] = [];
let problems: Problem[] = [];
let sent = 0;
let unacknowledged = 0;
let resume: (() => void) | undefined;
port.on('message', (m: unknown) => {
  if (m !== 'ack') return;
  unacknowledged--;
  resume?.();
  resume = undefined;
});

const flush = () => {
  post({ type: 'batch', usages, problems, records: agg.stats.records - sent });
  sent = agg.stats.records;
  usages = [];
  problems = [];
  unacknowledged++;
};
const agg = new CloudTrailAggregator((u) => {
  usages.push(u);
  if (usages.length >= BATCH) flush();
});

async function* paced(stream: Readable): AsyncGenerator<unknown> {
  for await (const chunk of stream) {
    while (unacknowledged >= MAX_UNACKNOWLEDGED) await new Promise<void>((r) => (resume = r));
    yield chunk;
  }
}

readCloudTrailFile(
  input.file,
  agg,
  (p) => {
    problems.push(p);
    if (problems.length >= BATCH) flush();
  },
  input.maxChars,
  input.maxBytes,
  paced,
)
  .then((r) => {
    flush();
    post({ type: 'end', ...r });
  })
  .catch((e: unknown) => {
    const err = e instanceof Error ? e : new Error(String(e));
    post({
      type: 'failed',
      message: err.message.split('\n')[0]!,
      ...(err instanceof ValidationError ? { problems: err.problems } : {}),
      ...(err.stack ? { stack: err.stack } : {}),
    });
  })
  .finally(() => port.unref());
