import type { Command } from 'commander';
import { fields, printJson, table, type Io } from '../output.js';
import { actorOf, withSteward, type GlobalOptions } from '../context.js';
import {
  listIdentities,
  identityHistory,
  resolveIdentity,
  type IdentityFilter,
  type Role,
} from '../../inventory/queries.js';
import { presentIdentity } from '../../inventory/present.js';
import { loadRecord, type AccountabilityRecord } from '../../inventory/record.js';
import { parseTime } from '../../inventory/context.js';
import { assignRole } from '../../inventory/assign.js';
import { NotFoundError, ValidationError } from '../../domain/errors.js';

export function registerIdentityCommands(program: Command, io: Io, g: () => GlobalOptions): void {
  program
    .command('identities')
    .description('list identities with filters')
    .option('--kind <kind>', 'identity kind (service-account, api-key, …)')
    .option('--source <source>', 'where it was discovered or declared')
    .option('--environment <env>', 'environment')
    .option('--status <status>', 'active or vanished')
    .option('--owner <principal>', 'person:<email> or team:<name> holding any accountable role')
    .option('--team <team>', 'team id: primary team, or owned by the team or its members')
    .option(
      '--missing <role>',
      'nobody holds this role: business|technical|control|primary|approver|revocation',
    )
    .option('--limit <n>', 'at most this many rows', (v) => Number.parseInt(v, 10))
    .action(async (flags: IdentityFilter & { missing?: Role }) => {
      if (flags.limit !== undefined && !(flags.limit > 0))
        throw new ValidationError('--limit: expected a positive integer');
      await withSteward(g(), async (s) => {
        const rows = (await listIdentities(s.store, flags)).map(presentIdentity);
        if (io.json) return printJson(io, rows);
        io.out.write(
          table(
            ['id', 'name', 'kind', 'env', 'status', 'business', 'technical', 'control', 'primary team'],
            rows.map((r) => [
              r.id,
              r.name,
              r.kind,
              r.environment,
              r.status,
              r.owners.business,
              r.owners.technical,
              r.owners.control,
              r.primaryTeam,
            ]),
          ),
        );
        io.out.write(`${rows.length} identit${rows.length === 1 ? 'y' : 'ies'}\n`);
      });
    });

  program
    .command('show')
    .description('the accountability record of an identity, as of a time and by what Steward knew then')
    .argument('<ref>', 'id, name or external id')
    .option('--as-of <time>', 'when the record was true (default: now)')
    .option('--known-at <time>', 'by what Steward had recorded at this time (default: now)')
    .action(async (ref: string, flags: { asOf?: string; knownAt?: string }) => {
      const now = new Date().toISOString();
      const asOf = flags.asOf ? parseTime(flags.asOf, '--as-of') : now;
      const knownAt = flags.knownAt ? parseTime(flags.knownAt, '--known-at') : now;
      await withSteward(g(), async (s) => {
        const identity = await resolveIdentity(s.store, ref);
        const record = await loadRecord(s.store, identity.id, asOf, knownAt);
        if (!record) {
          throw new NotFoundError(
            `${identity.name} (${identity.id}) did not exist as of ${asOf} by what Steward knew at ${knownAt}`,
          );
        }
        if (io.json) return printJson(io, record);
        io.out.write(renderRecord(record));
      });
    });

  program
    .command('history')
    .description("an identity's events from the ledger")
    .argument('<ref>', 'id, name or external id')
    .action(async (ref: string) => {
      await withSteward(g(), async (s) => {
        const identity = await resolveIdentity(s.store, ref);
        const events = await identityHistory(s.store, identity.id);
        if (io.json) return printJson(io, events);
        io.out.write(
          table(
            ['seq', 'effective', 'recorded', 'type', 'actor', 'reason', 'changes'],
            events.map((e) => [
              e.seq,
              e.effectiveAt,
              e.recordedAt,
              e.type,
              e.actor,
              e.reason,
              e.payload.set ? Object.keys(e.payload.set).join(',') : '',
            ]),
          ),
        );
      });
    });

  program
    .command('assign')
    .description('record who holds an accountable role')
    .argument('<ref>', 'id, name or external id')
    .requiredOption('--role <role>', 'business|technical|control|primary|approver|revocation')
    .requiredOption('--to <principal>', 'person:<email> or team:<name>')
    .requiredOption('--reason <text>', 'why (recorded in the ledger)')
    .option('--effective-at <time>', 'when the assignment took effect (default: now)')
    .action(
      async (ref: string, flags: { role: string; to: string; reason: string; effectiveAt?: string }) => {
        await withSteward(
          g(),
          async (s) => {
            const r = await assignRole(s, ref, flags.role, flags.to, {
              actor: actorOf(g()),
              reason: flags.reason,
              ...(flags.effectiveAt ? { effectiveAt: flags.effectiveAt } : {}),
            });
            if (io.json) return printJson(io, r);
            io.out.write(
              r.changed
                ? `${r.name}: ${r.role} ${r.from ?? '(nobody)'} → ${r.to} (event ${r.seq})\n`
                : `${r.name}: ${r.role} is already ${r.to}; nothing recorded\n`,
            );
          },
          { reevaluate: io },
        );
      },
    );
}

function renderRecord(r: AccountabilityRecord): string {
  const who = (ref: string | null) => {
    if (!ref) return null;
    const p = r.principals[ref];
    if (!p) return ref;
    const tags = [
      p.name,
      p.status === 'departed' ? `DEPARTED ${p.leftAt ?? ''}`.trim() : null,
      p.known ? null : 'not in directory',
    ].filter(Boolean);
    return tags.length ? `${ref} (${tags.join(', ')})` : ref;
  };
  let out = `${r.name}  [${r.id}]  as of ${r.asOf}, known at ${r.knownAt}\n\n`;
  out += fields([
    ['kind', r.kind],
    ['source', r.source],
    ['external id', r.externalId],
    ['environment', r.environment],
    ['status', r.status],
    ...(r.linkedTo
      ? ([['linked to', `credential ${r.linkedTo} (this found secret is that known credential)`]] as [
          string,
          unknown,
        ][])
      : []),
    ['sensitivity', r.sensitivity],
    [
      'service',
      r.service ? `${r.service.name}${r.service.owner ? ` (owner ${r.service.owner})` : ''}` : null,
    ],
    ['purpose', r.purpose],
    ['business owner', who(r.owners.business)],
    ['technical owner', who(r.owners.technical)],
    ['control owner', who(r.owners.control)],
    ['primary team', who(r.primaryTeam)],
    ['shared with', r.sharedWith.map(who)],
    ['approver', who(r.approver)],
    ['approved at', r.approval.approvedAt],
    ['ticket', r.approval.ticket],
    [
      'origin',
      [r.origin.kind, r.origin.ref, r.origin.mergedBy ? `merged by ${who(r.origin.mergedBy)}` : null]
        .filter(Boolean)
        .join(' '),
    ],
    [
      'vendor',
      r.vendor
        ? `${r.vendor.name} (contracting owner ${who(r.vendor.contractingOwner) ?? '-'}, contract ends ${r.vendor.contractEnds ?? '-'})`
        : null,
    ],
    ['rotation', r.rotation.maxAge],
    ['expires', r.expires],
    ['revocation', r.revocation.triggers],
    ['revocation owner', who(r.revocation.owner)],
    ['runbook', r.revocation.runbook],
    ['sponsor', who(r.sponsor)],
    ['gaps', r.gaps.length ? r.gaps : 'none'],
  ]);
  if (r.credentials.length) {
    out +=
      '\ncredentials\n' +
      table(
        ['id', 'kind', 'status', 'issued', 'rotated', 'expires', 'locations'],
        r.credentials.map((c) => [
          c.externalId,
          c.kind,
          c.status,
          c.issuedAt,
          c.lastRotatedAt,
          c.expiresAt,
          c.locations.join(', '),
        ]),
      );
  }
  if (r.entitlements.length) {
    out +=
      '\nentitlements\n' +
      table(
        ['resource', 'actions', 'status', 'via'],
        r.entitlements.map((e) => [e.resource, e.actions.join(', '), e.status, e.grantedVia]),
      );
  }
  return out;
}
