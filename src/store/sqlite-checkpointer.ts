import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * Copies SQLite's write-ahead log into the database file on a second thread. By default the
 * connection that commits also checkpoints, so a bulk write spends about a quarter of its time
 * writing every page a second time (and syncing); WAL checkpoints may run on another connection
 * while writers go on, so a worker thread does it on the other core instead.
 *
 * The worker is plain CommonJS evaluated from a string, so it runs the same from the compiled
 * package and from the TypeScript sources under the test runner.
 */
const WORKER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const Database = require(workerData.module);
const fs = require('node:fs');
const db = new Database(workerData.file, { fileMustExist: true, timeout: 0 });
db.pragma('journal_size_limit = ' + workerData.maxWalBytes);
const tick = () => {
  try {
    // PASSIVE never waits: it copies what is committed while the writer goes on. The log is
    // reused from its start only when a writer begins after a complete checkpoint, which a
    // writer that never pauses does not give; past maxWalBytes, RESTART waits (busy timeout)
    // for the current transaction to end, finishes the copy and lets the next one start over.
    let size = 0;
    try { size = fs.statSync(workerData.file + '-wal').size; } catch { /* no log yet */ }
    if (size > workerData.maxWalBytes) {
      db.pragma('busy_timeout = 10000');
      db.pragma('wal_checkpoint(RESTART)');
      db.pragma('busy_timeout = 0');
    } else db.pragma('wal_checkpoint(PASSIVE)');
  } catch { /* busy or closing: try again next tick */ }
};
const timer = setInterval(tick, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m !== 'stop') return;
  clearInterval(timer);
  tick();
  db.close();
  parentPort.postMessage('stopped');
});
`;

export interface Checkpointer {
  stop(): Promise<void>;
}

/**
 * Starts checkpointing `file`'s WAL every `intervalMs` on a worker thread; `onLost` runs if the
 * worker ends before `stop` (so the writer can take checkpointing back).
 */
export function startCheckpointer(
  file: string,
  onLost: () => void,
  intervalMs = 100,
  maxWalBytes = 256 << 20,
): Checkpointer {
  const module = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { module, file, intervalMs, maxWalBytes },
  });
  worker.unref();
  let exited = false;
  let stopping = false;
  const exit = new Promise<void>((resolve) => {
    worker.once('exit', () => {
      exited = true;
      if (!stopping) onLost();
      resolve();
    });
    worker.once('error', () => undefined); // e.g. the file cannot be opened: 'exit' follows
  });
  return {
    async stop() {
      stopping = true;
      if (exited) return;
      const stopped = new Promise<void>((resolve) => worker.once('message', () => resolve()));
      worker.postMessage('stop');
      const timeout = new Promise<void>((resolve) => setTimeout(resolve, 5000).unref());
      await Promise.race([stopped, exit, timeout]);
      await worker.terminate();
      await exit;
    },
  };
}
