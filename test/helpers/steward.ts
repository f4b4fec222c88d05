import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openSteward, type Steward } from '../../src/app.js';
import { dialectsUnderTest, type DialectUnderTest } from './pg-schema.js';

/** A clock tests move by hand. */
export interface TestClock {
  now: () => Date;
  set(iso: string): void;
  advance(ms: number): void;
}

export function testClock(start = '2026-01-01T00:00:00.000Z'): TestClock {
  let t = Date.parse(start);
  return {
    now: () => new Date(t),
    set: (iso) => void (t = Date.parse(iso)),
    advance: (ms) => void (t += ms),
  };
}

export interface TestEnv {
  steward: Steward;
  clock: TestClock;
  url: string;
  keysDir: string;
  /** Re-opens the same database and keys (as a new process would). */
  reopen(): Promise<Steward>;
}

/** Runs `fn` against a fresh database of the dialect, with keys in a temp folder. */
export async function withSteward<T>(
  dialect: DialectUnderTest,
  fn: (env: TestEnv) => Promise<T>,
  options: { checkpointEvery?: number; clock?: TestClock } = {},
): Promise<T> {
  const url = await dialect.freshUrl();
  const keysDir = fs.mkdtempSync(path.join(os.tmpdir(), 'steward-keys-'));
  const clock = options.clock ?? testClock();
  const open = () =>
    openSteward({
      db: url,
      keysDir,
      now: clock.now,
      ...(options.checkpointEvery !== undefined ? { checkpointEvery: options.checkpointEvery } : {}),
    });
  const steward = await open();
  const extra: Steward[] = [];
  try {
    return await fn({
      steward,
      clock,
      url,
      keysDir,
      reopen: async () => {
        const s = await open();
        extra.push(s);
        return s;
      },
    });
  } finally {
    for (const s of extra) await s.close();
    await steward.close();
    await dialect.cleanup(url);
    fs.rmSync(keysDir, { recursive: true, force: true });
  }
}

export const dialects = dialectsUnderTest();
