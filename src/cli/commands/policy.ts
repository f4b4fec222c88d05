import type { Command } from 'commander';
import { fields, printJson, table, type Io } from '../output.js';
import { actorOf, withSteward, type GlobalOptions } from '../context.js';
import { progressBar } from '../progress.js';
import { loadRules, testRule, type Rule } from '../../policy/rules.js';
import { absolute, loadPolicy, readPolicyFile, type PolicyConfig } from '../../policy/config.js';
import { evaluate } from '../../policy/evaluate.js';
import {
  computeMetrics,
  enablePolicy,
  exceptFinding,
  frameworkView,
  listFindings,
  policyEnabled,
  type FindingView,
} from '../../policy/findings.js';
import { parseTime } from '../../inventory/context.js';
import { NotFoundError, ValidationError } from '../../domain/errors.js';

interface RuleFlags {
  rules?: string[];
  policy?: string;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

function rulesFrom(flags: RuleFlags): Rule[] {
  const policy = flags.policy ? readPolicyFile(flags.policy) : undefined;
  return loadRules({
    paths: absolute(flags.rules),
    ...(policy ? { overrides: policy.overrides, overridesFile: flags.policy } : {}),
  });
}

const owasp = (r: { frameworks: Record<string, string[]> }) =>
  (r.frameworks['owasp-nhi-2025'] ?? []).join(' ');

function findingRows(items: FindingView[]): (string | null)[][] {
  return items.map((f) => [
    f.id,
    f.severity,
    f.status,
    f.rule,
    f.subject.name ?? f.subject.id,
    f.assignee ?? 'NOBODY',
    f.dueAt?.slice(0, 10) ?? null,
    owasp(f),
  ]);
}

export function registerPolicy(program: Command, io: Io, g: () => GlobalOptions): void {
  const rules = program.command('rules').description('policy-as-code rules: the built-in pack and your own');

  rules
    .command('list')
    .description('list the rules that would be evaluated')
    .option('--rules <path>', 'a folder or file of your own rules (repeatable)', collect)
    .option('--policy <file>', 'policy file with parameter overrides and SLAs')
    .action((flags: RuleFlags) => {
      const list = rulesFrom(flags);
      if (io.json)
        return printJson(
          io,
          list.map((r) => ({
            id: r.id,
            title: r.title,
            severity: r.severity,
            routeTo: r.routeTo,
            frameworks: r.frameworks,
            params: Object.fromEntries(
              Object.entries(r.params).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v]),
            ),
            builtin: r.builtin,
            file: r.file,
          })),
        );
      io.out.write(
        table(
          ['id', 'severity', 'route to', 'owasp', 'title', 'from'],
          list.map((r) => [r.id, r.severity, r.routeTo, owasp(r), r.title, r.builtin ? 'built-in' : r.file]),
        ),
      );
    });

  rules
    .command('show')
    .description("a rule's full text: description, remediation, frameworks, params, CEL condition")
    .argument('<id>')
    .option('--rules <path>', 'a folder or file of your own rules (repeatable)', collect)
    .option('--policy <file>', 'policy file with parameter overrides and SLAs')
    .action((id: string, flags: RuleFlags) => {
      const r = rulesFrom(flags).find((x) => x.id === id);
      if (!r) throw new NotFoundError(`no rule ${id}`);
      const params = Object.fromEntries(
        Object.entries(r.params).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v]),
      );
      if (io.json) {
        const { examples, ...rest } = r;
        return printJson(io, {
          ...Object.fromEntries(Object.entries(rest).filter(([k]) => k !== 'test')),
          params,
          examples: examples.map((e) => ({ name: e.name, expect: e.expect })),
        });
      }
      io.out.write(
        fields([
          ['id', r.id],
          ['title', r.title],
          ['severity', r.severity],
          ['route to', r.routeTo],
          ['frameworks', Object.entries(r.frameworks).map(([k, v]) => `${k}: ${v.join(', ')}`)],
          ['params', Object.entries(params).map(([k, v]) => `${k} = ${JSON.stringify(v)}`)],
          ['description', r.description],
          ['remediation', r.remediation],
          ['when', r.when],
          ['file', `${r.file}:${r.line}`],
        ]),
      );
    });

  rules
    .command('test')
    .description("run rules' own examples like unit tests; exit 1 if any example fails")
    .argument('[ids...]', 'only these rules')
    .option('--rules <path>', 'a folder or file of your own rules (repeatable)', collect)
    .option('--policy <file>', 'policy file with parameter overrides')
    .option('--only-own', 'test only the rules from --rules, not the built-in pack')
    .action((ids: string[], flags: RuleFlags & { onlyOwn?: boolean }) => {
      let list = rulesFrom(flags);
      if (flags.onlyOwn) list = list.filter((r) => !r.builtin);
      if (ids.length) {
        const missing = ids.filter((id) => !list.some((r) => r.id === id));
        if (missing.length) throw new NotFoundError(`no rule ${missing.join(', ')}`);
        list = list.filter((r) => ids.includes(r.id));
      }
      const results = list.map((r) => ({ rule: r.id, file: r.file, examples: testRule(r) }));
      const failed = results.flatMap((r) =>
        r.examples.filter((e) => !e.ok).map((e) => ({ ...e, rule: r.rule, file: r.file })),
      );
      const total = results.reduce((n, r) => n + r.examples.length, 0);
      if (io.json) printJson(io, { rules: results.length, examples: total, failed: failed.length, results });
      else {
        for (const f of failed)
          io.out.write(
            `FAIL ${f.rule} (${f.file}:${f.line}) ${f.name}: expected ${f.expect}, got ${String(f.got)}\n`,
          );
        io.out.write(`${results.length} rule(s), ${total} example(s), ${failed.length} failed\n`);
      }
      if (failed.length) throw new ValidationError(`${failed.length} rule example(s) failed`);
    });

  program
    .command('evaluate')
    .description(
      'evaluate every identity against the rules and record findings; afterwards every import or assign re-evaluates the identities it touched',
    )
    .option(
      '--rules <path>',
      'a folder or file of your own rules (repeatable); remembered for later evaluations',
      collect,
    )
    .option('--policy <file>', 'policy file with parameter overrides and SLAs; remembered')
    .option('--now <time>', 'evaluate as of this time instead of now (not in the future)')
    .option(
      '--workers <n>',
      'worker threads for a full evaluation (default: one per core from 10,000 identities; 0: none)',
    )
    .action(async (flags: RuleFlags & { now?: string; workers?: string }) => {
      await withSteward(g(), async (s) => {
        const remembered = await policyEnabled(s.store);
        const config: PolicyConfig = {
          rules: flags.rules ? absolute(flags.rules) : (remembered?.rules ?? []),
          ...(flags.policy
            ? { policy: absolute([flags.policy])[0]! }
            : remembered?.policy
              ? { policy: remembered.policy }
              : {}),
        };
        const { rules: list, sla } = loadPolicy(config);
        let now: Date | undefined;
        if (flags.now) {
          now = new Date(parseTime(flags.now, '--now'));
          if (now > s.now())
            throw new ValidationError(`--now: expected a time not in the future, got ${flags.now}`);
        }
        let workers: number | undefined;
        if (flags.workers !== undefined) {
          workers = Number(flags.workers);
          if (!/^\d+$/.test(flags.workers) || workers > 64)
            throw new ValidationError(
              `--workers: expected a whole number from 0 to 64, got ${flags.workers}`,
            );
        }
        const bar = progressBar(io, 'evaluating');
        try {
          const r = await evaluate(s, {
            rules: list,
            sla,
            actor: actorOf(g()),
            ...(now ? { now } : {}),
            ...(workers !== undefined ? { workers } : {}),
            onProgress: (d, t) => bar.update(d, t),
          });
          bar.stop();
          await enablePolicy(s.store, config);
          await computeMetrics(s);
          if (io.json) return printJson(io, r);
          io.out.write(
            fields([
              ['identities', r.identities],
              ['rules', r.rules],
              ['opened', r.opened],
              ['reopened', r.reopened],
              ['resolved', r.resolved],
              ['reassigned', r.reassigned],
              ['exceptions expired', r.exceptionsExpired],
              ['open now', r.open],
              ['events written', r.events],
            ]),
          );
          for (const e of r.errors)
            io.err.write(`warning: rule ${e.rule} failed on ${e.identity}: ${e.message}\n`);
        } finally {
          bar.stop();
        }
      });
    });

  program
    .command('findings')
    .description(
      'findings with filters; --framework with --by-control groups them by control and shows coverage',
    )
    .option('--rule <id>')
    .option('--severity <s>', 'critical | high | medium | low')
    .option('--status <s>', 'open (default) | excepted | resolved | all')
    .option('--owner <principal>', 'assigned to this person or team')
    .option('--team <team>', 'assigned to the team or one of its members')
    .option('--framework <id>', 'e.g. owasp-nhi-2025, nist-csf-2.0, nist-ai-rmf-1.0')
    .option('--control <id>', 'a control of the framework (CSF 1.1 ids such as PR.AC-1 are accepted)')
    .option('--by-control', "with --framework: group by the framework's controls, with coverage")
    .option('--rules <path>', 'with --by-control: also count these rules as coverage (repeatable)', collect)
    .option('--limit <n>', 'at most this many', (v) => Number.parseInt(v, 10))
    .action(
      async (
        flags: RuleFlags & {
          rule?: string;
          severity?: string;
          status?: string;
          owner?: string;
          team?: string;
          framework?: string;
          control?: string;
          byControl?: boolean;
          limit?: number;
        },
      ) => {
        await withSteward(g(), async (s) => {
          if (flags.status && !['open', 'excepted', 'resolved', 'all'].includes(flags.status))
            throw new ValidationError(
              `--status: expected open, excepted, resolved or all, got ${flags.status}`,
            );
          const items = await listFindings(s.store, {
            ...(flags.rule ? { rule: flags.rule } : {}),
            ...(flags.severity ? { severity: flags.severity } : {}),
            ...(flags.status ? { status: flags.status } : {}),
            ...(flags.owner ? { owner: flags.owner } : {}),
            ...(flags.team ? { team: flags.team } : {}),
            ...(flags.framework ? { framework: flags.framework } : {}),
            ...(flags.control ? { control: flags.control } : {}),
            ...(flags.limit ? { limit: flags.limit } : {}),
          });
          if (flags.byControl) {
            if (!flags.framework) throw new ValidationError('--by-control: expected --framework <id> too');
            const remembered = await policyEnabled(s.store);
            const list = loadRules({
              paths: flags.rules ? absolute(flags.rules) : (remembered?.rules ?? []),
            });
            const view = await frameworkView(s.store, list, flags.framework);
            const byControl = view.controls.map((c) => ({
              ...c,
              findings: items.filter((f) => f.frameworks[view.framework]?.includes(c.id)).map((f) => f.id),
            }));
            if (io.json) return printJson(io, { ...view, controls: byControl });
            io.out.write(
              `${view.name} ${view.version}: ${view.coverage.withRules}/${view.coverage.controls} controls have rules, ${view.coverage.withOpenFindings} have open findings\n\n`,
            );
            io.out.write(
              table(
                ['control', 'rules', 'open', 'excepted', 'title'],
                byControl.map((c) => [
                  c.id,
                  c.rules.length ? c.rules.join(', ') : '-',
                  c.open,
                  c.excepted,
                  c.title,
                ]),
              ),
            );
            return;
          }
          if (io.json) return printJson(io, items);
          io.out.write(
            table(
              ['id', 'severity', 'status', 'rule', 'identity', 'assignee', 'due', 'owasp'],
              findingRows(items),
            ),
          );
          io.out.write(`${items.length} finding(s)\n`);
        });
      },
    );

  program
    .command('except')
    .description(
      'accept the risk of an open finding until a time, with a compensating control; the approver must be someone other than the requester and the owner',
    )
    .argument('<finding>', 'finding id')
    .requiredOption('--reason <text>', 'why the risk is accepted')
    .requiredOption('--compensating <text>', 'the compensating control in place')
    .requiredOption('--approver <principal>', 'who approves (person:<email> or team:<id>)')
    .requiredOption('--expires <time>', 'when the exception ends (the finding reopens if it still holds)')
    .action(
      async (
        id: string,
        flags: { reason: string; compensating: string; approver: string; expires: string },
      ) => {
        await withSteward(g(), async (s) => {
          const f = await exceptFinding(s, { finding: id, ...flags, actor: actorOf(g()) });
          if (io.json) return printJson(io, f);
          io.out.write(
            `finding ${f.id} excepted until ${f.exception!.expiresAt}, approved by ${f.exception!.approver}\n`,
          );
        });
      },
    );

  program
    .command('metrics')
    .description("governance metrics now (kept as today's snapshot) and their daily history")
    .action(async () => {
      await withSteward(g(), async (s) => {
        const { today, history } = await computeMetrics(s);
        if (io.json) return printJson(io, { today, history });
        const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
        io.out.write(
          fields([
            ['active identities', today.identities],
            ['visibility', pct(today.visibility)],
            ['rotation compliance', pct(today.rotationCompliance)],
            ['ownerless', today.ownerless],
            ['long-lived credentials', today.longLived],
            ['open findings', today.openFindings.total],
            ['by severity', Object.entries(today.openFindings.bySeverity).map(([k, v]) => `${k} ${v}`)],
            [
              'by OWASP risk',
              Object.entries(today.openFindings.byOwasp)
                .sort()
                .map(([k, v]) => `${k} ${v}`),
            ],
          ]),
        );
        if (history.length > 1) {
          io.out.write(
            '\n' +
              table(
                ['day', 'identities', 'visibility', 'rotation', 'ownerless', 'long-lived', 'open'],
                history.map((h) => [
                  h.day,
                  h.identities,
                  pct(h.visibility),
                  pct(h.rotationCompliance),
                  h.ownerless,
                  h.longLived,
                  h.openFindings.total,
                ]),
              ),
          );
        }
      });
    });
}
