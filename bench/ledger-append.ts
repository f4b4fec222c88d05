/**
 * Benchmark 2 — ledger append: 1,000,000 small events through `ledger.write`, 10,000 events per
 * append + flush, 100,000 per write transaction, with a no-op projector (the ledger alone),
 * against hashing the same events in memory (canonicalJson + hashEvent, chained). Building the
 * events (the caller's work) is timed apart and excluded from both.
 */
import { createLedger } from '../src/ledger/ledger.js';
import { canonicalJson, GENESIS_HASH, transactionHasher, type NewEvent } from '../src/ledger/event.js';
import { loadKeys } from '../src/ledger/keys.js';
import { openStore } from '../src/store/store.js';
import { freshDb, progress, scaled, timed, type BenchContext, type Figure } from './lib/common.js';

const BATCH = 10_000;
const PER_TRANSACTION = 100_000;
const T0 = Date.parse('2026-01-01T00:00:00Z');

/** The n-th usage event: subjects with no projection, identity id set, a one-field payload. */
function usageEvents(from: number, count: number): NewEvent[] {
  const out: NewEvent[] = new Array<NewEvent>(count);
  for (let k = 0; k < count; k++) {
    const n = from + k;
    const identity = `nhi_${(n % 50_000).toString(16).padStart(20, '0')}`;
    const at = new Date(T0 + n * 37).toISOString();
    out[k] = {
      type: 'credential.used',
      subject: `usage:cred_${(n % 50_000).toString(16).padStart(20, '0')}`,
      identityId: identity,
      payload: {
        set: { lastUsedAt: at },
        sourceIp: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`,
        action: 's3:GetObject',
      },
      effectiveAt: at,
    };
  }
  return out;
}

export async function benchLedgerAppend(ctx: BenchContext): Promise<Figure[]> {
  const total = scaled(1_000_000, ctx.scale, BATCH);
  const db = await freshDb(ctx);
  const figures: Figure[] = [];
  try {
    const store = await openStore(db.url);
    try {
      const keys = loadKeys(db.keysDir, { create: true });
      const ledger = createLedger({ store, keys, projector: async () => {} });
      const actor = 'bench';
      const reason = 'ledger append benchmark';

      // Building the events is the caller's work, not the ledger's: it is timed apart and left
      // out of both columns.
      let baseGenMs = 0;
      let runGenMs = 0;
      const build = (from: number, onMs: (ms: number) => void) => {
        const g0 = performance.now();
        const batch = usageEvents(from, Math.min(BATCH, total - from));
        onMs(performance.now() - g0);
        return batch;
      };

      // Baseline: what append computes per event, without the database.
      const base = await timed(() => {
        let prev = GENESIS_HASH;
        const hashOf = transactionHasher(actor, reason, new Date().toISOString());
        for (let from = 0; from < total; from += BATCH) {
          const batch = build(from, (ms) => (baseGenMs += ms));
          for (let k = 0; k < batch.length; k++) {
            const e = batch[k]!;
            const payloadJson = canonicalJson(e.payload);
            prev = hashOf(
              from + k + 1,
              prev,
              e.type,
              e.subject,
              e.identityId ?? null,
              e.effectiveAt,
              payloadJson,
            );
          }
        }
        return Promise.resolve(prev);
      });
      const baseMs = base.ms - baseGenMs;
      progress(`${ctx.dialect}: baseline hashing ${total} events: ${baseMs.toFixed(0)} ms`);

      const batchMs: number[] = [];
      const run = await timed(async () => {
        for (let t = 0; t < total; t += PER_TRANSACTION) {
          await ledger.write({ actor, reason }, async (w) => {
            for (let from = t; from < Math.min(total, t + PER_TRANSACTION); from += BATCH) {
              const events = build(from, (ms) => (runGenMs += ms));
              const b0 = performance.now();
              w.append(events);
              await w.flush();
              batchMs.push(performance.now() - b0);
            }
          });
          progress(`${ctx.dialect}: appended ${Math.min(total, t + PER_TRANSACTION)}/${total}`);
        }
      });
      const head = await ledger.head();
      if (head.seq !== total) throw new Error(`ledger head is at ${head.seq}, expected ${total}`);

      const rate = total / ((run.ms - runGenMs) / 1000);
      const baseRate = total / (baseMs / 1000);
      const fig = (f: Omit<Figure, 'benchmark' | 'dialect'>) =>
        figures.push({ benchmark: 'ledger append', dialect: ctx.dialect, ...f });
      fig({
        name: `append ${total.toLocaleString('en-US')} events, ${BATCH.toLocaleString('en-US')}/flush, ${PER_TRANSACTION.toLocaleString('en-US')}/transaction (projector excluded)`,
        unit: 'events/s',
        value: rate,
        baseline: { name: 'canonicalJson + hashing, in memory', value: baseRate },
        ratio: rate / baseRate,
        target: '≥ 100,000 events/s',
        met: rate >= 100_000,
      });
      const sorted = [...batchMs].sort((a, b) => a - b);
      fig({
        name: '  time per 10,000-event append + flush (median)',
        unit: 'ms',
        value: sorted[Math.floor(sorted.length / 2)] ?? NaN,
        baseline: { name: 'hashing 10,000 events', value: (baseMs * BATCH) / total },
      });
      fig({
        name: '  building the events (the caller’s work, excluded above)',
        unit: 'ms',
        value: runGenMs,
      });
      fig({ name: '  database size after append', unit: 'MB', value: (await db.size()) / 1e6 });
    } finally {
      await store.close();
    }
  } finally {
    await db.cleanup();
  }
  return figures;
}
