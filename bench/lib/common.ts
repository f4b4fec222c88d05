/**
 * Shared pieces of the benchmarks: fresh databases per dialect, timing, percentiles, a seeded
 * random source, and the figure rows every benchmark reports.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

export type BenchDialect = 'sqlite' | 'postgres';

export const DEFAULT_PG_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

/** One measured figure, beside the baseline measured in the same run. */
export interface Figure {
  benchmark: string;
  dialect: BenchDialect;
  /** What is measured. */
  name: string;
  unit: string;
  value: number;
  /** The baseline measured in the same run, in the same unit. */
  baseline?: { name: string; value: number };
  /** value / baseline.value (a slowdown factor for times, a share for rates). */
  ratio?: number;
  target?: string;
  met?: boolean;
  note?: string;
  /** 1-minute load average when the benchmark started (2 cores: above ~1 means something else ran too). */
  loadAvg?: number;
}

export interface BenchContext {
  dialect: BenchDialect;
  scale: number;
  pgUrl: string;
  /** Check the generated ledger with verifyLedger (slow at full scale). */
  verify: boolean;
}

/** A fresh, empty database location and key folder for one benchmark. */
export interface BenchDb {
  dialect: BenchDialect;
  url: string;
  keysDir: string;
  /** A scratch folder that is removed with the database. */
  tmpDir: string;
  /** On-disk size of the database in bytes. */
  size(): Promise<number>;
  cleanup(): Promise<void>;
}

/** Creates a fresh SQLite file in a temp folder, or a fresh `bench_<hex>` schema on PostgreSQL. */
export async function freshDb(ctx: BenchContext): Promise<BenchDb> {
  const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'steward-bench-'));
  const keysDir = path.join(tmpDir, 'keys');
  // STEWARD_BENCH_KEEP=1 leaves the database in place (for EXPLAIN and the like); the path is printed.
  const keep = Boolean(process.env.STEWARD_BENCH_KEEP);
  const removeTmp = () =>
    keep ? progress(`kept ${tmpDir}`) : fs.rmSync(tmpDir, { recursive: true, force: true });
  if (ctx.dialect === 'sqlite') {
    const file = path.join(tmpDir, 'steward.db');
    return {
      dialect: 'sqlite',
      url: file,
      keysDir,
      tmpDir,
      size: () => {
        let total = 0;
        for (const f of [file, `${file}-wal`]) if (fs.existsSync(f)) total += fs.statSync(f).size;
        return Promise.resolve(total);
      },
      cleanup: () => {
        removeTmp();
        return Promise.resolve();
      },
    };
  }
  const schema = `bench_${randomBytes(5).toString('hex')}`;
  await withPg(ctx.pgUrl, (c) => c.query(`CREATE SCHEMA ${schema}`));
  const url = `${ctx.pgUrl}${ctx.pgUrl.includes('?') ? '&' : '?'}options=-c%20search_path%3D${schema}`;
  return {
    dialect: 'postgres',
    url,
    keysDir,
    tmpDir,
    size: () =>
      withPg(ctx.pgUrl, async (c) => {
        const r = await c.query<{ bytes: string | null }>(
          `SELECT sum(pg_total_relation_size(c.oid))::bigint AS bytes FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'`,
          [schema],
        );
        return Number(r.rows[0]?.bytes ?? 0);
      }),
    cleanup: async () => {
      removeTmp();
      if (keep) return progress(`kept schema ${schema}`);
      await withPg(ctx.pgUrl, (c) => c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));
    },
  };
}

export async function withPg<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Milliseconds since an arbitrary origin, sub-millisecond resolution. */
export function nowMs(): number {
  return performance.now();
}

export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; result: T }> {
  const t0 = nowMs();
  const result = await fn();
  return { ms: nowMs() - t0, result };
}

/** The q-quantile (0..1) of sorted values, nearest-rank. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

export function latencySummary(samples: number[]): { p50: number; p99: number; max: number; mean: number } {
  const s = [...samples].sort((a, b) => a - b);
  return {
    p50: quantile(s, 0.5),
    p99: quantile(s, 0.99),
    max: s[s.length - 1] ?? NaN,
    mean: s.reduce((a, b) => a + b, 0) / s.length,
  };
}

/** Seeded PRNG (mulberry32) so every run generates the same estate. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  hex(len: number): string {
    let s = '';
    while (s.length < len) s += ((this.next() * 0x100000000) >>> 0).toString(16).padStart(8, '0');
    return s.slice(0, len);
  }
}

/** Progress lines on stderr (stdout carries the results table). */
export function progress(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

export function scaled(n: number, scale: number, min = 1): number {
  return Math.max(min, Math.round(n * scale));
}

export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const abs = Math.abs(v);
  if (abs >= 1000) return Math.round(v).toLocaleString('en-US');
  if (abs >= 100) return v.toFixed(0);
  if (abs >= 10) return v.toFixed(1);
  if (abs >= 1) return v.toFixed(2);
  return v.toFixed(3);
}

export function formatBytes(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(2)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024).toFixed(1)} KiB`;
}
