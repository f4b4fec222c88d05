import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/**
 * A file shipped with the package (`data/…`, `rules/…`), found from wherever this module runs:
 * `src/` under the test runner or `dist/src/` once compiled.
 */
export function packageFile(...parts: string[]): string {
  if (!root) {
    let dir = path.dirname(fileURLToPath(import.meta.url));
    while (!fs.existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir)
      dir = path.dirname(dir);
    root = dir;
  }
  return path.join(root, ...parts);
}
