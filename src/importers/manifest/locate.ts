import fs from 'node:fs';
import { LineCounter, parseAllDocuments, isNode } from 'yaml';

/**
 * Finds the 1-based line of a field inside the YAML document that starts at `docLine`
 * (error path only: re-reads the file). Falls back to the document's first line.
 */
export function locateField(file: string, docLine: number, fieldPath: (string | number)[]): number {
  try {
    const text = fs.readFileSync(file, 'utf8');
    const lc = new LineCounter();
    const docs = parseAllDocuments(text, { lineCounter: lc });
    for (const doc of Array.isArray(docs) ? docs : [docs]) {
      const start =
        doc.contents && isNode(doc.contents) && doc.contents.range
          ? lc.linePos(doc.contents.range[0]).line
          : undefined;
      if (start === undefined || start < docLine) continue;
      for (let n = fieldPath.length; n > 0; n--) {
        const node = doc.getIn(fieldPath.slice(0, n), true);
        if (isNode(node) && node.range) return lc.linePos(node.range[0]).line;
      }
      return start;
    }
  } catch {
    // the file was readable a moment ago; fall through to the document line
  }
  return docLine;
}
