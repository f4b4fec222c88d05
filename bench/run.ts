/**
 * `npm run bench` — Steward's benchmarks on SQLite and PostgreSQL. Prints each figure beside its
 * baseline measured in the same run, and writes them to bench/results/latest.json.
 *
 *   node dist/bench/run.js [--only manifest-import|ledger-append|as-of] [--scale 0.01]
 *                          [--dialect sqlite|postgres] [--verify] [--out FILE]
 *
 * PostgreSQL: STEWARD_BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres); each
 * benchmark runs in a fresh `bench_<hex>` schema that is dropped afterwards.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  DEFAULT_PG_URL,
  formatNumber,
  progress,
  type BenchContext,
  type BenchDialect,
  type Figure,
} from './lib/common.js';
import { redact } from '../src/store/store.js';

type Bench = (ctx: BenchContext) => Promise<Figure[]>;

/** Loaded lazily so that one benchmark's missing dependency does not stop the others. */
const BENCHMARKS: Record<string, () => Promise<Bench>> = {
  'manifest-import': async () => (await import('./manifest-import.js')).benchManifestImport,
  'ledger-append': async () => (await import('./ledger-append.js')).benchLedgerAppend,
  'as-of': async () => (await import('./as-of.js')).benchAsOf,
  policy: async () => (await import('./policy.js')).benchPolicy,
  'cloudtrail-ingest': async () => (await import('./cloudtrail-ingest.js')).benchCloudTrailIngest,
  'authz-import': async () => (await import('./authz-import.js')).benchAuthzImport,
};

function usage(msg: string): never {
  process.stderr.write(
    `${msg}\nusage: node dist/bench/run.js [--only ${Object.keys(BENCHMARKS).join('|')}] [--scale FACTOR] [--dialect sqlite|postgres] [--verify] [--quiet-wait SECONDS] [--out FILE]\n`,
  );
  process.exit(2);
}

/**
 * The machine is shared (2 cores): wait up to `seconds` for the 1-minute load average to drop
 * below 1 before measuring, so figures are not taken while something else is busy. The load
 * average at the start is recorded with every figure either way.
 */
async function waitForQuiet(seconds: number): Promise<void> {
  const until = Date.now() + seconds * 1000;
  let said = false;
  while (os.loadavg()[0]! >= 1 && Date.now() < until) {
    if (!said)
      progress(
        `waiting up to ${seconds} s for the machine to be quiet (load ${os.loadavg()[0]!.toFixed(2)})`,
      );
    said = true;
    await new Promise((r) => setTimeout(r, 5000));
  }
}

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => '| ' + cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |';
  return (
    [line(headers), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...rows.map(line)].join(
      '\n',
    ) + '\n'
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      only: { type: 'string', multiple: true },
      scale: { type: 'string', default: '1' },
      dialect: { type: 'string', multiple: true },
      verify: { type: 'boolean', default: false },
      'quiet-wait': { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) usage('Steward benchmarks');
  const scale = Number(values.scale);
  if (!(scale > 0)) usage(`--scale: expected a positive number, got "${values.scale}"`);
  const only = values.only ?? Object.keys(BENCHMARKS);
  for (const o of only)
    if (!(o in BENCHMARKS))
      usage(`--only: expected one of ${Object.keys(BENCHMARKS).join(', ')}, got "${o}"`);
  const dialects = (values.dialect ?? ['sqlite', 'postgres']) as BenchDialect[];
  for (const d of dialects)
    if (d !== 'sqlite' && d !== 'postgres')
      usage(`--dialect: expected sqlite or postgres, got "${String(d)}"`);
  const pgUrl = process.env.STEWARD_BENCH_PG_URL || DEFAULT_PG_URL;
  // Verifying the generated 10M-event ledger takes minutes: by default only on small runs.
  const verify = values.verify || scale <= 0.05;

  const figures: Figure[] = [];
  const failures: { benchmark: string; dialect: string; error: string }[] = [];
  for (const name of only) {
    for (const dialect of dialects) {
      progress(`${name} on ${dialect} (scale ${scale})`);
      try {
        const bench = await BENCHMARKS[name]!();
        await waitForQuiet(values['quiet-wait'] ? Number(values['quiet-wait']) : 120);
        const loadAvg = Number(os.loadavg()[0]!.toFixed(2));
        figures.push(...(await bench({ dialect, scale, pgUrl, verify })).map((f) => ({ ...f, loadAvg })));
      } catch (e) {
        const error = e instanceof Error ? (e.stack ?? e.message) : String(e);
        progress(`${name} on ${dialect} failed: ${error}`);
        failures.push({ benchmark: name, dialect, error: e instanceof Error ? e.message : String(e) });
      }
    }
  }

  const rows = figures.map((f) => [
    f.dialect,
    f.benchmark,
    f.name,
    `${formatNumber(f.value)} ${f.unit}`,
    f.baseline ? `${formatNumber(f.baseline.value)} ${f.unit} (${f.baseline.name})` : '',
    f.ratio !== undefined ? `${f.ratio.toFixed(2)}×` : '',
    f.target ?? '',
    f.met === undefined ? '' : f.met ? 'yes' : 'NO',
  ]);
  process.stdout.write(
    table(
      ['dialect', 'benchmark', 'figure', 'measured', 'baseline (same run)', 'ratio', 'target', 'met'],
      rows,
    ),
  );
  for (const f of figures)
    if (f.note) process.stdout.write(`  ${f.dialect} / ${f.benchmark} / ${f.name.trim()}: ${f.note}\n`);
  for (const f of failures) process.stdout.write(`FAILED ${f.dialect} / ${f.benchmark}: ${f.error}\n`);

  const here = path.dirname(fileURLToPath(import.meta.url));
  // dist/bench/run.js → <repo>/bench/results
  const repoBench = path.resolve(here, '..', '..', 'bench');
  const out = values.out ?? path.join(repoBench, 'results', 'latest.json');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const cpus = os.cpus();
  const date = new Date().toISOString();
  // Keep the figures of benchmarks/dialects not run this time, so `--only` runs add up to one file.
  const ran = new Set(figures.map((f) => `${f.benchmark}/${f.dialect}`));
  let kept: unknown[] = [];
  if (fs.existsSync(out)) {
    try {
      const old = JSON.parse(fs.readFileSync(out, 'utf8')) as { figures?: (Figure & { date?: string })[] };
      kept = (old.figures ?? []).filter((f) => !ran.has(`${f.benchmark}/${f.dialect}`));
    } catch {
      kept = [];
    }
  }
  const report = {
    date,
    command: `node dist/bench/run.js ${process.argv.slice(2).join(' ')}`.trim(),
    scale,
    machine: {
      cpus: cpus.length,
      cpuModel: cpus[0]?.model ?? 'unknown',
      memoryGiB: Math.round(os.totalmem() / 1024 ** 3),
      platform: `${os.platform()} ${os.release()}`,
      node: process.version,
      postgres: dialects.includes('postgres') ? redact(pgUrl) : null,
    },
    figures: [
      ...kept,
      ...figures.map((f) => ({
        ...f,
        value: round(f.value),
        ...(f.baseline ? { baseline: { ...f.baseline, value: round(f.baseline.value) } } : {}),
        ...(f.ratio !== undefined ? { ratio: round(f.ratio) } : {}),
        date,
        scale,
      })),
    ],
    failures,
  };
  fs.writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
  progress(`wrote ${out}`);
  if (failures.length) process.exitCode = 1;
}

const round = (v: number) => (Number.isFinite(v) ? Number(v.toPrecision(4)) : v);

await main();
