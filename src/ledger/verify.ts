import type { Store } from '../store/store.js';
import { canonicalJson, GENESIS_HASH, hashEvent, type LedgerEvent } from './event.js';
import { rowToEvent } from './ledger.js';
import type { Keys } from './keys.js';
import { checkpointBytes } from './checkpoint.js';

export interface VerifyReport {
  ok: boolean;
  events: number;
  headSeq: number;
  checkpoints: { total: number; verified: number; lastVerifiedSeq: number };
  /** The first event that does not hold, and why. */
  firstBad?: { seq: number; problem: string };
}

const PAGE = 5000;

/** Reads every event in sequence order, a page at a time (bounded memory). */
export async function* readEvents(store: Store, fromSeq = 1, toSeq?: number): AsyncGenerator<LedgerEvent> {
  let after = fromSeq - 1;
  for (;;) {
    let q = store.db.selectFrom('events').selectAll().where('seq', '>', after).orderBy('seq').limit(PAGE);
    if (toSeq !== undefined) q = q.where('seq', '<=', toSeq);
    const rows = await q.execute();
    for (const r of rows) yield rowToEvent(r);
    if (rows.length < PAGE) return;
    after = Number(rows[rows.length - 1]!.seq);
  }
}

/**
 * Proves the chain (every hash recomputed, every link and sequence number checked) and the
 * signed checkpoints, and names the first event that does not hold.
 */
export async function verifyLedger(store: Store, keys: Keys | null): Promise<VerifyReport> {
  const cps = (await store.db.selectFrom('checkpoints').selectAll().orderBy('seq').execute()).map((c) => ({
    seq: Number(c.seq),
    headHash: c.head_hash,
    signedAt: c.signed_at,
    keyId: c.key_id,
    signature: c.signature,
  }));
  const head = await store.db
    .selectFrom('ledger_head')
    .selectAll()
    .where('id', '=', 1)
    .executeTakeFirstOrThrow();
  const report: VerifyReport = {
    ok: true,
    events: 0,
    headSeq: Number(head.seq),
    checkpoints: { total: cps.length, verified: 0, lastVerifiedSeq: 0 },
  };
  const fail = (seq: number, problem: string): VerifyReport => ({
    ...report,
    ok: false,
    firstBad: { seq, problem },
  });

  // Signatures first: a checkpoint that is not ours proves nothing.
  const bySeq = new Map<number, (typeof cps)[number]>();
  for (const cp of cps) {
    if (!keys) break;
    if (cp.keyId !== keys.keyId || !keys.verify(checkpointBytes(cp), cp.signature)) {
      return fail(cp.seq, `checkpoint at event ${cp.seq} has no valid signature by key ${keys.keyId}`);
    }
    bySeq.set(cp.seq, cp);
  }

  let expected = 1;
  let prev = GENESIS_HASH;
  let lastGoodCheckpoint = 0;
  for await (const e of readEvents(store)) {
    if (e.seq !== expected) {
      return fail(
        expected,
        `event ${expected} is missing (the next stored event is ${e.seq}): rows were deleted or renumbered`,
      );
    }
    const recomputed = hashEvent(e, canonicalJson(e.payload));
    if (recomputed !== e.hash) {
      return fail(
        e.seq,
        `event ${e.seq} (${e.type} ${e.subject}) was altered: its content does not match its hash`,
      );
    }
    if (e.prevHash !== prev) {
      return fail(
        e.seq,
        `event ${e.seq} (${e.type} ${e.subject}) does not follow event ${e.seq - 1}: the chain was broken here (an event was inserted, reordered or rewritten)`,
      );
    }
    const cp = bySeq.get(e.seq);
    if (cp) {
      if (cp.headHash !== e.hash) {
        return fail(
          lastGoodCheckpoint + 1,
          `events ${lastGoodCheckpoint + 1}..${e.seq} were rewritten: event ${e.seq} does not match its signed checkpoint`,
        );
      }
      report.checkpoints.verified += 1;
      report.checkpoints.lastVerifiedSeq = e.seq;
      lastGoodCheckpoint = e.seq;
    }
    prev = e.hash;
    expected += 1;
    report.events += 1;
  }
  const last = expected - 1;
  const beyond = cps.find((c) => c.seq > last);
  if (beyond && keys) {
    return fail(
      last + 1,
      `events after ${last} were removed: a signed checkpoint covers event ${beyond.seq}`,
    );
  }
  if (report.headSeq !== last || (last > 0 && head.hash !== prev)) {
    return fail(
      Math.min(report.headSeq, last) + 1,
      `the ledger head records event ${report.headSeq} but the chain ends at event ${last}: events were removed or appended outside Steward`,
    );
  }
  return report;
}
