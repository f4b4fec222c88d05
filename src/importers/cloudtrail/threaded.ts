/**
 * A large CloudTrail file read on a worker thread (`reader-worker.ts`): the worker reads,
 * decodes, splits and `JSON.parse`s the records and checks each one, sending on only what
 * aggregation needs ({@link RecordUsage}) and the problems, in file order; this thread adds them
 * up. Parsing is half of an import's time, so the two halves run on both cores. Batches are
 * acknowledged, and the worker stops reading while eight are unacknowledged (bounded memory).
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ValidationError } from '../../domain/errors.js';
import type { Problem } from '../../domain/problems.js';
import { OFF_THREAD_BYTES } from '../common.js';
import type { CloudTrailAggregator, ProblemLog, RecordUsage } from './index.js';

export interface ReaderInput {
  file: string;
  maxChars: number;
  maxBytes?: number;
}

/** Worker → this thread. */
export type FromReader =
  | { type: 'batch'; usages: RecordUsage[]; problems: Problem[]; records: number }
  | { type: 'end'; path: string; sha256: string }
  | { type: 'failed'; message: string; problems?: Problem[]; stack?: string };

const READER_SCRIPT = new URL('./reader-worker.js', import.meta.url);

/**
 * Whether a file is read on a worker thread: a file (not standard input) of 16 MB or more, from
 * compiled JavaScript (the test runner's TypeScript sources have no worker script).
 */
export function readsOnThread(file: string): boolean {
  if (file === '-') return false;
  const st = fs.statSync(file, { throwIfNoEntry: false });
  return st !== undefined && st.size >= OFF_THREAD_BYTES && fs.existsSync(fileURLToPath(READER_SCRIPT));
}

export function readCloudTrailFileOnThread(
  file: string,
  agg: CloudTrailAggregator,
  problems: ProblemLog,
  maxChars: number,
  maxBytes?: number,
): Promise<{ path: string; sha256: string }> {
  return new Promise((resolve, reject) => {
    const workerData: ReaderInput = { file, maxChars, ...(maxBytes !== undefined ? { maxBytes } : {}) };
    const worker = new Worker(READER_SCRIPT, {
      workerData,
      resourceLimits: { maxYoungGenerationSizeMb: 192 }, // the CLI's 64 MB semi-space
    });
    let settled = false;
    const done = (f: () => void) => {
      if (settled) return;
      settled = true;
      f();
    };
    worker.on('message', (m: FromReader) => {
      if (m.type === 'batch') {
        for (const u of m.usages) agg.aggregate(u);
        agg.stats.records += m.records;
        for (const p of m.problems) problems.add(p);
        worker.postMessage('ack');
      } else if (m.type === 'end') {
        done(() => resolve({ path: m.path, sha256: m.sha256 }));
      } else {
        const e = m.problems ? new ValidationError(m.message, m.problems) : new Error(m.message);
        done(() => reject(e));
      }
    });
    worker.on('error', (e) => done(() => reject(e)));
    worker.on('exit', (code) =>
      done(() => reject(new Error(`${file}: the reading thread stopped (exit code ${code})`))),
    );
  });
}
