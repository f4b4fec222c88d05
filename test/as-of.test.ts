import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { dialects, withSteward, testClock, type TestEnv } from './helpers/steward.js';
import { importManifests } from '../src/inventory/import-manifests.js';
import { importDirectory } from '../src/inventory/import-directory.js';
import { assignRole } from '../src/inventory/assign.js';
import { loadRecord, buildRecord } from '../src/inventory/record.js';
import { readEvents, verifyLedger } from '../src/ledger/verify.js';
import { rowToFields } from '../src/inventory/subjects.js';
import type { SubjectState } from '../src/inventory/fold.js';
import type { LedgerEvent } from '../src/ledger/event.js';
import type { ManifestIdentity } from '../src/importers/manifest/types.js';
import type { DirectoryRow } from '../src/importers/directory/types.js';

const PEOPLE = ['ann', 'ben', 'cat', 'dan'];
const TEAMS = ['red', 'blue'];
const NAMES = ['svc-a', 'svc-b', 'svc-c'];

/** A replay written independently of src/inventory/fold.ts: every event, in order, no indexes. */
function bruteForce(all: LedgerEvent[], asOf: string, knownAt: string): Map<string, SubjectState> {
  const states = new Map<string, SubjectState>();
  for (const e of all) {
    const visible = e.recordedAt <= knownAt && e.effectiveAt <= asOf && e.payload.set !== undefined;
    if (!visible) continue;
    const prior = states.get(e.subject);
    if (prior === undefined && !/\.created$/.test(e.type)) continue;
    const fields = { ...(prior?.fields ?? {}), ...e.payload.set };
    const provenance = { ...(prior?.provenance ?? {}) };
    for (const k of Object.keys(e.payload.set!)) {
      provenance[k] = {
        source: typeof e.payload.source === 'string' ? e.payload.source : null,
        actor: e.actor,
        at: e.effectiveAt,
        seq: e.seq,
      };
    }
    states.set(e.subject, {
      provenance,
      subject: e.subject,
      fields,
      firstRecordedAt: prior?.firstRecordedAt ?? e.recordedAt,
      effectiveSince: prior?.effectiveSince ?? e.effectiveAt,
      lastSeq: e.seq,
    });
  }
  return states;
}

type Step =
  | { op: 'manifest'; owners: [number, number, number]; names: boolean[]; cred: boolean }
  | {
      op: 'assign';
      name: number;
      role: 'business' | 'technical' | 'control' | 'primary';
      who: number;
      backdate: number;
    }
  | { op: 'depart'; who: number; leftDaysAgo: number }
  | { op: 'tick'; hours: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    op: fc.constant('manifest' as const),
    owners: fc.tuple(fc.nat(3), fc.nat(3), fc.nat(1)),
    names: fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
    cred: fc.boolean(),
  }),
  fc.record({
    op: fc.constant('assign' as const),
    name: fc.nat(2),
    role: fc.constantFrom('business' as const, 'technical' as const, 'control' as const, 'primary' as const),
    who: fc.nat(3),
    backdate: fc.nat(72),
  }),
  fc.record({ op: fc.constant('depart' as const), who: fc.nat(3), leftDaysAgo: fc.nat(10) }),
  fc.record({ op: fc.constant('tick' as const), hours: fc.integer({ min: 1, max: 48 }) }),
);

const dirRow = (r: Omit<DirectoryRow, 'file' | 'line'>, line: number): DirectoryRow => ({
  file: 'dir.csv',
  line,
  ...r,
});

async function runSteps(env: TestEnv, steps: Step[]): Promise<void> {
  const departed = new Map<number, string>();
  const directory = () => ({
    file: { path: 'dir.csv', sha256: 'x' },
    rows: [
      ...TEAMS.map((t, i) => dirRow({ type: 'team', id: t, name: t, status: 'active' }, i + 2)),
      ...PEOPLE.map((p, i) =>
        dirRow(
          {
            type: 'person',
            id: p,
            email: `${p}@x.io`,
            team: TEAMS[i % 2]!,
            status: departed.has(i) ? 'departed' : 'active',
            ...(departed.has(i) ? { leftAt: departed.get(i)! } : {}),
          },
          i + 4,
        ),
      ),
    ],
  });
  await importDirectory(env.steward, directory(), { actor: 'hr' });
  for (const s of steps) {
    env.clock.advance(60_000);
    if (s.op === 'tick') env.clock.advance(s.hours * 3600_000);
    else if (s.op === 'depart') {
      if (departed.has(s.who)) continue;
      departed.set(s.who, new Date(env.clock.now().getTime() - s.leftDaysAgo * 86400_000).toISOString());
      await importDirectory(env.steward, directory(), { actor: 'hr' });
    } else if (s.op === 'manifest') {
      const identities: ManifestIdentity[] = NAMES.filter((_, i) => s.names[i]).map((name, i) => ({
        file: '/virtual/m.yaml',
        line: 1 + i * 20,
        name,
        type: 'service-account',
        purpose: `purpose ${s.owners[0]}`,
        owners: {
          business: `person:${PEOPLE[s.owners[0]]}@x.io`,
          technical: `person:${PEOPLE[s.owners[1]]}@x.io`,
        },
        primaryTeam: `team:${TEAMS[s.owners[2]]}`,
        ...(s.cred ? { credentials: [{ id: `key-${name}`, kind: 'api-key', rotationMaxAge: '30d' }] } : {}),
        scope: [{ resource: `db:${name}`, actions: s.cred ? ['read'] : ['read', 'write'] }],
      }));
      await importManifests(
        env.steward,
        {
          identities,
          services: [],
          files: [{ path: '/virtual/m.yaml', sha256: 'x', documents: identities.length }],
        },
        { actor: 'ci', roots: ['/virtual/m.yaml'] },
      );
    } else {
      const row = await env.steward.store.db
        .selectFrom('identities')
        .select('id')
        .where('name', '=', NAMES[s.name]!)
        .executeTakeFirst();
      if (!row) continue;
      const to = s.role === 'primary' ? `team:${TEAMS[s.who % 2]}` : `person:${PEOPLE[s.who]}@x.io`;
      const first = await env.steward.store.db
        .selectFrom('events')
        .select('effective_at')
        .where('subject', '=', `identity:${row.id}`)
        .orderBy('seq')
        .executeTakeFirstOrThrow();
      const back = new Date(env.clock.now().getTime() - s.backdate * 3600_000).toISOString();
      await assignRole(env.steward, row.id, s.role, to, {
        actor: 'admin',
        reason: 'prop',
        effectiveAt: back > first.effective_at ? back : first.effective_at,
      });
    }
  }
}

describe.each(dialects)('as-of reconstruction on $name', (dialect) => {
  it('property: show --as-of/--known-at equals a brute-force replay of the whole ledger, and the projection equals the replay at now', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { minLength: 1, maxLength: 12 }),
        fc.array(
          fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true })),
          { minLength: 4, maxLength: 4 },
        ),
        async (steps, cuts) => {
          await withSteward(
            dialect,
            async (env) => {
              await runSteps(env, steps);
              const all: LedgerEvent[] = [];
              for await (const e of readEvents(env.steward.store)) all.push(e);
              expect((await verifyLedger(env.steward.store, env.steward.keys)).ok).toBe(true);
              const t0 = Date.parse('2025-12-20T00:00:00.000Z');
              const t1 = env.clock.now().getTime() + 3600_000;
              const ids = (await env.steward.store.db.selectFrom('identities').select('id').execute()).map(
                (r) => r.id,
              );
              const nowIso = new Date(t1).toISOString();
              for (const [a, k] of [...cuts, [1, 1] as [number, number]]) {
                const asOf = new Date(t0 + a * (t1 - t0)).toISOString();
                const knownAt = new Date(t0 + k * (t1 - t0)).toISOString();
                const states = bruteForce(all, asOf, knownAt);
                for (const id of ids) {
                  const got = await loadRecord(env.steward.store, id, asOf, knownAt);
                  const st = states.get(`identity:${id}`);
                  const want = st ? buildRecord(id, st, states, states, asOf, knownAt) : undefined;
                  expect(got).toEqual(want);
                }
              }
              // The projection is the replay at (now, now).
              const now = bruteForce(all, nowIso, nowIso);
              for (const row of await env.steward.store.db.selectFrom('identities').selectAll().execute()) {
                expect(rowToFields('identities', row as never)).toEqual(
                  expect.objectContaining(now.get(`identity:${row.id}`)!.fields),
                );
              }
              for (const row of await env.steward.store.db.selectFrom('principals').selectAll().execute()) {
                expect(rowToFields('principals', row as never)).toEqual(
                  expect.objectContaining(now.get(row.id)!.fields),
                );
              }
            },
            { clock: testClock('2026-01-01T00:00:00.000Z') },
          );
        },
      ),
      { numRuns: dialect.name === 'sqlite' ? 40 : 15 },
    );
  });
});
