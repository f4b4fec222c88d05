import type { LedgerEvent } from '../ledger/event.js';
import { isCreation } from './projector.js';

/** A subject's state rebuilt from its events. */
export interface SubjectState {
  subject: string;
  fields: Record<string, unknown>;
  /** When Steward first recorded it, and the last event applied. */
  firstRecordedAt: string;
  effectiveSince: string;
  lastSeq: number;
  /** For each field: the event that last stated it — its source, actor, effective time and number. */
  provenance: Record<string, FieldProvenance>;
}

export interface FieldProvenance {
  source: string | null;
  actor: string;
  at: string;
  seq: number;
}

/** Who stated a field, from an event: the importer named in the payload, else the event type. */
export function provenanceOf(e: LedgerEvent): FieldProvenance {
  const source = typeof e.payload.source === 'string' ? e.payload.source : null;
  return { source, actor: e.actor, at: e.effectiveAt, seq: e.seq };
}

/**
 * Rebuilds subjects as they were true at `asOf`, by what was recorded by `knownAt`:
 * every event recorded by `knownAt` that took effect by `asOf`, applied in recording
 * order (a later statement about the same field wins). A subject exists once its
 * creation event qualifies. This is exactly how the projection tables are maintained,
 * so the projection equals the fold at (now, now).
 */
export function foldEvents(
  events: Iterable<LedgerEvent>,
  asOf: string,
  knownAt: string,
): Map<string, SubjectState> {
  const out = new Map<string, SubjectState>();
  for (const e of events) {
    if (e.recordedAt > knownAt || e.effectiveAt > asOf) continue;
    const set = e.payload.set;
    if (!set) continue;
    let s = out.get(e.subject);
    if (s) {
      Object.assign(s.fields, set);
      s.lastSeq = e.seq;
    } else if (isCreation(e.type)) {
      s = {
        subject: e.subject,
        fields: { ...set },
        firstRecordedAt: e.recordedAt,
        effectiveSince: e.effectiveAt,
        lastSeq: e.seq,
        provenance: {},
      };
      out.set(e.subject, s);
    } else continue;
    const p = provenanceOf(e);
    for (const k in set) s.provenance[k] = p;
    // An update whose subject did not yet exist at `asOf` describes nothing then.
  }
  return out;
}
