import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import type { Problem } from '../../domain/problems.js';

/** What a scan read and what it passed over, for the person running it. */
export interface ScanStats {
  scanned: number;
  binary: number;
  tooLarge: number;
  symlinks: number;
  /** FIFOs, sockets, devices: never opened (reading a FIFO would block). */
  special: number;
  unreadable: number;
}

export const emptyStats = (): ScanStats => ({
  scanned: 0,
  binary: 0,
  tooLarge: 0,
  symlinks: 0,
  special: 0,
  unreadable: 0,
});

/** Folders never scanned: version control internals and installed dependencies. */
const SKIPPED_DIRS = new Set(['.git', 'node_modules']);

/** Git's own test for binary content: a NUL byte in the first 8000 bytes. */
export const isBinary = (b: Buffer): boolean => b.subarray(0, 8000).includes(0);

/** A read error as a problem sentence (the code and the system's words, never content). */
export function unreadable(file: string, e: unknown): Problem {
  const err = e as NodeJS.ErrnoException;
  return {
    file,
    message: `expected a readable file or folder, got ${err.code ?? 'an error'} (${err.message
      .replace(/^[A-Z]+: /, '')
      .replace(/, \w+ '.*'$/, '')})`,
  };
}

/** Reads at most `limit + 1` bytes of a regular file, so that a file that grew is still caught. */
async function readCapped(file: string, limit: number): Promise<Buffer> {
  const fh = await fs.promises.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.alloc(Math.min(64 * 1024, limit + 1 - total));
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      chunks.push(buf.subarray(0, bytesRead));
      total += bytesRead;
      if (total > limit) break;
    }
    return Buffer.concat(chunks);
  } finally {
    await fh.close();
  }
}

/**
 * Walks a folder (or one file) in sorted order and hands every scannable text file to `scan`
 * with its path relative to the root (`/`-separated). Skips `.git` and `node_modules` folders,
 * symbolic links (one inside the tree is scanned at its own path; one leading out of it is not
 * part of the tree), binary files, non-regular files and files over `limit` bytes, counting each.
 * A file or folder that cannot be read becomes a problem. Returns a SHA-256 over every scanned
 * file's path and content hash: the evidence of what was read.
 */
export async function walkTree(
  input: string,
  limit: number,
  stats: ScanStats,
  problems: Problem[],
  scan: (text: string, rel: string) => Promise<void>,
): Promise<string> {
  const digest = createHash('sha256');
  const root = fs.realpathSync(input);
  const rootIsFile = !fs.statSync(root).isDirectory();
  const stack: string[] = [rootIsFile ? path.basename(root) : ''];
  const base = rootIsFile ? path.dirname(root) : root;
  while (stack.length) {
    const rel = stack.pop()!;
    const abs = rel === '' ? base : path.join(base, rel);
    const shown = rootIsFile ? input : rel === '' ? input : path.join(input, rel);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(abs);
    } catch (e) {
      problems.push(unreadable(shown, e));
      stats.unreadable++;
      continue;
    }
    if (st.isSymbolicLink()) {
      stats.symlinks++;
      continue;
    }
    if (st.isDirectory()) {
      let names: string[];
      try {
        names = fs.readdirSync(abs).sort();
      } catch (e) {
        problems.push(unreadable(shown, e));
        stats.unreadable++;
        continue;
      }
      // reversed onto the stack, so files come out in sorted order
      for (const name of names.reverse()) {
        if (SKIPPED_DIRS.has(name)) continue;
        stack.push(rel === '' ? name : `${rel}/${name}`);
      }
      continue;
    }
    if (!st.isFile()) {
      stats.special++;
      continue;
    }
    if (st.size > limit) {
      stats.tooLarge++;
      continue;
    }
    let content: Buffer;
    try {
      content = await readCapped(abs, limit);
    } catch (e) {
      problems.push(unreadable(shown, e));
      stats.unreadable++;
      continue;
    }
    if (content.length > limit) {
      stats.tooLarge++;
      continue;
    }
    if (isBinary(content)) {
      stats.binary++;
      continue;
    }
    stats.scanned++;
    digest.update(`${rel}\u0000${createHash('sha256').update(content).digest('hex')}\n`);
    await scan(content.toString('utf8'), rel);
  }
  return digest.digest('hex');
}
