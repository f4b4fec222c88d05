import type { InventoryDeps } from '../inventory/context.js';
import { newId } from '../inventory/context.js';
import type { NewEvent } from '../ledger/event.js';
import type { Tx } from '../store/store.js';
import { sql } from 'kysely';
import {
  loadDirectory,
  loadPages,
  type DocumentPage,
  type FindingRow,
  type NhiDocument,
  type PrincipalDoc,
} from './document.js';
import type { Route, Rule, RuleContext, Severity } from './rules.js';
import { evaluateInWorkers, parallelPlan } from './parallel.js';
import { dropIndexesUntilCommit } from '../store/bulk.js';

/** Days to resolve a finding, by severity (overridable per install). */
export type Sla = Record<Severity, number>;
export const DEFAULT_SLA: Sla = { critical: 7, high: 30, medium: 90, low: 180 };

/** The rule that stands for "nobody accountable": raised when a finding can be routed to no one. */
export const NOBODY_ACCOUNTABLE = 'nobody-accountable';

export interface EvaluateOptions {
  rules: Rule[];
  actor: string;
  reason?: string;
  /** Evaluation time (default: the clock). */
  now?: Date;
  /** Only these identities (incremental); default every identity. */
  ids?: string[];
  sla?: Partial<Sla>;
  onProgress?: (done: number, total: number) => void;
  /**
   * Worker threads for a full evaluation (each reads and judges its own pages on its own
   * connection); default: one per core, from {@link PARALLEL_MIN} identities on. 0: this thread.
   */
  workers?: number;
}

export interface EvaluationResult {
  identities: number;
  rules: number;
  opened: number;
  reopened: number;
  resolved: number;
  reassigned: number;
  exceptionsExpired: number;
  /** Open findings of the evaluated identities after this evaluation. */
  open: number;
  /** Rules that failed at run time on some identity (first few). */
  errors: { rule: string; identity: string; message: string }[];
  events: number;
  /** Worker threads that judged the identities (0: the calling thread). */
  workers: number;
}

/** What judging a rule needs of it (all a worker thread rebuilds). */
export type JudgedRule = Pick<
  Rule,
  'id' | 'title' | 'severity' | 'routeTo' | 'frameworks' | 'params' | 'test'
>;

interface Holding {
  rule: JudgedRule;
  assignee: string | null;
  assignedRole: string | null;
}

const ROUTE_FIELD: Record<Route, (d: NhiDocument) => PrincipalDoc | undefined> = {
  business: (d) => d.owners.business,
  technical: (d) => d.owners.technical,
  control: (d) => d.owners.control,
  primary: (d) => d.primaryTeam,
  revocation: (d) => d.revocation.owner,
};

/**
 * Who must act on a finding: the role its rule routes to, else the primary team, else the
 * control owner, else any other owner (business, technical, revocation). A departed person is
 * nobody: the finding falls through to the next. When no one is left, nobody is accountable.
 */
export function route(
  rule: Pick<Rule, 'routeTo'>,
  d: NhiDocument,
): { assignee: string | null; role: string | null } {
  const candidates: [string, PrincipalDoc | undefined][] = [
    [rule.routeTo, ROUTE_FIELD[rule.routeTo](d)],
    ['primary', d.primaryTeam],
    ['control', d.owners.control],
    // then anyone else accountable for it, before concluding that nobody is
    ['business', d.owners.business],
    ['technical', d.owners.technical],
    ['revocation', d.revocation.owner],
  ];
  for (const [role, p] of candidates) {
    if (p && p.status !== 'departed') return { assignee: p.ref, role };
  }
  return { assignee: null, role: null };
}

const addDays = (t: Date, days: number) => new Date(t.getTime() + days * 86_400_000).toISOString();

/**
 * Evaluates the rules over every identity (or the given ones) and records what changed as
 * ledger events, in one transaction: `finding.opened` (new), `finding.reopened` (it came
 * back), `finding.resolved` (the condition cleared), `finding.reassigned` (its accountable
 * owner changed), `finding.exception-expired` (an exception ran out while the condition still
 * holds) and `finding.changed` (the rule's title, severity or frameworks changed). A finding
 * is identified by (rule, identity). `lastSeen` of findings that still hold is bookkeeping,
 * not evidence: it is set in place, not by an event.
 */
export async function evaluate(deps: InventoryDeps, opts: EvaluateOptions): Promise<EvaluationResult> {
  const now = opts.now ?? deps.now();
  const sla: Sla = { ...DEFAULT_SLA, ...opts.sla };
  const result = emptyResult(opts.rules.length);
  const out = await deps.ledger.write(
    { actor: opts.actor, reason: opts.reason ?? 'policy evaluation' },
    async (w) => {
      const total = opts.ids
        ? opts.ids.length
        : Number(
            (
              await w.tx
                .selectFrom('identities')
                .select((eb) => eb.fn.countAll().as('n'))
                .executeTakeFirst()
            )?.n ?? 0,
          );
      const full = !opts.ids;
      // When the last full evaluation ran matters only to findings that resolve: an incremental
      // evaluation reads it when one does (a round trip saved on most), a full one up front.
      let known = full;
      const previousFull = full ? await lastFullEvaluation(w.tx) : undefined;
      let settings: JudgeSettings = {
        now: now.toISOString(),
        sla,
        ...(previousFull ? { previousFull } : {}),
      };
      const plan = full ? parallelPlan(deps.store, total, opts.workers) : undefined;
      const rebuildIndexes = full ? await deferFindingIndexes(deps.store, w.tx, total) : undefined;
      if (plan) {
        result.workers = plan.workers;
        await evaluateInWorkers(deps.store, w, plan, opts.rules, settings, result, total, opts.onProgress);
      } else {
        let judge = judgeOf(opts.rules, settings);
        // a full evaluation reads the whole directory once; an incremental one only who it names
        const dir = full ? await loadDirectory(w.tx) : undefined;
        for await (const page of loadPages(w.tx, {
          ...(dir ? { dir } : {}),
          ...(opts.ids ? { ids: opts.ids } : {}),
        })) {
          let verdict = judgePage(page, judge);
          if (verdict.resolved && !known) {
            known = true;
            const last = await lastFullEvaluation(w.tx);
            if (last) {
              settings = { ...settings, previousFull: last };
              judge = judgeOf(opts.rules, settings);
              verdict = judgePage(page, judge);
            }
          }
          w.append(verdict.events);
          addVerdict(result, verdict);
          // Bookkeeping: findings that still hold were seen now. After a full evaluation one
          // timestamp says so for all of them (LAST_FULL_EVALUATION); an incremental one marks its rows.
          await w.flush();
          const { ids } = page;
          for (let i = 0; !full && i < ids.length; i += 1000) {
            await w.tx
              .updateTable('findings')
              .set({ last_seen: settings.now })
              .where('identity_id', 'in', ids.slice(i, i + 1000))
              .where('status', 'in', ['open', 'excepted'])
              .execute();
          }
          opts.onProgress?.(result.identities, total);
        }
      }
      await w.flush();
      await rebuildIndexes?.();
      if (full) {
        await w.tx.deleteFrom('meta').where('key', '=', LAST_FULL_EVALUATION).execute();
        await w.tx.insertInto('meta').values({ key: LAST_FULL_EVALUATION, value: settings.now }).execute();
      }
      result.events = w.appended;
      return result;
    },
  );
  // PostgreSQL plans by table statistics, which autovacuum refreshes only some time after a big
  // transaction: until then a findings table that grew by a million rows is planned as empty
  // (sequential scans: half a second per incremental evaluation, measured). Refresh them now.
  if (deps.store.dialect === 'postgres' && out.events >= ANALYZE_AFTER) {
    await sql`ANALYZE findings`.execute(deps.store.db);
    await sql`ANALYZE events`.execute(deps.store.db);
  }
  return out;
}

/**
 * Findings indexes that an evaluation never reads. Its new findings arrive in identity order,
 * which these do not follow: each insert lands somewhere random in each of them.
 */
const UNREAD_FINDING_INDEXES = ['findings_assignee', 'findings_rule', 'findings_status'];

/**
 * A full evaluation that may open a finding for most identities (a first one over a large
 * estate: fewer findings on record than a quarter of the identities) drops, on SQLite, the
 * findings indexes it never reads, and rebuilds them before it commits: one sort each instead of
 * a random insert per finding (1,000,000 findings: 5.7 s less for the assignee index alone).
 * Rebuilding costs a sort of the whole table, which is why an evaluation with many findings on
 * record keeps them. PostgreSQL keeps them always: dropping one locks the table, and the
 * evaluation's worker connections read it.
 */
async function deferFindingIndexes(store: InventoryDeps['store'], tx: Tx, total: number) {
  if (store.dialect !== 'sqlite' || total < DEFER_INDEXES_MIN) return undefined;
  // counts no further than it needs to (a steady-state evaluation has a million on record)
  const quarter = Math.ceil(total / 4);
  const onRecord = await sql<{ n: number | string }>`
    SELECT count(*) AS n FROM (SELECT 1 FROM findings LIMIT ${quarter}) t`.execute(tx);
  if (Number(onRecord.rows[0]?.n ?? 0) >= quarter) return undefined;
  return dropIndexesUntilCommit(tx, UNREAD_FINDING_INDEXES);
}

/** Identities from which a first full evaluation defers the findings indexes it does not read. */
export const DEFER_INDEXES_MIN = 10_000;

/** Identities from which a full evaluation runs on worker threads by default. */
export const PARALLEL_MIN = 10_000;

/** What every page of one evaluation is judged against (plain data: it crosses threads). */
export interface JudgeSettings {
  /** Evaluation time, ISO-8601. */
  now: string;
  sla: Sla;
  /** When the last full evaluation ran, if one has. */
  previousFull?: string;
}

/** The rules and settings of one evaluation, prepared once. */
export interface Judge {
  rules: JudgedRule[];
  byId: Map<string, JudgedRule>;
  nobody: JudgedRule | undefined;
  frameworks: Map<string, string>;
  now: Date;
  settings: JudgeSettings;
}

export function judgeOf(rules: JudgedRule[], settings: JudgeSettings): Judge {
  return {
    rules,
    byId: new Map(rules.map((r) => [r.id, r])),
    nobody: rules.find((r) => r.id === NOBODY_ACCOUNTABLE),
    frameworks: new Map(rules.map((r) => [r.id, JSON.stringify(r.frameworks)])),
    now: new Date(settings.now),
    settings,
  };
}

/** What judging one page decided: the events to append and what they count. */
export type PageVerdict = { events: NewEvent[] } & Pick<
  EvaluationResult,
  'identities' | 'opened' | 'reopened' | 'resolved' | 'reassigned' | 'exceptionsExpired' | 'open' | 'errors'
>;

/** Nothing judged yet. */
export function emptyVerdict(): PageVerdict {
  return {
    events: [],
    identities: 0,
    opened: 0,
    reopened: 0,
    resolved: 0,
    reassigned: 0,
    exceptionsExpired: 0,
    open: 0,
    errors: [],
  };
}

function emptyResult(rules: number): EvaluationResult {
  const { events: _, ...counts } = emptyVerdict();
  return { ...counts, rules, events: 0, workers: 0 };
}

/** Adds a page's counts to the evaluation's or another page's (its events are the caller's). */
export function addVerdict(result: Omit<PageVerdict, 'events'>, v: Omit<PageVerdict, 'events'>): void {
  result.identities += v.identities;
  result.opened += v.opened;
  result.reopened += v.reopened;
  result.resolved += v.resolved;
  result.reassigned += v.reassigned;
  result.exceptionsExpired += v.exceptionsExpired;
  result.open += v.open;
  for (const e of v.errors) if (result.errors.length < MAX_ERRORS) result.errors.push(e);
}

const MAX_ERRORS = 20;

/**
 * Runs every rule on every document of a page and compares what holds with the findings on
 * record: pure (no database), so a worker thread runs it as well as this one.
 */
export function judgePage(page: DocumentPage, judge: Judge): PageVerdict {
  const v = emptyVerdict();
  v.identities = page.ids.length;
  const { nobody } = judge;
  page.each((doc, findings) => {
    const holds = new Map<string, Holding>();
    let unrouted = false;
    // one context per document, its params swapped per rule (rules see nothing else)
    const ctx: RuleContext = { nhi: doc, now: judge.now, params: {} };
    for (const rule of judge.rules) {
      let hit = false;
      try {
        ctx.params = rule.params;
        hit = rule.test(ctx);
      } catch (e) {
        if (v.errors.length < MAX_ERRORS)
          v.errors.push({ rule: rule.id, identity: doc.id, message: (e as Error).message.split('\n')[0]! });
      }
      if (!hit) continue;
      const r = route(rule, doc);
      if (!r.assignee) unrouted = true;
      holds.set(rule.id, { rule, assignee: r.assignee, assignedRole: r.role });
    }
    // A finding nobody can be assigned: "nobody accountable" is itself a critical finding. Not
    // for a secret found in code (its unmanaged-credential finding says it has no owner) nor one
    // linked to a known credential (its owners are that credential's): the rule excludes both.
    if (
      unrouted &&
      nobody &&
      !holds.has(nobody.id) &&
      doc.status === 'active' &&
      !doc.unmanaged &&
      !doc.linked
    ) {
      holds.set(nobody.id, { rule: nobody, assignee: null, assignedRole: null });
    }
    const existing = new Map<string, FindingRow>();
    for (const f of findings) existing.set(f.rule, f);
    applyTransitions(v, doc, holds, existing, judge);
  });
  return v;
}

/** Events written by one evaluation after which PostgreSQL's statistics are refreshed. */
const ANALYZE_AFTER = 10_000;

/** Meta key: when the last full evaluation ran (open findings were all seen then). */
export const LAST_FULL_EVALUATION = 'policy.lastFullEvaluation';

/** When the last full evaluation ran, if one has. */
export async function lastFullEvaluation(db: Pick<Tx, 'selectFrom'>): Promise<string | undefined> {
  return (
    await db.selectFrom('meta').select('value').where('key', '=', LAST_FULL_EVALUATION).executeTakeFirst()
  )?.value;
}

function applyTransitions(
  v: PageVerdict,
  doc: NhiDocument,
  holds: Map<string, Holding>,
  /** This identity's findings by rule. */
  existing: Map<string, FindingRow>,
  judge: Judge,
): void {
  const { now, byId: rules } = judge;
  const { now: nowIso, sla, previousFull } = judge.settings;
  const result = v;
  const emit = (
    type: string,
    id: string,
    set: Record<string, unknown>,
    extra: Record<string, unknown> = {},
  ) =>
    v.events.push({
      type,
      subject: `finding:${id}`,
      identityId: doc.id,
      payload: { ...extra, set },
      effectiveAt: nowIso,
    });
  for (const [ruleId, h] of holds) {
    const key = `${ruleId}|${doc.id}`;
    const cur = existing.get(ruleId);
    const { rule } = h;
    const due = () => addDays(now, sla[rule.severity]);
    if (!cur) {
      emit('finding.opened', newId('fnd'), {
        naturalKey: key,
        rule: ruleId,
        identityId: doc.id,
        subjectName: doc.name,
        title: rule.title,
        severity: rule.severity,
        status: 'open',
        assignee: h.assignee,
        assignedRole: h.assignedRole,
        dueAt: due(),
        firstSeen: nowIso,
        lastSeen: nowIso,
        frameworks: rule.frameworks,
      });
      result.opened += 1;
      result.open += 1;
      continue;
    }
    if (cur.status === 'resolved') {
      emit('finding.reopened', cur.id, {
        status: 'open',
        resolvedAt: null,
        lastSeen: nowIso,
        dueAt: due(),
        assignee: h.assignee,
        assignedRole: h.assignedRole,
        title: rule.title,
        severity: rule.severity,
        frameworks: rule.frameworks,
      });
      result.reopened += 1;
      result.open += 1;
      continue;
    }
    if (cur.status === 'excepted') {
      if (cur.exception_expires_at && cur.exception_expires_at <= nowIso) {
        emit(
          'finding.exception-expired',
          cur.id,
          { status: 'open', exception: null, exceptionExpiresAt: null, lastSeen: nowIso, dueAt: due() },
          { exception: JSON.parse(cur.exception ?? 'null') as unknown },
        );
        result.exceptionsExpired += 1;
        result.open += 1;
      }
      continue;
    }
    result.open += 1;
    if (cur.assignee !== h.assignee || cur.assigned_role !== h.assignedRole) {
      emit(
        'finding.reassigned',
        cur.id,
        { assignee: h.assignee, assignedRole: h.assignedRole },
        { from: cur.assignee },
      );
      result.reassigned += 1;
    }
    const frameworks = judge.frameworks.get(ruleId);
    if (cur.title !== rule.title || cur.severity !== rule.severity || cur.frameworks !== frameworks) {
      emit('finding.changed', cur.id, {
        title: rule.title,
        severity: rule.severity,
        frameworks: rule.frameworks,
      });
    }
  }
  // Findings of evaluated rules whose condition cleared.
  for (const f of existing.values()) {
    if (holds.has(f.rule) || f.status === 'resolved') continue;
    if (!rules.has(f.rule)) continue; // a rule not loaded now says nothing either way
    // last seen: when an evaluation last found it, which a full evaluation records only once
    const lastSeen = previousFull && previousFull > f.last_seen ? previousFull : f.last_seen;
    emit('finding.resolved', f.id, { status: 'resolved', resolvedAt: nowIso, lastSeen });
    result.resolved += 1;
  }
}
