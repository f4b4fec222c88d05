/**
 * Secret scanning with secretlint: `steward import secrets <dir|git-repo>… [--history]`.
 *
 * Without `--history` the inputs are folders (or files) read as they are now: every text file,
 * skipping `.git` and `node_modules` folders, symbolic links, binary files, non-regular files and
 * files over the size limit (`maxBytes`, default 5 MiB per file), each counted in the notes. With
 * `--history` each input is a git repository and what every commit (of every ref) added is
 * scanned, streamed from the system `git log -p` one file change at a time; a finding then
 * carries its commit, author, email and date.
 *
 * The rules are secretlint's recommended preset (AWS key ids on their own included, AWS account
 * ids and AWS documentation's example keys not) plus `rules.ts`: an AWS access key id paired with
 * its secret access key, and GitLab's machine tokens.
 *
 * What it yields is what the gitleaks importer yields (see `../findings.ts`): each distinct secret
 * one identity of kind `secret`, `secret:<fingerprint>`, holding one credential whose locations
 * are every place it was found, `file:<path>:<line>` or `git:<path>:<line>@<commit>` (paths
 * relative to the input; prefixed with the input's name when several inputs are given). A secret
 * paired with its AWS key id carries it as `awsAccessKeyId`, and the key id's line is one of its
 * locations.
 *
 * Secrets: only `keys.fingerprint(secret)` is kept; secretlint's messages (which quote the secret)
 * are never read. A file that cannot be read is a problem (`--skip-invalid` skips it).
 *
 * Snapshot: the scope is `dir:<name>` or `git:<name>` (the inputs' folder names); a later scan
 * of the same scope without a secret marks it vanished.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ValidationError } from '../../domain/errors.js';
import type { Problem } from '../../domain/problems.js';
import type { DiscoveryBatch } from '../../inventory/import-discovery.js';
import { identitiesOf, type Finding } from '../findings.js';
import type { ReadOptions, ReadResult, SourceImporter } from '../source.js';
import { assertGitRepository, readHistory, type Commit, type HistoryStats } from './history.js';
import { scanText, type ScanHit } from './scan.js';
import { emptyStats, walkTree } from './tree.js';

const SOURCE = 'secrets';
const DESCRIPTION =
  'secrets in folders, or with --history in every commit of git repositories (secretlint): unmanaged identities, by fingerprint';

/** Files (or the text one commit added to a file) larger than this are not scanned. */
export const DEFAULT_FILE_LIMIT = 5 * 1024 * 1024;

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** Checks that every input exists (and, for `--history`, is a git repository) before anything is read. */
function checkInputs(paths: string[], history: boolean): void {
  if (paths.length === 0) {
    throw new ValidationError('no input given; nothing was imported', [
      { file: '-', message: 'expected a folder, file or git repository to scan' },
    ]);
  }
  const problems: Problem[] = [];
  for (const p of paths) {
    if (p === '-') {
      problems.push({ file: p, message: 'expected a folder, file or git repository, got standard input' });
      continue;
    }
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      problems.push({
        file: p,
        message:
          code === 'ENOENT' || code === 'ENOTDIR'
            ? 'expected a folder, file or git repository, got nothing at this path'
            : `expected a folder, file or git repository, got ${code ?? 'an error'}`,
      });
      continue;
    }
    if (history && !st.isDirectory())
      problems.push({ file: p, message: 'expected a git repository (a folder) with --history, got a file' });
  }
  if (problems.length)
    throw new ValidationError(
      `${plural(problems.length, 'input')} cannot be scanned; nothing was imported`,
      problems,
    );
  if (history) for (const p of paths) assertGitRepository(p);
}

/** How a finding names its file: relative to its input, prefixed with the input's name when there are several. */
function labeller(paths: string[]): (input: string, rel: string) => string {
  if (paths.length === 1) return (_input, rel) => rel;
  return (input, rel) => `${path.basename(path.resolve(input))}/${rel}`;
}

export const importer: SourceImporter = {
  source: SOURCE,
  description: DESCRIPTION,
  async read(paths: string[], options: ReadOptions): Promise<ReadResult> {
    const history = options.history === true;
    checkInputs(paths, history);
    const limit = options.maxBytes ?? DEFAULT_FILE_LIMIT;
    const label = labeller(paths);
    const fingerprint = (s: string) => options.keys.fingerprint(s);
    const findings: Finding[] = [];
    const problems: Problem[] = [];
    const files: DiscoveryBatch['files'] = [];
    const notes: string[] = [];
    const add = (hit: ScanHit, file: string, line: number, commit?: Commit) =>
      findings.push({
        fingerprint: hit.fingerprint,
        redacted: false,
        awsAccessKeyId: hit.awsAccessKeyId,
        rule: hit.rule,
        kind: hit.kind,
        description: undefined,
        file,
        line,
        commit: commit?.id,
        author: commit?.author,
        email: commit?.email,
        date: commit?.date,
        order: findings.length,
      });

    if (history) {
      const stats: HistoryStats = { commits: 0, changes: 0, binary: 0, tooLarge: 0 };
      for (const input of paths) {
        const sha256 = await readHistory(input, limit, stats, async ({ commit, file, text, lines }) => {
          for (const hit of await scanText(text, file, fingerprint))
            add(hit, label(input, file), lines[hit.line - 1] ?? hit.line, commit);
        });
        files.push({ path: path.resolve(input), sha256 });
      }
      notes.push(
        `scanned ${plural(stats.commits, 'commit')}, ${plural(stats.changes - stats.binary - stats.tooLarge, 'file change')}; ` +
          `skipped ${stats.binary} binary, ${stats.tooLarge} over ${limit} bytes`,
      );
    } else {
      const stats = emptyStats();
      for (const input of paths) {
        const sha256 = await walkTree(input, limit, stats, problems, async (text, rel) => {
          for (const hit of await scanText(text, rel, fingerprint)) add(hit, label(input, rel), hit.line);
        });
        files.push({ path: path.resolve(input), sha256 });
      }
      notes.push(
        `scanned ${plural(stats.scanned, 'file')}; skipped ${stats.binary} binary, ${stats.tooLarge} over ${limit} bytes, ` +
          `${plural(stats.symlinks, 'symbolic link')}, ${stats.special} not regular, ${stats.unreadable} unreadable`,
      );
    }

    if (problems.length && !options.skipInvalid) {
      throw new ValidationError(
        `${plural(problems.length, 'path')} could not be read; nothing was imported`,
        problems,
      );
    }
    const names = paths.map((p) => path.basename(path.resolve(p)));
    return {
      batch: {
        source: SOURCE,
        scope: `${history ? 'git' : 'dir'}:${names.join(',')}`,
        snapshot: true,
        files,
        identities: identitiesOf(findings),
      },
      skipped: options.skipInvalid ? problems : [],
      notes,
    };
  },
};
