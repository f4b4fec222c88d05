import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { describe, it, expect } from 'vitest';
import { dialects } from './helpers/steward.js';
import { cli } from './helpers/cli.js';
import { corporaAvailable, corpus } from './helpers/corpora.js';

const STRATUS =
  'aws-cloudtrail/stratus-red-team-detonation-logs/aws.credential-access.ec2-get-password-data.json';

/** The Stratus capture's records as JSON lines, in a temp file (the corpus is read in place, never committed). */
function jsonLines(dir: string): { file: string; lines: string[] } {
  const raw = JSON.parse(fs.readFileSync(corpus(STRATUS), 'utf8')) as unknown;
  const records = Array.isArray(raw) ? raw : (raw as { Records: unknown[] }).Records;
  const lines = records.map((r) => JSON.stringify(r));
  const file = path.join(dir, 'stratus.jsonl');
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return { file, lines };
}

interface ImportJson {
  identities: { new: number };
  events: number;
  skipped: number;
  skippedRecords: { line?: number }[];
}

describe.runIf(corporaAvailable).each(dialects)('discovery imports through the CLI on $name', (dialect) => {
  it('a bad line rejects the whole file (file:line, exit 1, nothing written); --skip-invalid skips and counts it', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'steward-cli-import-'));
    const { file: clean0, lines } = jsonLines(tmp);
    const bad = path.join(tmp, 'bad.jsonl');
    fs.writeFileSync(
      bad,
      [...lines.slice(0, 2), '{"eventTime": "2024-01-01T00:00:00Z", truncated', ...lines.slice(2)].join('\n'),
    );
    const good = { db: await dialect.freshUrl(), keys: fs.mkdtempSync(path.join(tmp, 'k1-')) };
    const env = { db: await dialect.freshUrl(), keys: fs.mkdtempSync(path.join(tmp, 'k2-')) };
    try {
      const clean = await cli(['import', 'cloudtrail', clean0, '--json'], good);
      expect(clean.code, clean.stderr).toBe(0);
      const n = clean.json<ImportJson>().identities.new;
      expect(n).toBeGreaterThan(0);

      const rejected = await cli(['import', 'cloudtrail', bad], env);
      expect(rejected.code).toBe(1);
      expect(rejected.stderr).toContain(`${bad}:3:`);
      const verify = await cli(['ledger', 'verify', '--json'], env);
      expect(verify.json<{ events: number }>().events).toBe(0);

      const skipped = await cli(['import', 'cloudtrail', bad, '--skip-invalid', '--json'], env);
      expect(skipped.code, skipped.stderr).toBe(0);
      const r = skipped.json<ImportJson>();
      expect(r.skipped).toBe(1);
      expect(r.skippedRecords[0]!.line).toBe(3);
      expect(r.identities.new).toBe(n);
    } finally {
      await dialect.cleanup(good.db);
      await dialect.cleanup(env.db);
    }
  });
});

describe.runIf(corporaAvailable)('discovery import from standard input (the steward binary)', () => {
  it('`import cloudtrail -` reads the export from stdin and imports what the file import does', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'steward-stdin-'));
    const bin = path.resolve('dist/src/cli/main.js');
    const run = (db: string, args: string[], input?: Buffer) =>
      spawnSync(process.execPath, [bin, '--db', db, '--keys', path.join(tmp, 'keys'), ...args], {
        input,
        encoding: 'utf8',
      });
    const { file } = jsonLines(tmp);
    const fromFile = run(path.join(tmp, 'a.db'), ['import', 'cloudtrail', file, '--json']);
    expect(fromFile.status, fromFile.stderr).toBe(0);
    const fromStdin = run(
      path.join(tmp, 'b.db'),
      ['import', 'cloudtrail', '-', '--json'],
      fs.readFileSync(file),
    );
    expect(fromStdin.status, fromStdin.stderr).toBe(0);
    const a = JSON.parse(fromFile.stdout) as ImportJson;
    const b = JSON.parse(fromStdin.stdout) as ImportJson;
    expect(b.identities).toEqual(a.identities);
    expect(b.events).toBe(a.events);
    // the same export gzipped on the pipe (`zcat`-less: `aws s3 cp s3://…/x.json.gz - | steward import cloudtrail -`)
    const gzipped = run(
      path.join(tmp, 'c.db'),
      ['import', 'cloudtrail', '-', '--json'],
      gzipSync(fs.readFileSync(file)),
    );
    expect(gzipped.status, gzipped.stderr).toBe(0);
    const c = JSON.parse(gzipped.stdout) as ImportJson;
    expect(c.identities).toEqual(a.identities);
    expect(c.events).toBe(a.events);
  });
});
