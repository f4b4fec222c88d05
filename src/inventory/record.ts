import type { Store } from '../store/store.js';
import { rowToEvent } from '../ledger/ledger.js';
import { foldEvents, type FieldProvenance, type SubjectState } from './fold.js';

/** Directory facts about a principal named in a record. */
export interface PrincipalInfo {
  ref: string;
  kind: string;
  known: boolean;
  name: string | null;
  email: string | null;
  team: string | null;
  manager: string | null;
  status: string | null;
  leftAt: string | null;
}

export interface CredentialRecord {
  id: string;
  externalId: string;
  kind: string | null;
  status: string;
  fingerprint: string | null;
  issuedAt: string | null;
  lastRotatedAt: string | null;
  expiresAt: string | null;
  rotation: { maxAge: string | null };
  locations: string[];
  lastUsedAt: string | null;
  /** Who reported it (`source:scope` of a discovery import), or null when only declared. */
  source: string | null;
  attributes: Record<string, unknown>;
}

export interface EntitlementRecord {
  id: string;
  resource: string;
  actions: string[];
  status: string;
  grantedVia: string | null;
  grantedAt: string | null;
  approvalRef: string | null;
  lastUsedAt: string | null;
  source: string | null;
  attributes: Record<string, unknown>;
}

/** The accountability record of one identity (PRODUCT.md C2), with stable field names. */
export interface AccountabilityRecord {
  id: string;
  name: string;
  kind: string | null;
  source: string | null;
  externalId: string | null;
  environment: string | null;
  status: string;
  sensitivity: string | null;
  service: { name: string; owner: string | null; system: string | null } | null;
  purpose: string | null;
  labels: Record<string, string>;
  owners: { business: string | null; technical: string | null; control: string | null };
  primaryTeam: string | null;
  sharedWith: string[];
  approver: string | null;
  approval: { approver: string | null; approvedAt: string | null; ticket: string | null };
  origin: { kind: string | null; ref: string | null; mergedBy: string | null };
  vendor: { name: string; contractingOwner: string | null; contractEnds: string | null } | null;
  rotation: { maxAge: string | null };
  expires: string | null;
  revocation: { triggers: string[]; owner: string | null; runbook: string | null };
  sponsor: string | null;
  manifestFile: string | null;
  /** For a secret found in code that is a known credential: that credential's id (status `linked`). */
  linkedTo: string | null;
  credentials: CredentialRecord[];
  entitlements: EntitlementRecord[];
  principals: Record<string, PrincipalInfo>;
  /** Roles with nobody accountable, and owners who have left. */
  gaps: string[];
  /** Which source or command last stated each field of the identity, and when. */
  provenance: Record<string, FieldProvenance>;
  attributes: Record<string, unknown>;
  lastUsedAt: string | null;
  firstRecordedAt: string;
  lastEventSeq: number;
  asOf: string;
  knownAt: string;
}

const str = (v: unknown): string | null =>
  v === null || v === undefined ? null : typeof v === 'string' ? v : JSON.stringify(v);

/** Principal refs a record names. */
function principalRefs(f: Record<string, unknown>): string[] {
  const refs = new Set<string>();
  for (const k of [
    'businessOwner',
    'technicalOwner',
    'controlOwner',
    'primaryTeam',
    'approver',
    'originMergedBy',
    'revocationOwner',
    'sponsor',
  ]) {
    const v = f[k];
    if (typeof v === 'string') refs.add(v);
  }
  for (const v of (f.sharedWith as string[] | null) ?? []) refs.add(v);
  return [...refs];
}

/** Loads the events of an identity and everything its record names, and folds them at (asOf, knownAt). */
export async function loadRecord(
  store: Store,
  identityId: string,
  asOf: string,
  knownAt: string,
): Promise<AccountabilityRecord | undefined> {
  const own = (
    await store.db
      .selectFrom('events')
      .selectAll()
      .where('identity_id', '=', identityId)
      .where('recorded_at', '<=', knownAt)
      .orderBy('seq')
      .execute()
  ).map(rowToEvent);
  const states = foldEvents(own, asOf, knownAt);
  const identity = states.get(`identity:${identityId}`);
  if (!identity) return undefined;
  const f = identity.fields;
  const related = principalRefs(f);
  if (typeof f.service === 'string') related.push(`service:${f.service}`);
  if (typeof f.vendor === 'string') related.push(`vendor:${f.vendor}`);
  let relatedStates = new Map<string, SubjectState>();
  if (related.length) {
    const rows = await store.db
      .selectFrom('events')
      .selectAll()
      .where('subject', 'in', related)
      // matches the partial index events_subject (events about people, teams, services, vendors)
      .where('identity_id', 'is', null)
      .where('recorded_at', '<=', knownAt)
      .orderBy('seq')
      .execute();
    relatedStates = foldEvents(rows.map(rowToEvent), asOf, knownAt);
    const vendor = relatedStates.get(`vendor:${String(f.vendor)}`);
    const vendorOwner = vendor?.fields.contractingOwner;
    if (typeof vendorOwner === 'string' && !related.includes(vendorOwner)) {
      const more = await store.db
        .selectFrom('events')
        .selectAll()
        .where('subject', '=', vendorOwner)
        .where('identity_id', 'is', null)
        .where('recorded_at', '<=', knownAt)
        .orderBy('seq')
        .execute();
      for (const [k, v] of foldEvents(more.map(rowToEvent), asOf, knownAt)) relatedStates.set(k, v);
      related.push(vendorOwner);
    }
  }
  return buildRecord(identityId, identity, states, relatedStates, asOf, knownAt);
}

/** Assembles the record from folded states (shared by the query and the brute-force replay in tests). */
export function buildRecord(
  identityId: string,
  identity: SubjectState,
  states: Map<string, SubjectState>,
  related: Map<string, SubjectState>,
  asOf: string,
  knownAt: string,
): AccountabilityRecord {
  const f = identity.fields;
  const credentials: CredentialRecord[] = [];
  const entitlements: EntitlementRecord[] = [];
  let lastEventSeq = identity.lastSeq;
  for (const [subject, s] of states) {
    const c = s.fields;
    if (c.identityId !== identityId) continue;
    lastEventSeq = Math.max(lastEventSeq, s.lastSeq);
    if (subject.startsWith('credential:')) {
      credentials.push({
        id: subject.slice('credential:'.length),
        externalId: String(c.externalId),
        kind: str(c.kind),
        status: String(c.status),
        fingerprint: str(c.fingerprint),
        issuedAt: str(c.issuedAt),
        lastRotatedAt: str(c.lastRotatedAt),
        expiresAt: str(c.expiresAt),
        rotation: { maxAge: str(c.rotationMaxAge) },
        locations: (c.locations as string[] | null) ?? [],
        lastUsedAt: str(c.lastUsedAt),
        source: str(c.source),
        attributes: (c.attributes as Record<string, unknown> | null) ?? {},
      });
    } else if (subject.startsWith('entitlement:')) {
      entitlements.push({
        id: subject.slice('entitlement:'.length),
        resource: String(c.resource),
        actions: (c.actions as string[] | null) ?? [],
        status: String(c.status),
        grantedVia: str(c.grantedVia),
        grantedAt: str(c.grantedAt),
        approvalRef: str(c.approvalRef),
        lastUsedAt: str(c.lastUsedAt),
        source: str(c.source),
        attributes: (c.attributes as Record<string, unknown> | null) ?? {},
      });
    }
  }
  credentials.sort((a, b) => a.externalId.localeCompare(b.externalId));
  entitlements.sort((a, b) => a.resource.localeCompare(b.resource));

  const principals: Record<string, PrincipalInfo> = {};
  const refs = principalRefs(f);
  const vendorState = typeof f.vendor === 'string' ? related.get(`vendor:${f.vendor}`) : undefined;
  const contractingOwner = str(vendorState?.fields.contractingOwner);
  if (contractingOwner) refs.push(contractingOwner);
  for (const ref of refs) {
    const p = related.get(ref)?.fields;
    principals[ref] = {
      ref,
      kind: ref.slice(0, ref.indexOf(':')),
      known: p !== undefined,
      name: str(p?.name),
      email: str(p?.email),
      team: str(p?.team),
      manager: str(p?.manager),
      status: str(p?.status),
      leftAt: str(p?.leftAt),
    };
  }
  const serviceState = typeof f.service === 'string' ? related.get(`service:${f.service}`) : undefined;

  const owners = {
    business: str(f.businessOwner),
    technical: str(f.technicalOwner),
    control: str(f.controlOwner),
  };
  const gaps: string[] = [];
  for (const [role, who] of Object.entries(owners)) if (!who) gaps.push(`no ${role} owner`);
  if (!f.primaryTeam) gaps.push('no primary team');
  if (!f.approver) gaps.push('no approver');
  if (!f.purpose) gaps.push('no purpose');
  if (!f.expiresAt && !f.rotationMaxAge) gaps.push('no expiry or rotation policy');
  if (!f.revocationOwner) gaps.push('no revocation owner');
  for (const p of Object.values(principals)) if (p.status === 'departed') gaps.push(`${p.ref} has departed`);

  return {
    id: identityId,
    name: String(f.name),
    kind: str(f.kind),
    source: str(f.source),
    externalId: str(f.externalId),
    environment: str(f.environment),
    status: String(f.status),
    sensitivity: str(f.sensitivity),
    service:
      typeof f.service === 'string'
        ? {
            name: f.service,
            owner: str(serviceState?.fields.owner),
            system: str(serviceState?.fields.system),
          }
        : null,
    purpose: str(f.purpose),
    labels: (f.labels as Record<string, string> | null) ?? {},
    owners,
    primaryTeam: str(f.primaryTeam),
    sharedWith: (f.sharedWith as string[] | null) ?? [],
    approver: str(f.approver),
    approval: { approver: str(f.approver), approvedAt: str(f.approvedAt), ticket: str(f.approvalTicket) },
    origin: { kind: str(f.originKind), ref: str(f.originRef), mergedBy: str(f.originMergedBy) },
    vendor:
      typeof f.vendor === 'string'
        ? { name: f.vendor, contractingOwner, contractEnds: str(vendorState?.fields.contractEnds) }
        : null,
    rotation: { maxAge: str(f.rotationMaxAge) },
    expires: str(f.expiresAt),
    revocation: {
      triggers: (f.revocationTriggers as string[] | null) ?? [],
      owner: str(f.revocationOwner),
      runbook: str(f.revocationRunbook),
    },
    sponsor: str(f.sponsor),
    manifestFile: str(f.manifestFile),
    linkedTo: str(f.linkedTo),
    credentials,
    entitlements,
    principals,
    gaps,
    provenance: identity.provenance,
    attributes: (f.attributes as Record<string, unknown> | null) ?? {},
    lastUsedAt: str(f.lastUsedAt),
    firstRecordedAt: identity.firstRecordedAt,
    lastEventSeq,
    asOf,
    knownAt,
  };
}
