import type { Problem } from '../../domain/problems.js';
import { describeJson, isObject, type Json } from '../common.js';
import { isoTime } from '../cloudtrail/index.js';

/** The shape of a value that may be secret material: its JSON type, never its content. */
export function describeShape(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `a string of ${v.length} characters`;
  if (typeof v === 'object') return 'an object';
  return `a ${typeof v}`;
}

/** `a.b`, `a[0]`: a field path inside a record whose own path is `base`. */
export const join = (base: string, key: string | number): string =>
  typeof key === 'number' ? `${base}[${key}]` : base === '' ? key : `${base}.${key}`;

/**
 * Reads typed fields of one record and collects every problem with its JSON path. Fields marked
 * secret are described by their shape only, so a misplaced secret never reaches a message.
 */
export class Check {
  readonly problems: Problem[] = [];
  constructor(
    readonly file: string,
    readonly line: number,
  ) {}

  fail(field: string, expected: string, got: unknown, secret = false): void {
    this.problems.push({
      file: this.file,
      line: this.line,
      field,
      message: `expected ${expected}, got ${secret ? describeShape(got) : describeJson(got)}`,
    });
  }

  /** A string field; null and absent are undefined; `required` also refuses an empty string. */
  str(o: Json, key: string, path: string, required = false, secret = false): string | undefined {
    const v = o[key];
    if (v === undefined || v === null) {
      if (required) this.fail(join(path, key), 'a non-empty string', v);
      return undefined;
    }
    if (typeof v !== 'string' || (required && v.trim() === '')) {
      this.fail(join(path, key), required ? 'a non-empty string' : 'a string', v, secret);
      return undefined;
    }
    return v;
  }

  bool(o: Json, key: string, path: string): boolean | undefined {
    const v = o[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') {
      this.fail(join(path, key), 'a boolean', v);
      return undefined;
    }
    return v;
  }

  /** An ISO-8601 timestamp (any fraction length, `Z` or an offset), normalised to UTC. */
  time(o: Json, key: string, path: string, required = false): string | undefined {
    const v = o[key];
    if (v === undefined || v === null) {
      if (required) this.fail(join(path, key), 'an ISO-8601 timestamp', v);
      return undefined;
    }
    const t = typeof v === 'string' ? isoTime(v) : undefined;
    if (t === undefined) this.fail(join(path, key), 'an ISO-8601 timestamp', v);
    return t;
  }

  list(o: Json, key: string, path: string): unknown[] {
    const v = o[key];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) {
      this.fail(join(path, key), 'an array', v);
      return [];
    }
    return v;
  }

  /** Each element of an array field that is an object, with its path; others are problems. */
  objects(o: Json, key: string, path: string, what: string): { o: Json; path: string }[] {
    const out: { o: Json; path: string }[] = [];
    const list = this.list(o, key, path);
    for (let i = 0; i < list.length; i++) {
      const p = `${join(path, key)}[${i}]`;
      const v = list[i];
      if (isObject(v)) out.push({ o: v, path: p });
      else this.fail(p, what, v);
    }
    return out;
  }

  strings(o: Json, key: string, path: string): string[] {
    const out: string[] = [];
    const list = this.list(o, key, path);
    for (let i = 0; i < list.length; i++) {
      const v = list[i];
      if (typeof v === 'string') out.push(v);
      else this.fail(`${join(path, key)}[${i}]`, 'a string', v);
    }
    return out;
  }

  obj(o: Json, key: string, path: string): Json | undefined {
    const v = o[key];
    if (v === undefined || v === null) return undefined;
    if (!isObject(v)) {
      this.fail(join(path, key), 'an object', v);
      return undefined;
    }
    return v;
  }
}
