/**
 * Benchmark — policy evaluation: the built-in rule pack over an estate of 1,000,000 identities
 * (each with owners from a 10,000-person directory, a credential and two grants; 1 in 7 with a
 * vendor, 1 in 10 with a gap such as a missing owner, an overdue rotation or a departed owner).
 *
 *   1. full evaluation, first run (every finding is opened: one ledger event each), against a
 *      baseline of building the same documents without evaluating any rule;
 *   2. full evaluation again with nothing changed (no events; lastSeen moves), an hour later: on
 *      PostgreSQL after the VACUUM (ANALYZE) that autovacuum would have run by then (not timed);
 *   3. incremental re-evaluation after one change (`assign`), p50/p99 over 200 changes.
 *
 * The projection tables are bulk-loaded directly (the events that would have produced them
 * are not generated: evaluation reads only the projection, and writes its findings to a ledger
 * that starts empty).
 */
import { sql } from 'kysely';
import { openStore } from '../src/store/store.js';
import { createLedger } from '../src/ledger/ledger.js';
import { loadKeys } from '../src/ledger/keys.js';
import { createProjector } from '../src/inventory/projector.js';
import { assignRole } from '../src/inventory/assign.js';
import { columnsOf } from '../src/inventory/subjects.js';
import { loadRules } from '../src/policy/rules.js';
import { evaluate } from '../src/policy/evaluate.js';
import { reevaluateSince } from '../src/policy/findings.js';
import { loadDirectory, loadDocuments } from '../src/policy/document.js';
import { openBulkWriter, type Row, type TableSpec } from './lib/bulk-writer.js';
import {
  freshDb,
  latencySummary,
  nowMs,
  progress,
  Rng,
  scaled,
  timed,
  type BenchContext,
  type Figure,
} from './lib/common.js';
import { makeDirectory, makeIdentity } from './lib/estate.js';

const DAY = 86_400_000;
const NOW = Date.parse('2026-11-01T00:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

function spec(table: 'identities' | 'credentials' | 'entitlements' | 'principals'): TableSpec {
  const columns = columnsOf(table);
  return { name: table, columns, pgTypes: columns.map((c) => (c === 'updated_seq' ? 'bigint' : 'text')) };
}

function row(table: TableSpec, values: Record<string, unknown>): Row {
  return table.columns.map((c) => {
    const v = values[c];
    if (v === undefined || v === null) return c === 'updated_seq' ? 0 : null;
    return typeof v === 'string' || typeof v === 'number' ? v : JSON.stringify(v);
  });
}

export async function benchPolicy(ctx: BenchContext): Promise<Figure[]> {
  const n = scaled(1_000_000, ctx.scale, 200);
  const db = await freshDb(ctx);
  const figures: Figure[] = [];
  const IDS = spec('identities');
  const CREDS = spec('credentials');
  const ENTS = spec('entitlements');
  const PRINCIPALS = spec('principals');
  try {
    await (await openStore(db.url)).close();
    const rng = new Rng(11);
    const dir = makeDirectory(rng, scaled(10_000, ctx.scale, 50), 500, 'directory.csv');
    const departed = new Set(dir.people.filter((_, i) => i % 50 === 7)); // 2% of people have left
    const gen = await timed(async () => {
      const w = await openBulkWriter(ctx.dialect, db.url);
      const restore = await w.deferIndexes(['identities', 'credentials', 'entitlements']);
      await w.begin();
      await w.insert(
        PRINCIPALS,
        dir.rows.map((r) => {
          const ref = r.type === 'team' ? `team:${r.id}` : `person:${r.email!}`;
          return row(PRINCIPALS, {
            id: ref,
            kind: r.type,
            directory_id: r.id,
            name: r.name,
            email: r.email,
            team: r.team ? `team:${r.team}` : null,
            status: departed.has(ref) ? 'departed' : 'active',
            left_at: departed.has(ref) ? iso(NOW - 40 * DAY) : null,
          });
        }),
      );
      let ids: Row[] = [];
      let creds: Row[] = [];
      let ents: Row[] = [];
      for (let i = 0; i < n; i++) {
        const s = makeIdentity(i, rng, dir);
        const id = `nhi_${i.toString(16).padStart(12, '0')}`;
        const gap = i % 10 === 3 ? i % 4 : -1; // 10%: one of four gaps
        const maxAge = Number(s.rotation.maxAge.slice(0, -1));
        const rotated = NOW - (gap === 1 ? maxAge + 20 : rng.int(Math.max(1, maxAge - 5))) * DAY;
        const firstSeen = NOW - rng.int(60) * DAY;
        ids.push(
          row(IDS, {
            id,
            natural_key: `ext:${s.externalId ?? s.name}`,
            name: s.name,
            kind: s.type,
            source: s.source,
            external_id: s.externalId ?? null,
            environment: s.environment,
            status: 'active',
            sensitivity: s.sensitivity,
            service: s.service,
            purpose: s.purpose,
            labels: s.labels,
            business_owner: gap === 0 ? null : s.owners.business,
            technical_owner: gap === 2 ? [...departed][i % departed.size] : s.owners.technical,
            control_owner: s.owners.control,
            primary_team: s.primaryTeam,
            approver: gap === 3 ? null : s.approval.approver,
            approved_at: gap === 3 ? null : s.approval.approvedAt,
            approval_ticket: gap === 3 ? null : s.approval.ticket,
            origin_kind: s.origin.kind,
            origin_ref: s.origin.ref,
            origin_merged_by: s.origin.mergedBy,
            vendor: s.vendor?.name ?? null,
            rotation_max_age: s.rotation.maxAge,
            expires_at: s.expires ?? null,
            revocation_triggers: s.revocation.triggers,
            revocation_owner: s.revocation.owner,
            revocation_runbook: s.revocation.runbook,
            manifest_file: `/estate/${s.service}.yaml`,
            source_created_at: iso(firstSeen),
            first_seen: iso(firstSeen),
            last_seen: iso(NOW - DAY),
            last_used_at: iso(NOW - rng.int(20) * DAY),
          }),
        );
        const c = s.credentials[0]!;
        creds.push(
          row(CREDS, {
            id: `cred_${i.toString(16).padStart(12, '0')}`,
            identity_id: id,
            natural_key: `ext:${s.externalId ?? s.name}|${c.id}`,
            kind: c.kind,
            external_id: c.id,
            status: 'active',
            issued_at: iso(rotated),
            last_rotated_at: iso(rotated),
            expires_at: iso(rotated + maxAge * DAY),
            rotation_max_age: c.rotationMaxAge,
            locations: c.locations,
            last_used_at: iso(NOW - rng.int(20) * DAY),
            first_seen: iso(firstSeen),
            last_seen: iso(NOW - DAY),
          }),
        );
        s.scope.forEach((g, k) =>
          ents.push(
            row(ENTS, {
              id: `ent_${i.toString(16).padStart(12, '0')}${k}`,
              identity_id: id,
              natural_key: `ext:${s.externalId ?? s.name}|manifest||${g.resource}`,
              resource: g.resource,
              actions: g.actions,
              granted_via: 'manifest',
              status: 'active',
              last_used_at: iso(NOW - rng.int(20) * DAY),
            }),
          ),
        );
        if (ids.length >= 5000) {
          await w.insert(IDS, ids);
          await w.insert(CREDS, creds);
          await w.insert(ENTS, ents);
          ids = [];
          creds = [];
          ents = [];
        }
        if (i % 100_000 === 0 && i) progress(`  generated ${i.toLocaleString('en')} identities`);
      }
      await w.insert(IDS, ids);
      await w.insert(CREDS, creds);
      await w.insert(ENTS, ents);
      await w.commit();
      await restore();
      // as autovacuum would have by the time anyone evaluates an estate this size
      if (ctx.dialect === 'postgres') await w.exec('ANALYZE');
      await w.close();
    });
    progress(`  estate of ${n.toLocaleString('en')} identities loaded in ${(gen.ms / 1000).toFixed(1)} s`);

    const store = await openStore(db.url);
    try {
      const keys = loadKeys(db.keysDir, { create: true });
      const ledger = createLedger({ store, keys, projector: createProjector(store) });
      let clock = NOW;
      const deps = { store, ledger, keys, now: () => new Date(clock) };
      const rules = loadRules();

      // Baseline: the documents alone (what evaluation must read), no rule evaluated.
      const base = await timed(async () => {
        const directory = await loadDirectory(store.db);
        let count = 0;
        for await (const docs of loadDocuments(store.db, { dir: directory })) count += docs.length;
        return count;
      });
      progress(`  documents alone: ${(base.ms / 1000).toFixed(1)} s`);

      const first = await timed(() =>
        evaluate(deps, {
          rules,
          actor: 'bench',
          onProgress: (d) => {
            if (d % 100_000 === 0) progress(`  evaluated ${d.toLocaleString('en')}`);
          },
        }),
      );
      progress(
        `  first evaluation: ${(first.ms / 1000).toFixed(1)} s, ${first.result.opened} findings opened (${rules.length} rules)`,
      );
      figures.push({
        benchmark: 'policy',
        dialect: ctx.dialect,
        name: `full evaluation, first run (${n.toLocaleString('en')} identities, ${rules.length} rules, ${first.result.workers} worker threads, ${first.result.opened.toLocaleString('en')} findings opened)`,
        value: first.ms / 1000,
        unit: 's',
        baseline: { name: 'building the documents alone', value: base.ms / 1000 },
        ratio: first.ms / base.ms,
        target: '< 30 s',
        met: first.ms < 30_000,
      });

      // An hour later, as the next evaluation runs: autovacuum has long since processed the
      // million rows the first run wrote. Here the next step would start at once and share the
      // two cores with it, so it is run now, not timed (SQLite has nothing of the kind).
      if (ctx.dialect === 'postgres') {
        const vacuum = await timed(async () => {
          await sql`VACUUM (ANALYZE) findings`.execute(store.db);
          await sql`VACUUM (ANALYZE) events`.execute(store.db);
        });
        progress(`  VACUUM (ANALYZE) of findings and events: ${(vacuum.ms / 1000).toFixed(1)} s (not timed)`);
      }
      clock += 3600_000;
      const again = await timed(() => evaluate(deps, { rules, actor: 'bench' }));
      figures.push({
        benchmark: 'policy',
        dialect: ctx.dialect,
        name: `full evaluation, nothing changed (${again.result.workers} worker threads, ${again.result.events} events)`,
        value: again.ms / 1000,
        unit: 's',
        baseline: { name: 'building the documents alone', value: base.ms / 1000 },
        ratio: again.ms / base.ms,
        target: '< 30 s',
        met: again.ms < 30_000,
      });

      // The same on the calling thread alone (no worker threads): what the workers add.
      clock += 3600_000;
      const single = await timed(() => evaluate(deps, { rules, actor: 'bench', workers: 0 }));
      figures.push({
        benchmark: 'policy',
        dialect: ctx.dialect,
        name: `full evaluation, nothing changed, one thread (--workers 0; ${single.result.events} events)`,
        value: single.ms / 1000,
        unit: 's',
        baseline: { name: 'building the documents alone', value: base.ms / 1000 },
        ratio: single.ms / base.ms,
        target: '< 30 s',
        met: single.ms < 30_000,
      });

      // Incremental: one change, then exactly the touched identity is re-evaluated.
      const samples: number[] = [];
      const people = dir.people.filter((p) => !departed.has(p));
      for (let k = 0; k < 220; k++) {
        clock += 60_000;
        const i = (k * 7919) % n;
        const id = `nhi_${i.toString(16).padStart(12, '0')}`;
        const before = (await ledger.head()).seq;
        await assignRole(deps, id, 'technical', people[k % people.length]!, {
          actor: 'bench',
          reason: 'bench',
        });
        const t0 = nowMs();
        await reevaluateSince(deps, before, { rules, actor: 'bench' });
        if (k >= 20) samples.push(nowMs() - t0);
      }
      const lat = latencySummary(samples);
      figures.push({
        benchmark: 'policy',
        dialect: ctx.dialect,
        name: 'incremental re-evaluation after one change, p50',
        value: lat.p50,
        unit: 'ms',
        target: '< 10 ms',
        met: lat.p50 < 10,
      });
      figures.push({
        benchmark: 'policy',
        dialect: ctx.dialect,
        name: 'incremental re-evaluation after one change, p99',
        value: lat.p99,
        unit: 'ms',
        target: '< 10 ms',
        met: lat.p99 < 10,
      });
    } finally {
      await store.close();
    }
  } finally {
    await db.cleanup();
  }
  return figures;
}
