import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it, expect } from 'vitest';
import { dialects } from './helpers/steward.js';
import { cli } from './helpers/cli.js';

const EXAMPLES = path.resolve('examples');

interface FindingJson {
  id: string;
  rule: string;
  title: string;
  severity: string;
  status: string;
  subject: { id: string; name: string };
  assignee: string | null;
  assignedRole: string | null;
  dueAt: string | null;
  firstSeen: string;
  lastSeen: string;
  frameworks: Record<string, string[]>;
}

describe.each(dialects)('policy commands through the CLI on $name', (dialect) => {
  it('evaluate, findings (filters, framework coverage), rules list/show, except, metrics', async () => {
    const db = await dialect.freshUrl();
    const keys = fs.mkdtempSync(path.join(os.tmpdir(), 'steward-keys-'));
    const env = { db, keys };
    const run = (args: string[]) => cli(['--actor', 'person:erin@example.com', ...args], env);
    try {
      expect((await run(['init'])).code).toBe(0);
      expect((await run(['import', 'directory', path.join(EXAMPLES, 'directory.csv')])).code).toBe(0);
      const man = await run([
        'import',
        'manifest',
        path.join(EXAMPLES, 'manifests'),
        path.join(EXAMPLES, 'catalog-info.yaml'),
      ]);
      expect(man.code, man.stderr).toBe(0);
      const ev = await run(['evaluate', '--json']);
      expect(ev.code, ev.stderr).toBe(0);

      const all = (await run(['findings', '--json'])).json<FindingJson[]>();
      expect(all.length).toBeGreaterThan(0);
      for (const f of all) {
        expect(f.status).toBe('open');
        expect(f.subject.id).toMatch(/^nhi_/);
        expect(Object.keys(f.frameworks).length).toBeGreaterThan(0);
        expect(Date.parse(f.firstSeen)).toBeLessThanOrEqual(Date.parse(f.lastSeen));
        expect(['critical', 'high', 'medium', 'low']).toContain(f.severity);
      }
      // a re-evaluation with nothing changed opens nothing new
      await run(['evaluate']);
      expect(
        (await run(['findings', '--json']))
          .json<FindingJson[]>()
          .map((f) => f.id)
          .sort(),
      ).toEqual(all.map((f) => f.id).sort());

      const sev = all[0]!.severity;
      const bySeverity = (await run(['findings', '--severity', sev, '--json'])).json<FindingJson[]>();
      expect(bySeverity.map((f) => f.id).sort()).toEqual(
        all
          .filter((f) => f.severity === sev)
          .map((f) => f.id)
          .sort(),
      );
      const rule = all[0]!.rule;
      const byRule = (await run(['findings', '--rule', rule, '--json'])).json<FindingJson[]>();
      expect(byRule.map((f) => f.id).sort()).toEqual(
        all
          .filter((f) => f.rule === rule)
          .map((f) => f.id)
          .sort(),
      );

      // OWASP NHI Top 10 view: every risk has rules; controls with open findings list exactly them
      const view = (await run(['findings', '--framework', 'owasp-nhi-2025', '--by-control', '--json'])).json<{
        framework: string;
        coverage: { controls: number; withRules: number; withOpenFindings: number };
        controls: { id: string; rules: string[]; open: number; findings: string[] }[];
      }>();
      expect(view.coverage.controls).toBe(10);
      expect(view.coverage.withRules).toBe(10);
      for (const c of view.controls) {
        const expected = all.filter((f) => f.frameworks['owasp-nhi-2025']?.includes(c.id)).map((f) => f.id);
        expect(c.findings.sort()).toEqual(expected.sort());
        expect(c.open).toBe(expected.length);
      }
      expect(view.coverage.withOpenFindings).toBe(view.controls.filter((c) => c.open > 0).length);
      expect((await run(['findings', '--by-control', '--json'])).code).toBe(1);

      // CSF 1.1 ids are accepted as aliases of their CSF 2.0 successors
      const alias = await run(['findings', '--framework', 'nist-csf-2.0', '--control', 'PR.AC-1', '--json']);
      expect(alias.code, alias.stderr).toBe(0);
      for (const f of alias.json<FindingJson[]>())
        expect(f.frameworks['nist-csf-2.0']!.some((c) => c.startsWith('PR.AA'))).toBe(true);

      const rules = (await run(['rules', 'list', '--json'])).json<{ id: string; builtin: boolean }[]>();
      expect(rules.length).toBeGreaterThanOrEqual(35);
      expect(new Set(rules.map((r) => r.id)).size).toBe(rules.length);
      const shown = (await run(['rules', 'show', rule, '--json'])).json<{
        id: string;
        when: string;
        examples: unknown[];
      }>();
      expect(shown.id).toBe(rule);
      expect(shown.when.length).toBeGreaterThan(0);
      expect(shown.examples.length).toBeGreaterThanOrEqual(2);
      const missing = await run(['rules', 'show', 'no-such-rule']);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toMatch(/no rule no-such-rule/);

      // exceptions: four eyes, not the owner; then the finding is excepted, not open
      const target = all.find((f) => f.assignee?.startsWith('person:')) ?? all.find((f) => f.assignee)!;
      const expires = new Date(Date.now() + 30 * 86_400_000).toISOString();
      const ask = (approver: string) =>
        run([
          'except',
          target.id,
          '--reason',
          'shared technical account',
          '--compensating',
          'vaulted, rotated weekly',
          '--approver',
          approver,
          '--expires',
          expires,
          '--json',
        ]);
      const self = await ask('person:erin@example.com');
      expect(self.code).toBe(1);
      expect(self.stderr).toMatch(/other than the requester/);
      const owner = await ask(target.assignee!);
      expect(owner.code).toBe(1);
      expect(owner.stderr).toMatch(/other than the finding's owner|other than the requester/);
      const approver = [
        'person:maya@example.com',
        'person:grace@example.com',
        'person:dave@example.com',
      ].find((p) => p !== target.assignee)!;
      const ok = await ask(approver);
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.json<{ status: string }>().status).toBe('excepted');
      const open = (await run(['findings', '--json'])).json<FindingJson[]>();
      expect(open.map((f) => f.id)).not.toContain(target.id);
      const excepted = (await run(['findings', '--status', 'excepted', '--json'])).json<FindingJson[]>();
      expect(excepted.map((f) => f.id)).toEqual([target.id]);

      const metrics = (await run(['metrics', '--json'])).json<{
        today: {
          identities: number;
          visibility: number;
          openFindings: { total: number; bySeverity: Record<string, number> };
        };
        history: unknown[];
      }>();
      expect(metrics.today.identities).toBeGreaterThan(0);
      expect(metrics.today.visibility).toBeGreaterThanOrEqual(0);
      expect(metrics.today.visibility).toBeLessThanOrEqual(1);
      expect(metrics.today.openFindings.total).toBe(open.length);
      expect(Object.values(metrics.today.openFindings.bySeverity).reduce((a, b) => a + b, 0)).toBe(
        open.length,
      );
      expect(metrics.history.length).toBeGreaterThanOrEqual(1);
    } finally {
      await dialect.cleanup(db);
    }
  });
});
