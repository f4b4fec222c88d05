import { sql } from 'kysely';
import type { Store } from '../store/store.js';
import { ConflictError, NotFoundError, ValidationError } from '../domain/errors.js';
import { rowToEvent } from '../ledger/ledger.js';
import type { LedgerEvent } from '../ledger/event.js';
import type { IdentitiesTable } from '../store/schema.js';
import { PrincipalIndex } from './principals.js';

/** Roles of the accountability record and the column each lives in. */
export const ROLE_COLUMNS = {
  business: 'business_owner',
  technical: 'technical_owner',
  control: 'control_owner',
  primary: 'primary_team',
  approver: 'approver',
  revocation: 'revocation_owner',
} as const;
export type Role = keyof typeof ROLE_COLUMNS;
export const ROLES = Object.keys(ROLE_COLUMNS) as Role[];

/** Finds an identity by id, name or external id; a name shared by several identities is an error listing them. */
export async function resolveIdentity(store: Store, ref: string): Promise<IdentitiesTable> {
  const byId = await store.db.selectFrom('identities').selectAll().where('id', '=', ref).executeTakeFirst();
  if (byId) return byId;
  const byExt = await store.db.selectFrom('identities').selectAll().where('external_id', '=', ref).execute();
  if (byExt.length === 1) return byExt[0]!;
  const byName = byExt.length
    ? byExt
    : await store.db.selectFrom('identities').selectAll().where('name', '=', ref).execute();
  if (byName.length === 1) return byName[0]!;
  if (byName.length > 1) {
    throw new ConflictError(
      `"${ref}" names ${byName.length} identities; use an id: ${byName.map((r) => `${r.id} (${r.source ?? '?'}, ${r.environment ?? 'no environment'})`).join(', ')}`,
    );
  }
  throw new NotFoundError(`no identity has the id, name or external id "${ref}"`);
}

export interface IdentityFilter {
  kind?: string;
  source?: string;
  environment?: string;
  status?: string;
  /** A principal ref: identities where it holds any accountable role. */
  owner?: string;
  /** A team ref or id: identities whose primary team or any owner is the team or one of its members. */
  team?: string;
  /** Identities with nobody in this role. */
  missing?: Role;
  limit?: number;
}

/** Lists identities from the current-state projection. */
export async function listIdentities(store: Store, f: IdentityFilter): Promise<IdentitiesTable[]> {
  let q = store.db.selectFrom('identities').selectAll();
  if (f.kind) q = q.where('kind', '=', f.kind);
  if (f.source) q = q.where('source', '=', f.source);
  if (f.environment) q = q.where('environment', '=', f.environment);
  if (f.status) q = q.where('status', '=', f.status);
  if (f.missing) {
    if (!ROLES.includes(f.missing)) {
      throw new ValidationError(`--missing: expected one of ${ROLES.join(', ')}, got "${f.missing}"`);
    }
    q = q.where(ROLE_COLUMNS[f.missing], 'is', null);
  }
  if (f.owner || f.team) {
    const principals = await PrincipalIndex.load(store.db);
    if (f.owner) {
      const ref = f.owner.includes(':') ? f.owner : `person:${f.owner}`;
      const who = principals.resolve(ref) ?? principals.resolve(`team:${f.owner}`) ?? ref;
      q = q.where((eb) => eb.or(Object.values(ROLE_COLUMNS).map((c) => eb(c, '=', who))));
    }
    if (f.team) {
      const team = principals.resolve(f.team.startsWith('team:') ? f.team : `team:${f.team}`);
      if (!team) throw new NotFoundError(`no team "${f.team}" in the directory`);
      const members = (
        await store.db.selectFrom('principals').select('id').where('team', '=', team).execute()
      ).map((r) => r.id);
      const refs = [team, ...members];
      q = q.where((eb) =>
        eb.or([
          eb('primary_team', '=', team),
          ...(['business_owner', 'technical_owner', 'control_owner'] as const).map((c) => eb(c, 'in', refs)),
        ]),
      );
    }
  }
  return q
    .orderBy('name')
    .orderBy('id')
    .limit(f.limit ?? 100_000)
    .execute();
}

/** The identity's own events, in recording order. */
export async function identityHistory(store: Store, identityId: string): Promise<LedgerEvent[]> {
  const rows = await store.db
    .selectFrom('events')
    .selectAll()
    .where('identity_id', '=', identityId)
    .orderBy('seq')
    .execute();
  return rows.map(rowToEvent);
}

export interface Summary {
  identities: number;
  byStatus: Record<string, number>;
  byKind: Record<string, number>;
  missing: Record<Role | 'purpose' | 'expiryOrRotation', number>;
  ownedByDeparted: number;
  /** Share of active identities whose business, technical and control owners, purpose, and expiry or rotation policy are all set. */
  visibility: number;
  fullyAccountable: number;
  principals: { people: number; teams: number; departed: number };
  ledger: { events: number; checkpoints: number; lastCheckpointSeq: number };
}

/** Accountability summary over active identities. */
export async function summarize(store: Store): Promise<Summary> {
  const db = store.db;
  const group = async (col: 'status' | 'kind') => {
    const rows = await db
      .selectFrom('identities')
      .select([col, (eb) => eb.fn.countAll<number>().as('n')])
      .groupBy(col)
      .execute();
    return Object.fromEntries(rows.map((r) => [String(r[col] ?? 'unknown'), Number(r.n)]));
  };
  const active = () => db.selectFrom('identities').where('status', '=', 'active');
  const count = async (q: ReturnType<typeof active>) =>
    Number((await q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
  const missing = {} as Summary['missing'];
  for (const role of ROLES) missing[role] = await count(active().where(ROLE_COLUMNS[role], 'is', null));
  missing.purpose = await count(active().where('purpose', 'is', null));
  missing.expiryOrRotation = await count(
    active().where('expires_at', 'is', null).where('rotation_max_age', 'is', null),
  );
  const total = await count(active());
  const complete = await count(
    active()
      .where('business_owner', 'is not', null)
      .where('technical_owner', 'is not', null)
      .where('control_owner', 'is not', null)
      .where('purpose', 'is not', null)
      .where((eb) => eb.or([eb('expires_at', 'is not', null), eb('rotation_max_age', 'is not', null)])),
  );
  const departed = db.selectFrom('principals').select('id').where('status', '=', 'departed');
  const ownedByDeparted = await count(
    active().where((eb) =>
      eb.or(
        (['business_owner', 'technical_owner', 'control_owner', 'revocation_owner', 'sponsor'] as const).map(
          (c) => eb(c, 'in', departed),
        ),
      ),
    ),
  );
  const p = await db
    .selectFrom('principals')
    .select([
      sql<number>`sum(case when kind = 'person' then 1 else 0 end)`.as('people'),
      sql<number>`sum(case when kind = 'team' then 1 else 0 end)`.as('teams'),
      sql<number>`sum(case when status = 'departed' then 1 else 0 end)`.as('departed'),
    ])
    .executeTakeFirstOrThrow();
  const head = await db.selectFrom('ledger_head').select('seq').where('id', '=', 1).executeTakeFirstOrThrow();
  const cp = await db
    .selectFrom('checkpoints')
    .select([(eb) => eb.fn.countAll<number>().as('n'), (eb) => eb.fn.max('seq').as('m')])
    .executeTakeFirstOrThrow();
  return {
    identities: total,
    byStatus: await group('status'),
    byKind: await group('kind'),
    missing,
    ownedByDeparted,
    visibility: total ? complete / total : 0,
    fullyAccountable: complete,
    principals: {
      people: Number(p.people ?? 0),
      teams: Number(p.teams ?? 0),
      departed: Number(p.departed ?? 0),
    },
    ledger: {
      events: Number(head.seq),
      checkpoints: Number(cp.n),
      lastCheckpointSeq: cp.m == null ? 0 : Number(cp.m),
    },
  };
}
