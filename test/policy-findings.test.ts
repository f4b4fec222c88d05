import fs from 'node:fs';
import path from 'node:path';
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { dialects, withSteward, type TestEnv } from './helpers/steward.js';
import { tempFiles, DIRECTORY_CSV, nhi, PAYMENTS_SPEC } from './helpers/files.js';
import { cli } from './helpers/cli.js';
import { parseManifestPaths } from '../src/importers/manifest/parse.js';
import { parseDirectoryFile } from '../src/importers/directory/parse.js';
import { importManifests } from '../src/inventory/import-manifests.js';
import { importDirectory } from '../src/inventory/import-directory.js';
import { assignRole } from '../src/inventory/assign.js';
import { importDiscovery } from '../src/inventory/import-discovery.js';
import { loadRules } from '../src/policy/rules.js';
import { evaluate } from '../src/policy/evaluate.js';
import { exceptFinding, listFindings, reevaluateSince, computeMetrics } from '../src/policy/findings.js';
import { verifyLedger } from '../src/ledger/verify.js';
import { ValidationError } from '../src/domain/errors.js';
import type { ManifestIdentity } from '../src/importers/manifest/types.js';

/** A small rule set of our own, so that these tests do not move when the built-in pack grows. */
const RULES: Record<string, string> = {
  'no-technical-owner.yaml': `id: no-technical-owner
title: No technical owner
severity: high
description: Nobody operates it.
remediation: Assign a technical owner.
routeTo: technical
frameworks:
  owasp-nhi-2025: [NHI1]
  nist-csf-1.1: [PR.AC-1]
when: nhi.status == 'active' && !has(nhi.owners.technical)
examples:
  - { expect: true, doc: {} }
  - { expect: false, doc: { owners: { technical: person:bob@example.com } } }
`,
  'departed.yaml': `id: departed-owner
title: Owner departed
severity: critical
description: An owner left.
remediation: Reassign.
routeTo: business
frameworks:
  owasp-nhi-2025: [NHI1]
  nist-csf-2.0: [GV.RR-04]
when: >
  nhi.status == 'active' && [nhi.owners.business, nhi.owners.technical].exists(p, p.status == 'departed')
examples:
  - { expect: true, doc: { owners: { business: { ref: person:a@x.io, status: departed }, technical: person:b@x.io } } }
  - { expect: false, doc: { owners: { business: person:a@x.io, technical: person:b@x.io } } }
`,
  'nobody.yaml': `id: nobody-accountable
title: Nobody accountable
severity: critical
description: No owner of any kind.
remediation: Name owners.
routeTo: primary
frameworks:
  owasp-nhi-2025: [NHI1]
  nist-csf-2.0: [GV.RR-02]
when: >
  nhi.status == 'active' && !has(nhi.owners.business) && !has(nhi.owners.technical) &&
  !has(nhi.owners.control) && !has(nhi.primaryTeam)
examples:
  - { expect: true, doc: {} }
  - { expect: false, doc: { primaryTeam: team:payments } }
`,
};

function rules() {
  return loadRules({ builtin: false, paths: [tempFiles(RULES)] });
}

async function estate(env: TestEnv, spec = PAYMENTS_SPEC): Promise<string> {
  const dir = tempFiles({ 'directory.csv': DIRECTORY_CSV, 'm.yaml': nhi('payments-batch', spec) });
  await importDirectory(env.steward, await parseDirectoryFile(path.join(dir, 'directory.csv')), {
    actor: 'hr',
  });
  await importManifests(env.steward, await parseManifestPaths([path.join(dir, 'm.yaml')]), {
    actor: 'ci',
    roots: [dir],
  });
  return dir;
}

const ORPHAN_SPEC = 'type: api-key\npurpose: orphan\n';

describe.each(dialects)('findings on $name', (dialect) => {
  it('opens, routes, keeps, resolves and reopens findings as the facts change; every change is an event', async () => {
    await withSteward(dialect, async (env) => {
      const dir = await estate(env, PAYMENTS_SPEC.replace(/ {2}technical: person:bob@example.com\n/, ''));
      fs.writeFileSync(path.join(dir, 'o.yaml'), nhi('orphan-key', ORPHAN_SPEC));
      await importManifests(env.steward, await parseManifestPaths([dir]), { actor: 'ci', roots: [dir] });
      const list = rules();
      const first = await evaluate(env.steward, { rules: list, actor: 'policy' });
      expect(first).toMatchObject({ identities: 2, opened: 3, resolved: 0, open: 3 });

      const open = await listFindings(env.steward.store);
      const byKey = new Map(open.map((f) => [`${f.rule}|${f.subject.name}`, f]));
      // the missing technical owner routes to the rule's role, which is empty: the primary team takes it
      const payments = byKey.get('no-technical-owner|payments-batch')!;
      expect(payments).toMatchObject({
        assignee: 'team:payments',
        assignedRole: 'primary',
        severity: 'high',
      });
      expect(payments.frameworks).toEqual({
        'owasp-nhi-2025': ['NHI1'],
        'nist-csf-2.0': ['PR.AA-01', 'PR.AA-05'],
      });
      // high: 30 days
      expect(Date.parse(payments.dueAt!) - Date.parse(payments.firstSeen)).toBe(30 * 86_400_000);
      // the orphan: nobody to route to, and nobody accountable is itself critical
      expect(byKey.get('no-technical-owner|orphan-key')!.assignee).toBeNull();
      expect(byKey.get('nobody-accountable|orphan-key')).toMatchObject({
        severity: 'critical',
        assignee: null,
      });

      // nothing changed: no events, lastSeen moves
      env.clock.advance(3600_000);
      const again = await evaluate(env.steward, { rules: list, actor: 'policy' });
      expect(again.events).toBe(0);
      const seen = await listFindings(env.steward.store);
      expect(seen.every((f) => f.lastSeen === env.clock.now().toISOString())).toBe(true);
      expect(seen.find((f) => f.id === payments.id)!.firstSeen).toBe(payments.firstSeen);

      // fixed: resolved
      await assignRole(env.steward, 'payments-batch', 'technical', 'person:bob@example.com', {
        actor: 'alice',
        reason: 'bob runs it',
      });
      const fixed = await evaluate(env.steward, { rules: list, actor: 'policy' });
      expect(fixed).toMatchObject({ resolved: 1, opened: 0 });
      expect((await listFindings(env.steward.store, { status: 'resolved' })).map((f) => f.id)).toEqual([
        payments.id,
      ]);

      // the technical owner leaves: a new finding routed to the business owner
      env.clock.advance(3600_000);
      const csv = DIRECTORY_CSV.replace(
        'person,bob,Bob Brown,bob@example.com,platform,alice,active,',
        `person,bob,Bob Brown,bob@example.com,platform,alice,departed,${env.clock.now().toISOString()}`,
      );
      fs.writeFileSync(path.join(dir, 'directory.csv'), csv);
      await importDirectory(env.steward, await parseDirectoryFile(path.join(dir, 'directory.csv')), {
        actor: 'hr',
      });
      const left = await evaluate(env.steward, { rules: list, actor: 'policy' });
      expect(left.opened).toBe(1);
      const departed = (await listFindings(env.steward.store, { rule: 'departed-owner' }))[0]!;
      expect(departed).toMatchObject({ assignee: 'person:alice@example.com', assignedRole: 'business' });

      // back in the manifest without a technical owner: the resolved finding reopens (same id)
      await assignRole(env.steward, 'payments-batch', 'technical', 'person:dave@example.com', {
        actor: 'alice',
        reason: 'dave takes over',
      });
      await evaluate(env.steward, { rules: list, actor: 'policy' });
      await importManifests(env.steward, await parseManifestPaths([dir]), { actor: 'ci', roots: [dir] });
      const back = await evaluate(env.steward, { rules: list, actor: 'policy' });
      expect(back.reopened).toBe(1);
      const reopened = await listFindings(env.steward.store, { rule: 'no-technical-owner' });
      expect(reopened.map((f) => f.id)).toContain(payments.id);

      const types = await env.steward.store.db
        .selectFrom('events')
        .select('type')
        .where('subject', '=', `finding:${payments.id}`)
        .orderBy('seq')
        .execute();
      expect(types.map((t) => t.type)).toEqual(['finding.opened', 'finding.resolved', 'finding.reopened']);
      expect((await verifyLedger(env.steward.store, env.steward.keys)).ok).toBe(true);
    });
  });

  it('an exception needs four eyes and an expiry; when it expires and the condition holds, the finding reopens', async () => {
    await withSteward(dialect, async (env) => {
      const dir = await estate(env);
      fs.writeFileSync(
        path.join(dir, 'o.yaml'),
        nhi('shared-admin', 'type: service-account\nprimaryTeam: team:platform\n'),
      );
      await importManifests(env.steward, await parseManifestPaths([dir]), { actor: 'ci', roots: [dir] });
      await evaluate(env.steward, { rules: rules(), actor: 'policy' });
      const f = (await listFindings(env.steward.store, { rule: 'no-technical-owner' }))[0]!;
      expect(f.assignee).toBe('team:platform');
      const base = {
        finding: f.id,
        reason: 'shared technical account used by the on-call rota',
        compensating: 'session recording and a monthly review',
        expires: new Date(env.clock.now().getTime() + 7 * 86_400_000).toISOString(),
      };
      const refused = async (o: Parameters<typeof exceptFinding>[1]) => {
        const err = await exceptFinding(env.steward, o).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(ValidationError);
        return (err as ValidationError).message;
      };
      expect(
        await refused({ ...base, approver: 'person:carol@example.com', actor: 'person:carol@example.com' }),
      ).toContain('other than the requester');
      expect(
        await refused({ ...base, approver: 'team:platform', actor: 'person:bob@example.com' }),
      ).toContain("other than the finding's owner team:platform");
      expect(await refused({ ...base, approver: 'person:nobody@example.com', actor: 'x' })).toContain(
        'in the directory',
      );
      expect(
        await refused({ ...base, expires: '2020-01-01', approver: 'person:carol@example.com', actor: 'x' }),
      ).toContain('expected a time in the future');

      const ok = await exceptFinding(env.steward, {
        ...base,
        approver: 'person:carol@example.com',
        actor: 'person:bob@example.com',
      });
      expect(ok.status).toBe('excepted');
      expect(ok.exception).toMatchObject({
        approver: 'person:carol@example.com',
        requester: 'person:bob@example.com',
      });
      // while excepted: not open, not reopened
      expect(await listFindings(env.steward.store, { rule: 'no-technical-owner' })).toEqual([]);
      expect((await evaluate(env.steward, { rules: rules(), actor: 'policy' })).events).toBe(0);
      // it expires
      env.clock.advance(8 * 86_400_000);
      const r = await evaluate(env.steward, { rules: rules(), actor: 'policy' });
      expect(r.exceptionsExpired).toBe(1);
      const reopened = (await listFindings(env.steward.store, { rule: 'no-technical-owner' }))[0]!;
      expect(reopened).toMatchObject({ id: f.id, status: 'open', exception: null });
    });
  });

  it('a finding an incremental evaluation resolves was last seen by the last full evaluation, not by the one that opened it', async () => {
    await withSteward(dialect, async (env) => {
      await estate(env, PAYMENTS_SPEC.replace(/ {2}technical: person:bob@example.com\n/, ''));
      const list = rules();
      await evaluate(env.steward, { rules: list, actor: 'policy' });
      const opened = env.clock.now().toISOString();
      // a full evaluation that changes nothing records when it ran once, not on every finding
      env.clock.advance(3600_000);
      expect((await evaluate(env.steward, { rules: list, actor: 'policy' })).events).toBe(0);
      const full = env.clock.now().toISOString();
      expect(full > opened).toBe(true);
      env.clock.advance(3600_000);
      const before = (await env.steward.ledger.head()).seq;
      await assignRole(env.steward, 'payments-batch', 'technical', 'person:bob@example.com', {
        actor: 'alice',
        reason: 'bob runs it',
      });
      const r = await reevaluateSince(env.steward, before, { rules: list, actor: 'policy' });
      expect(r).toMatchObject({ identities: 1, resolved: 1, opened: 0 });
      const resolved = await listFindings(env.steward.store, { status: 'resolved' });
      expect(resolved.map((f) => [f.rule, f.lastSeen])).toEqual([['no-technical-owner', full]]);
    });
  });

  it('findings filter by framework and control (CSF 1.1 ids as aliases), team and owner; metrics count them', async () => {
    await withSteward(dialect, async (env) => {
      const dir = await estate(env, PAYMENTS_SPEC.replace(/ {2}technical: person:bob@example.com\n/, ''));
      fs.writeFileSync(path.join(dir, 'o.yaml'), nhi('orphan-key', ORPHAN_SPEC));
      await importManifests(env.steward, await parseManifestPaths([dir]), { actor: 'ci', roots: [dir] });
      await evaluate(env.steward, { rules: rules(), actor: 'policy' });
      const ids = async (f: Parameters<typeof listFindings>[1]) =>
        (await listFindings(env.steward.store, f)).map((x) => `${x.rule}|${x.subject.name}`).sort();
      expect(await ids({ framework: 'nist-csf-2.0', control: 'PR.AC-1' })).toEqual([
        'no-technical-owner|orphan-key',
        'no-technical-owner|payments-batch',
      ]);
      expect(await ids({ framework: 'nist-csf-2.0', control: 'PR.AC-01' })).toHaveLength(2);
      expect(await ids({ control: 'GV.RR-02' })).toEqual(['nobody-accountable|orphan-key']);
      expect(await ids({ team: 'payments' })).toEqual(['no-technical-owner|payments-batch']);
      expect(await ids({ severity: 'critical' })).toEqual(['nobody-accountable|orphan-key']);
      expect(await ids({ owner: 'team:payments' })).toEqual(['no-technical-owner|payments-batch']);
      const m = await computeMetrics(env.steward);
      expect(m.today).toMatchObject({
        identities: 2,
        ownerless: 1,
        openFindings: {
          total: 3,
          bySeverity: { critical: 1, high: 2, medium: 0, low: 0 },
          byOwasp: { NHI1: 3 },
        },
      });
      expect(m.today.visibility).toBe(0);
      expect(m.history).toHaveLength(1);
    });
  });

  it('incremental re-evaluation after any sequence of changes equals a full evaluation (property)', async () => {
    const PEOPLE = ['alice', 'bob', 'carol', 'dave'];
    const NAMES = ['svc-a', 'svc-b', 'svc-c'];
    type Step =
      | { op: 'manifest'; owners: [number, number]; names: boolean[]; withTech: boolean }
      | { op: 'assign'; name: number; role: 'business' | 'technical' | 'primary'; who: number }
      | { op: 'depart'; who: number }
      | { op: 'discover'; name: number; present: boolean };
    const step: fc.Arbitrary<Step> = fc.oneof(
      fc.record({
        op: fc.constant('manifest' as const),
        owners: fc.tuple(fc.nat(3), fc.nat(3)),
        names: fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
        withTech: fc.boolean(),
      }),
      fc.record({
        op: fc.constant('assign' as const),
        name: fc.nat(2),
        role: fc.constantFrom('business' as const, 'technical' as const, 'primary' as const),
        who: fc.nat(3),
      }),
      fc.record({ op: fc.constant('depart' as const), who: fc.nat(3) }),
      fc.record({ op: fc.constant('discover' as const), name: fc.nat(2), present: fc.boolean() }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 8 }), async (steps) => {
        await withSteward(dialect, async (env) => {
          const list = rules();
          const departed = new Set<number>();
          const directory = () => ({
            file: { path: 'dir.csv', sha256: 'x' },
            rows: [
              {
                file: 'dir.csv',
                line: 2,
                type: 'team' as const,
                id: 'payments',
                name: 'payments',
                status: 'active' as const,
              },
              ...PEOPLE.map((p, i) => ({
                file: 'dir.csv',
                line: i + 3,
                type: 'person' as const,
                id: p,
                email: `${p}@x.io`,
                team: 'payments',
                status: departed.has(i) ? ('departed' as const) : ('active' as const),
                ...(departed.has(i) ? { leftAt: '2026-01-01T00:00:00.000Z' } : {}),
              })),
            ],
          });
          await importDirectory(env.steward, directory(), { actor: 'hr' });
          await evaluate(env.steward, { rules: list, actor: 'policy' });
          for (const s of steps) {
            env.clock.advance(60_000);
            const before = (await env.steward.ledger.head()).seq;
            if (s.op === 'depart') {
              departed.add(s.who);
              await importDirectory(env.steward, directory(), { actor: 'hr' });
            } else if (s.op === 'manifest') {
              const identities: ManifestIdentity[] = NAMES.filter((_, i) => s.names[i]).map((name, i) => ({
                file: '/virtual/m.yaml',
                line: 1 + i * 20,
                name,
                type: 'service-account',
                externalId: `ext:${name}`,
                owners: {
                  business: `person:${PEOPLE[s.owners[0]]}@x.io`,
                  ...(s.withTech ? { technical: `person:${PEOPLE[s.owners[1]]}@x.io` } : {}),
                },
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
            } else if (s.op === 'discover') {
              await importDiscovery(
                env.steward,
                {
                  source: 'aws-iam',
                  scope: '1',
                  snapshot: true,
                  files: [{ path: 'x', sha256: 'y' }],
                  identities: s.present
                    ? [{ externalId: `ext:${NAMES[s.name]!}`, name: NAMES[s.name]!, kind: 'service-account' }]
                    : [],
                },
                { actor: 'scan' },
              );
            } else {
              const exists = await env.steward.store.db
                .selectFrom('identities')
                .select('id')
                .where('name', '=', NAMES[s.name]!)
                .executeTakeFirst();
              if (!exists) continue;
              const to = s.role === 'primary' ? 'team:payments' : `person:${PEOPLE[s.who]}@x.io`;
              await assignRole(env.steward, exists.id, s.role, to, { actor: 'a', reason: 'r' });
            }
            await reevaluateSince(env.steward, before, { rules: list, actor: 'policy' });
            // after every step, a full evaluation finds nothing the incremental one missed
            const full = await evaluate(env.steward, { rules: list, actor: 'policy' });
            expect(full.events, `after ${s.op}`).toBe(0);
          }
        });
      }),
      { numRuns: dialect.name === 'sqlite' ? 25 : 8 },
    );
  });
});

describe('rule files', () => {
  const load = (files: Record<string, string>) => {
    try {
      loadRules({ builtin: false, paths: [tempFiles(files)] });
      return '';
    } catch (e) {
      expect(e).toBeInstanceOf(ValidationError);
      return (e as ValidationError).message;
    }
  };
  const rule = (over: string) => RULES['no-technical-owner.yaml']!.replace(/^when: .*$/m, over);

  it('rejects a rule that does not compile, names a field that does not exist or an undeclared param, with file and line', () => {
    const bad = load({ 'r.yaml': rule("when: nhi.status == 'active' && nhi.owners.technial.status == 'x'") });
    expect(bad).toMatch(/r\.yaml:10: when: CEL: No such key: technial/);
    expect(load({ 'r.yaml': rule('when: nhi.status == ') })).toMatch(/r\.yaml:10: when: CEL: /);
    expect(load({ 'r.yaml': rule('when: nhi.name') })).toMatch(
      /expected a CEL expression of type bool, got string/,
    );
    expect(load({ 'r.yaml': rule('when: size(nhi.credentials) > params.max') })).toMatch(
      /params\.max is not declared in params/,
    );
  });

  it('rejects unknown frameworks and controls, unknown fields, and rules without both kinds of example', () => {
    expect(load({ 'r.yaml': RULES['no-technical-owner.yaml']!.replace('[NHI1]', '[NHI11]') })).toMatch(
      /r\.yaml:8: frameworks\.owasp-nhi-2025\.0: expected a control id of owasp-nhi-2025/,
    );
    expect(
      load({ 'r.yaml': RULES['no-technical-owner.yaml']!.replace('owasp-nhi-2025', 'owasp-2099') }),
    ).toMatch(/expected a framework id from the catalog/);
    expect(load({ 'r.yaml': RULES['no-technical-owner.yaml'] + 'owner: me\n' })).toMatch(
      /r\.yaml:\d+: owner: unknown field/,
    );
    expect(
      load({
        'r.yaml': RULES['no-technical-owner.yaml']!.replace(
          '{ expect: false, doc: {',
          '{ expect: true, doc: {',
        ),
      }),
    ).toMatch(/one example with expect: true and one with expect: false/);
    expect(
      load({ 'r.yaml': RULES['no-technical-owner.yaml']!.replace('doc: {} }', 'doc: { ownerz: 1 } }') }),
    ).toMatch(/examples\.0\.doc: ownerz: no such field/);
    expect(
      load({ 'a.yaml': RULES['no-technical-owner.yaml']!, 'b.yaml': RULES['no-technical-owner.yaml']! }),
    ).toMatch(/expected a unique rule id, got no-technical-owner again/);
  });

  it("`steward rules test` runs an install's rules like unit tests and fails on a wrong example", async () => {
    const good = tempFiles(RULES);
    const dir = tempFiles({});
    const env = { db: path.join(dir, 's.db'), keys: path.join(dir, 'keys') };
    const ok = await cli(['rules', 'test', '--only-own', '--rules', good, '--json'], env);
    expect(ok.code).toBe(0);
    expect(ok.json<{ rules: number; examples: number; failed: number }>()).toMatchObject({
      rules: 3,
      examples: 6,
      failed: 0,
    });
    const wrong = tempFiles({
      'r.yaml': RULES['no-technical-owner.yaml']!.replace(
        '{ expect: false, doc: { owners',
        '{ expect: false, doc: { status: active, owners',
      ).replace('technical: person:bob@example.com } } }', 'business: person:bob@example.com } } }'),
    });
    const bad = await cli(['rules', 'test', '--only-own', '--rules', wrong], env);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(
      /FAIL no-technical-owner \(.*r\.yaml:\d+\) example 2: expected false, got true/,
    );
  });
});
