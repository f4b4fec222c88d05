/**
 * A full evaluation on worker threads decides exactly what one on the calling thread does.
 *
 * Worker threads run compiled JavaScript, so this suite drives the `steward` binary as built
 * (`dist/`, which `npm ci` builds): two databases get the same estate and the same changes, one
 * evaluated with `--workers 2`, the other with `--workers 0`, and their findings must agree field
 * by field after every step (opened, then resolved, reassigned and newly opened after the
 * directory changes), with the ledger of the parallel one verifying.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { describe, it, expect } from 'vitest';
import { dialects } from './helpers/steward.js';
import { DEFER_INDEXES_MIN } from '../src/policy/evaluate.js';
import { Rng } from '../bench/lib/common.js';
import { identityYaml, makeDirectory, makeIdentity, type Directory } from '../bench/lib/estate.js';

const BIN = path.resolve('dist/src/cli/main.js');
/**
 * Five pages of 2,000 and a partial sixth: more pages than workers, and enough identities
 * (at least DEFER_INDEXES_MIN) that a first evaluation on SQLite rebuilds its findings indexes.
 */
const IDENTITIES = 10_500;
if (IDENTITIES < DEFER_INDEXES_MIN) throw new Error('the estate must reach DEFER_INDEXES_MIN');

function run(
  db: string,
  keys: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [
      BIN,
      '--db',
      db,
      '--keys',
      keys,
      '--actor',
      'person:erin@example.com',
      ...args,
    ]);
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

function directoryCsv(dir: Directory, departed: (i: number) => boolean): string {
  const lines = ['type,id,name,email,team,manager,status,left_at'];
  let person = 0;
  for (const r of dir.rows) {
    const gone = r.type === 'person' && departed(person++);
    lines.push(
      [
        r.type,
        r.id,
        r.name,
        r.email ?? '',
        r.team ?? '',
        r.manager ?? '',
        gone ? 'departed' : 'active',
        gone ? '2026-01-15T00:00:00Z' : '',
      ].join(','),
    );
  }
  return `${lines.join('\n')}\n`;
}

interface FindingJson {
  rule: string;
  subject: { id: string; name: string };
  status: string;
  severity: string;
  assignee: string | null;
  assignedRole: string | null;
  dueAt: string | null;
  firstSeen: string;
  lastSeen: string;
}

/** What must agree: everything but the finding's random id (and times, unless both ran at one `--now`). */
const comparable = (stdout: string, times = true) =>
  (JSON.parse(stdout) as FindingJson[])
    .map((f) =>
      [
        f.rule,
        f.subject.name,
        f.status,
        f.severity,
        f.assignee,
        f.assignedRole,
        ...(times ? [f.dueAt, f.firstSeen, f.lastSeen] : []),
      ].join('|'),
    )
    .sort();

describe.runIf(fs.existsSync(BIN)).each(dialects)('full evaluation on worker threads on $name', (dialect) => {
  it(
    'finds, resolves and reassigns exactly what an evaluation on one thread does',
    { timeout: 240_000 },
    async () => {
      const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'steward-parallel-'));
      const rng = new Rng(7);
      const dir = makeDirectory(rng, 400, 30, 'directory.csv');
      const manifests = path.join(tmp, 'manifests');
      fs.mkdirSync(manifests);
      for (let f = 0; f < Math.ceil(IDENTITIES / 1000); f++) {
        const parts: string[] = [];
        for (let i = f * 1000; i < Math.min(IDENTITIES, (f + 1) * 1000); i++)
          parts.push(identityYaml(makeIdentity(i, rng, dir)));
        fs.writeFileSync(path.join(manifests, `nhi-${f}.yaml`), parts.join(''));
      }
      const before = path.join(tmp, 'directory-1.csv');
      const after = path.join(tmp, 'directory-2.csv');
      fs.writeFileSync(
        before,
        directoryCsv(dir, (i) => i % 50 === 7),
      );
      fs.writeFileSync(
        after,
        directoryCsv(dir, (i) => i % 50 === 7 || i % 9 === 4),
      );
      const dbs = { parallel: await dialect.freshUrl(), single: await dialect.freshUrl() };
      const keys = path.join(tmp, 'keys');
      try {
        const both = async (args: (workers: string) => string[]) => {
          const [p, s] = await Promise.all([
            run(dbs.parallel, keys, args('2')),
            run(dbs.single, keys, args('0')),
          ]);
          expect(p.code, p.stderr).toBe(0);
          expect(s.code, s.stderr).toBe(0);
          return { p, s };
        };
        await both(() => ['init']);
        await both(() => ['import', 'directory', before]);
        await both(() => ['import', 'manifest', manifests]);

        // In the past (times agree to the millisecond), then an hour later with nothing changed.
        const first = await both((w) => [
          'evaluate',
          '--workers',
          w,
          '--now',
          '2026-03-01T00:00:00Z',
          '--json',
        ]);
        const rp = JSON.parse(first.p.stdout) as Record<string, number>;
        const rs = JSON.parse(first.s.stdout) as Record<string, number>;
        expect(rp.workers).toBe(2);
        expect(rs.workers).toBe(0);
        expect(rp.identities).toBe(IDENTITIES);
        expect(rp.opened).toBeGreaterThan(1000);
        expect({ ...rp, workers: 0 }).toEqual(rs);
        const findings = await both(() => ['findings', '--status', 'all', '--json']);
        expect(comparable(findings.p.stdout)).toEqual(comparable(findings.s.stdout));
        // read through the indexes the first evaluation rebuilt on SQLite (assignee, rule, status)
        const someone = (JSON.parse(findings.p.stdout) as FindingJson[]).find((f) => f.assignee)!.assignee!;
        const owned = await both(() => ['findings', '--owner', someone, '--status', 'open', '--json']);
        expect(comparable(owned.p.stdout).length).toBeGreaterThan(0);
        expect(comparable(owned.p.stdout)).toEqual(comparable(owned.s.stdout));
        expect(comparable(owned.p.stdout)).toEqual(
          comparable(findings.p.stdout).filter(
            (f) => f.split('|')[4] === someone && f.split('|')[2] === 'open',
          ),
        );
        const again = await both((w) => [
          'evaluate',
          '--workers',
          w,
          '--now',
          '2026-03-01T01:00:00Z',
          '--json',
        ]);
        expect((JSON.parse(again.p.stdout) as Record<string, number>).events).toBe(0);

        // People leave (the import re-evaluates whom they owned), and nine months pass: rotations
        // fall overdue, credentials expire, reviews lapse; findings open, resolve and move.
        await both(() => ['import', 'directory', after]);
        const later = await both((w) => ['evaluate', '--workers', w, '--json']);
        const lp = JSON.parse(later.p.stdout) as {
          workers: number;
          opened: number;
          resolved: number;
          reassigned: number;
        };
        expect(lp.workers).toBe(2);
        expect(lp.opened + lp.resolved + lp.reassigned).toBeGreaterThan(0);
        expect({ ...lp, workers: 0 }).toEqual(JSON.parse(later.s.stdout));
        const changed = await both(() => ['findings', '--status', 'all', '--json']);
        expect(comparable(changed.p.stdout, false)).toEqual(comparable(changed.s.stdout, false));
        expect(comparable(changed.p.stdout, false)).not.toEqual(comparable(findings.p.stdout, false));

        const verify = await run(dbs.parallel, keys, ['ledger', 'verify']);
        expect(verify.code, verify.stdout + verify.stderr).toBe(0);
      } finally {
        await dialect.cleanup(dbs.parallel);
        await dialect.cleanup(dbs.single);
        fs.rmSync(tmp, { recursive: true, force: true });
      }
    },
  );
});
