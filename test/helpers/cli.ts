import { PassThrough } from 'node:stream';
import { run } from '../../src/cli/run.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  json<T = unknown>(): T;
}

/** Runs the CLI in-process against the given database and keys. */
export async function cli(args: string[], env: { db: string; keys: string }): Promise<CliResult> {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (d: Buffer) => (stdout += d.toString()));
  err.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await run(['--db', env.db, '--keys', env.keys, ...args], { out, err });
  return { code, stdout, stderr, json: <T>() => JSON.parse(stdout) as T };
}
