import type { Store, Tx } from '../store/store.js';
import type { LedgerEvent } from '../ledger/event.js';
import { columnsOf, encodeValue, tableOf, toColumn, type SubjectTable } from './subjects.js';

/** Whether an event type brings a new subject into being (its projection row is inserted). */
export function isCreation(type: string): boolean {
  return type.endsWith('.created') || type === 'finding.opened';
}

const WITH_SEEN = new Set<SubjectTable>(['identities', 'credentials']);

/**
 * The only writer of projection tables: applies appended events' `set` payloads to the
 * current-state rows, batching inserts of new subjects.
 */
export function createProjector(store: Store) {
  return async function project(tx: Tx, events: readonly LedgerEvent[]): Promise<void> {
    const inserts = new Map<SubjectTable, Record<string, unknown>[]>();
    // Inserts must land before later updates of the same subject in the batch; flush pending
    // inserts whenever an update follows.
    const flushInserts = async () => {
      for (const [table, rows] of inserts) {
        const cols = columnsOf(table);
        await store.bulkInsert(
          tx,
          table,
          cols,
          rows.map((r) => cols.map((c) => r[c] ?? null)),
        );
      }
      inserts.clear();
    };
    for (const e of events) {
      const target = tableOf(e.subject);
      const set = e.payload.set;
      if (!target || !set) continue;
      if (isCreation(e.type)) {
        const row: Record<string, unknown> = {};
        for (const col of columnsOf(target.table)) row[col] = null;
        for (const [k, v] of Object.entries(set)) {
          const col = toColumn(k);
          if (!(col in row)) throw new Error(`internal: ${e.type} sets unknown field ${k}`);
          row[col] = encodeValue(col, v);
        }
        row.id = target.id;
        row.updated_seq = e.seq;
        if (WITH_SEEN.has(target.table)) {
          row.first_seen = e.recordedAt;
          row.last_seen = e.recordedAt;
        }
        let list = inserts.get(target.table);
        if (!list) inserts.set(target.table, (list = []));
        list.push(row);
      } else {
        if (inserts.size) await flushInserts();
        const upd: Record<string, unknown> = { updated_seq: e.seq };
        for (const [k, v] of Object.entries(set)) upd[toColumn(k)] = encodeValue(toColumn(k), v);
        if (WITH_SEEN.has(target.table)) upd.last_seen = e.recordedAt;
        await tx
          .updateTable(target.table)
          .set(upd as never)
          .where('id', '=', target.id)
          .execute();
      }
    }
    await flushInserts();
  };
}
