import { sql } from 'kysely';
import type { Store } from '../store/store.js';
import type { FindingsTable } from '../store/schema.js';
import type { InventoryDeps } from '../inventory/context.js';
import { parseTime } from '../inventory/context.js';
import { ConflictError, NotFoundError, ValidationError } from '../domain/errors.js';
import { loadCatalog } from './standards.js';
import type { Rule } from './rules.js';
import { evaluate, lastFullEvaluation, type EvaluateOptions, type EvaluationResult } from './evaluate.js';

/** A finding as `steward findings --json` prints it (stable field names). */
export interface FindingView {
  id: string;
  rule: string;
  title: string;
  severity: string;
  status: string;
  subject: { id: string; name: string | null };
  assignee: string | null;
  assignedRole: string | null;
  dueAt: string | null;
  firstSeen: string;
  lastSeen: string;
  resolvedAt: string | null;
  frameworks: Record<string, string[]>;
  exception: FindingException | null;
}

export interface FindingException {
  reason: string;
  compensating: string;
  approver: string;
  requester: string;
  expiresAt: string;
  grantedAt: string;
}

export interface FindingFilters {
  rule?: string;
  severity?: string;
  /** open | excepted | resolved | all (default open). */
  status?: string;
  /** The accountable person or team it is assigned to. */
  owner?: string;
  /** Assigned to the team or to one of its members. */
  team?: string;
  framework?: string;
  control?: string;
  limit?: number;
}

const SEVERITY_ORDER: Record<string, number> = { critical: 0, high: 1, medium: 2, low: 3 };

/** A finding as printed; `lastFull` is when the last full evaluation ran (it saw every open finding). */
export function toView(f: FindingsTable, lastFull?: string): FindingView {
  const held = f.status === 'open' || f.status === 'excepted';
  return {
    id: f.id,
    rule: f.rule,
    title: f.title,
    severity: f.severity,
    status: f.status,
    subject: { id: f.identity_id, name: f.subject_name },
    assignee: f.assignee,
    assignedRole: f.assigned_role,
    dueAt: f.due_at,
    firstSeen: f.first_seen,
    lastSeen: held && lastFull && lastFull > f.last_seen ? lastFull : f.last_seen,
    resolvedAt: f.resolved_at,
    frameworks: JSON.parse(f.frameworks ?? '{}') as Record<string, string[]>,
    exception: JSON.parse(f.exception ?? 'null') as FindingException | null,
  };
}

/** Canonical (framework, control) of a filter: CSF 1.1 ids resolve to their CSF 2.0 successors. */
function controlFilter(
  framework: string | undefined,
  control: string,
): { framework?: string; ids: string[] } {
  const catalog = loadCatalog();
  for (const fw of framework ? [framework] : ['nist-csf-2.0']) {
    const r = catalog.resolve(fw, control);
    if (!('error' in r)) return { framework: r.framework, ids: r.ids };
  }
  return framework ? { framework, ids: [control] } : { ids: [control] };
}

export async function listFindings(store: Store, f: FindingFilters = {}): Promise<FindingView[]> {
  const catalog = loadCatalog();
  if (f.framework && !catalog.frameworks.has(f.framework))
    throw new ValidationError(
      `--framework: expected one of ${[...catalog.frameworks.keys()].join(', ')}, got ${f.framework}`,
    );
  let q = store.db.selectFrom('findings').selectAll();
  const status = f.status ?? 'open';
  if (status !== 'all') q = q.where('status', '=', status);
  if (f.rule) q = q.where('rule', '=', f.rule);
  if (f.severity) q = q.where('severity', '=', f.severity);
  if (f.owner) q = q.where('assignee', '=', f.owner);
  if (f.team) {
    const team = f.team.startsWith('team:') ? f.team : `team:${f.team}`;
    const members = store.db.selectFrom('principals').select('id').where('team', '=', team);
    q = q.where((eb) => eb.or([eb('assignee', '=', team), eb('assignee', 'in', members)]));
  }
  const wanted = f.control ? controlFilter(f.framework, f.control) : undefined;
  const lastFull = await lastFullEvaluation(store.db);
  const rows = (await q.execute())
    .map((r) => toView(r, lastFull))
    .filter((v) => {
      if (f.framework && !v.frameworks[f.framework]) return false;
      if (wanted) {
        const fws = wanted.framework ? [wanted.framework] : Object.keys(v.frameworks);
        if (!fws.some((fw) => wanted.ids.some((id) => v.frameworks[fw]?.includes(id)))) return false;
      }
      return true;
    });
  rows.sort(
    (a, b) =>
      (SEVERITY_ORDER[a.severity] ?? 9) - (SEVERITY_ORDER[b.severity] ?? 9) ||
      (a.dueAt ?? '').localeCompare(b.dueAt ?? '') ||
      a.id.localeCompare(b.id),
  );
  return f.limit ? rows.slice(0, f.limit) : rows;
}

export interface ControlCoverage {
  id: string;
  title: string;
  rules: string[];
  open: number;
  excepted: number;
}

export interface FrameworkView {
  framework: string;
  name: string;
  version: string;
  controls: ControlCoverage[];
  coverage: { controls: number; withRules: number; withOpenFindings: number };
}

/** A framework's controls with the rules that check them and the findings open against them. */
export async function frameworkView(store: Store, rules: Rule[], framework: string): Promise<FrameworkView> {
  const catalog = loadCatalog();
  const fw = catalog.frameworks.get(framework === 'nist-csf-1.1' ? 'nist-csf-2.0' : framework);
  if (!fw)
    throw new ValidationError(
      `--framework: expected one of ${[...catalog.frameworks.keys()].join(', ')}, got ${framework}`,
    );
  const counts = new Map<string, { open: number; excepted: number }>();
  const rows = await store.db
    .selectFrom('findings')
    .select(['frameworks', 'status'])
    .where('status', 'in', ['open', 'excepted'])
    .execute();
  for (const r of rows) {
    const ids = (JSON.parse(r.frameworks ?? '{}') as Record<string, string[]>)[fw.id] ?? [];
    for (const id of ids) {
      const c = counts.get(id) ?? { open: 0, excepted: 0 };
      if (r.status === 'open') c.open += 1;
      else c.excepted += 1;
      counts.set(id, c);
    }
  }
  const controls = fw.controls
    .filter((c) => !c.mapsTo)
    .map((c): ControlCoverage => ({
      id: c.id,
      title: c.title,
      rules: rules.filter((r) => r.frameworks[fw.id]?.includes(c.id)).map((r) => r.id),
      open: counts.get(c.id)?.open ?? 0,
      excepted: counts.get(c.id)?.excepted ?? 0,
    }));
  return {
    framework: fw.id,
    name: fw.name,
    version: fw.version,
    controls,
    coverage: {
      controls: controls.length,
      withRules: controls.filter((c) => c.rules.length).length,
      withOpenFindings: controls.filter((c) => c.open).length,
    },
  };
}

export interface ExceptOptions {
  finding: string;
  reason: string;
  compensating: string;
  approver: string;
  expires: string;
  actor: string;
}

/**
 * Records an accepted risk: the finding stays on record as `excepted` until the exception
 * expires (the next evaluation then reopens it if the condition still holds). The approver
 * must be a known, active person or team, and neither the requester nor the finding's owner.
 */
export async function exceptFinding(deps: InventoryDeps, o: ExceptOptions): Promise<FindingView> {
  const now = deps.now();
  const f = await deps.store.db
    .selectFrom('findings')
    .selectAll()
    .where('id', '=', o.finding)
    .executeTakeFirst();
  if (!f) throw new NotFoundError(`no finding ${o.finding}`);
  if (f.status !== 'open')
    throw new ConflictError(`finding ${f.id} is ${f.status}; only an open finding can be excepted`);
  const problems: { field: string; message: string }[] = [];
  if (!o.reason.trim()) problems.push({ field: '--reason', message: 'expected why the risk is accepted' });
  if (!o.compensating.trim())
    problems.push({ field: '--compensating', message: 'expected the compensating control in place' });
  const approver = await deps.store.db
    .selectFrom('principals')
    .selectAll()
    .where((eb) => eb.or([eb('id', '=', o.approver), eb('email', '=', o.approver.replace(/^person:/, ''))]))
    .executeTakeFirst();
  if (!approver)
    problems.push({
      field: '--approver',
      message: `expected a person or team in the directory, got ${o.approver}`,
    });
  else if (approver.status === 'departed')
    problems.push({
      field: '--approver',
      message: `expected an active approver, got ${approver.id} who has departed`,
    });
  const approverRefs = approver
    ? [approver.id, approver.email ? `person:${approver.email}` : '']
    : [o.approver];
  if (approverRefs.includes(o.actor))
    problems.push({ field: '--approver', message: 'expected someone other than the requester (four eyes)' });
  if (f.assignee && approverRefs.includes(f.assignee))
    problems.push({
      field: '--approver',
      message: `expected someone other than the finding's owner ${f.assignee}`,
    });
  let expires = '';
  try {
    expires = parseTime(o.expires, '--expires');
    if (expires <= now.toISOString())
      problems.push({ field: '--expires', message: `expected a time in the future, got ${expires}` });
  } catch (e) {
    problems.push({ field: '--expires', message: (e as Error).message.replace(/^--expires: /, '') });
  }
  if (problems.length)
    throw new ValidationError(
      `exception for ${f.id} refused`,
      problems.map((p) => ({ file: 'steward except', ...p })),
    );
  const exception: FindingException = {
    reason: o.reason.trim(),
    compensating: o.compensating.trim(),
    approver: approver!.id,
    requester: o.actor,
    expiresAt: expires,
    grantedAt: now.toISOString(),
  };
  await deps.ledger.write({ actor: o.actor, reason: o.reason }, async (w) => {
    w.append([
      {
        type: 'finding.excepted',
        subject: `finding:${f.id}`,
        identityId: f.identity_id,
        payload: { set: { status: 'excepted', exception, exceptionExpiresAt: expires } },
        effectiveAt: now.toISOString(),
      },
    ]);
    await w.flush();
  });
  const after = await deps.store.db
    .selectFrom('findings')
    .selectAll()
    .where('id', '=', f.id)
    .executeTakeFirstOrThrow();
  return toView(after, await lastFullEvaluation(deps.store.db));
}

const META_ENABLED = 'policy.evaluated';

/** Whether findings are kept up to date (set by the first `steward evaluate`). */
export async function policyEnabled(store: Store): Promise<{ rules: string[]; policy?: string } | undefined> {
  const row = await store.db
    .selectFrom('meta')
    .select('value')
    .where('key', '=', META_ENABLED)
    .executeTakeFirst();
  return row ? (JSON.parse(row.value) as { rules: string[]; policy?: string }) : undefined;
}

export async function enablePolicy(
  store: Store,
  config: { rules: string[]; policy?: string },
): Promise<void> {
  const value = JSON.stringify(config);
  await store.db.deleteFrom('meta').where('key', '=', META_ENABLED).execute();
  await store.db.insertInto('meta').values({ key: META_ENABLED, value }).execute();
}

/**
 * The identities events after `sinceSeq` touched: those the events name, plus those whose
 * owners, sponsor, approver or vendor changed (a departure in the directory).
 */
export async function touchedIdentities(store: Store, sinceSeq: number): Promise<string[]> {
  const ids = new Set<string>();
  const principals = new Set<string>();
  const vendors = new Set<string>();
  const rows = await store.db
    .selectFrom('events')
    .select(['identity_id', 'subject', 'type'])
    .where('seq', '>', sinceSeq)
    .execute();
  for (const r of rows) {
    if (r.type.startsWith('finding.')) continue;
    if (r.identity_id) ids.add(r.identity_id);
    else if (r.subject.startsWith('person:') || r.subject.startsWith('team:')) principals.add(r.subject);
    else if (r.subject.startsWith('vendor:')) vendors.add(r.subject.slice('vendor:'.length));
  }
  const refs = [...principals];
  for (let i = 0; i < refs.length; i += 200) {
    const part = refs.slice(i, i + 200);
    // a person may be named by id or by email
    const emails = (
      await store.db.selectFrom('principals').select('email').where('id', 'in', part).execute()
    ).flatMap((p) => (p.email ? [`person:${p.email}`] : []));
    const names = [...part, ...emails];
    for (const r of await store.db
      .selectFrom('identities')
      .select('id')
      .where((eb) =>
        eb.or(
          [
            'business_owner',
            'technical_owner',
            'control_owner',
            'primary_team',
            'approver',
            'sponsor',
            'revocation_owner',
          ].map((c) => eb(c as 'business_owner', 'in', names)),
        ),
      )
      .execute())
      ids.add(r.id);
  }
  if (vendors.size) {
    for (const r of await store.db
      .selectFrom('identities')
      .select('id')
      .where('vendor', 'in', [...vendors])
      .execute())
      ids.add(r.id);
  }
  return [...ids];
}

/**
 * Incremental re-evaluation after a command: exactly the identities its events touched, when
 * findings are enabled for this install. Returns undefined when there was nothing to do.
 */
export async function reevaluateSince(
  deps: InventoryDeps,
  sinceSeq: number,
  opts: Omit<EvaluateOptions, 'ids'>,
): Promise<EvaluationResult | undefined> {
  const ids = await touchedIdentities(deps.store, sinceSeq);
  if (!ids.length) return undefined;
  return evaluate(deps, { ...opts, ids, reason: opts.reason ?? 'incremental policy evaluation' });
}

export interface Metrics {
  day: string;
  identities: number;
  /** Share of active NHIs whose business, technical and control owners, purpose and expiry or rotation policy are all set. */
  visibility: number;
  /** Share of active credentials with a rotation policy that are within it. */
  rotationCompliance: number;
  ownerless: number;
  /** Active credentials with no expiry, or valid for more than a year. */
  longLived: number;
  openFindings: { total: number; bySeverity: Record<string, number>; byOwasp: Record<string, number> };
}

const DAY_MS = 86_400_000;

/** Computes today's metrics and keeps them as the day's snapshot (the last computation of a day wins). */
export async function computeMetrics(deps: InventoryDeps): Promise<{ today: Metrics; history: Metrics[] }> {
  const { store } = deps;
  const now = deps.now();
  const db = store.db;
  const active = () => db.selectFrom('identities').where('status', '=', 'active');
  const count = async (q: ReturnType<typeof active>) =>
    Number((await q.select((eb) => eb.fn.countAll().as('n')).executeTakeFirst())?.n ?? 0);
  const identities = await count(active());
  const visible = await count(
    active()
      .where('business_owner', 'is not', null)
      .where('technical_owner', 'is not', null)
      .where('control_owner', 'is not', null)
      .where('purpose', 'is not', null)
      .where((eb) => eb.or([eb('expires_at', 'is not', null), eb('rotation_max_age', 'is not', null)])),
  );
  const ownerless = await count(
    active()
      .where('business_owner', 'is', null)
      .where('technical_owner', 'is', null)
      .where('control_owner', 'is', null)
      .where('primary_team', 'is', null),
  );
  const creds = await db
    .selectFrom('credentials as c')
    .innerJoin('identities as i', 'i.id', 'c.identity_id')
    .select([
      'c.issued_at',
      'c.last_rotated_at',
      'c.expires_at',
      'c.rotation_max_age',
      'i.rotation_max_age as identity_max_age',
    ])
    .where('c.status', '=', 'active')
    .where('i.status', '=', 'active')
    .execute();
  let withPolicy = 0;
  let compliant = 0;
  let longLived = 0;
  for (const c of creds) {
    const since = c.last_rotated_at ?? c.issued_at;
    const max = /^(\d+)([hdwy])$/.exec(c.rotation_max_age ?? c.identity_max_age ?? '');
    if (max && since) {
      withPolicy += 1;
      const days = Number(max[1]) * { h: 1 / 24, d: 1, w: 7, y: 365 }[max[2] as 'h' | 'd' | 'w' | 'y'];
      if (now.getTime() - Date.parse(since) <= days * DAY_MS) compliant += 1;
    }
    const from = c.issued_at ?? c.last_rotated_at;
    if (!c.expires_at || (from && Date.parse(c.expires_at) - Date.parse(from) > 365 * DAY_MS)) longLived += 1;
  }
  const open = await db
    .selectFrom('findings')
    .select(['severity', 'frameworks'])
    .where('status', '=', 'open')
    .execute();
  const bySeverity: Record<string, number> = { critical: 0, high: 0, medium: 0, low: 0 };
  const byOwasp: Record<string, number> = {};
  for (const f of open) {
    bySeverity[f.severity] = (bySeverity[f.severity] ?? 0) + 1;
    for (const id of (JSON.parse(f.frameworks ?? '{}') as Record<string, string[]>)['owasp-nhi-2025'] ?? [])
      byOwasp[id] = (byOwasp[id] ?? 0) + 1;
  }
  const round = (x: number) => Math.round(x * 10000) / 10000;
  const today: Metrics = {
    day: now.toISOString().slice(0, 10),
    identities,
    visibility: identities ? round(visible / identities) : 1,
    rotationCompliance: withPolicy ? round(compliant / withPolicy) : 1,
    ownerless,
    longLived,
    openFindings: { total: open.length, bySeverity, byOwasp },
  };
  await db.transaction().execute(async (tx) => {
    await tx.deleteFrom('metrics_daily').where('day', '=', today.day).execute();
    await tx
      .insertInto('metrics_daily')
      .values({ day: today.day, data: JSON.stringify(today), recorded_at: now.toISOString() })
      .execute();
  });
  const history = (await db.selectFrom('metrics_daily').select('data').orderBy('day').execute()).map(
    (r) => JSON.parse(r.data) as Metrics,
  );
  return { today, history };
}

/** Open findings count, for summaries. */
export async function openFindingCount(store: Store): Promise<number> {
  const r = await store.db
    .selectFrom('findings')
    .select(sql<number>`count(*)`.as('n'))
    .where('status', '=', 'open')
    .executeTakeFirst();
  return Number(r?.n ?? 0);
}
