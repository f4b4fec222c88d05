import fs from 'node:fs';
import type { Command } from 'commander';
import { printJson, type Io } from '../output.js';
import { withSteward, type GlobalOptions } from '../context.js';
import { ValidationError } from '../../domain/errors.js';

/** Largest secret accepted, in bytes: a secret is a key or a token, not a file. */
const MAX_SECRET_BYTES = 64 * 1024;

/** Reads one secret: the whole input with one trailing newline removed. */
async function readSecret(file: string | undefined): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  if (file && !fs.existsSync(file)) throw new ValidationError(`${file}: no such file`);
  const input = file ? fs.createReadStream(file) : process.stdin;
  for await (const chunk of input) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += b.length;
    if (size > MAX_SECRET_BYTES)
      throw new ValidationError(`${file ?? 'stdin'}: expected a secret of at most ${MAX_SECRET_BYTES} bytes`);
    chunks.push(b);
  }
  const secret = Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
  if (!secret) throw new ValidationError(`${file ?? 'stdin'}: expected a secret, got nothing`);
  return secret;
}

export function registerFingerprint(program: Command, io: Io, g: () => GlobalOptions): void {
  program
    .command('fingerprint')
    .description(
      "print a secret's keyed fingerprint (HMAC-SHA256 with this install's key), to declare in a manifest's `credentials[].fingerprint`; the secret is read from stdin or --from-file and is never stored",
    )
    .option('--from-file <file>', 'read the secret from this file instead of stdin')
    .action(async (flags: { fromFile?: string }) => {
      const secret = await readSecret(flags.fromFile);
      await withSteward(g(), (s) => {
        const fingerprint = s.keys.fingerprint(secret);
        if (io.json) printJson(io, { fingerprint });
        else io.out.write(fingerprint + '\n');
        return Promise.resolve();
      });
    });
}
