import { sql } from 'kysely';
import type { Store, Tx } from '../store/store.js';
import type { EventsTable } from '../store/schema.js';
import {
  canonicalJson,
  transactionHasher,
  type EventContext,
  type LedgerEvent,
  type NewEvent,
} from './event.js';
import type { Keys } from './keys.js';
import { checkpointBytes } from './checkpoint.js';
import { insertingRowSink } from '../store/bulk.js';

/** Applies appended events to the projection tables inside the same transaction. */
export type Projector = (tx: Tx, events: readonly LedgerEvent[]) => Promise<void>;

export interface LedgerOptions {
  store: Store;
  /** Signing keys; without them no checkpoints are written (library use only). */
  keys: Keys | null;
  projector: Projector;
  /** Sign a checkpoint whenever this many events have been appended since the last one. */
  checkpointEvery?: number;
  /** …or when the last checkpoint is older than this many milliseconds and events were appended since. */
  checkpointIntervalMs?: number;
  now?: () => Date;
}

/** A write transaction in progress: append events; they and their projections commit together. */
export interface LedgerWriter {
  readonly tx: Tx;
  /** When Steward records this transaction's events. */
  readonly recordedAt: string;
  /**
   * Queues events; they are encoded, hashed and written at the next flush or at commit, so an
   * appended payload must not be changed afterwards.
   */
  append(events: readonly NewEvent[]): void;
  /** Writes buffered events and their projection updates. */
  flush(): Promise<void>;
  /** Events appended so far in this transaction. */
  readonly appended: number;
}

export interface Checkpoint {
  seq: number;
  headHash: string;
  signedAt: string;
  keyId: string;
  signature: string;
}

/** The evidence ledger: append-only, hash-chained events with signed checkpoints. */
export interface Ledger {
  write<T>(ctx: Omit<EventContext, 'recordedAt'>, fn: (w: LedgerWriter) => Promise<T>): Promise<T>;
  /** Signs a checkpoint at the current head now (on demand). */
  checkpoint(): Promise<Checkpoint | null>;
  head(): Promise<{ seq: number; hash: string }>;
}

/** Events hashed between two hand-overs to the row sink. */
const HASH_CHUNK = 500;

/** The `events` columns in the order the ledger writes them. */
export const EVENT_COLUMNS = [
  'seq',
  'type',
  'subject',
  'identity_id',
  'payload',
  'actor',
  'reason',
  'effective_at',
  'recorded_at',
  'prev_hash',
  'hash',
] as const;

/** Converts a stored row to an event. */
export function rowToEvent(r: EventsTable): LedgerEvent {
  return {
    seq: Number(r.seq),
    type: r.type,
    subject: r.subject,
    identityId: r.identity_id,
    payload: JSON.parse(r.payload) as LedgerEvent['payload'],
    actor: r.actor,
    reason: r.reason,
    effectiveAt: r.effective_at,
    recordedAt: r.recorded_at,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

interface Head {
  seq: number;
  hash: string;
  updatedAt: string;
  /** The last signed checkpoint (seq 0 and no time when none has been signed). */
  checkpoint: { seq: number; signedAt: string | null };
}

/** Creates the ledger over a store. */
export function createLedger(options: LedgerOptions): Ledger {
  const { store, keys, projector } = options;
  const every = options.checkpointEvery ?? 10_000;
  const intervalMs = options.checkpointIntervalMs ?? 3_600_000;
  const now = options.now ?? (() => new Date());

  /**
   * Locks the head row and reads it, with the last signed checkpoint (in the same statement:
   * one round trip less per write; checkpoints are only signed under this lock, so the one read
   * here is still the last when the write ends).
   */
  async function lockHead(tx: Tx): Promise<Head> {
    const last = `(SELECT seq FROM checkpoints ORDER BY seq DESC LIMIT 1) AS cp_seq,
      (SELECT signed_at FROM checkpoints ORDER BY seq DESC LIMIT 1) AS cp_signed_at`;
    // Taking the head row's lock first serialises writers on both dialects
    // (SQLite upgrades to its write lock here instead of failing at commit).
    if (store.dialect === 'sqlite') {
      await sql`UPDATE ledger_head SET updated_at = updated_at WHERE id = 1`.execute(tx);
    }
    const lock = store.dialect === 'sqlite' ? '' : ' FOR UPDATE';
    const r = await sql<{
      seq: number;
      hash: string;
      updated_at: string;
      cp_seq: number | null;
      cp_signed_at: string | null;
    }>`SELECT seq, hash, updated_at, ${sql.raw(last)} FROM ledger_head WHERE id = 1${sql.raw(lock)}`.execute(
      tx,
    );
    const row = r.rows[0]!;
    return {
      seq: Number(row.seq),
      hash: row.hash,
      updatedAt: row.updated_at,
      checkpoint: { seq: Number(row.cp_seq ?? 0), signedAt: row.cp_signed_at },
    };
  }

  async function signCheckpoint(
    tx: Tx,
    seq: number,
    headHash: string,
    signedAt: string,
  ): Promise<Checkpoint | null> {
    if (!keys || seq === 0) return null;
    const cp = { seq, headHash, signedAt, keyId: keys.keyId };
    const signature = keys.sign(checkpointBytes(cp));
    await tx
      .insertInto('checkpoints')
      .values({ seq, head_hash: headHash, signed_at: signedAt, key_id: keys.keyId, signature })
      .onConflict((oc) => oc.column('seq').doNothing())
      .execute();
    return { ...cp, signature };
  }

  const insertOnce = insertingRowSink(store.bulkInsert);
  return {
    async write(ctx, fn) {
      return store.db.transaction().execute(async (tx) => {
        const head = await lockHead(tx);
        const wall = now().toISOString();
        // recordedAt never goes backwards along the chain, so "known at" cuts are prefixes.
        const recordedAt = wall > head.updatedAt ? wall : head.updatedAt;
        let seq = head.seq;
        let prev = head.hash;
        // Appended events wait here unhashed; flush hashes them chunk by chunk and hands each
        // chunk to the row sink, so the database stores one chunk while the next is hashed.
        let queued: NewEvent[] = [];
        let count = 0;
        const reason = ctx.reason ?? null;
        const hashOf = transactionHasher(ctx.actor, reason, recordedAt);
        const writer: LedgerWriter = {
          tx,
          recordedAt,
          get appended() {
            return count;
          },
          append(events) {
            for (const e of events) queued.push(e);
            count += events.length;
          },
          async flush() {
            if (queued.length === 0) return;
            const batch = queued;
            queued = [];
            const appended = new Array<LedgerEvent>(batch.length);
            // One chunk goes through the store's bulk insert, which writes a handful of rows with
            // one INSERT and more with a COPY; only a flush of several chunks streams them (the
            // COPY's extra round trips cost more than they save for an incremental evaluation's few).
            const open = batch.length <= HASH_CHUNK ? insertOnce : store.openRowSink;
            const sink = await open(tx, 'events', EVENT_COLUMNS);
            try {
              for (let i = 0; i < batch.length; i += HASH_CHUNK) {
                const end = Math.min(batch.length, i + HASH_CHUNK);
                const rows = new Array<unknown[]>(end - i);
                for (let k = i; k < end; k++) {
                  const e = batch[k]!;
                  seq += 1;
                  const payloadJson = e.payloadJson ?? canonicalJson(e.payload);
                  const identityId = e.identityId ?? null;
                  const hash = hashOf(seq, prev, e.type, e.subject, identityId, e.effectiveAt, payloadJson);
                  rows[k - i] = [
                    seq,
                    e.type,
                    e.subject,
                    identityId,
                    payloadJson,
                    ctx.actor,
                    reason,
                    e.effectiveAt,
                    recordedAt,
                    prev,
                    hash,
                  ];
                  const event: LedgerEvent = {
                    seq,
                    type: e.type,
                    subject: e.subject,
                    identityId,
                    payload: e.payload,
                    actor: ctx.actor,
                    reason,
                    effectiveAt: e.effectiveAt,
                    recordedAt,
                    prevHash: prev,
                    hash,
                  };
                  appended[k] = event;
                  prev = hash;
                }
                await sink.write(rows);
              }
              await sink.end();
            } catch (e) {
              await sink.abort(e);
              throw e;
            }
            await projector(tx, appended);
          },
        };
        const result = await fn(writer);
        await writer.flush();
        if (seq !== head.seq) {
          await tx
            .updateTable('ledger_head')
            .set({ seq, hash: prev, updated_at: recordedAt })
            .where('id', '=', 1)
            .execute();
          const last = head.checkpoint;
          const stale =
            last.signedAt === null || Date.parse(recordedAt) - Date.parse(last.signedAt) >= intervalMs;
          if (seq - last.seq >= every || stale) await signCheckpoint(tx, seq, prev, recordedAt);
        }
        return result;
      });
    },
    async checkpoint() {
      return store.db.transaction().execute(async (tx) => {
        const head = await lockHead(tx);
        if (head.seq === 0) return null;
        const existing = await tx
          .selectFrom('checkpoints')
          .selectAll()
          .where('seq', '=', head.seq)
          .executeTakeFirst();
        if (existing) {
          return {
            seq: Number(existing.seq),
            headHash: existing.head_hash,
            signedAt: existing.signed_at,
            keyId: existing.key_id,
            signature: existing.signature,
          };
        }
        return signCheckpoint(tx, head.seq, head.hash, now().toISOString());
      });
    },
    async head() {
      const r = await store.db
        .selectFrom('ledger_head')
        .select(['seq', 'hash'])
        .where('id', '=', 1)
        .executeTakeFirstOrThrow();
      return { seq: Number(r.seq), hash: r.hash };
    },
  };
}
