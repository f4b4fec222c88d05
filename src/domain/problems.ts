/** One problem found in an input file: where it is and what was expected. */
export interface Problem {
  file: string;
  /** 1-based line, when known. */
  line?: number;
  /** Dotted field path inside the document (e.g. `spec.owners.business`), when known. */
  field?: string;
  /** Human sentence: `expected …, got …`. */
  message: string;
}

/** Formats a problem as `file:line: field: message`. */
export function formatProblem(p: Problem): string {
  const where = p.line !== undefined ? `${p.file}:${p.line}` : p.file;
  return p.field ? `${where}: ${p.field}: ${p.message}` : `${where}: ${p.message}`;
}
