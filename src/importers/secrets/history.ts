import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { ValidationError } from '../../domain/errors.js';
import { normaliseTimestamp } from '../common.js';

/** The commit a change was read from. */
export interface Commit {
  id: string;
  author: string | undefined;
  email: string | undefined;
  /** Author date, ISO-8601 UTC. */
  date: string | undefined;
}

/** What one commit added to one file: the added lines, with their line numbers in the new file. */
export interface AddedText {
  commit: Commit;
  file: string;
  text: string;
  /** `lines[i]` is the new file's line number of the text's line `i + 1`. */
  lines: number[];
}

/** What a history read went through, for the person running it. */
export interface HistoryStats {
  commits: number;
  changes: number;
  binary: number;
  tooLarge: number;
}

// Settings that would change `git log -p`'s output are pinned; `--no-textconv` and
// `--no-ext-diff` keep a repository's own configuration from running commands.
const GIT_CONFIG = [
  '-c',
  'core.quotePath=false',
  '-c',
  'core.fsmonitor=false',
  '-c',
  'log.showSignature=false',
];
const LOG_ARGS = [
  'log',
  '-p',
  '-U0',
  '--all',
  '--full-history',
  '--no-color',
  '--no-ext-diff',
  '--no-textconv',
  '--no-relative',
  '--src-prefix=a/',
  '--dst-prefix=b/',
  // a commit header: NUL, then id, author, email, date separated by NULs (no diff line starts with NUL)
  '--format=%x00%H%x00%an%x00%ae%x00%aI',
];
const ENV = { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_PAGER: 'cat', LC_ALL: 'C' };

/** Refuses a folder that is not in a git repository (or when git cannot be run). */
export function assertGitRepository(dir: string): void {
  const r = spawnSync('git', [...GIT_CONFIG, '-C', dir, 'rev-parse', '--git-dir'], {
    env: ENV,
    encoding: 'utf8',
  });
  if (r.error) {
    throw new ValidationError(`cannot run git to read ${dir}; nothing was imported`, [
      { file: dir, message: `expected the git command (--history runs it), got ${r.error.message}` },
    ]);
  }
  if (r.status !== 0) {
    const why = r.stderr.trim().split('\n')[0] ?? '';
    throw new ValidationError(`${dir}: not a git repository; nothing was imported`, [
      {
        file: dir,
        message: `expected a git repository (--history reads its commits), got a folder git does not know${why ? ` (${why})` : ''}`,
      },
    ]);
  }
}

/** A line longer than the limit: only its first character is kept (whether it was added). */
interface LongLine {
  first: string;
}

/**
 * Splits a byte stream on `\n` only (a `\r` is content); a line past `max` bytes is not kept.
 * `onChunk` sees every chunk (for the evidence hash).
 */
async function* linesOf(
  stream: Readable,
  max: number,
  onChunk: (b: Buffer) => void,
): AsyncGenerator<string | LongLine> {
  let parts: Buffer[] = [];
  let size = 0;
  let first = '';
  let overflow = false;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    onChunk(chunk);
    let from = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, from);
      const end = nl === -1 ? chunk.length : nl;
      if (!overflow) {
        if (size + end - from > max) {
          overflow = true;
          first = String.fromCharCode(size > 0 ? parts[0]![0]! : chunk[from]!);
          parts = [];
        } else {
          parts.push(chunk.subarray(from, end));
          size += end - from;
        }
      }
      if (nl === -1) break;
      yield overflow ? { first } : Buffer.concat(parts, size).toString('utf8');
      parts = [];
      size = 0;
      overflow = false;
      from = nl + 1;
    }
  }
  if (size > 0 || overflow) yield overflow ? { first } : Buffer.concat(parts, size).toString('utf8');
}

/** A path as git writes it: verbatim, or in double quotes with C escapes (octal bytes for UTF-8). */
export function unquotePath(p: string): string {
  if (!p.startsWith('"') || !p.endsWith('"') || p.length < 2) return p;
  const bytes: number[] = [];
  const esc: Record<string, number> = { a: 7, b: 8, t: 9, n: 10, v: 11, f: 12, r: 13, '"': 34, '\\': 92 };
  const body = p.slice(1, -1);
  for (let i = 0; i < body.length; i++) {
    const ch = body[i]!;
    if (ch === '\\' && i + 1 < body.length) {
      const next = body[i + 1]!;
      const oct = /^[0-7]{3}/.exec(body.slice(i + 1));
      if (oct) {
        bytes.push(parseInt(oct[0], 8));
        i += 3;
        continue;
      }
      if (next in esc) {
        bytes.push(esc[next]!);
        i += 1;
        continue;
      }
    }
    bytes.push(...Buffer.from(ch, 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}

/**
 * Streams `git log -p -U0 --all` of a repository (every commit reachable from any ref, one at a
 * time, never the whole history in memory) and hands what each commit added to each file to
 * `scan`. A file change whose added text exceeds `limit` bytes is skipped and counted, as is a
 * binary one. Returns a SHA-256 of the log as read: the evidence of what was scanned.
 */
export async function readHistory(
  repo: string,
  limit: number,
  stats: HistoryStats,
  scan: (added: AddedText) => Promise<void>,
): Promise<string> {
  const child = spawn('git', [...GIT_CONFIG, '-C', repo, ...LOG_ARGS], {
    env: ENV,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    if (stderr.length < 4096) stderr += d;
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  });
  const hash = createHash('sha256');

  let commit: Commit | undefined;
  let file: string | undefined;
  let text: string[] = [];
  let lines: number[] = [];
  let bytes = 0;
  let oversize = false;
  // inside a hunk: lines of the old and new file still to come, and the next new line number
  let oldLeft = 0;
  let newLeft = 0;
  let next = 0;

  const flush = async () => {
    if (commit && file !== undefined && (text.length || oversize)) {
      stats.changes++;
      if (oversize) stats.tooLarge++;
      else await scan({ commit, file, text: text.join('\n'), lines });
    }
    file = undefined;
    text = [];
    lines = [];
    bytes = 0;
    oversize = false;
    oldLeft = newLeft = 0;
  };

  try {
    for await (const line of linesOf(child.stdout, limit, (b) => hash.update(b))) {
      if (oldLeft > 0 || newLeft > 0) {
        const c = typeof line === 'string' ? line[0] : line.first;
        if (c === '+') {
          newLeft--;
          if (typeof line !== 'string') oversize = true;
          else if (!oversize) {
            bytes += line.length;
            if (bytes > limit) oversize = true;
            else {
              text.push(line.slice(1));
              lines.push(next);
            }
          }
          next++;
        } else if (c === '-') oldLeft--;
        else if (c === ' ') {
          oldLeft--;
          newLeft--;
          next++;
        }
        // `\ No newline at end of file` counts for neither side
        continue;
      }
      if (typeof line !== 'string') continue;
      if (line.startsWith('\u0000')) {
        await flush();
        const [, id = '', author, email, date] = line.split('\u0000');
        commit = {
          id,
          author: author || undefined,
          email: email || undefined,
          date: normaliseTimestamp(date) ?? (date || undefined),
        };
        stats.commits++;
      } else if (line.startsWith('diff --git ')) {
        await flush();
      } else if (line.startsWith('+++ ')) {
        // git ends the name with a tab when it holds a space
        const p = unquotePath(line.slice(4).replace(/\t$/, ''));
        file = p === '/dev/null' ? undefined : p.replace(/^b\//, '');
      } else if (line.startsWith('Binary files ') && line.endsWith(' differ')) {
        stats.changes++;
        stats.binary++;
      } else if (line.startsWith('@@ ')) {
        const m = /^@@ -\d+(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/.exec(line);
        if (m) {
          oldLeft = m[1] === undefined ? 1 : Number(m[1]);
          next = Number(m[2]);
          newLeft = m[3] === undefined ? 1 : Number(m[3]);
        }
      }
    }
    await flush();
  } catch (e) {
    child.kill();
    exited.catch(() => undefined);
    throw e;
  }
  const code = await exited;
  if (code !== 0) {
    const why = stderr.trim().split('\n')[0] ?? '';
    throw new ValidationError(`${repo}: git log failed; nothing was imported`, [
      { file: repo, message: `expected git to list the repository's history, got exit code ${code}: ${why}` },
    ]);
  }
  return hash.digest('hex');
}
