/**
 * Benchmark 3 — `show --as-of` latency: a ledger of 10,000,000 events over 1,000,000 identities
 * (written directly, hash-chained, in big multi-row transactions), then loadRecord for 2,000 random
 * identities at random as-of / known-at times, against a primary-key lookup of the identity row.
 */
import { canonicalJson, GENESIS_HASH, hashEvent, type EventPayload } from '../src/ledger/event.js';
import { createLedger } from '../src/ledger/ledger.js';
import { loadKeys } from '../src/ledger/keys.js';
import { verifyLedger } from '../src/ledger/verify.js';
import { loadRecord } from '../src/inventory/record.js';
import { columnsOf, encodeValue, toColumn } from '../src/inventory/subjects.js';
import { openStore } from '../src/store/store.js';
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
import { makeDirectory, makeIdentity, type IdentitySpec } from './lib/estate.js';

const EVENTS: TableSpec = {
  name: 'events',
  columns: [
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
  ],
  pgTypes: ['bigint', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'text'],
};
const IDENTITY_COLUMNS = columnsOf('identities');
const IDENTITIES: TableSpec = {
  name: 'identities',
  columns: IDENTITY_COLUMNS,
  pgTypes: IDENTITY_COLUMNS.map((c) => (c === 'updated_seq' ? 'bigint' : 'text')),
};

const DAY = 86_400_000;
const START = Date.parse('2024-12-01T00:00:00Z');
const END = Date.parse('2026-11-01T00:00:00Z');
const EVENTS_PER_RUN = 10_000; // one simulated write transaction (an import, a sync …)
const EVENTS_PER_COMMIT = 250_000; // generator transaction size
const QUERIES = 2_000;
const WARMUP = 50;

interface GenEvent {
  type: string;
  subject: string;
  identityId: string | null;
  payload: EventPayload;
  effectiveAt: string;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The fields an import writes for a new identity (as importManifests' `desired`). */
function creationFields(s: IdentitySpec, file: string): Record<string, unknown> {
  return {
    naturalKey: s.externalId ? `ext:${s.externalId}` : `name:${s.name}`,
    name: s.name,
    kind: s.type,
    source: s.source,
    externalId: s.externalId ?? null,
    environment: s.environment,
    status: 'active',
    sensitivity: s.sensitivity,
    service: s.service,
    purpose: s.purpose,
    labels: s.labels,
    businessOwner: s.owners.business,
    technicalOwner: s.owners.technical,
    controlOwner: s.owners.control,
    primaryTeam: s.primaryTeam,
    sharedWith: null,
    approver: s.approval.approver,
    approvedAt: s.approval.approvedAt,
    approvalTicket: s.approval.ticket,
    originKind: s.origin.kind,
    originRef: s.origin.ref,
    originMergedBy: s.origin.mergedBy,
    vendor: s.vendor?.name ?? null,
    rotationMaxAge: s.rotation.maxAge,
    expiresAt: s.expires ?? null,
    revocationTriggers: s.revocation.triggers,
    revocationOwner: s.revocation.owner,
    revocationRunbook: s.revocation.runbook,
    sponsor: null,
    manifestFile: file,
  };
}

export async function benchAsOf(ctx: BenchContext): Promise<Figure[]> {
  const totalEvents = scaled(10_000_000, ctx.scale, 1000);
  const identities = scaled(1_000_000, ctx.scale, 100);
  const db = await freshDb(ctx);
  const figures: Figure[] = [];
  try {
    // Migrate (creating every index the migrations define), then write around the ledger.
    await (await openStore(db.url)).close();
    const keys = loadKeys(db.keysDir, { create: true });
    const rng = new Rng(3);
    const dir = makeDirectory(rng, scaled(10_000, ctx.scale, 40), 500, 'directory.csv');
    const w = await openBulkWriter(ctx.dialect, db.url);

    const ids: string[] = new Array<string>(identities);
    const creds: string[] = new Array<string>(identities);
    const ents: string[] = new Array<string>(identities * 2);
    const createdEff = new Float64Array(identities);
    const createdRec = new Float64Array(identities);
    const perIdentity = new Uint32Array(identities);
    let created = 0;
    let indexSeconds = 0;

    let seq = 0;
    let prev = GENESIS_HASH;
    let inCommit = 0;
    let pendingEvents: Row[] = [];
    let pendingIdentities: Row[] = [];
    const runs = Math.max(1, Math.ceil(totalEvents / EVENTS_PER_RUN));
    const recordedAtOf = (s: number) =>
      iso(START + Math.floor(((s - 1) / EVENTS_PER_RUN) * ((END - START) / runs)));
    const actors = ['import:manifest', 'import:aws-iam', 'person:alice.smith0@example.com', 'sync:github'];

    const flushPending = async () => {
      if (pendingEvents.length) await w.insert(EVENTS, pendingEvents);
      if (pendingIdentities.length) await w.insert(IDENTITIES, pendingIdentities);
      pendingEvents = [];
      pendingIdentities = [];
    };
    const emit = async (e: GenEvent): Promise<{ seq: number; recordedAt: string }> => {
      seq += 1;
      const recordedAt = recordedAtOf(seq);
      const runNo = Math.floor((seq - 1) / EVENTS_PER_RUN);
      const actor = actors[runNo % actors.length]!;
      const reason = `bench run ${runNo}`;
      const payloadJson = canonicalJson(e.payload);
      const input = {
        seq,
        type: e.type,
        subject: e.subject,
        identityId: e.identityId,
        actor,
        reason,
        effectiveAt: e.effectiveAt,
        recordedAt,
        prevHash: prev,
        payloadJson,
      };
      const hash = hashEvent(input);
      pendingEvents.push([
        seq,
        e.type,
        e.subject,
        e.identityId,
        payloadJson,
        actor,
        reason,
        e.effectiveAt,
        recordedAt,
        prev,
        hash,
      ]);
      prev = hash;
      inCommit += 1;
      if (pendingEvents.length >= 10_000) await flushPending();
      if (inCommit >= EVENTS_PER_COMMIT) {
        await flushPending();
        await w.commit();
        await w.begin();
        inCommit = 0;
      }
      return { seq, recordedAt };
    };

    const gen = await timed(async () => {
      const restoreIndexes = await w.deferIndexes(['events', 'identities']);
      await w.begin();
      // The directory, services and vendors, as a directory import and a catalog import would.
      const t0 = iso(START - DAY);
      for (const r of dir.rows) {
        const ref = r.type === 'team' ? `team:${r.id}` : `person:${r.email!}`;
        await emit({
          type: 'principal.created',
          subject: ref,
          identityId: null,
          payload: {
            set: {
              kind: r.type,
              directoryId: r.id,
              name: r.name ?? null,
              email: r.email ?? null,
              team: r.team ? `team:${r.team}` : null,
              manager: r.manager ? `person:${r.manager}` : null,
              status: 'active',
              leftAt: null,
            },
          },
          effectiveAt: t0,
        });
      }
      for (let s = 0; s < 211 * 15; s++) {
        const name = `${['payments', 'ledger', 'identity', 'search', 'checkout', 'data', 'platform', 'security', 'mobile', 'growth', 'billing', 'infra', 'ml', 'support', 'risk'][s % 15]!}-svc-${s % 211}`;
        await emit({
          type: 'service.created',
          subject: `service:${name}`,
          identityId: null,
          payload: {
            set: { name, owner: dir.teams[s % dir.teams.length]!, system: null, description: null },
          },
          effectiveAt: t0,
        });
      }
      for (const v of [
        'datadog',
        'snowflake',
        'stripe',
        'twilio',
        'pagerduty',
        'github',
        'okta',
        'sentry',
        'segment',
        'salesforce',
      ]) {
        await emit({
          type: 'vendor.created',
          subject: `vendor:${v}`,
          identityId: null,
          payload: {
            set: {
              name: v,
              contractingOwner: dir.people[v.length]!,
              contractEnds: '2027-06-30T00:00:00.000Z',
            },
          },
          effectiveAt: t0,
        });
      }

      // Identities appear over time (4 events each); updates land on identities that exist.
      const tick = Date.now();
      let nextReport = 500_000;
      while (seq < totalEvents || created < identities) {
        // A creation step writes 4 events, an update step 1: creation steps are drawn at the rate
        // that spreads the remaining creations evenly over the remaining history.
        const remainingCreations = identities - created;
        const remainingUpdates = Math.max(totalEvents - seq - remainingCreations * 4, 0);
        const createNow =
          created === 0 ||
          remainingUpdates === 0 ||
          rng.next() < remainingCreations / (remainingCreations + remainingUpdates);
        if (createNow && remainingCreations > 0) {
          const i = created;
          const id = `nhi_${rng.hex(20)}`;
          const spec = makeIdentity(i, rng, dir);
          const recordedAt = recordedAtOf(seq + 1);
          const eff = Date.parse(recordedAt) - rng.int(2 * DAY);
          const effectiveAt = iso(eff);
          const fields = creationFields(spec, `/srv/manifests/nhi-${String(i % 100).padStart(3, '0')}.yaml`);
          const c = await emit({
            type: 'identity.created',
            subject: `identity:${id}`,
            identityId: id,
            payload: { set: fields },
            effectiveAt,
          });
          const row: Record<string, unknown> = {};
          for (const col of IDENTITY_COLUMNS) row[col] = null;
          for (const [k, v] of Object.entries(fields)) row[toColumn(k)] = encodeValue(toColumn(k), v);
          Object.assign(row, { id, first_seen: c.recordedAt, last_seen: c.recordedAt, updated_seq: c.seq });
          pendingIdentities.push(IDENTITY_COLUMNS.map((col) => row[col] as string | number | null));

          const cred = spec.credentials[0]!;
          const credId = `cred_${rng.hex(20)}`;
          const idKey = String(fields.naturalKey);
          await emit({
            type: 'credential.created',
            subject: `credential:${credId}`,
            identityId: id,
            payload: {
              set: {
                identityId: id,
                naturalKey: `${idKey}|${cred.id}`,
                kind: cred.kind,
                externalId: cred.id,
                status: 'active',
                issuedAt: cred.issuedAt,
                lastRotatedAt: cred.lastRotatedAt,
                expiresAt: null,
                rotationMaxAge: cred.rotationMaxAge,
                locations: cred.locations,
              },
            },
            effectiveAt,
          });
          for (let k = 0; k < 2; k++) {
            const sc = spec.scope[k]!;
            const entId = `ent_${rng.hex(20)}`;
            ents[i * 2 + k] = entId;
            await emit({
              type: 'entitlement.created',
              subject: `entitlement:${entId}`,
              identityId: id,
              payload: {
                set: {
                  identityId: id,
                  naturalKey: `${idKey}|${sc.resource}`,
                  resource: sc.resource,
                  actions: [...sc.actions].sort(),
                  grantedVia: 'manifest',
                  grantedAt: spec.approval.approvedAt,
                  approvalRef: spec.approval.ticket,
                  status: 'active',
                },
              },
              effectiveAt,
            });
          }
          ids[i] = id;
          creds[i] = credId;
          createdEff[i] = eff;
          createdRec[i] = Date.parse(c.recordedAt);
          perIdentity[i] = 4;
          created += 1;
        } else {
          const i = rng.int(created);
          const id = ids[i]!;
          const effectiveAt = iso(Math.max(createdEff[i]!, Date.parse(recordedAtOf(seq + 1)) - rng.int(DAY)));
          const roll = rng.next();
          let e: GenEvent;
          if (roll < 0.3) {
            const role = rng.pick(['business', 'technical', 'control'] as const);
            e = {
              type: 'owner.assigned',
              subject: `identity:${id}`,
              identityId: id,
              payload: { role, set: { [`${role}Owner`]: rng.pick(dir.people) } },
              effectiveAt,
            };
          } else if (roll < 0.4) {
            e = {
              type: 'owner.assigned',
              subject: `identity:${id}`,
              identityId: id,
              payload: { role: 'primary', set: { primaryTeam: rng.pick(dir.teams) } },
              effectiveAt,
            };
          } else if (roll < 0.6) {
            const set =
              rng.next() < 0.5
                ? {
                    purpose: `Updated purpose ${rng.hex(6)}`,
                    sensitivity: rng.pick(['critical', 'high', 'medium', 'low']),
                  }
                : {
                    labels: {
                      app: `app-${rng.int(500)}`,
                      tier: rng.pick(['frontend', 'backend', 'batch']),
                      cost: `cc-${rng.int(90)}`,
                    },
                  };
            e = {
              type: 'identity.changed',
              subject: `identity:${id}`,
              identityId: id,
              payload: { set },
              effectiveAt,
            };
          } else if (roll < 0.85) {
            e = {
              type: 'credential.changed',
              subject: `credential:${creds[i]!}`,
              identityId: id,
              payload: { set: { lastRotatedAt: effectiveAt, fingerprint: `hmac-sha256:${rng.hex(64)}` } },
              effectiveAt,
            };
          } else {
            e = {
              type: 'entitlement.changed',
              subject: `entitlement:${ents[i * 2 + rng.int(2)]!}`,
              identityId: id,
              payload: { set: { actions: [rng.pick(['read', 'write', 'list']), 'sqs:SendMessage'].sort() } },
              effectiveAt,
            };
          }
          await emit(e);
          perIdentity[i] = perIdentity[i]! + 1;
        }
        if (seq >= nextReport) {
          nextReport += 500_000;
          const rate = seq / ((Date.now() - tick) / 1000);
          progress(
            `${ctx.dialect}: generated ${seq.toLocaleString('en-US')}/${totalEvents.toLocaleString('en-US')} events, ${created.toLocaleString('en-US')} identities, ${Math.round(rate).toLocaleString('en-US')} events/s, ETA ${Math.round((totalEvents - seq) / rate)} s`,
          );
        }
      }
      await flushPending();
      await w.exec('UPDATE ledger_head SET seq = ?, hash = ?, updated_at = ? WHERE id = 1', [
        seq,
        prev,
        recordedAtOf(seq),
      ]);
      await w.commit();
      progress(`${ctx.dialect}: ${seq.toLocaleString('en-US')} events written; building the indexes`);
      const ix = await timed(restoreIndexes);
      indexSeconds = ix.ms / 1000;
      // What autovacuum does after a bulk load anyway (statistics, visibility map, hint bits);
      // done here so that it does not run during the measurement.
      if (ctx.dialect === 'postgres') await w.exec('VACUUM (ANALYZE) events, identities');
      await w.close();
    });
    progress(
      `${ctx.dialect}: generated ${seq.toLocaleString('en-US')} events in ${(gen.ms / 1000).toFixed(0)} s`,
    );

    const store = await openStore(db.url);
    try {
      const ledger = createLedger({ store, keys, projector: async () => {} });
      await ledger.checkpoint();
      let verified: string | undefined;
      if (ctx.verify) {
        const v = await timed(() => verifyLedger(store, keys));
        if (!v.result.ok)
          throw new Error(`generated ledger does not verify: ${JSON.stringify(v.result.firstBad)}`);
        verified = `verifyLedger ok in ${(v.ms / 1000).toFixed(1)} s`;
        progress(`${ctx.dialect}: ${verified}`);
      }

      // Random identities at random (as-of, known-at) cuts after they were recorded.
      const qrng = new Rng(7);
      const sample = (n: number) =>
        Array.from({ length: n }, () => {
          const i = qrng.int(created);
          const knownAt = createdRec[i]! + qrng.next() * (END - createdRec[i]!);
          const asOf = createdEff[i]! + qrng.next() * (knownAt - createdEff[i]!);
          return { i, id: ids[i]!, asOf: iso(asOf), knownAt: iso(knownAt) };
        });
      const warm = sample(WARMUP);
      const queries = sample(QUERIES);

      const pk = (id: string) =>
        store.db.selectFrom('identities').selectAll().where('id', '=', id).executeTakeFirst();
      // Interleaved, so both see the same cache state and the same background load.
      for (const q of warm) {
        await pk(q.id);
        await loadRecord(store, q.id, q.asOf, q.knownAt);
      }
      const pkMs: number[] = [];
      const recMs: number[] = [];
      let found = 0;
      for (const q of queries) {
        let t = nowMs();
        const row = await pk(q.id);
        pkMs.push(nowMs() - t);
        if (!row) throw new Error(`identity row ${q.id} missing`);
        t = nowMs();
        const r = await loadRecord(store, q.id, q.asOf, q.knownAt);
        recMs.push(nowMs() - t);
        if (r) found += 1;
      }
      const rec = latencySummary(recMs);
      const base = latencySummary(pkMs);
      const sampledEvents = queries.map((q) => perIdentity[q.i]!);
      const estateNote = `${seq.toLocaleString('en-US')} events, ${created.toLocaleString('en-US')} identities; sampled identities have ${Math.min(...sampledEvents)}–${Math.max(...sampledEvents)} own events (mean ${(sampledEvents.reduce((a, b) => a + b, 0) / sampledEvents.length).toFixed(1)}); ${found}/${queries.length} records existed at the cut`;
      const fig = (f: Omit<Figure, 'benchmark' | 'dialect'>) =>
        figures.push({ benchmark: 'show --as-of', dialect: ctx.dialect, ...f });
      fig({
        name: `loadRecord p50 (${queries.length} random identities/cuts)`,
        unit: 'ms',
        value: rec.p50,
        baseline: { name: 'identity row by primary key', value: base.p50 },
        ratio: rec.p50 / base.p50,
        note: estateNote,
      });
      fig({
        name: 'loadRecord p99',
        unit: 'ms',
        value: rec.p99,
        baseline: { name: 'identity row by primary key', value: base.p99 },
        ratio: rec.p99 / base.p99,
        target: 'p99 < 10 ms',
        met: rec.p99 < 10,
      });
      fig({
        name: 'loadRecord max',
        unit: 'ms',
        value: rec.max,
        baseline: { name: 'identity row by primary key', value: base.max },
        ratio: rec.max / base.max,
      });
      fig({
        name: 'loadRecord mean',
        unit: 'ms',
        value: rec.mean,
        baseline: { name: 'identity row by primary key', value: base.mean },
        ratio: rec.mean / base.mean,
      });
      fig({
        name: `generate the ledger (${seq.toLocaleString('en-US')} events, direct multi-row inserts)`,
        unit: 'events/s',
        value: seq / (gen.ms / 1000),
        note: `${(gen.ms / 1000).toFixed(0)} s, of which ${indexSeconds.toFixed(0)} s building the secondary indexes after the load; database ${((await db.size()) / 1e9).toFixed(2)} GB${verified ? `; ${verified}` : ''}`,
      });
    } finally {
      await store.close();
    }
  } finally {
    await db.cleanup();
  }
  return figures;
}
