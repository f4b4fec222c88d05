import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { describe, it, expect } from 'vitest';
import { sql } from 'kysely';
import { dialects } from './helpers/steward.js';
import { cli } from './helpers/cli.js';
import { tempFiles, DIRECTORY_CSV, nhi, PAYMENTS_SPEC } from './helpers/files.js';
import { openStore } from '../src/store/store.js';

const EXAMPLES = path.resolve('examples');

describe.each(dialects)('CLI on $name', (dialect) => {
  const setup = async () => {
    const db = await dialect.freshUrl();
    const keys = fs.mkdtempSync(path.join(os.tmpdir(), 'steward-keys-'));
    return { db, keys, done: () => dialect.cleanup(db) };
  };

  it('init, import the examples, list, show, history, assign, summary, ledger verify/export', async () => {
    const env = await setup();
    try {
      expect((await cli(['init', '--json'], env)).json()).toMatchObject({ events: 0, dialect: dialect.name });
      const dir = await cli(['import', 'directory', path.join(EXAMPLES, 'directory.csv'), '--json'], env);
      expect(dir.code).toBe(0);
      expect(dir.json<{ people: { new: number } }>().people.new).toBeGreaterThan(5);
      const man = await cli(
        [
          'import',
          'manifest',
          path.join(EXAMPLES, 'manifests'),
          path.join(EXAMPLES, 'catalog-info.yaml'),
          '--json',
        ],
        env,
      );
      expect(man.code, man.stderr).toBe(0);
      const imported = man.json<{ identities: { new: number } }>();
      expect(imported.identities.new).toBeGreaterThanOrEqual(8);

      const list = await cli(['identities', '--json'], env);
      const rows = list.json<Record<string, unknown>[]>();
      expect(rows).toHaveLength(imported.identities.new);
      for (const k of [
        'id',
        'name',
        'kind',
        'source',
        'externalId',
        'environment',
        'status',
        'owners',
        'primaryTeam',
        'approver',
        'purpose',
      ]) {
        expect(rows[0]).toHaveProperty(k);
      }
      expect(Object.keys(rows[0]!.owners as object).sort()).toEqual(['business', 'control', 'technical']);
      const missing = await cli(['identities', '--missing', 'business', '--json'], env);
      const noBusiness = missing.json<{ name: string; owners: { business: null } }[]>();
      expect(noBusiness.length).toBeGreaterThan(0);
      for (const r of noBusiness) expect(r.owners.business).toBeNull();

      const target = noBusiness[0]!;
      const human = await cli(['show', target.name], env);
      expect(human.code).toBe(0);
      expect(human.stdout).toContain('business owner');
      expect(human.stdout).toContain('no business owner');

      const assigned = await cli(
        [
          'assign',
          target.name,
          '--role',
          'business',
          '--to',
          'team:security',
          '--reason',
          'triage SEC-9',
          '--actor',
          'person:carol@example.com',
          '--json',
        ],
        env,
      );
      expect(assigned.code, assigned.stderr).toBe(0);
      const shown = (await cli(['show', target.name, '--json'], env)).json<{
        owners: { business: string };
      }>();
      expect(shown.owners.business).toBe('team:security');
      const before = await cli(['show', target.name, '--as-of', '2000-01-01', '--json'], env);
      expect(before.code).toBe(3 - 2); // did not exist then: a user error
      expect(before.stderr).toMatch(/did not exist as of 2000-01-01/);

      const hist = (await cli(['history', target.name, '--json'], env)).json<
        { type: string; actor: string; reason: string }[]
      >();
      expect(hist.at(-1)).toMatchObject({
        type: 'owner.assigned',
        actor: 'person:carol@example.com',
        reason: 'triage SEC-9',
      });
      expect(hist[0]!.type).toBe('identity.created');

      const summary = (await cli(['summary', '--json'], env)).json<{
        identities: number;
        visibility: number;
      }>();
      expect(summary.identities).toBe(imported.identities.new);
      expect(summary.visibility).toBeGreaterThan(0);

      const verify = await cli(['ledger', 'verify', '--json'], env);
      expect(verify.code).toBe(0);
      expect(verify.json()).toMatchObject({ ok: true });
      const exported = await cli(['ledger', 'export'], env);
      const lines = exported.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { kind: string; seq: number });
      expect(lines.filter((l) => l.kind === 'event').map((l) => l.seq)).toEqual(
        lines.filter((l) => l.kind === 'event').map((_, i) => i + 1),
      );
      expect(lines.some((l) => l.kind === 'checkpoint')).toBe(true);

      // tampering makes verify exit 2 and name the event
      const store = await openStore(env.db);
      try {
        if (store.dialect === 'sqlite') {
          await sql.raw('DROP TRIGGER events_no_update').execute(store.db);
          await sql.raw(`UPDATE events SET actor = 'mallory' WHERE seq = 3`).execute(store.db);
        } else {
          await sql.raw('ALTER TABLE events DISABLE TRIGGER USER').execute(store.db);
          await sql.raw(`UPDATE events SET actor = 'mallory' WHERE seq = 3`).execute(store.db);
          await sql.raw('ALTER TABLE events ENABLE TRIGGER USER').execute(store.db);
        }
      } finally {
        await store.close();
      }
      const bad = await cli(['ledger', 'verify'], env);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/FAILED at event 3: event 3 .* was altered/);
    } finally {
      await env.done();
    }
  });

  it('bad input: precise errors, exit 1, store unchanged', async () => {
    const env = await setup();
    try {
      const dir = tempFiles({
        'directory.csv': DIRECTORY_CSV,
        'bad.yaml': nhi('x', 'sensitivity: extreme\nowners:\n  business: alice'),
        'good.yaml': nhi('payments-batch', PAYMENTS_SPEC),
      });
      expect((await cli(['import', 'directory', path.join(dir, 'directory.csv')], env)).code).toBe(0);
      const head = (await cli(['summary', '--json'], env)).json<{ ledger: { events: number } }>().ledger
        .events;
      const r = await cli(['import', 'manifest', dir], env);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`${path.join(dir, 'bad.yaml')}:7: spec.sensitivity: expected`);
      expect(r.stderr).toContain(
        `${path.join(dir, 'bad.yaml')}:9: spec.owners.business: expected person:<email> or team:<name>`,
      );
      const rj = await cli(['import', 'manifest', dir, '--json'], env);
      const body = JSON.parse(rj.stderr) as { error: string; problems: { line: number; field: string }[] };
      expect(body.error).toBe('validation');
      expect(body.problems.map((p) => p.field)).toEqual(['spec.sensitivity', 'spec.owners.business']);
      expect(
        (await cli(['summary', '--json'], env)).json<{ ledger: { events: number } }>().ledger.events,
      ).toBe(head);
      expect((await cli(['identities', '--json'], env)).json<unknown[]>()).toHaveLength(0);

      expect((await cli(['show', 'nothing-here'], env)).stderr).toMatch(
        /no identity has the id, name or external id "nothing-here"/,
      );
      expect((await cli(['show', 'x', '--as-of', 'yesterday'], env)).stderr).toMatch(
        /--as-of: expected an ISO-8601 time/,
      );
      expect((await cli(['identities', '--missing', 'boss'], env)).code).toBe(1);
      expect((await cli(['assign', 'x', '--role', 'business'], env)).code).toBe(1);
      expect((await cli(['import', 'manifest', path.join(dir, 'nope.yaml')], env)).code).toBe(1);
      expect((await cli(['frobnicate'], env)).code).toBe(1);
    } finally {
      await env.done();
    }
  });
});

describe('the steward binary', () => {
  it('runs from dist after the build and exits with the documented codes', () => {
    const bin = path.resolve('dist/src/cli/main.js');
    if (!fs.existsSync(bin)) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'steward-bin-'));
    const db = path.join(dir, 'steward.db');
    const ok = spawnSync(
      process.execPath,
      [bin, '--db', db, 'import', 'manifest', path.join(EXAMPLES, 'manifests'), '--create-missing', '--json'],
      { encoding: 'utf8' },
    );
    expect(ok.status, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toHaveProperty('identities.new');
    expect(fs.existsSync(path.join(dir, '.steward-keys', 'ledger-signing.key'))).toBe(true);
    const help = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/import/);
    const bad = spawnSync(process.execPath, [bin, '--db', db, 'show', 'nope'], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
