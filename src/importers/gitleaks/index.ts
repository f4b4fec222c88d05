/**
 * gitleaks findings: the JSON report (`--report-format json`, an array of findings) and the
 * SARIF 2.1.0 log (`--report-format sarif`). The format is decided by content: a JSON array is
 * a JSON report, an object with `runs` a SARIF log. CSV, JUnit and template reports are refused
 * with a problem saying so.
 *
 * A finding is a leaked secret that no identity owns (yet): each distinct secret becomes one
 * identity of kind `secret` (external id `secret:<fingerprint>`, name `<RuleID> in <File>`,
 * attributes `{unmanaged, rule, description}`) holding one credential (external id = the
 * fingerprint; kind from the rule, e.g. `aws-access-key`; every place it was found as a
 * location `git:<File>:<StartLine>@<Commit>`, or `file:<File>:<StartLine>` without a commit;
 * attributes `{author, email, date, commit, rule}` of its earliest finding).
 *
 * Secrets: the fingerprint is `keys.fingerprint(Secret)`, a keyed hash; `Secret`, `Match`,
 * `Line` and the SARIF snippet (which holds the secret) are read only to compute it and to
 * find an AWS access key id, and are never kept, logged or put in a message; neither is the
 * commit message. An AWS key id (`AKIA…`/`ASIA…`) is an identifier, not a secret: it is kept as
 * `attributes.awsAccessKeyId` so that the finding can be linked to the known key.
 *
 * Redacted reports (`--redact`: `REDACTED`, or a prefix ending in `...` for `--redact=N`, or a
 * value masked with `*`) have no value to fingerprint: such a finding is keyed by where it is,
 * `keys.fingerprint("<Commit>:<File>:<StartLine>:<RuleID>")` (the commit keeps two repositories'
 * `.env:1` apart), its credential has no `fingerprint` (it is not a hash of the secret and must
 * never be linked as one) and carries `attributes.redacted: true`.
 *
 * Snapshot: the scope is the report's file name (standard input: `stdin`); a later report of
 * the same name without a finding marks its secret as vanished.
 */
import path from 'node:path';
import parser, { type Token } from 'stream-json/parser.js';
import Assembler from 'stream-json/assembler.js';
import { ValidationError } from '../../domain/errors.js';
import type { Problem } from '../../domain/problems.js';
import type { DiscoveryBatch } from '../../inventory/import-discovery.js';
import { AWS_KEY_ID, identitiesOf, type Finding } from '../findings.js';
import { describeValue, formatFieldPath } from '../manifest/parse.js';
import { listFiles, normaliseTimestamp, openInput, sniff, type OpenedInput } from '../common.js';
import type { ReadOptions, ReadResult, SourceImporter } from '../source.js';

type Seg = string | number;
type Obj = Record<string, unknown>;

/** The parts of a finding as a report states them (the secret only until it is fingerprinted). */
interface RawFinding {
  rule: unknown;
  description: unknown;
  file: unknown;
  line: unknown;
  secret: unknown;
  match: unknown;
  commit: unknown;
  author: unknown;
  email: unknown;
  date: unknown;
  /** Where each field sits in the report, for problems. */
  at: Record<'rule' | 'file' | 'line' | 'secret' | 'match' | 'commit' | 'author' | 'email' | 'date', Seg[]>;
}

const SOURCE = 'gitleaks';

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The shape of a value, never its content (for fields that hold secrets). */
function shapeOf(v: unknown): string {
  if (v === undefined || v === null) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `a ${typeof v}`;
}

/** Credential kind from a gitleaks rule id. */
export function credentialKind(rule: string): string {
  const r = rule.toLowerCase();
  if (/^aws-access-(token|key)/.test(r)) return 'aws-access-key';
  if (/^aws-secret/.test(r)) return 'aws-secret-key';
  if (/^github-(pat|fine-grained-pat|oauth|app-token|refresh-token)/.test(r)) return 'github-token';
  if (/^gitlab-(pat|ptt|rrt|deploy-token)/.test(r)) return 'gitlab-token';
  if (/^gcp-api-key/.test(r)) return 'gcp-api-key';
  if (/^slack-/.test(r)) return 'slack-token';
  if (/private-key/.test(r)) return 'private-key';
  if (/^(stripe|sendgrid|twilio|openai|anthropic|npm|pypi)/.test(r)) return 'api-key';
  return 'secret';
}

/** A value gitleaks (or a person) masked: nothing to fingerprint. */
function isRedacted(secret: string): boolean {
  const s = secret.trim();
  return s === '' || s === 'REDACTED' || s === 'REDACT' || s.endsWith('...') || /^\*+$/.test(s);
}

class Report {
  readonly findings: Finding[] = [];
  readonly problems: Problem[] = [];
  /** Problems with the report as a whole: never skipped (an unreadable report is not an empty one). */
  readonly fatal: Problem[] = [];
  private order = 0;

  constructor(
    private readonly keys: ReadOptions['keys'],
    private readonly file: string,
  ) {}

  fail(sub: Seg[], message: string, fatal = false): undefined {
    const field = formatFieldPath(sub);
    (fatal ? this.fatal : this.problems).push({ file: this.file, ...(field ? { field } : {}), message });
    return undefined;
  }

  /** A finding of a gitleaks JSON report, at `[index]`. */
  addJsonFinding(v: unknown, index: number): void {
    if (!isObj(v)) {
      this.fail(
        [index],
        `expected a gitleaks finding (a mapping with RuleID, File, StartLine, Secret), got ${shapeOf(v)}`,
      );
      return;
    }
    const at = (k: string): Seg[] => [index, k];
    this.add({
      rule: v.RuleID,
      description: v.Description,
      file: v.File,
      line: v.StartLine,
      secret: v.Secret,
      match: v.Match,
      commit: v.Commit,
      author: v.Author,
      email: v.Email,
      date: v.Date,
      at: {
        rule: at('RuleID'),
        file: at('File'),
        line: at('StartLine'),
        secret: at('Secret'),
        match: at('Match'),
        commit: at('Commit'),
        author: at('Author'),
        email: at('Email'),
        date: at('Date'),
      },
    });
  }

  /** A SARIF 2.1.0 log written by gitleaks. */
  addSarif(log: Obj): void {
    if (log.version !== '2.1.0')
      this.fail(['version'], `expected SARIF version "2.1.0", got ${describeValue(log.version)}`, true);
    const runs = log.runs;
    if (!Array.isArray(runs)) {
      this.fail(['runs'], `expected a list of runs, got ${describeValue(runs)}`, true);
      return;
    }
    runs.forEach((run: unknown, r: number) => {
      if (!isObj(run)) return void this.fail(['runs', r], `expected a run, got ${shapeOf(run)}`, true);
      const driver = isObj(run.tool) && isObj(run.tool.driver) ? run.tool.driver : undefined;
      const tool = driver?.name;
      if (typeof tool !== 'string' || tool.toLowerCase() !== 'gitleaks') {
        this.fail(
          ['runs', r, 'tool', 'driver', 'name'],
          `expected a log written by gitleaks, got ${describeValue(tool)}`,
          true,
        );
        return;
      }
      const descriptions = new Map<string, string>();
      if (Array.isArray(driver?.rules)) {
        for (const rule of driver.rules as unknown[]) {
          if (!isObj(rule) || typeof rule.id !== 'string') continue;
          const text = [rule.shortDescription, rule.fullDescription].map((d) =>
            isObj(d) ? d.text : undefined,
          );
          const d = text.find((t): t is string => typeof t === 'string' && t !== '');
          if (d !== undefined) descriptions.set(rule.id, d);
        }
      }
      const results = run.results;
      if (results === undefined || results === null) return;
      if (!Array.isArray(results)) {
        this.fail(['runs', r, 'results'], `expected a list of results, got ${describeValue(results)}`, true);
        return;
      }
      results.forEach((res: unknown, i: number) => {
        const base: Seg[] = ['runs', r, 'results', i];
        if (!isObj(res)) return void this.fail(base, `expected a result, got ${shapeOf(res)}`);
        const locs = res.locations;
        const first: unknown = Array.isArray(locs) ? locs[0] : undefined;
        const phys = isObj(first) && isObj(first.physicalLocation) ? first.physicalLocation : undefined;
        const artifact = phys && isObj(phys.artifactLocation) ? phys.artifactLocation : undefined;
        const region = phys && isObj(phys.region) ? phys.region : undefined;
        const snippet = region && isObj(region.snippet) ? region.snippet : undefined;
        const pf = isObj(res.partialFingerprints) ? res.partialFingerprints : {};
        const loc: Seg[] = [...base, 'locations', 0, 'physicalLocation'];
        this.add({
          rule: res.ruleId,
          description: typeof res.ruleId === 'string' ? descriptions.get(res.ruleId) : undefined,
          file: artifact?.uri,
          line: region?.startLine,
          secret: snippet ? snippet.text : '',
          match: undefined,
          commit: pf.commitSha,
          author: pf.author,
          email: pf.email,
          date: pf.date,
          at: {
            rule: [...base, 'ruleId'],
            file: [...loc, 'artifactLocation', 'uri'],
            line: [...loc, 'region', 'startLine'],
            secret: [...loc, 'region', 'snippet', 'text'],
            match: [],
            commit: [...base, 'partialFingerprints', 'commitSha'],
            author: [...base, 'partialFingerprints', 'author'],
            email: [...base, 'partialFingerprints', 'email'],
            date: [...base, 'partialFingerprints', 'date'],
          },
        });
      });
    });
  }

  private add(f: RawFinding): void {
    const before = this.problems.length;
    const rule = this.text(f.rule, f.at.rule, 'the rule id', true);
    const file = this.text(f.file, f.at.file, 'the file path', true);
    const line =
      typeof f.line === 'number' && Number.isInteger(f.line) && f.line >= 0
        ? f.line
        : this.fail(f.at.line, `expected a line number, got ${describeValue(f.line)}`);
    // Secret and Match are credentials: a wrong type is reported by its shape only.
    if (typeof f.secret !== 'string')
      this.fail(f.at.secret, `expected the secret as a string, got ${shapeOf(f.secret)}`);
    if (f.match !== undefined && f.match !== null && typeof f.match !== 'string')
      this.fail(f.at.match, `expected a string, got ${shapeOf(f.match)}`);
    const commit = this.text(f.commit, f.at.commit, 'a commit id', false);
    const author = this.text(f.author, f.at.author, 'an author name', false);
    const email = this.text(f.email, f.at.email, 'an email address', false);
    const date = this.text(f.date, f.at.date, 'a date', false);
    const description =
      typeof f.description === 'string' && f.description.trim() !== '' ? f.description : undefined;
    if (this.problems.length > before || rule === undefined || file === undefined || line === undefined)
      return;

    const secret = f.secret as string;
    const match = typeof f.match === 'string' ? f.match : '';
    const redacted = isRedacted(secret);
    const fingerprint = redacted
      ? this.keys.fingerprint(`${commit ?? ''}:${file}:${line}:${rule}`)
      : this.keys.fingerprint(secret);
    const awsAccessKeyId = AWS_KEY_ID.exec(redacted ? match : secret)?.[1] ?? AWS_KEY_ID.exec(match)?.[1];
    this.findings.push({
      fingerprint,
      redacted,
      awsAccessKeyId,
      rule,
      kind: credentialKind(rule),
      description,
      file,
      line,
      commit,
      author,
      email,
      // ISO-8601 dates are normalised; anything else is kept as written (never guessed at).
      date: date !== undefined && /^\d{4}-\d{2}-\d{2}/.test(date) ? (normaliseTimestamp(date) ?? date) : date,
      order: this.order++,
    });
  }

  /** A text field: required (non-empty) or optional (empty, or masked with `*`, means absent). */
  private text(v: unknown, at: Seg[], what: string, required: boolean): string | undefined {
    if (!required && typeof v === 'string' && /^\**$/.test(v.trim())) return undefined;
    if (typeof v === 'string' && v.trim() !== '') return v;
    if (!required && (v === undefined || v === null)) return undefined;
    return this.fail(at, `expected ${what}, got ${describeValue(v)}`);
  }
}

/** Reads one report: findings are streamed one at a time from a JSON report; a SARIF log is read whole. */
async function readReport(file: string, input: OpenedInput, report: Report): Promise<void> {
  const { first, all } = await sniff(input);
  if (first !== '[' && first !== '{') {
    all.destroy();
    throw new ValidationError(`${file}: not a gitleaks JSON or SARIF report; nothing was imported`, [
      {
        file,
        message:
          first === undefined
            ? 'expected a gitleaks JSON report or SARIF log, got an empty input'
            : `expected a gitleaks JSON report (--report-format json) or SARIF log (--report-format sarif), got ${
                first === '<'
                  ? 'XML (JUnit reports are not supported)'
                  : 'text (CSV and template reports are not supported)'
              }`,
      },
    ]);
  }
  const p = parser.asStream({ streamValues: false });
  all.on('error', (e) => p.destroy(e));
  all.pipe(p);
  let asm: Assembler | null = null;
  let index = 0;
  let inArray = false;
  try {
    for await (const tok of p as AsyncIterable<Token>) {
      if (asm === null && !inArray && tok.name === 'startArray') {
        inArray = true;
        continue;
      }
      if (asm === null && inArray && tok.name === 'endArray') {
        inArray = false;
        continue;
      }
      asm ??= new Assembler();
      asm.consume(tok);
      if (!asm.done) continue;
      const value: unknown = asm.current;
      asm = null;
      if (inArray) report.addJsonFinding(value, index++);
      else if (isObj(value) && 'runs' in value) report.addSarif(value);
      else
        report.fail(
          [],
          `expected a list of gitleaks findings or a SARIF log (a mapping with runs), got ${
            isObj(value) ? 'a mapping without runs' : shapeOf(value)
          }`,
          true,
        );
    }
  } catch (e) {
    if (e instanceof ValidationError) throw e;
    const message = (e as Error).message.replace(/^Parser cannot parse input: /, '');
    throw new ValidationError(`${file}: not valid JSON; nothing was imported`, [
      { file, message: `expected complete JSON (truncated or malformed?), got a syntax error: ${message}` },
    ]);
  }
}

export const importer: SourceImporter = {
  source: SOURCE,
  description:
    'gitleaks findings (JSON report or SARIF): leaked secrets as unmanaged identities, by fingerprint',
  async read(paths: string[], options: ReadOptions): Promise<ReadResult> {
    const files = listFiles(paths, (name) => /\.(json|sarif)(\.gz)?$/i.test(name));
    const findings: Finding[] = [];
    const problems: Problem[] = [];
    const read: DiscoveryBatch['files'] = [];
    for (const file of files) {
      const input = openInput(file, options.maxBytes);
      const report = new Report(options.keys, file);
      await readReport(file, input, report);
      read.push({ path: input.path, sha256: await input.sha256() });
      if (report.fatal.length) {
        throw new ValidationError(`${file}: not a gitleaks report; nothing was imported`, report.fatal);
      }
      findings.push(...report.findings);
      problems.push(...report.problems);
    }
    if (problems.length && !options.skipInvalid) {
      throw new ValidationError(
        `${problems.length} problem(s) in the gitleaks report(s); nothing was imported`,
        problems,
      );
    }
    const first = paths[0];
    return {
      batch: {
        source: SOURCE,
        scope: first === undefined || first === '-' ? 'stdin' : path.basename(path.resolve(first)),
        snapshot: true,
        files: read,
        identities: identitiesOf(findings),
      },
      skipped: options.skipInvalid ? problems : [],
    };
  },
};
