/**
 * A policy evaluation worker thread (see parallel.ts): opens its own connection to the
 * database, reads the evaluation's snapshot in one read-only transaction, and judges the pages
 * of ids the main thread hands it, answering with the events each page needs.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { sql, type Kysely } from 'kysely';
import { openStore } from '../store/store.js';
import type { Database } from '../store/schema.js';
import { loadDirectory, loadPages } from './document.js';
import { addVerdict, emptyVerdict, judgeOf, judgePage, type JudgedRule } from './evaluate.js';
import { ruleTest } from './rules.js';
import { canonicalJson } from '../ledger/event.js';
import type { FromWorker, ToWorker, WorkerInput } from './parallel.js';

const port = parentPort!;
const input = workerData as WorkerInput;
const post = (m: FromWorker) => port.postMessage(m);

/** Messages in arrival order, one at a time. */
function inbox(): () => Promise<ToWorker> {
  const queued: ToWorker[] = [];
  let waiting: ((m: ToWorker) => void) | undefined;
  port.on('message', (m: ToWorker) => {
    if (waiting) {
      const w = waiting;
      waiting = undefined;
      w(m);
    } else queued.push(m);
  });
  return () => (queued.length ? Promise.resolve(queued.shift()!) : new Promise((r) => (waiting = r)));
}

async function serve(db: Kysely<Database>, next: () => Promise<ToWorker>): Promise<void> {
  const rules: JudgedRule[] = input.rules.map((r) => ({ ...r, test: ruleTest(r.when, r.params).test }));
  const judge = judgeOf(rules, input.settings);
  const dir = await loadDirectory(db);
  post({ type: 'ready' });
  for (;;) {
    const m = await next();
    if (m === 'done') return;
    const page = emptyVerdict();
    for await (const p of loadPages(db, { range: m.range, dir })) {
      const v = judgePage(p, judge);
      // encoded here, on this thread: the main thread then only hashes and stores them
      for (const e of v.events) {
        e.payloadJson = canonicalJson(e.payload);
        page.events.push(e);
      }
      addVerdict(page, v);
    }
    post({ type: 'page', ...page });
  }
}

async function main(): Promise<void> {
  const next = inbox();
  const store = await openStore(input.url, { migrate: false });
  try {
    await store.db.connection().execute(async (db) => {
      if (store.dialect === 'postgres') {
        await sql`BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY`.execute(db);
        if (input.snapshot) {
          if (!/^[0-9A-F-]+$/i.test(input.snapshot))
            throw new Error(`unexpected snapshot id ${input.snapshot}`);
          await sql`SET TRANSACTION SNAPSHOT ${sql.lit(input.snapshot)}`.execute(db);
        }
      } else await sql`BEGIN`.execute(db);
      try {
        await serve(db, next);
      } finally {
        await sql`ROLLBACK`.execute(db);
      }
    });
  } finally {
    await store.close();
  }
}

main()
  .catch((e: unknown) => {
    const err = e instanceof Error ? e : new Error(String(e));
    post({ type: 'failed', message: err.message, ...(err.stack ? { stack: err.stack } : {}) });
  })
  // nothing left to do: let the thread end once its last message is on its way
  .finally(() => port.unref());
