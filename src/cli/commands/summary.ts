import type { Command } from 'commander';
import { fields, percent, printJson, table, type Io } from '../output.js';
import { withSteward, type GlobalOptions } from '../context.js';
import { summarize, ROLES } from '../../inventory/queries.js';
import { policyEnabled } from '../../policy/findings.js';

export function registerSummary(program: Command, io: Io, g: () => GlobalOptions): void {
  program
    .command('summary')
    .description('the accountability summary: visibility, missing roles, departed owners')
    .action(async () => {
      await withSteward(g(), async (s) => {
        const r = await summarize(s.store);
        // Findings, once `steward evaluate` has run: open ones by severity and the commonest rules.
        const findings = (await policyEnabled(s.store))
          ? await s.store.db
              .selectFrom('findings')
              .select(['rule', 'severity'])
              .where('status', '=', 'open')
              .execute()
          : undefined;
        const bySeverity: Record<string, number> = { critical: 0, high: 0, medium: 0, low: 0 };
        const byRule: Record<string, number> = {};
        for (const f of findings ?? []) {
          bySeverity[f.severity] = (bySeverity[f.severity] ?? 0) + 1;
          byRule[f.rule] = (byRule[f.rule] ?? 0) + 1;
        }
        const summary = {
          ...r,
          findings: findings ? { open: findings.length, bySeverity, byRule } : null,
        };
        if (io.json) return printJson(io, summary);
        io.out.write(
          fields([
            ['active identities', r.identities],
            ['fully accountable', `${r.fullyAccountable} (visibility ${percent(r.visibility)})`],
            ['owned by departed people', r.ownedByDeparted],
            ['by status', Object.entries(r.byStatus).map(([k, v]) => `${k} ${v}`)],
            ['by kind', Object.entries(r.byKind).map(([k, v]) => `${k} ${v}`)],
            [
              'directory',
              `${r.principals.people} people (${r.principals.departed} departed), ${r.principals.teams} teams`,
            ],
            ['ledger', `${r.ledger.events} events, ${r.ledger.checkpoints} signed checkpoint(s)`],
            [
              'open findings',
              findings
                ? `${findings.length}: ` +
                  Object.entries(bySeverity)
                    .map(([k, v]) => `${k} ${v}`)
                    .join(', ')
                : 'not evaluated yet (steward evaluate)',
            ],
          ]),
        );
        if (findings?.length) {
          io.out.write('\ncommonest open findings\n');
          io.out.write(
            table(
              ['rule', 'open'],
              Object.entries(byRule)
                .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
                .slice(0, 10),
            ),
          );
        }
        io.out.write('\nmissing from the accountability record (active identities)\n');
        io.out.write(
          table(
            ['role or field', 'identities'],
            [
              ...ROLES.map((role) => [
                role === 'primary' ? 'primary team' : `${role} owner`.replace('approver owner', 'approver'),
                r.missing[role],
              ]),
              ['purpose', r.missing.purpose],
              ['expiry or rotation policy', r.missing.expiryOrRotation],
            ],
          ),
        );
      });
    });
}
