import type { Tx } from '../store/store.js';
import type { Kysely } from 'kysely';
import type {
  CredentialsTable,
  Database,
  EntitlementsTable,
  IdentitiesTable,
  PrincipalsTable,
  VendorsTable,
} from '../store/schema.js';

/**
 * The one document a rule's `when` expression sees as `nhi`: the identity with everything
 * Steward knows about its accountability. A field that is not known is absent (test it with
 * `has(nhi.purpose)`), never null; times are CEL timestamps; lists are always present.
 * The CEL types in `environment.ts` declare exactly these fields, so that a rule naming a field
 * that does not exist is rejected when it is loaded.
 */
export interface NhiDocument {
  id: string;
  name: string;
  kind?: string;
  source?: string;
  externalId?: string;
  environment?: string;
  status: string;
  sensitivity?: string;
  service?: string;
  purpose?: string;
  labels: Record<string, string>;
  owners: { business?: PrincipalDoc; technical?: PrincipalDoc; control?: PrincipalDoc };
  primaryTeam?: PrincipalDoc;
  sharedWith: PrincipalDoc[];
  approval: { approver?: PrincipalDoc; approvedAt?: Date; ticket?: string };
  origin: { kind?: string; ref?: string; mergedBy?: string };
  vendor?: { name: string; contractingOwner?: PrincipalDoc; contractEnds?: Date };
  rotation: { maxAgeDays?: bigint };
  expiresAt?: Date;
  revocation: { triggers: string[]; owner?: PrincipalDoc; runbook?: string };
  sponsor?: PrincipalDoc;
  /** Declared in a manifest (ownership as code). */
  declared: boolean;
  /** Sources that see it now (`source:scope`). */
  sightings: string[];
  /** A secret a scanner found in code, with no owner. */
  unmanaged: boolean;
  /** A found secret linked to the known credential it is. */
  linked: boolean;
  /** Every source's attributes folded into one map (later sightings win on a clash). */
  attributes: Record<string, unknown>;
  createdAt?: Date;
  firstSeen?: Date;
  lastUsedAt?: Date;
  /** When its entitlements were last reviewed (access reviews; absent until one happens). */
  lastReviewedAt?: Date;
  credentials: CredentialDoc[];
  entitlements: EntitlementDoc[];
  /** Findings on record for this identity (any status), from earlier evaluations. */
  findings: { rule: string; status: string; firstSeen: Date }[];
}

export interface PrincipalDoc {
  ref: string;
  kind: string;
  /** `active`, `departed`, or `unknown` when the directory does not know it. */
  status: string;
  known: boolean;
  name?: string;
  email?: string;
  leftAt?: Date;
}

export interface CredentialDoc {
  id: string;
  kind?: string;
  status: string;
  hasFingerprint: boolean;
  issuedAt?: Date;
  lastRotatedAt?: Date;
  expiresAt?: Date;
  rotationMaxAgeDays?: bigint;
  locations: string[];
  lastUsedAt?: Date;
  source?: string;
  attributes: Record<string, unknown>;
}

export interface EntitlementDoc {
  resource: string;
  actions: string[];
  status: string;
  grantedVia?: string;
  grantedAt?: Date;
  lastUsedAt?: Date;
  source?: string;
  /** Any source flagged it admin (AdministratorAccess, Owner, cluster-admin, *.ReadWrite.All …). */
  admin: boolean;
  /** A wildcard action or resource. */
  wildcard: boolean;
  attributes: Record<string, unknown>;
}

const DAY = 86_400_000;

/** `90d`, `12w`, `1y`, `36h` as whole days (hours round up to a day). */
export function durationDays(s: string | null | undefined): bigint | undefined {
  if (!s) return undefined;
  const m = /^(\d+)([hdwy])$/.exec(s);
  if (!m) return undefined;
  const n = Number(m[1]);
  const days = { h: Math.ceil(n / 24), d: n, w: n * 7, y: n * 365 }[m[2] as 'h' | 'd' | 'w' | 'y'];
  return BigInt(days);
}

const time = (s: string | null | undefined): Date | undefined => {
  if (!s) return undefined;
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? undefined : d;
};
const json = <T>(s: string | null | undefined, fallback: T): T => (s ? (JSON.parse(s) as T) : fallback);

/** Sets `key` on `o` only when the value is known. */
function put<T extends object, K extends keyof T>(o: T, key: K, v: T[K] | undefined | null): void {
  if (v !== undefined && v !== null) o[key] = v;
}

/** People, teams and vendors, loaded once per evaluation. */
export interface Directory {
  principals: Map<string, PrincipalsTable>;
  vendors: Map<string, VendorsTable>;
}

export async function loadDirectory(db: Kysely<Database> | Tx): Promise<Directory> {
  const principals = new Map<string, PrincipalsTable>();
  for (const p of await db.selectFrom('principals').selectAll().execute()) {
    principals.set(p.id, p);
    if (p.email) principals.set(`person:${p.email}`, p);
  }
  const vendors = new Map<string, VendorsTable>();
  for (const v of await db.selectFrom('vendors').selectAll().execute()) vendors.set(v.name, v);
  return { principals, vendors };
}

const PRINCIPAL_COLUMNS = [
  'business_owner',
  'technical_owner',
  'control_owner',
  'primary_team',
  'approver',
  'revocation_owner',
  'sponsor',
] as const;

/** Only the people, teams and vendors these identities name (for a few identities: incremental). */
async function directoryFor(db: Kysely<Database> | Tx, rows: IdentitiesTable[]): Promise<Directory> {
  const refs = new Set<string>();
  const vendorNames = new Set<string>();
  for (const r of rows) {
    for (const c of PRINCIPAL_COLUMNS) if (r[c]) refs.add(r[c]);
    for (const x of json<string[]>(r.shared_with, [])) refs.add(x);
    if (r.vendor) vendorNames.add(r.vendor);
  }
  const principals = new Map<string, PrincipalsTable>();
  const vendors = new Map<string, VendorsTable>();
  const list = [...refs];
  for (let i = 0; i < list.length; i += 500) {
    const part = list.slice(i, i + 500);
    const emails = part.filter((r) => r.startsWith('person:')).map((r) => r.slice('person:'.length));
    for (const p of await db
      .selectFrom('principals')
      .selectAll()
      .where((eb) => eb.or([eb('id', 'in', part), ...(emails.length ? [eb('email', 'in', emails)] : [])]))
      .execute()) {
      principals.set(p.id, p);
      if (p.email) principals.set(`person:${p.email}`, p);
    }
  }
  // a vendor's contracting owner is a principal too
  if (vendorNames.size) {
    for (const v of await db
      .selectFrom('vendors')
      .selectAll()
      .where('name', 'in', [...vendorNames])
      .execute()) {
      vendors.set(v.name, v);
      if (v.contracting_owner && !principals.has(v.contracting_owner)) {
        const owner = v.contracting_owner;
        for (const p of await db
          .selectFrom('principals')
          .selectAll()
          .where((eb) => eb.or([eb('id', '=', owner), eb('email', '=', owner.replace(/^person:/, ''))]))
          .execute()) {
          principals.set(p.id, p);
          if (p.email) principals.set(`person:${p.email}`, p);
        }
      }
    }
  }
  return { principals, vendors };
}

function principal(dir: Directory, ref: string | null | undefined): PrincipalDoc | undefined {
  if (!ref) return undefined;
  const p = dir.principals.get(ref);
  const doc: PrincipalDoc = {
    ref,
    kind: ref.startsWith('team:') ? 'team' : 'person',
    status: p ? p.status : 'unknown',
    known: p !== undefined,
  };
  if (p) {
    put(doc, 'name', p.name);
    put(doc, 'email', p.email);
    put(doc, 'leftAt', time(p.left_at));
  }
  return doc;
}

function foldAttributes(s: string | null): Record<string, unknown> {
  const bySighting = json<Record<string, unknown>>(s, {});
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(bySighting).sort()) {
    const v = bySighting[k];
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) Object.assign(out, v);
  }
  return out;
}

function credentialDoc(c: CredentialsTable): CredentialDoc {
  const d: CredentialDoc = {
    id: c.external_id,
    status: c.status,
    hasFingerprint: c.fingerprint !== null,
    locations: json<string[]>(c.locations, []),
    attributes: json<Record<string, unknown>>(c.attributes, {}),
  };
  put(d, 'kind', c.kind);
  put(d, 'issuedAt', time(c.issued_at));
  put(d, 'lastRotatedAt', time(c.last_rotated_at));
  put(d, 'expiresAt', time(c.expires_at));
  put(d, 'rotationMaxAgeDays', durationDays(c.rotation_max_age));
  put(d, 'lastUsedAt', time(c.last_used_at));
  put(d, 'source', c.source);
  return d;
}

function entitlementDoc(e: EntitlementsTable): EntitlementDoc {
  const attributes = json<Record<string, unknown>>(e.attributes, {});
  const actions = json<string[]>(e.actions, []);
  const d: EntitlementDoc = {
    resource: e.resource,
    actions,
    status: e.status,
    admin: attributes.admin === true || attributes.clusterAdmin === true,
    wildcard:
      attributes.wildcard === true ||
      e.resource === '*' ||
      actions.some((a) => a === '*' || a.endsWith(':*') || a === '*:*'),
    attributes,
  };
  put(d, 'grantedVia', e.granted_via);
  put(d, 'grantedAt', time(e.granted_at));
  put(d, 'lastUsedAt', time(e.last_used_at));
  put(d, 'source', e.source);
  return d;
}

/** Builds one identity's document from its projection rows. */
export function buildDocument(
  i: IdentitiesTable,
  credentials: CredentialsTable[],
  entitlements: EntitlementsTable[],
  findings: { rule: string; status: string; first_seen: string }[],
  dir: Directory,
): NhiDocument {
  const attributes = foldAttributes(i.attributes);
  const vendorRow = i.vendor ? dir.vendors.get(i.vendor) : undefined;
  const doc: NhiDocument = {
    id: i.id,
    name: i.name,
    status: i.status,
    labels: json<Record<string, string>>(i.labels, {}),
    owners: {},
    sharedWith: json<string[]>(i.shared_with, []).map((r) => principal(dir, r)!),
    approval: {},
    origin: {},
    rotation: {},
    revocation: { triggers: json<string[]>(i.revocation_triggers, []) },
    declared: i.manifest_file !== null,
    sightings: json<string[]>(i.sightings, []),
    unmanaged: i.kind === 'secret' && attributes.unmanaged === true && i.linked_to === null,
    linked: i.linked_to !== null,
    attributes,
    credentials: credentials.map(credentialDoc),
    entitlements: entitlements.map(entitlementDoc),
    findings: findings.map((f) => ({ rule: f.rule, status: f.status, firstSeen: new Date(f.first_seen) })),
  };
  put(doc, 'kind', i.kind);
  put(doc, 'source', i.source);
  put(doc, 'externalId', i.external_id);
  put(doc, 'environment', i.environment);
  put(doc, 'sensitivity', i.sensitivity);
  put(doc, 'service', i.service);
  put(doc, 'purpose', i.purpose);
  put(doc.owners, 'business', principal(dir, i.business_owner));
  put(doc.owners, 'technical', principal(dir, i.technical_owner));
  put(doc.owners, 'control', principal(dir, i.control_owner));
  put(doc, 'primaryTeam', principal(dir, i.primary_team));
  put(doc.approval, 'approver', principal(dir, i.approver));
  put(doc.approval, 'approvedAt', time(i.approved_at));
  put(doc.approval, 'ticket', i.approval_ticket);
  put(doc.origin, 'kind', i.origin_kind);
  put(doc.origin, 'ref', i.origin_ref);
  put(doc.origin, 'mergedBy', i.origin_merged_by);
  if (i.vendor) {
    const v: NonNullable<NhiDocument['vendor']> = { name: i.vendor };
    put(v, 'contractingOwner', principal(dir, vendorRow?.contracting_owner));
    put(v, 'contractEnds', time(vendorRow?.contract_ends));
    doc.vendor = v;
  }
  put(doc.rotation, 'maxAgeDays', durationDays(i.rotation_max_age));
  put(doc, 'expiresAt', time(i.expires_at));
  put(doc.revocation, 'owner', principal(dir, i.revocation_owner));
  put(doc.revocation, 'runbook', i.revocation_runbook);
  put(doc, 'sponsor', principal(dir, i.sponsor));
  put(doc, 'createdAt', time(i.source_created_at));
  put(doc, 'firstSeen', time(i.first_seen));
  put(doc, 'lastUsedAt', time(i.last_used_at));
  return doc;
}

export { DAY };

/** Identities per page when documents are built in bulk. */
export const PAGE = 2000;

/**
 * Builds documents in pages of {@link PAGE} identities ordered by id: every identity, or only
 * those named. Memory stays bounded by the page size.
 */
export async function* loadDocuments(
  db: Kysely<Database> | Tx,
  opts: { ids?: string[]; dir?: Directory } = {},
): AsyncGenerator<NhiDocument[]> {
  // Every identity: the whole directory once. A few named ones: only who they name, per page.
  const whole = opts.dir ?? (opts.ids ? undefined : await loadDirectory(db));
  const pages: AsyncGenerator<IdentitiesTable[]> = opts.ids
    ? (async function* () {
        const ids = [...new Set(opts.ids)].sort();
        for (let i = 0; i < ids.length; i += PAGE) {
          yield await db
            .selectFrom('identities')
            .selectAll()
            .where('id', 'in', ids.slice(i, i + PAGE))
            .orderBy('id')
            .execute();
        }
      })()
    : (async function* () {
        let after = '';
        for (;;) {
          const rows = await db
            .selectFrom('identities')
            .selectAll()
            .where('id', '>', after)
            .orderBy('id')
            .limit(PAGE)
            .execute();
          if (!rows.length) return;
          yield rows;
          after = rows[rows.length - 1]!.id;
        }
      })();
  for await (const rows of pages) {
    if (!rows.length) continue;
    const ids = rows.map((r) => r.id);
    const creds = new Map<string, CredentialsTable[]>();
    const ents = new Map<string, EntitlementsTable[]>();
    const finds = new Map<
      string,
      { identity_id: string; rule: string; status: string; first_seen: string }[]
    >();
    const group = <T extends { identity_id: string }>(m: Map<string, T[]>, list: T[]) => {
      for (const x of list) {
        let l = m.get(x.identity_id);
        if (!l) m.set(x.identity_id, (l = []));
        l.push(x);
      }
    };
    // A full scan's page is a contiguous run of ids: one range read per table (an index range
    // scan) instead of IN lists. Named identities are read by IN lists.
    const contiguous = !opts.ids;
    const chunks = contiguous
      ? [ids]
      : Array.from({ length: Math.ceil(ids.length / 1000) }, (_, i) => ids.slice(i * 1000, i * 1000 + 1000));
    for (const part of chunks) {
      const first = part[0]!;
      const last = part[part.length - 1]!;
      group(
        creds,
        await (
          contiguous
            ? db
                .selectFrom('credentials')
                .selectAll()
                .where('identity_id', '>=', first)
                .where('identity_id', '<=', last)
            : db.selectFrom('credentials').selectAll().where('identity_id', 'in', part)
        )
          .orderBy('identity_id')
          .orderBy('id')
          .execute(),
      );
      group(
        ents,
        await (
          contiguous
            ? db
                .selectFrom('entitlements')
                .selectAll()
                .where('identity_id', '>=', first)
                .where('identity_id', '<=', last)
            : db.selectFrom('entitlements').selectAll().where('identity_id', 'in', part)
        )
          .orderBy('identity_id')
          .orderBy('id')
          .execute(),
      );
      const findings = db.selectFrom('findings').select(['identity_id', 'rule', 'status', 'first_seen']);
      group(
        finds,
        await (
          contiguous
            ? findings.where('identity_id', '>=', first).where('identity_id', '<=', last)
            : findings.where('identity_id', 'in', part)
        )
          .orderBy('identity_id')
          .orderBy('rule')
          .execute(),
      );
    }
    const dir = whole ?? (await directoryFor(db, rows));
    yield rows.map((r) =>
      buildDocument(r, creds.get(r.id) ?? [], ents.get(r.id) ?? [], finds.get(r.id) ?? [], dir),
    );
  }
}
