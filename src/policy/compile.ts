/**
 * Compiles a checked CEL expression (cel-js's AST) into JavaScript, for the speed a
 * million-identity evaluation needs: the interpreter re-dispatches every node on every call
 * (about 1.5 µs per rule and document), and a tree of generic closures shares one property
 * lookup site between every field access of every rule (megamorphic: about 1 µs per rule).
 * The generated function gives each field access its own site (decision record 0004).
 *
 * Only the subset of CEL that rules use is compiled: literals, variables, field access and
 * `has()`, indexing, `==` `!=` `<` `<=` `>` `>=` `+` `-` `*` `/` `%` `!` `&&` `||` `?:` `in`,
 * list and map literals, the macros `exists`, `all`, `exists_one`, `map`, `filter`, and the
 * functions `size`, `type`, `string`, `int`, `double`, `daysSince`, `daysBetween`,
 * `isPlaceholder`, `startsWith`, `endsWith`, `contains`, `matches`, `lowerAscii`, `upperAscii`,
 * `split`, `trim`. Anything else makes `compile` return undefined and the rule runs on the
 * interpreter. Semantics follow CEL where rules can tell: a missing field is an error; `&&`
 * and `||` absorb an error when the other side decides; `exists`/`all` likewise over their
 * elements. Both paths are checked against each other on every built-in rule's examples and
 * on real and random documents (test/policy-compile.test.ts).
 */
import { isPlaceholder } from './environment.js';

type Scope = Record<string, unknown>;
export type Compiled = (scope: Scope) => unknown;

interface Node {
  op: string;
  args: unknown;
}

const DAY_MS = 86_400_000;

class CelError extends Error {}
const fail = (message: string): never => {
  throw new CelError(message);
};

/** Values a rule cannot express, for which the compiler hands the rule back to the interpreter. */
class Unsupported extends Error {}
const unsupported = (what: string): never => {
  throw new Unsupported(what);
};

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

function typeOf(v: unknown): string {
  if (v === null || v === undefined) return 'null_type';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'bigint') return 'int';
  if (typeof v === 'number') return 'double';
  if (typeof v === 'boolean') return 'bool';
  if (v instanceof Date) return 'google.protobuf.Timestamp';
  if (Array.isArray(v)) return 'list';
  if (v instanceof Uint8Array) return 'bytes';
  return 'map';
}

/** A type named as a value (`type(x) == string`). */
class TypeToken {
  constructor(readonly name: string) {}
}
const TYPE_NAMES = new Set(['string', 'int', 'double', 'bool', 'list', 'map', 'null_type', 'bytes']);
const tokens = new Map<string, TypeToken>();
const token = (name: string): TypeToken => {
  let t = tokens.get(name);
  if (!t) tokens.set(name, (t = new TypeToken(name)));
  return t;
};

function equals(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a instanceof TypeToken || b instanceof TypeToken) return false;
  const ta = typeof a;
  const tb = typeof b;
  if ((ta === 'bigint' || ta === 'number') && (tb === 'bigint' || tb === 'number'))
    return Number(a) === Number(b);
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((x, i) => equals(x, b[i]));
  if (isObj(a) && isObj(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && equals(a[k], b[k]));
  }
  return false;
}

const comparable = (a: unknown, b: unknown): [number | bigint | string, number | bigint | string] => {
  if (a instanceof Date && b instanceof Date) return [a.getTime(), b.getTime()];
  const ta = typeof a;
  const tb = typeof b;
  const num = (t: string) => t === 'bigint' || t === 'number';
  if ((num(ta) && num(tb)) || (ta === 'string' && tb === 'string') || (ta === 'boolean' && tb === 'boolean'))
    return [a as number, b as number];
  return fail(`no such overload: ${typeOf(a)} < ${typeOf(b)}`);
};

function field(obj: unknown, name: string): unknown {
  if (isObj(obj)) {
    if (Object.prototype.hasOwnProperty.call(obj, name) && obj[name] !== undefined) return obj[name];
    return fail(`No such key: ${name}`);
  }
  return fail(`no such field ${name} on ${typeOf(obj)}`);
}

function size(v: unknown): bigint {
  if (typeof v === 'string') return BigInt([...v].length);
  if (Array.isArray(v)) return BigInt(v.length);
  if (isObj(v)) return BigInt(Object.keys(v).length);
  return fail(`no such overload: size(${typeOf(v)})`);
}

/** A pattern compiled once, or undefined when it is not a valid regular expression. */
function regexOf(pattern: string): RegExp | undefined {
  try {
    return new RegExp(pattern);
  } catch {
    return undefined;
  }
}

const regexes = new Map<string, RegExp>();
function matches(s: unknown, pattern: unknown): boolean {
  if (typeof s !== 'string' || typeof pattern !== 'string') return fail('no such overload: matches');
  let re = regexes.get(pattern);
  if (!re) {
    try {
      re = new RegExp(pattern);
    } catch {
      return fail(`Invalid regular expression: ${pattern}`);
    }
    regexes.set(pattern, re);
  }
  return re.test(s);
}

const str = (v: unknown, fn: string): string =>
  typeof v === 'string' ? v : fail(`no such overload: ${typeOf(v)}.${fn}`);

function toStringValue(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'bigint' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v instanceof Date) return v.toISOString();
  return fail(`no such overload: string(${typeOf(v)})`);
}

function add(a: unknown, b: unknown): unknown {
  if (typeof a === 'bigint' && typeof b === 'bigint') return a + b;
  if (typeof a === 'number' && typeof b === 'number') return a + b;
  if (typeof a === 'string' && typeof b === 'string') return a + b;
  if (Array.isArray(a) && Array.isArray(b)) return (a as unknown[]).concat(b as unknown[]);
  return fail(`no such overload: ${typeOf(a)} + ${typeOf(b)}`);
}

function arith(op: string, a: unknown, b: unknown): unknown {
  if (typeof a === 'bigint' && typeof b === 'bigint') {
    if ((op === '/' || op === '%') && b === 0n) return fail('division by zero');
    return op === '-' ? a - b : op === '*' ? a * b : op === '/' ? a / b : a % b;
  }
  if (typeof a === 'number' && typeof b === 'number') {
    return op === '-' ? a - b : op === '*' ? a * b : op === '/' ? a / b : a % b;
  }
  return fail(`no such overload: ${typeOf(a)} ${op} ${typeOf(b)}`);
}

/** No error raised (errors can be any value). */
const NONE = Symbol('none');

function elements(v: unknown): unknown[] {
  if (Array.isArray(v)) return v;
  if (isObj(v)) return Object.keys(v);
  return fail(`no such overload: macro over ${typeOf(v)}`);
}

const METHODS: Record<string, (self: unknown, args: unknown[]) => unknown> = {
  startsWith: (a, [b]) => str(a, 'startsWith').startsWith(str(b, 'startsWith')),
  endsWith: (a, [b]) => str(a, 'endsWith').endsWith(str(b, 'endsWith')),
  contains: (a, [b]) => str(a, 'contains').includes(str(b, 'contains')),
  matches: (a, [b]) => matches(a, b),
  lowerAscii: (a) => str(a, 'lowerAscii').toLowerCase(),
  upperAscii: (a) => str(a, 'upperAscii').toUpperCase(),
  trim: (a) => str(a, 'trim').trim(),
  split: (a, [b]) => str(a, 'split').split(str(b, 'split')),
  size: (a) => size(a),
};

const days = (a: unknown, b: unknown): bigint =>
  a instanceof Date && b instanceof Date
    ? BigInt(Math.floor((b.getTime() - a.getTime()) / DAY_MS))
    : fail('no such overload: daysSince');

const FUNCTIONS: Record<string, (args: unknown[]) => unknown> = {
  size: ([a]) => size(a),
  type: ([a]) => token(typeOf(a)),
  string: ([a]) => toStringValue(a),
  int: ([a]) =>
    typeof a === 'bigint'
      ? a
      : typeof a === 'number' && Number.isFinite(a)
        ? BigInt(Math.trunc(a))
        : typeof a === 'string' && /^-?\d+$/.test(a)
          ? BigInt(a)
          : fail('no such overload: int'),
  double: ([a]) =>
    typeof a === 'number' ? a : typeof a === 'bigint' ? Number(a) : fail('no such overload: double'),
  daysSince: ([a, b]) => days(a, b),
  daysBetween: ([a, b]) => days(a, b),
  isPlaceholder: ([a]) => isPlaceholder(str(a, 'isPlaceholder')),
  dyn: ([a]) => a,
};

/** `a == b` beyond the cases the generated code decides inline (`a === b`). */
const equalsSlow = (a: unknown, b: unknown): boolean =>
  a instanceof TypeToken || b instanceof TypeToken ? false : equals(a, b);

const noField = (o: unknown, name: string): never => fail(`no such field ${name} on ${typeOf(o)}`);

const hasOwn = (obj: unknown, name: string): boolean =>
  isObj(obj)
    ? Object.prototype.hasOwnProperty.call(obj, name) && obj[name] !== undefined
    : fail(`has() on ${typeOf(obj)}`);

function index(obj: unknown, k: unknown): unknown {
  if (Array.isArray(obj)) {
    const list = obj as unknown[];
    if (typeof k !== 'bigint' && typeof k !== 'number') return fail('list index is not an int');
    const n = Number(k);
    return n >= 0 && n < list.length ? list[n] : fail(`index out of bounds: ${n}`);
  }
  if (isObj(obj) && typeof k === 'string') return field(obj, k);
  return fail(`no such overload: ${typeOf(obj)}[${typeOf(k)}]`);
}

/** `<` `<=` `>` `>=`: two numbers, two strings or two timestamps directly, the rest by `comparable`. */
function compare(op: string, a: unknown, b: unknown): boolean {
  let x: unknown = a;
  let y: unknown = b;
  const ta = typeof a;
  if (a instanceof Date && b instanceof Date) {
    x = a.getTime();
    y = b.getTime();
  } else if (!((ta === 'bigint' || ta === 'number' || ta === 'string') && ta === typeof b)) {
    [x, y] = comparable(a, b);
  }
  const p = x as number;
  const q = y as number;
  return op === '<' ? p < q : op === '<=' ? p <= q : op === '>' ? p > q : p >= q;
}

function membership(x: unknown, c: unknown): boolean {
  if (Array.isArray(c)) return c.some((y) => equals(x, y));
  if (isObj(c)) return typeof x === 'string' && Object.prototype.hasOwnProperty.call(c, x);
  return fail(`no such overload: in ${typeOf(c)}`);
}

function mapLiteral(kv: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i < kv.length; i += 2) {
    const key = kv[i];
    if (typeof key !== 'string') return fail('map keys must be strings here');
    out[key] = kv[i + 1];
  }
  return out;
}

const negate = (v: unknown): unknown =>
  typeof v === 'bigint' ? -v : typeof v === 'number' ? -v : fail('no such overload: -');

/** What generated code may call; handed to it as one argument, nothing else is in its reach. */
const HELPERS = {
  fail,
  isObj,
  NONE,
  CelError,
  equalsSlow,
  noField,
  field,
  hasOwn,
  index,
  compare,
  membership,
  mapLiteral,
  negate,
  add,
  arith,
  elements,
  size,
  matches,
  str,
  days,
  isPlaceholder,
};
const HELPER_NAMES = Object.keys(HELPERS).join(', ');

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MACROS = new Set(['exists', 'all', 'exists_one', 'map', 'filter']);

/** One generated JavaScript function: its temporaries, and which macro variables it sees. */
interface Fn {
  temps: number;
  bound: string[];
}

/**
 * Generates JavaScript for one expression. Every value from the rule (literals, field and
 * variable names) reaches the code only as a JSON string literal or through the constants array
 * `K`; variables bound by macros become JavaScript locals `v_<name>` (CEL identifiers only).
 * Operators that need statements (`&&` and `||` absorbing errors, macros) become top-level
 * functions taking the scope and the macro variables in reach, so nothing allocates a closure
 * per call, and every field access is its own property lookup site (V8 keeps one inline cache
 * per site: with one document shape, each is monomorphic).
 */
class Generator {
  readonly fns: string[] = [];
  readonly consts: unknown[] = [];

  /** The rule's parameters, fixed for the life of the compiled function (see {@link compile}). */
  constructor(readonly params?: Record<string, unknown>) {}

  /**
   * The value of a node known when the rule is compiled: a literal, a list of literals, or
   * `params.<name>` of a declared parameter; undefined otherwise.
   */
  known(node: Node, fn: Fn): { value: unknown } | undefined {
    if (node.op === 'value') return { value: node.args };
    if (node.op === 'list') {
      const items = (node.args as Node[]).map((n) => this.known(n, fn));
      return items.every((i) => i !== undefined) ? { value: items.map((i) => i.value) } : undefined;
    }
    if (node.op !== '.' || !this.params) return undefined;
    const [target, name] = node.args as [Node, string];
    if (target.op !== 'id' || target.args !== 'params' || fn.bound.includes('params')) return undefined;
    if (!Object.prototype.hasOwnProperty.call(this.params, name)) return undefined;
    const value = this.params[name];
    return value === undefined ? undefined : { value };
  }

  constant(v: unknown): string {
    this.consts.push(v);
    return `K[${this.consts.length - 1}]`;
  }

  temp(fn: Fn): string {
    return `t${fn.temps++}`;
  }

  /** A top-level function with the given statements; returns the expression that calls it. */
  hoist(outer: Fn, body: (fn: Fn) => string): string {
    const fn: Fn = { temps: 0, bound: outer.bound };
    const params = ['s', ...outer.bound.map((b) => `v_${b}`)].join(', ');
    const text = body(fn);
    const name = `f${this.fns.length}`;
    const temps = fn.temps ? `let ${Array.from({ length: fn.temps }, (_, i) => `t${i}`).join(', ')};` : '';
    this.fns.push(`function ${name}(${params}) { ${temps} ${text} }`);
    return `${name}(${params})`;
  }

  expr(node: Node, fn: Fn): string {
    const { op, args } = node;
    switch (op) {
      case 'value':
        return this.literal(args);
      case 'id': {
        const name = args as string;
        if (fn.bound.includes(name)) return `v_${name}`;
        const n = JSON.stringify(name);
        if (TYPE_NAMES.has(name)) return `(${n} in s ? s[${n}] : ${this.constant(token(name))})`;
        return `(s[${n}] !== undefined ? s[${n}] : fail(${JSON.stringify(`Unknown variable: ${name}`)}))`;
      }
      case '.': {
        const [target, name] = args as [Node, string];
        const fixed = this.known(node, fn);
        if (fixed) return this.constant(fixed.value);
        const t = this.temp(fn);
        const n = JSON.stringify(name);
        // names an object could inherit (`constructor`, `toString`, …): own keys only
        if (name in Object.prototype) return `field(${this.expr(target, fn)}, ${n})`;
        // for a name no plain object inherits, "own and defined" is "defined"
        return `(${t} = ${this.expr(target, fn)}, isObj(${t}) ? (${t}[${n}] !== undefined ? ${t}[${n}] : fail(${JSON.stringify(`No such key: ${name}`)})) : noField(${t}, ${n}))`;
      }
      case '[]': {
        const [target, i] = args as [Node, Node];
        return `index(${this.expr(target, fn)}, ${this.expr(i, fn)})`;
      }
      case 'call':
        return this.call(args as [string, Node[]], fn);
      case 'rcall': {
        const [name, target, params] = args as [string, Node, Node[]];
        if (MACROS.has(name)) return this.macro(name, target, params, fn);
        const m = METHODS[name];
        if (!m) return unsupported(`method ${name}`);
        const self = this.expr(target, fn);
        const ps = params.map((p) => this.expr(p, fn));
        if (name === 'matches' && ps.length === 1) {
          const pattern = this.known(params[0]!, fn)?.value;
          const re = typeof pattern === 'string' ? regexOf(pattern) : undefined;
          if (!re) return `matches(${self}, ${ps[0]!})`;
          const t = this.temp(fn);
          return `(${t} = ${self}, typeof ${t} === 'string' ? ${this.constant(re)}.test(${t}) : fail('no such overload: matches'))`;
        }
        if (name === 'lowerAscii' && !ps.length) return `str(${self}, 'lowerAscii').toLowerCase()`;
        return `${this.constant(m)}(${self}, [${ps.join(', ')}])`;
      }
      case '&&':
      case '||': {
        const [a, b] = args as [Node, Node];
        const d = String(op === '||');
        return this.hoist(
          fn,
          (f) =>
            `let l, le = NONE, r, re = NONE;
            try { l = ${this.expr(a, f)}; } catch (e) { le = e; }
            if (l === ${d}) return ${d};
            try { r = ${this.expr(b, f)}; } catch (e) { re = e; }
            if (r === ${d}) return ${d};
            if (le !== NONE) throw le;
            if (re !== NONE) throw re;
            if (typeof l !== 'boolean' || typeof r !== 'boolean') return fail(${JSON.stringify(`no such overload: ${op} on non-bool`)});
            return ${String(op !== '||')};`,
        );
      }
      case '!_': {
        const t = this.temp(fn);
        return `(${t} = ${this.expr(args as Node, fn)}, typeof ${t} === 'boolean' ? !${t} : fail('no such overload: !'))`;
      }
      case '-_':
        return `negate(${this.expr(args as Node, fn)})`;
      case '?:': {
        const [c, a, b] = args as [Node, Node, Node];
        const t = this.temp(fn);
        return `(${t} = ${this.expr(c, fn)}, typeof ${t} !== 'boolean' ? fail('ternary condition is not bool') : ${t} ? ${this.expr(a, fn)} : ${this.expr(b, fn)})`;
      }
      case '==':
      case '!=': {
        const [a, b] = args as [Node, Node];
        const x = this.temp(fn);
        const y = this.temp(fn);
        const eq = `(${x} = ${this.expr(a, fn)}, ${y} = ${this.expr(b, fn)}, ${x} === ${y} || equalsSlow(${x}, ${y}))`;
        return op === '==' ? eq : `!${eq}`;
      }
      case '<':
      case '<=':
      case '>':
      case '>=': {
        const [a, b] = args as [Node, Node];
        return `compare('${op}', ${this.expr(a, fn)}, ${this.expr(b, fn)})`;
      }
      case '+': {
        const [a, b] = args as [Node, Node];
        return `add(${this.expr(a, fn)}, ${this.expr(b, fn)})`;
      }
      case '-':
      case '*':
      case '/':
      case '%': {
        const [a, b] = args as [Node, Node];
        return `arith('${op}', ${this.expr(a, fn)}, ${this.expr(b, fn)})`;
      }
      case 'in': {
        const [a, b] = args as [Node, Node];
        const list = this.known(b, fn)?.value;
        if (Array.isArray(list) && list.every((x) => typeof x === 'string')) {
          // a string is in a list of strings when it is one of them; anything else is never equal
          const t = this.temp(fn);
          return `(${t} = ${this.expr(a, fn)}, typeof ${t} === 'string' ? ${this.constant(new Set(list))}.has(${t}) : membership(${t}, ${this.constant(list)}))`;
        }
        return `membership(${this.expr(a, fn)}, ${this.expr(b, fn)})`;
      }
      case 'list':
        return `[${(args as Node[]).map((n) => this.expr(n, fn)).join(', ')}]`;
      case 'map':
        return `mapLiteral([${(args as [Node, Node][])
          .flatMap(([k, v]) => [this.expr(k, fn), this.expr(v, fn)])
          .join(', ')}])`;
      default:
        return unsupported(`operator ${op}`);
    }
  }

  literal(v: unknown): string {
    if (typeof v === 'string') return JSON.stringify(v);
    if (typeof v === 'boolean' || v === null) return String(v);
    if (typeof v === 'bigint') return `(${v}n)`;
    return this.constant(v);
  }

  call([name, params]: [string, Node[]], fn: Fn): string {
    if (name === 'has') {
      const inner = params[0];
      if (!inner || inner.op !== '.') return unsupported('has() without a field');
      const [target, f] = inner.args as [Node, string];
      const n = JSON.stringify(f);
      if (f in Object.prototype) return `hasOwn(${this.expr(target, fn)}, ${n})`;
      const t = this.temp(fn);
      return `(${t} = ${this.expr(target, fn)}, isObj(${t}) ? ${t}[${n}] !== undefined : hasOwn(${t}, ${n}))`;
    }
    const f = FUNCTIONS[name];
    if (!f) return unsupported(`function ${name}`);
    const ps = params.map((p) => this.expr(p, fn));
    if ((name === 'daysSince' || name === 'daysBetween') && ps.length === 2)
      return `days(${ps[0]!}, ${ps[1]!})`;
    if (name === 'size' && ps.length === 1) return `size(${ps[0]!})`;
    if (name === 'isPlaceholder' && ps.length === 1) return `isPlaceholder(str(${ps[0]!}, 'isPlaceholder'))`;
    return `${this.constant(f)}([${ps.join(', ')}])`;
  }

  macro(name: string, target: Node, params: Node[], outer: Fn): string {
    const variable = params[0];
    if (!variable || variable.op !== 'id' || typeof variable.args !== 'string' || !IDENT.test(variable.args))
      return unsupported(`${name} without a variable`);
    const v = variable.args;
    const body = params.slice(1);
    if (body.length !== 1 && !(name === 'map' && body.length === 2))
      return unsupported(`${name} with ${body.length} expressions`);
    return this.hoist(outer, (fn) => {
      const list = `const list = elements(${this.expr(target, fn)});`;
      // the element is a local of the loop body (`v_<name>`), in reach of everything inside it
      const saved = fn.bound;
      fn.bound = [...saved.filter((b) => b !== v), v];
      const [first, second] = body.map((n) => this.expr(n, fn)) as [string, string | undefined];
      fn.bound = saved;
      const each = (stmts: string) =>
        `for (let i = 0; i < list.length; i++) { const v_${v} = list[i]; ${stmts} }`;
      switch (name) {
        case 'exists':
        case 'all': {
          const want = String(name === 'exists');
          return `${list} let err = NONE;
            ${each(`let r;
              try { r = ${first}; } catch (e) { if (err === NONE) err = e; continue; }
              if (r === ${want}) return ${want};
              if (typeof r !== 'boolean' && err === NONE) err = new CelError(${JSON.stringify(`${name} predicate is not bool`)});`)}
            if (err !== NONE) throw err;
            return ${String(name !== 'exists')};`;
        }
        case 'exists_one':
          return `${list} let n = 0;
            ${each(`const r = ${first};
              if (typeof r !== 'boolean') fail('exists_one predicate is not bool');
              if (r) n += 1;`)}
            return n === 1;`;
        case 'map':
          if (second === undefined)
            return `${list} const out = []; ${each(`out.push(${first});`)} return out;`;
          return `${list} const out = [];
            ${each(`const keep = ${first};
              if (typeof keep !== 'boolean') fail('map filter is not bool');
              if (keep) out.push(${second});`)}
            return out;`;
        default: // filter
          return `${list} const out = [];
            ${each(`const keep = ${first};
              if (typeof keep !== 'boolean') fail('filter predicate is not bool');
              if (keep) out.push(v_${v});`)}
            return out;`;
      }
    });
  }
}

/**
 * The compiled expression, or undefined when it uses something the compiler does not know.
 * With `params`, `params.<name>` of a declared parameter is that value, fixed in the code
 * (membership in a list of strings becomes a set lookup, a pattern is compiled once): the
 * function must then be called with those same params, as a rule always is.
 */
export function compile(ast: unknown, params?: Record<string, unknown>): Compiled | undefined {
  const g = new Generator(params);
  let entry: string;
  try {
    entry = g.hoist({ temps: 0, bound: [] }, (fn) => `return ${g.expr(ast as Node, fn)};`);
  } catch (e) {
    if (e instanceof Unsupported) return undefined;
    throw e;
  }
  const source = `"use strict"; const { ${HELPER_NAMES} } = H;\n${g.fns.join('\n')}\nreturn (s) => ${entry};`;
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- generated from a checked AST; see Generator
  return (new Function('H', 'K', source) as (h: typeof HELPERS, k: unknown[]) => Compiled)(HELPERS, g.consts);
}
