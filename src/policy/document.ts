import type { Tx } from '../store/store.js';
import { SqliteAdapter, sql, type Kysely, type RawBuilder } from 'kysely';
import type { Database, FindingsTable, PrincipalsTable, VendorsTable } from '../store/schema.js';

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

/**
 * Timestamps repeat across identities (every identity one import touched carries its time), so
 * parsed ones are shared: documents are never written to. Bounded: cleared when full.
 */
const parsedTimes = new Map<string, Date | undefined>();
const time = (s: string | null | undefined): Date | undefined => {
  if (!s) return undefined;
  if (parsedTimes.has(s)) return parsedTimes.get(s);
  if (parsedTimes.size >= 50_000) parsedTimes.clear();
  const d = new Date(s);
  const v = Number.isNaN(d.getTime()) ? undefined : d;
  parsedTimes.set(s, v);
  return v;
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

/**
 * What one evaluation reads of an identity, in one row: the identity's columns, then its
 * credentials, entitlements and findings as JSON arrays built by the database (one query per
 * page, one string per identity: a fraction of the cost of materialising every column of four
 * tables as JavaScript values). The positions below are the SQL's select lists.
 */
const IDENTITY = [
  'id',
  'name',
  'status',
  'kind',
  'source',
  'external_id',
  'environment',
  'sensitivity',
  'service',
  'purpose',
  'labels',
  'business_owner',
  'technical_owner',
  'control_owner',
  'primary_team',
  'shared_with',
  'approver',
  'approved_at',
  'approval_ticket',
  'origin_kind',
  'origin_ref',
  'origin_merged_by',
  'vendor',
  'rotation_max_age',
  'expires_at',
  'revocation_triggers',
  'revocation_owner',
  'revocation_runbook',
  'sponsor',
  'last_used_at',
  'attributes',
  'sightings',
  'source_created_at',
  'first_seen',
] as const;
const CREDENTIAL = [
  'external_id',
  'kind',
  'status',
  'issued_at',
  'last_rotated_at',
  'expires_at',
  'rotation_max_age',
  'locations',
  'last_used_at',
  'source',
  'attributes',
] as const;
const ENTITLEMENT = [
  'resource',
  'actions',
  'status',
  'granted_via',
  'granted_at',
  'last_used_at',
  'source',
  'attributes',
] as const;
const FINDING = [
  'id',
  'rule',
  'status',
  'first_seen',
  'last_seen',
  'assignee',
  'assigned_role',
  'title',
  'severity',
  'frameworks',
  'exception',
  'exception_expires_at',
] as const;

type Cell = string | number | boolean | null;
type Cells = Cell[];
/** The identity's columns, then: declared, linked, credentials (each + has fingerprint), entitlements, findings. */
type PageRow = (Cell | Cells[])[];

const at = <C extends readonly string[]>(cols: C) =>
  Object.fromEntries(cols.map((c, i) => [c, i])) as { [K in C[number]]: number };
const I = at(IDENTITY);
const C = at(CREDENTIAL);
const E = at(ENTITLEMENT);
const F = at(FINDING);
const I_DECLARED = IDENTITY.length;
const I_LINKED = IDENTITY.length + 1;
const I_CREDENTIALS = IDENTITY.length + 2;
const I_ENTITLEMENTS = IDENTITY.length + 3;
const I_FINDINGS = IDENTITY.length + 4;
const C_FINGERPRINT = CREDENTIAL.length;

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
async function directoryFor(db: Kysely<Database> | Tx, rows: PageRow[]): Promise<Directory> {
  const refs = new Set<string>();
  const vendorNames = new Set<string>();
  for (const r of rows) {
    for (const c of PRINCIPAL_COLUMNS) if (r[I[c]]) refs.add(String(r[I[c]]));
    for (const x of json<string[]>(text(r[I.shared_with]), [])) refs.add(x);
    if (r[I.vendor]) vendorNames.add(String(r[I.vendor]));
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

/**
 * The principal documents of each directory, shared by every document that names them (like
 * parsed times: documents are never written to). Bounded: cleared when full.
 */
const principalDocs = new WeakMap<Directory, Map<string, PrincipalDoc>>();

function principal(dir: Directory, ref: string | null | undefined): PrincipalDoc | undefined {
  if (!ref) return undefined;
  let cache = principalDocs.get(dir);
  if (!cache) principalDocs.set(dir, (cache = new Map<string, PrincipalDoc>()));
  const cached = cache.get(ref);
  if (cached) return cached;
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
  if (cache.size >= 100_000) cache.clear();
  cache.set(ref, doc);
  return doc;
}

/** One finding on record, as evaluation compares it with what holds now. */
export type FindingRow = Pick<FindingsTable, (typeof FINDING)[number]>;

/**
 * A page of identities, read but not yet built: `each` builds one document at a time, with its
 * findings on record, and lets it go before the next. A page's documents are never all alive at
 * once (2,000 built documents are megabytes of objects that every young-generation collection
 * during the page would copy; the rows they come from are a few strings).
 */
export interface DocumentPage {
  /** The identities' ids, in order. */
  ids: string[];
  each(fn: (doc: NhiDocument, findings: FindingRow[]) => void): void;
}

function pageSql(dialect: 'sqlite' | 'postgres', where: RawBuilder<unknown>, limit?: number) {
  const pg = dialect === 'postgres';
  const arr = pg ? 'json_build_array' : 'json_array';
  const list = (alias: string, cols: readonly string[], extra: string[] = []) =>
    `${arr}(${[...cols.map((c) => `${alias}.${c}`), ...extra].join(', ')})`;
  const agg = (table: string, alias: string, value: string) =>
    pg
      ? `COALESCE((SELECT json_agg(${value} ORDER BY ${alias}.id) FROM ${table} ${alias} WHERE ${alias}.identity_id = i.id), '[]'::json)`
      : `(SELECT json_group_array(${value} ORDER BY ${alias}.id) FROM ${table} ${alias} WHERE ${alias}.identity_id = i.id)`;
  const row = `${arr}(${[
    ...IDENTITY.map((c) => `i.${c}`),
    'i.manifest_file IS NOT NULL',
    'i.linked_to IS NOT NULL',
    agg('credentials', 'c', list('c', CREDENTIAL, ['c.fingerprint IS NOT NULL'])),
    agg('entitlements', 'e', list('e', ENTITLEMENT)),
    agg('findings', 'f', list('f', FINDING)),
  ].join(', ')})${pg ? '::text' : ''}`;
  const page = limit === undefined ? sql`` : sql` LIMIT ${limit}`;
  return sql<{
    j: string;
  }>`SELECT ${sql.raw(row)} AS j FROM identities i WHERE ${where} ORDER BY i.id${page}`;
}

const text = (v: Cell | Cells[] | undefined): string | null =>
  v === null || v === undefined ? null : String(v);
const times = (v: Cell | undefined) => time(text(v));

function foldAttributes(s: string | null): Record<string, unknown> {
  const bySighting = json<Record<string, unknown>>(s, {});
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(bySighting).sort()) {
    const v = bySighting[k];
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) Object.assign(out, v);
  }
  return out;
}

function credentialDoc(c: Cells): CredentialDoc {
  const d: CredentialDoc = {
    id: String(c[C.external_id]),
    status: String(c[C.status]),
    hasFingerprint: Boolean(c[C_FINGERPRINT]),
    locations: json<string[]>(text(c[C.locations]), []),
    attributes: json<Record<string, unknown>>(text(c[C.attributes]), {}),
  };
  put(d, 'kind', text(c[C.kind]));
  put(d, 'issuedAt', times(c[C.issued_at]));
  put(d, 'lastRotatedAt', times(c[C.last_rotated_at]));
  put(d, 'expiresAt', times(c[C.expires_at]));
  put(d, 'rotationMaxAgeDays', durationDays(text(c[C.rotation_max_age])));
  put(d, 'lastUsedAt', times(c[C.last_used_at]));
  put(d, 'source', text(c[C.source]));
  return d;
}

function entitlementDoc(e: Cells): EntitlementDoc {
  const attributes = json<Record<string, unknown>>(text(e[E.attributes]), {});
  const actions = json<string[]>(text(e[E.actions]), []);
  const resource = String(e[E.resource]);
  const d: EntitlementDoc = {
    resource,
    actions,
    status: String(e[E.status]),
    admin: attributes.admin === true || attributes.clusterAdmin === true,
    wildcard:
      attributes.wildcard === true ||
      resource === '*' ||
      actions.some((a) => a === '*' || a.endsWith(':*') || a === '*:*'),
    attributes,
  };
  put(d, 'grantedVia', text(e[E.granted_via]));
  put(d, 'grantedAt', times(e[E.granted_at]));
  put(d, 'lastUsedAt', times(e[E.last_used_at]));
  put(d, 'source', text(e[E.source]));
  return d;
}

function findingRow(f: Cells): FindingRow {
  return {
    id: String(f[F.id]),
    rule: String(f[F.rule]),
    status: String(f[F.status]),
    first_seen: String(f[F.first_seen]),
    last_seen: String(f[F.last_seen]),
    assignee: text(f[F.assignee]),
    assigned_role: text(f[F.assigned_role]),
    title: String(f[F.title]),
    severity: String(f[F.severity]),
    frameworks: text(f[F.frameworks]),
    exception: text(f[F.exception]),
    exception_expires_at: text(f[F.exception_expires_at]),
  };
}

/** Builds one identity's document from its page row. */
function buildDocument(r: PageRow, findings: FindingRow[], dir: Directory): NhiDocument {
  const attributes = foldAttributes(text(r[I.attributes]));
  const vendor = text(r[I.vendor]);
  const vendorRow = vendor ? dir.vendors.get(vendor) : undefined;
  const linked = Boolean(r[I_LINKED]);
  const kind = text(r[I.kind]);
  const doc: NhiDocument = {
    id: String(r[I.id]),
    name: String(r[I.name]),
    status: String(r[I.status]),
    labels: json<Record<string, string>>(text(r[I.labels]), {}),
    owners: {},
    sharedWith: json<string[]>(text(r[I.shared_with]), []).map((p) => principal(dir, p)!),
    approval: {},
    origin: {},
    rotation: {},
    revocation: { triggers: json<string[]>(text(r[I.revocation_triggers]), []) },
    declared: Boolean(r[I_DECLARED]),
    sightings: json<string[]>(text(r[I.sightings]), []),
    unmanaged: kind === 'secret' && attributes.unmanaged === true && !linked,
    linked,
    attributes,
    credentials: (r[I_CREDENTIALS] as Cells[]).map(credentialDoc),
    entitlements: (r[I_ENTITLEMENTS] as Cells[]).map(entitlementDoc),
    findings: findings.map((f) => ({
      rule: f.rule,
      status: f.status,
      firstSeen: time(f.first_seen) ?? new Date(f.first_seen),
    })),
  };
  put(doc, 'kind', kind);
  put(doc, 'source', text(r[I.source]));
  put(doc, 'externalId', text(r[I.external_id]));
  put(doc, 'environment', text(r[I.environment]));
  put(doc, 'sensitivity', text(r[I.sensitivity]));
  put(doc, 'service', text(r[I.service]));
  put(doc, 'purpose', text(r[I.purpose]));
  put(doc.owners, 'business', principal(dir, text(r[I.business_owner])));
  put(doc.owners, 'technical', principal(dir, text(r[I.technical_owner])));
  put(doc.owners, 'control', principal(dir, text(r[I.control_owner])));
  put(doc, 'primaryTeam', principal(dir, text(r[I.primary_team])));
  put(doc.approval, 'approver', principal(dir, text(r[I.approver])));
  put(doc.approval, 'approvedAt', time(text(r[I.approved_at])));
  put(doc.approval, 'ticket', text(r[I.approval_ticket]));
  put(doc.origin, 'kind', text(r[I.origin_kind]));
  put(doc.origin, 'ref', text(r[I.origin_ref]));
  put(doc.origin, 'mergedBy', text(r[I.origin_merged_by]));
  if (vendor) {
    const v: NonNullable<NhiDocument['vendor']> = { name: vendor };
    put(v, 'contractingOwner', principal(dir, vendorRow?.contracting_owner));
    put(v, 'contractEnds', time(vendorRow?.contract_ends));
    doc.vendor = v;
  }
  put(doc.rotation, 'maxAgeDays', durationDays(text(r[I.rotation_max_age])));
  put(doc, 'expiresAt', time(text(r[I.expires_at])));
  put(doc.revocation, 'owner', principal(dir, text(r[I.revocation_owner])));
  put(doc.revocation, 'runbook', text(r[I.revocation_runbook]));
  put(doc, 'sponsor', principal(dir, text(r[I.sponsor])));
  put(doc, 'createdAt', time(text(r[I.source_created_at])));
  put(doc, 'firstSeen', time(text(r[I.first_seen])));
  put(doc, 'lastUsedAt', time(text(r[I.last_used_at])));
  return doc;
}

export { DAY };

/** Identities per page when documents are built in bulk. */
export const PAGE = 2000;

/** Which identities to read: named ones, a range of ids (`after` < id ≤ `upto`), or every one. */
export interface PageSelection {
  ids?: string[];
  range?: { after: string; upto?: string };
  dir?: Directory;
}

const dialectOf = (db: Kysely<Database> | Tx): 'sqlite' | 'postgres' =>
  db.getExecutor().adapter instanceof SqliteAdapter ? 'sqlite' : 'postgres';

/**
 * Reads documents in pages of {@link PAGE} identities ordered by id, with each identity's
 * findings on record: every identity, a range, or only those named. Memory stays bounded by
 * the page size.
 */
export async function* loadPages(
  db: Kysely<Database> | Tx,
  opts: PageSelection = {},
): AsyncGenerator<DocumentPage> {
  const dialect = dialectOf(db);
  // Every identity: the whole directory once. A few named ones: only who they name, per page.
  const whole = opts.dir ?? (opts.ids ? undefined : await loadDirectory(db));
  const read = async (where: RawBuilder<unknown>, limit?: number) =>
    (await pageSql(dialect, where, limit).execute(db)).rows.map((r) => JSON.parse(r.j) as PageRow);
  const pages: AsyncGenerator<PageRow[]> = opts.ids
    ? (async function* () {
        const ids = [...new Set(opts.ids)].sort();
        for (let i = 0; i < ids.length; i += PAGE) {
          const part = ids.slice(i, i + PAGE).map((id) => sql`${id}`);
          yield await read(sql`i.id IN (${sql.join(part)})`);
        }
      })()
    : (async function* () {
        let after = opts.range?.after ?? '';
        const upto = opts.range?.upto;
        for (;;) {
          const bound = upto === undefined ? sql`` : sql` AND i.id <= ${upto}`;
          const rows = await read(sql`i.id > ${after}${bound}`, PAGE);
          if (!rows.length) return;
          yield rows;
          after = String(rows[rows.length - 1]![I.id]);
        }
      })();
  for await (const rows of pages) {
    if (!rows.length) continue;
    const dir = whole ?? (await directoryFor(db, rows));
    yield {
      ids: rows.map((r) => String(r[I.id])),
      each(fn) {
        for (const r of rows) {
          const findings = (r[I_FINDINGS] as Cells[]).map(findingRow);
          fn(buildDocument(r, findings, dir), findings);
        }
      },
    };
  }
}

/** The documents alone, page by page (see {@link loadPages}). */
export async function* loadDocuments(
  db: Kysely<Database> | Tx,
  opts: PageSelection = {},
): AsyncGenerator<NhiDocument[]> {
  for await (const page of loadPages(db, opts)) {
    const docs: NhiDocument[] = [];
    page.each((d) => docs.push(d));
    yield docs;
  }
}
