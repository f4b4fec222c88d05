/**
 * Benchmark — aws-iam import of a large account: an `aws iam get-account-authorization-details`
 * export with 1,000,000 identities (250,000 users, 750,000 roles; see lib/authz-details.ts), read
 * by the `aws-iam` importer and written with `importDiscovery` into an empty database, in a child
 * process whose peak RSS is the figure (target: under 2 GiB), and its time. Baseline: a bare
 * stream-json pass over the same file (tokens only, counting users and roles), in a child process
 * of its own: its peak RSS and time.
 */
import { fork } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildReport } from './authz-child.js';
import { writeAuthzDetails } from './lib/authz-details.js';
import {
  formatBytes,
  freshDb,
  progress,
  Rng,
  scaled,
  timed,
  type BenchContext,
  type Figure,
} from './lib/common.js';

const GiB = 2 ** 30;
const MiB = 2 ** 20;
const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'authz-child.js');

/** Peak RSS (VmHWM) of a running process from /proc, in bytes; 0 where /proc is not available. */
function peakRssOf(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Runs authz-child.js with `args` (default Node flags, as `steward import` would run) and returns its report. */
function runChild(args: string[]): Promise<ChildReport> {
  return new Promise((resolve, reject) => {
    const child = fork(CHILD, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
    let report: ChildReport | undefined;
    // If the child dies (out of memory), the peak seen from outside is still worth saying.
    let seen = 0;
    const poll = setInterval(() => (seen = Math.max(seen, peakRssOf(child.pid ?? 0))), 1000);
    child.on('message', (m) => (report = m as ChildReport));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearInterval(poll);
      if (report) resolve(report);
      else
        reject(
          new Error(
            `authz-child ${args[0]} exited with ${signal ?? `code ${code}`} before reporting (peak RSS seen ${formatBytes(seen)})`,
          ),
        );
    });
  });
}

export async function benchAuthzImport(ctx: BenchContext): Promise<Figure[]> {
  const total = scaled(1_000_000, ctx.scale, 100);
  const db = await freshDb(ctx);
  const figures: Figure[] = [];
  const fig = (f: Omit<Figure, 'benchmark' | 'dialect'>) =>
    figures.push({ benchmark: 'authz import', dialect: ctx.dialect, ...f });
  try {
    const file = path.join(db.tmpDir, 'authorization-details.json');
    const gen = await timed(() => Promise.resolve(writeAuthzDetails(file, total, ctx.scale, new Rng(11))));
    const spec = gen.result;
    progress(
      `${ctx.dialect}: authz: ${spec.users} users, ${spec.roles} roles, ${spec.groups} groups, ${spec.policies} policies; ${(spec.bytes / 1e6).toFixed(0)} MB (${(gen.ms / 1000).toFixed(1)} s)`,
    );

    const base = await runChild(['parse', file]);
    if (base.identities !== total)
      throw new Error(`bare parse counted ${base.identities} identities, expected ${total}`);
    progress(
      `${ctx.dialect}: bare parse: ${(base.ms / 1000).toFixed(1)} s, peak RSS ${formatBytes(base.maxRss)}`,
    );

    const imp = await runChild(['import', file, db.url, db.keysDir]);
    if (imp.identities !== total)
      throw new Error(`import created ${imp.identities} identities, expected ${total}`);
    progress(
      `${ctx.dialect}: import: ${(imp.ms / 1000).toFixed(1)} s (read ${((imp.readMs ?? 0) / 1000).toFixed(1)} s), peak RSS ${formatBytes(imp.maxRss)}, ${imp.events} events`,
    );

    const mb = (spec.bytes / 1e6).toFixed(0);
    fig({
      name: `peak RSS of the import process: ${total.toLocaleString('en-US')} identities, ${mb} MB (read + importDiscovery)`,
      unit: 'MiB',
      value: imp.maxRss / MiB,
      baseline: { name: 'bare stream-json pass', value: base.maxRss / MiB },
      ratio: imp.maxRss / base.maxRss,
      target: '< 2 GiB',
      met: imp.maxRss < 2 * GiB,
      note: `peak ${formatBytes(imp.maxRssAfterRead ?? 0)} when the read had finished (heap used ${formatBytes(imp.heapUsedAfterRead ?? 0)})`,
    });
    fig({
      name: 'time of the import process (read + importDiscovery)',
      unit: 's',
      value: imp.ms / 1000,
      baseline: { name: 'bare stream-json pass', value: base.ms / 1000 },
      ratio: imp.ms / base.ms,
      note: `${Math.round(total / (imp.ms / 1000)).toLocaleString('en-US')} identities/s; ${imp.events} events, ${imp.entitlements} entitlements; ${Math.round((imp.events ?? 0) / ((imp.importMs ?? 1) / 1000)).toLocaleString('en-US')} events/s in importDiscovery`,
    });
    fig({
      name: '  of which importer.read',
      unit: 's',
      value: (imp.readMs ?? 0) / 1000,
      baseline: { name: 'bare stream-json pass', value: base.ms / 1000 },
      ratio: (imp.readMs ?? 0) / base.ms,
    });
    fig({ name: '  of which importDiscovery', unit: 's', value: (imp.importMs ?? 0) / 1000 });
    fig({ name: 'database size after import', unit: 'MB', value: (await db.size()) / 1e6 });
  } finally {
    await db.cleanup();
  }
  return figures;
}
