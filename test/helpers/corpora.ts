import fs from 'node:fs';
import path from 'node:path';

/** The third-party sample exports, read in place (some licences forbid copying them here). */
export const CORPORA = path.resolve(
  process.env.STEWARD_CORPORA ?? path.join(import.meta.dirname, '..', '..', '..', 'shared', 'corpora'),
);

export const corporaAvailable = fs.existsSync(CORPORA);

if (!corporaAvailable) {
  const msg = `corpus suites did NOT run: no corpora at ${CORPORA} (set STEWARD_CORPORA)`;
  // CI always has the corpora: there, their absence is a failure, never a silent pass.
  if (process.env.CI === 'true') throw new Error(msg);
  console.warn(msg);
}

/** Absolute path of a corpus file. */
export function corpus(rel: string): string {
  return path.join(CORPORA, rel);
}
