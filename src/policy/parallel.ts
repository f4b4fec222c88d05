/**
 * A full evaluation on worker threads: the main thread splits the identities into pages (ranges
 * of ids), each worker reads and judges pages on its own database connection, and the main
 * thread appends what they decided to the ledger in its one transaction (decision record 0006).
 *
 * Every worker reads the state the evaluation's transaction started from: on PostgreSQL it
 * imports that transaction's snapshot (`pg_export_snapshot`); on SQLite the transaction holds the
 * write lock, so the committed state cannot move while workers read it in their own read
 * transactions. An evaluation's own writes (findings of other pages) are never read back.
 */
import fs from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { sql } from 'kysely';
import type { LedgerWriter } from '../ledger/ledger.js';
import type { NewEvent } from '../ledger/event.js';
import type { Store } from '../store/store.js';
import type { Rule } from './rules.js';
import { PAGE } from './document.js';
import {
  addVerdict,
  PARALLEL_MIN,
  type EvaluationResult,
  type JudgeSettings,
  type PageVerdict,
} from './evaluate.js';

/** A rule as it crosses to a worker: everything but its functions, which the worker rebuilds. */
export type RuleSpec = Pick<Rule, 'id' | 'title' | 'severity' | 'routeTo' | 'frameworks' | 'params' | 'when'>;

/** Ids after `after`, up to and including `upto` (no upper bound when absent). */
export interface IdRange {
  after: string;
  upto?: string;
}

export interface WorkerInput {
  url: string;
  /** PostgreSQL: the evaluation transaction's exported snapshot. */
  snapshot?: string;
  rules: RuleSpec[];
  settings: JudgeSettings;
}

/** Main → worker: a range to judge, or no more work. */
export type ToWorker = { range: IdRange } | 'done';
/** Worker → main. */
export type FromWorker =
  { type: 'ready' } | ({ type: 'page' } & PageVerdict) | { type: 'failed'; message: string; stack?: string };

export interface ParallelPlan {
  workers: number;
  script: URL;
}

const WORKER_SCRIPT = new URL('./eval-worker.js', import.meta.url);

/**
 * Whether (and on how many threads) a full evaluation of `total` identities runs in workers:
 * only where another thread can open the same database (a file or a server, not PGlite or
 * `:memory:`) and from compiled JavaScript (the test runner's TypeScript sources have no worker
 * script: they evaluate on this thread).
 */
export function parallelPlan(store: Store, total: number, workers?: number): ParallelPlan | undefined {
  const n = workers ?? (total >= PARALLEL_MIN ? Math.min(os.availableParallelism(), 4) : 0);
  if (n < 1 || total === 0 || !store.url) return undefined;
  if (!fs.existsSync(fileURLToPath(WORKER_SCRIPT))) return undefined;
  return { workers: Math.min(n, Math.ceil(total / PAGE)), script: WORKER_SCRIPT };
}

/** Pages handed to a worker before it answers (so it never waits for the next one). */
const SLOTS_PER_WORKER = 2;
/** Judged pages waiting for the ledger before no more are handed out (bounds memory). */
const MAX_UNFLUSHED = 8;

export async function evaluateInWorkers(
  store: Store,
  w: LedgerWriter,
  plan: ParallelPlan,
  rules: Rule[],
  settings: JudgeSettings,
  result: EvaluationResult,
  total: number,
  onProgress?: (done: number, total: number) => void,
): Promise<void> {
  // Page boundaries: every PAGE-th id, in the order the workers read them.
  const bounds = await sql<{ id: string }>`
    SELECT id FROM (SELECT id, row_number() OVER (ORDER BY id) AS rn FROM identities) t
    WHERE rn % ${PAGE} = 0 ORDER BY id`.execute(w.tx);
  const ranges: IdRange[] = [];
  let after = '';
  for (const { id } of bounds.rows) {
    ranges.push({ after, upto: id });
    after = id;
  }
  ranges.push({ after });
  let snapshot: string | undefined;
  if (store.dialect === 'postgres') {
    snapshot = (await sql<{ s: string }>`SELECT pg_export_snapshot() AS s`.execute(w.tx)).rows[0]!.s;
  }
  const input: WorkerInput = {
    url: store.url!,
    ...(snapshot ? { snapshot } : {}),
    rules: rules.map(({ id, title, severity, routeTo, frameworks, params, when }) => ({
      id,
      title,
      severity,
      routeTo,
      frameworks,
      params,
      when,
    })),
    settings,
  };
  const workers: Worker[] = [];
  const exits: Promise<unknown>[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      let failed = false;
      let writes = Promise.resolve();
      const fail = (e: unknown) => {
        if (failed) return;
        failed = true;
        // the transaction rolls back once this rejects: never while a flush is still writing
        void writes.then(() => reject(e instanceof Error ? e : new Error(String(e))));
      };
      const idle: Worker[] = [];
      let next = 0;
      let judged = 0;
      let unflushed = 0;
      const dispatch = () => {
        while (!failed && idle.length && next < ranges.length && unflushed < MAX_UNFLUSHED) {
          idle.pop()!.postMessage({ range: ranges[next++]! } satisfies ToWorker);
        }
        if (judged === ranges.length && unflushed === 0 && !failed) resolve();
      };
      const record = (events: NewEvent[], verdict: Omit<PageVerdict, 'events'>) => {
        unflushed += 1;
        writes = writes
          .then(async () => {
            w.append(events);
            addVerdict(result, verdict);
            await w.flush();
            unflushed -= 1;
            onProgress?.(result.identities, total);
            dispatch();
          })
          .catch(fail);
      };
      for (let i = 0; i < plan.workers; i++) {
        const worker = new Worker(plan.script, {
          workerData: input,
          // the 64 MB semi-space the CLI runs with (documents are many short-lived objects)
          resourceLimits: { maxYoungGenerationSizeMb: 192 },
        });
        workers.push(worker);
        exits.push(new Promise((r) => worker.once('exit', r)));
        worker.on('message', (m: FromWorker) => {
          if (m.type === 'ready') {
            for (let k = 0; k < SLOTS_PER_WORKER; k++) idle.push(worker);
          } else if (m.type === 'page') {
            judged += 1;
            idle.push(worker);
            const { events, ...verdict } = m;
            record(events, verdict);
          } else {
            const e = new Error(`policy evaluation worker: ${m.message}`);
            if (m.stack) e.stack = m.stack;
            fail(e);
            return;
          }
          dispatch();
        });
        worker.on('error', fail);
        worker.on('exit', (code) => {
          if (judged < ranges.length) fail(new Error(`policy evaluation worker stopped (exit code ${code})`));
        });
      }
    });
  } finally {
    // Done or failed: each worker ends its read transaction and closes its connection; one that
    // does not within a few seconds is stopped.
    for (const wk of workers) wk.postMessage('done' satisfies ToWorker);
    const timer = setTimeout(() => workers.forEach((wk) => void wk.terminate()), 5000);
    await Promise.all(exits);
    clearTimeout(timer);
  }
}
