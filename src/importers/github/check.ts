import { isoTime } from '../cloudtrail/index.js';
import { describeJson, isObject, type Json } from '../common.js';

/** `a.b` from a JSON path and a key (either may be empty). */
export const joinPath = (path: string, key: string): string =>
  path === '' ? key : key === '' ? path : key.startsWith('[') ? `${path}${key}` : `${path}.${key}`;

/** Epoch seconds below this are read as seconds, above as milliseconds (GitHub writes milliseconds). */
const SECONDS_LIMIT = 1e11;
const DIGITS_RE = /^\d{9,16}$/;

/**
 * A timestamp as GitHub and its log shippers write it: epoch milliseconds (a number or a string
 * of digits; small values are epoch seconds), or ISO-8601 with or without zone, with a space or
 * `T`, with any fraction (Panther writes nanoseconds). Undefined when it is not one.
 */
export function githubTime(v: unknown): string | undefined {
  let n: number | undefined;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string' && DIGITS_RE.test(v.trim())) n = Number(v.trim());
  else if (typeof v === 'string') return isoTime(v);
  if (n === undefined || !Number.isFinite(n) || n <= 0) return undefined;
  const ms = n < SECONDS_LIMIT ? n * 1000 : n;
  const d = new Date(Math.trunc(ms));
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

const ID_RE = /^\d{1,20}$/;

/**
 * Reads the fields of one record, keeping the first problem found (one problem per record, the
 * first is what a person fixes first). Every reader takes the key's JSON path for the message.
 */
export class RecordCheck {
  first: { field: string; message: string } | undefined;

  constructor(readonly path: string) {}

  fail(field: string, message: string): void {
    if (!this.first) this.first = { field: joinPath(this.path, field), message };
  }

  get ok(): boolean {
    return this.first === undefined;
  }

  /** A string, or nothing (absent or null). */
  str(o: Json, key: string, field = key): string | undefined {
    const v = o[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string') return v;
    this.fail(field, `expected a string, got ${describeJson(v)}`);
    return undefined;
  }

  /** A non-empty string that must be there. */
  required(o: Json, key: string, what: string, field = key): string | undefined {
    const v = o[key];
    if (typeof v === 'string' && v.trim() !== '') return v;
    this.fail(field, `expected ${what}, got ${describeJson(v)}`);
    return undefined;
  }

  /** A boolean, or nothing. */
  bool(o: Json, key: string, field = key): boolean | undefined {
    const v = o[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'boolean') return v;
    this.fail(field, `expected true or false, got ${describeJson(v)}`);
    return undefined;
  }

  /** A GitHub numeric id (a number or a string of digits) as a string, or nothing. */
  id(o: Json, key: string, field = key): string | undefined {
    const v = o[key];
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return String(v);
    if (typeof v === 'string' && ID_RE.test(v)) return v;
    this.fail(field, `expected an id (a whole number or a string of digits), got ${describeJson(v)}`);
    return undefined;
  }

  /** An id that must be there. */
  requiredId(o: Json, key: string, field = key): string | undefined {
    const v = o[key];
    if (v === undefined || v === null || v === '') {
      this.fail(field, `expected an id (a whole number or a string of digits), got ${describeJson(v)}`);
      return undefined;
    }
    return this.id(o, key, field);
  }

  /** A timestamp (see {@link githubTime}) as ISO-8601 UTC, or nothing. */
  time(o: Json, key: string, field = key): string | undefined {
    const v = o[key];
    if (v === undefined || v === null || v === '') return undefined;
    const t = githubTime(v);
    if (t === undefined)
      this.fail(field, `expected epoch milliseconds or an ISO-8601 timestamp, got ${describeJson(v)}`);
    return t;
  }

  /** An object, or nothing. */
  obj(o: Json, key: string, field = key): Json | undefined {
    const v = o[key];
    if (v === undefined || v === null) return undefined;
    if (isObject(v)) return v;
    this.fail(field, `expected an object, got ${describeJson(v)}`);
    return undefined;
  }

  /** An array of strings, or nothing; other elements are a problem. */
  strings(o: Json, key: string, field = key): string[] | undefined {
    const v = o[key];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v)) {
      this.fail(field, `expected an array of strings, got ${describeJson(v)}`);
      return undefined;
    }
    const out: string[] = [];
    for (let i = 0; i < v.length; i++) {
      const s: unknown = v[i];
      if (typeof s !== 'string') {
        this.fail(`${field}[${i}]`, `expected a string, got ${describeJson(s)}`);
        return undefined;
      }
      out.push(s);
    }
    return out;
  }

  /** A flat map of permission name to level (`read`, `write`, `admin` …), or nothing. */
  permissions(o: Json, key: string, field = key): Record<string, string> | undefined {
    const v = this.obj(o, key, field);
    if (!v) return undefined;
    const out: Record<string, string> = {};
    for (const k of Object.keys(v).sort()) {
      const level = v[k];
      if (level === null || level === undefined) continue;
      if (typeof level !== 'string') {
        this.fail(
          `${field}.${k}`,
          `expected a permission level (read, write, admin), got ${describeJson(level)}`,
        );
        return undefined;
      }
      out[k] = level;
    }
    return out;
  }
}
