import { NotFoundError, ValidationError } from '../domain/errors.js';
import { PrincipalIndex, PRINCIPAL_REF } from './principals.js';
import { resolveIdentity, ROLE_COLUMNS, ROLES, type Role } from './queries.js';
import { effectiveTime, type CommandOptions, type InventoryDeps } from './context.js';
import { toField } from './subjects.js';

export interface AssignResult {
  id: string;
  name: string;
  role: Role;
  from: string | null;
  to: string;
  changed: boolean;
  seq: number | null;
}

/** Records who holds an accountable role for an identity, with the actor's reason. */
export async function assignRole(
  deps: InventoryDeps,
  ref: string,
  role: string,
  to: string,
  opts: CommandOptions,
): Promise<AssignResult> {
  if (!ROLES.includes(role as Role))
    throw new ValidationError(`--role: expected one of ${ROLES.join(', ')}, got "${role}"`);
  if (!PRINCIPAL_REF.test(to))
    throw new ValidationError(`--to: expected person:<email> or team:<name>, got "${to}"`);
  if (!opts.reason?.trim())
    throw new ValidationError('--reason: expected why the role is assigned, got nothing');
  if (role === 'primary' && !to.startsWith('team:'))
    throw new ValidationError(`--to: the primary accountable role is held by a team, got "${to}"`);
  const effectiveAt = effectiveTime(opts, deps.now());
  const identity = await resolveIdentity(deps.store, ref);
  const principal = (await PrincipalIndex.load(deps.store.db)).resolve(to);
  if (!principal)
    throw new NotFoundError(
      `--to: ${to} is not in the directory (import it with \`steward import directory\`)`,
    );
  const column = ROLE_COLUMNS[role as Role];
  const from = identity[column];
  const base = { id: identity.id, name: identity.name, role: role as Role, from, to: principal };
  if (from === principal) return { ...base, changed: false, seq: null };
  return deps.ledger.write({ actor: opts.actor, reason: opts.reason }, async (w) => {
    w.append([
      {
        type: 'owner.assigned',
        subject: `identity:${identity.id}`,
        identityId: identity.id,
        payload: { role, set: { [toField(column)]: principal } },
        effectiveAt,
      },
    ]);
    await w.flush();
    const head = await w.tx
      .selectFrom('identities')
      .select('updated_seq')
      .where('id', '=', identity.id)
      .executeTakeFirstOrThrow();
    return { ...base, changed: true, seq: Number(head.updated_seq) };
  });
}
