import type { Command } from 'commander';
import { fields, percent, printJson, table, type Io } from '../output.js';
import { withSteward, type GlobalOptions } from '../context.js';
import { summarize, ROLES } from '../../inventory/queries.js';

export function registerSummary(program: Command, io: Io, g: () => GlobalOptions): void {
  program
    .command('summary')
    .description('the accountability summary: visibility, missing roles, departed owners')
    .action(async () => {
      await withSteward(g(), async (s) => {
        const r = await summarize(s.store);
        if (io.json) return printJson(io, r);
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
          ]),
        );
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
