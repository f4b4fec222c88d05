import type { Writable } from 'node:stream';

/** Where a command writes: results to stdout, progress and errors to stderr. */
export interface Io {
  out: Writable & { isTTY?: boolean };
  err: Writable & { isTTY?: boolean };
  json: boolean;
}

export function printJson(io: Io, value: unknown): void {
  io.out.write(JSON.stringify(value, null, 2) + '\n');
}

/** Renders rows as an aligned plain-text table. */
export function table(headers: string[], rows: (string | number | null | undefined)[][]): string {
  const cells = rows.map((r) => r.map((c) => (c === null || c === undefined || c === '' ? '-' : String(c))));
  const widths = headers.map((h, i) =>
    Math.min(60, Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length))),
  );
  const line = (r: string[]) =>
    r
      .map((c, i) => {
        const w = widths[i]!;
        const v = c.length > w ? c.slice(0, w - 1) + '…' : c;
        return i === r.length - 1 ? v : v.padEnd(w);
      })
      .join('  ');
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n') + '\n';
}

/** Key/value lines with aligned keys. */
export function fields(pairs: [string, unknown][]): string {
  const w = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${k.padEnd(w)}  ${display(v)}`).join('\n') + '\n';
}

function display(v: unknown): string {
  if (v === null || v === undefined || v === '') return '-';
  if (Array.isArray(v)) return v.map(display).join(', ') || '-';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

export function percent(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}
