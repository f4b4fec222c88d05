import {
  changedFields,
  emptyCounts,
  orNull,
  withoutNulls,
  type Fields,
  type ImportCounts,
} from './fields.js';

export type { ImportCounts };
import path from 'node:path';
import type { NewEvent } from '../ledger/event.js';
import type { ManifestIdentity, ManifestParseResult, BackstageService } from '../importers/manifest/types.js';
import { locateField } from '../importers/manifest/locate.js';
import type { Problem } from '../domain/problems.js';
import { ValidationError } from '../domain/errors.js';
import type { IdentitiesTable } from '../store/schema.js';
import type { Tx } from '../store/store.js';
import { PrincipalIndex } from './principals.js';
import { effectiveTime, newId, type CommandOptions, type InventoryDeps } from './context.js';
import { rowToFields } from './subjects.js';
import { linkFoundSecrets } from './link-secrets.js';

export interface ManifestImportResult {
  identities: ImportCounts;
  credentials: ImportCounts;
  entitlements: ImportCounts;
  principalsCreated: string[];
  services: number;
  vendors: number;
  /** Found secrets linked to the credentials declared here, in this import. */
  linked: number;
  events: number;
  files: ManifestParseResult['files'];
}

export interface ManifestImportOptions extends CommandOptions {
  /** Create people and teams named in owner fields that the directory does not know. */
  createMissing?: boolean;
  /** Paths given on the command line; identities from files under them that are gone are marked vanished. */
  roots: string[];
  onProgress?: (done: number, total: number) => void;
}

const nonEmpty = <T>(a: T[] | undefined): T[] | null => (a && a.length ? a : null);

/** The identity's natural key: its external id when it has one (an ARN is an ARN), else its manifest name. */
export function identityKey(m: { externalId?: string; name: string }): string {
  return m.externalId ? `ext:${m.externalId}` : `name:${m.name}`;
}

const PRINCIPAL_FIELDS: [string, (m: ManifestIdentity) => string | undefined][] = [
  ['spec.owners.business', (m) => m.owners?.business],
  ['spec.owners.technical', (m) => m.owners?.technical],
  ['spec.owners.control', (m) => m.owners?.control],
  ['spec.primaryTeam', (m) => m.primaryTeam],
  ['spec.approval.approver', (m) => m.approval?.approver],
  ['spec.origin.mergedBy', (m) => m.origin?.mergedBy],
  ['spec.vendor.contractingOwner', (m) => m.vendor?.contractingOwner],
  ['spec.revocation.owner', (m) => m.revocation?.owner],
  ['spec.sponsor', (m) => m.sponsor],
];

function fieldPath(dotted: string): (string | number)[] {
  return dotted.split('.').flatMap((p) => {
    const m = /^(\w+)\[(\d+)\]$/.exec(p);
    return m ? [m[1]!, Number(m[2])] : [p];
  });
}

/**
 * Imports parsed manifests in one transaction: writes exactly the events for what changed,
 * marks identities gone from their manifest files as vanished, and rejects the whole import
 * when any owner is unknown (unless `createMissing`).
 */
export async function importManifests(
  deps: InventoryDeps,
  parsed: ManifestParseResult,
  opts: ManifestImportOptions,
): Promise<ManifestImportResult> {
  const { store, ledger } = deps;
  const now = deps.now();
  const effectiveAt = effectiveTime(opts, now);
  const principals = await PrincipalIndex.load(store.db);
  const problems: Problem[] = [];
  const newPrincipals = new Map<string, NewEvent>();

  const resolveRef = (
    ref: string,
    file: string,
    line: number,
    field: string,
    docLine = line,
  ): string | null => {
    const found = principals.resolve(ref);
    if (found) return found;
    const canonical = PrincipalIndex.canonical(ref);
    if (opts.createMissing) {
      if (!newPrincipals.has(canonical)) {
        const kind = canonical.slice(0, canonical.indexOf(':'));
        const key = canonical.slice(kind.length + 1);
        newPrincipals.set(canonical, {
          type: 'principal.created',
          subject: canonical,
          payload: {
            set: {
              kind,
              directoryId: null,
              name: kind === 'team' ? key : null,
              email: kind === 'person' && key.includes('@') ? key : null,
              team: null,
              manager: null,
              status: 'active',
              leftAt: null,
            },
            createdFrom: 'manifest',
          },
          effectiveAt,
        });
      }
      return canonical;
    }
    problems.push({
      file,
      line: locateField(file, docLine, fieldPath(field)),
      field,
      message: `expected a person or team known to the directory, got unknown ${ref} (import the directory first, or pass --create-missing)`,
    });
    return null;
  };

  // Resolve every principal before writing anything: the import is all or nothing.
  const resolved = parsed.identities.map((m) => {
    const r = new Map<string, string | null>();
    for (const [field, get] of PRINCIPAL_FIELDS) {
      const ref = get(m);
      if (ref) r.set(field, resolveRef(ref, m.file, m.line, field));
    }
    const shared = (m.sharedWith ?? []).map((ref, i) =>
      resolveRef(ref, m.file, m.line, `spec.sharedWith[${i}]`),
    );
    return { r, shared };
  });
  const serviceOwners = parsed.services.map((s) =>
    s.owner ? resolveRef(s.owner, s.file, s.line, 'spec.owner') : null,
  );
  if (problems.length) {
    throw new ValidationError(`${problems.length} problem(s) in manifests; nothing was imported`, problems);
  }

  const result: ManifestImportResult = {
    identities: emptyCounts(),
    credentials: emptyCounts(),
    entitlements: emptyCounts(),
    principalsCreated: [...newPrincipals.keys()],
    services: 0,
    vendors: 0,
    linked: 0,
    events: 0,
    files: parsed.files,
  };

  return ledger.write({ actor: opts.actor, reason: opts.reason ?? 'manifest import' }, async (w) => {
    // Current state of everything this import can touch.
    const keys = parsed.identities.map(identityKey);
    const byKey = new Map<string, IdentitiesTable>();
    for (let i = 0; i < keys.length; i += 1000) {
      const rows = await w.tx
        .selectFrom('identities')
        .selectAll()
        .where('natural_key', 'in', keys.slice(i, i + 1000))
        .execute();
      for (const r of rows) byKey.set(r.natural_key, r);
    }
    // An identity that gained an external id keeps its record: find it by its old name key.
    const renamed = parsed.identities.filter((m) => m.externalId && !byKey.has(identityKey(m)));
    for (let i = 0; i < renamed.length; i += 1000) {
      const part = renamed.slice(i, i + 1000);
      const rows = await w.tx
        .selectFrom('identities')
        .selectAll()
        .where(
          'natural_key',
          'in',
          part.map((m) => `name:${m.name}`),
        )
        .execute();
      const byName = new Map(rows.map((r) => [r.natural_key, r]));
      for (const m of part) {
        const old = byName.get(`name:${m.name}`);
        if (old) byKey.set(identityKey(m), old);
      }
    }
    const files = new Set(parsed.files.map((f) => f.path));
    const roots = opts.roots.map((r) => path.resolve(r));
    const seenIds = new Set<string>();
    const existingIds = [...byKey.values()].map((r) => r.id);
    const credsByIdentity = new Map<string, Map<string, Fields & { id: string }>>();
    const entsByIdentity = new Map<string, Map<string, Fields & { id: string }>>();
    for (let i = 0; i < existingIds.length; i += 1000) {
      const ids = existingIds.slice(i, i + 1000);
      for (const c of await w.tx
        .selectFrom('credentials')
        .selectAll()
        .where('identity_id', 'in', ids)
        .execute()) {
        let m = credsByIdentity.get(c.identity_id);
        if (!m) credsByIdentity.set(c.identity_id, (m = new Map<string, Fields & { id: string }>()));
        m.set(c.natural_key, { ...rowToFields('credentials', c), id: c.id });
      }
      for (const e of await w.tx
        .selectFrom('entitlements')
        .selectAll()
        .where('identity_id', 'in', ids)
        .execute()) {
        let m = entsByIdentity.get(e.identity_id);
        if (!m) entsByIdentity.set(e.identity_id, (m = new Map<string, Fields & { id: string }>()));
        m.set(e.natural_key, { ...rowToFields('entitlements', e), id: e.id });
      }
    }

    w.append([...newPrincipals.values()]);

    // Services (from Backstage entities and from identities' spec.service) and vendors.
    const serviceEvents = await upsertNamed(
      w.tx,
      'service',
      mergeServices(parsed.services, serviceOwners, parsed.identities),
      effectiveAt,
    );
    result.services = serviceEvents.length;
    w.append(serviceEvents);
    const vendors = new Map<string, Fields>();
    parsed.identities.forEach((m, i) => {
      if (!m.vendor) return;
      vendors.set(m.vendor.name, {
        name: m.vendor.name,
        contractingOwner: resolved[i]!.r.get('spec.vendor.contractingOwner') ?? null,
        contractEnds: orNull(m.vendor.contractEnds),
      });
    });
    const vendorEvents = await upsertNamed(w.tx, 'vendor', vendors, effectiveAt);
    result.vendors = vendorEvents.length;
    w.append(vendorEvents);

    let done = 0;
    for (let i = 0; i < parsed.identities.length; i++) {
      const m = parsed.identities[i]!;
      const { r, shared } = resolved[i]!;
      const key = identityKey(m);
      const desired: Fields = {
        naturalKey: key,
        name: m.name,
        kind: orNull(m.type),
        source: m.source ?? 'manifest',
        externalId: orNull(m.externalId),
        environment: orNull(m.environment),
        sensitivity: orNull(m.sensitivity),
        service: orNull(m.service),
        purpose: orNull(m.purpose),
        labels: m.labels && Object.keys(m.labels).length ? m.labels : null,
        businessOwner: r.get('spec.owners.business') ?? null,
        technicalOwner: r.get('spec.owners.technical') ?? null,
        controlOwner: r.get('spec.owners.control') ?? null,
        primaryTeam: r.get('spec.primaryTeam') ?? null,
        sharedWith: nonEmpty(shared.filter((s): s is string => s !== null)),
        approver: r.get('spec.approval.approver') ?? null,
        approvedAt: orNull(m.approval?.approvedAt),
        approvalTicket: orNull(m.approval?.ticket),
        originKind: orNull(m.origin?.kind),
        originRef: orNull(m.origin?.ref),
        originMergedBy: r.get('spec.origin.mergedBy') ?? null,
        vendor: m.vendor ? m.vendor.name : null,
        rotationMaxAge: orNull(m.rotation?.maxAge),
        expiresAt: orNull(m.expires),
        revocationTriggers: nonEmpty(m.revocation?.triggers),
        revocationOwner: r.get('spec.revocation.owner') ?? null,
        revocationRunbook: orNull(m.revocation?.runbook),
        sponsor: r.get('spec.sponsor') ?? null,
        manifestFile: m.file,
      };
      const existing = byKey.get(key);
      if (existing?.sightings) {
        // Discovered too: what the manifest leaves out, the source's word stands for.
        if (m.source === undefined) delete desired.source;
        if (m.type === undefined) delete desired.kind;
        if (m.environment === undefined) delete desired.environment;
      }
      let id: string;
      if (!existing) {
        id = newId('nhi');
        w.append([
          {
            type: 'identity.created',
            subject: `identity:${id}`,
            identityId: id,
            payload: { source: 'manifest', set: withoutNulls({ ...desired, status: 'active' }) },
            effectiveAt,
          },
        ]);
        result.identities.new += 1;
      } else {
        id = existing.id;
        const current = rowToFields('identities', existing);
        // A discovered identity's status is its source's to say; the manifest only brings back
        // what it had itself marked vanished.
        const diff = changedFields(
          existing.status === 'vanished' && !existing.sightings ? { ...desired, status: 'active' } : desired,
          current,
        );
        if (diff) {
          const type = existing.status === 'vanished' ? 'identity.reappeared' : 'identity.changed';
          w.append([
            {
              type,
              subject: `identity:${id}`,
              identityId: id,
              payload: { source: 'manifest', set: diff },
              effectiveAt,
            },
          ]);
          result.identities.changed += 1;
        } else {
          result.identities.unchanged += 1;
        }
      }
      seenIds.add(id);
      const idKey = existing?.natural_key ?? key;

      // Credentials: metadata only; the manifest never carries a secret value.
      const curCreds = credsByIdentity.get(id) ?? new Map<string, Fields & { id: string }>();
      const seenCreds = new Set<string>();
      for (const c of m.credentials ?? []) {
        const ck = `${idKey}|${c.id}`;
        seenCreds.add(ck);
        const want: Fields = {
          identityId: id,
          naturalKey: ck,
          kind: orNull(c.kind),
          externalId: c.id,
          status: 'active',
          fingerprint: orNull(c.fingerprint),
          issuedAt: orNull(c.issuedAt),
          lastRotatedAt: orNull(c.lastRotatedAt),
          expiresAt: orNull(c.expiresAt),
          rotationMaxAge: orNull(c.rotationMaxAge),
          locations: nonEmpty(c.locations),
        };
        const known = curCreds.get(ck);
        if (known?.source) {
          // Also discovered: places a scan found it stay (secret sprawl is evidence), and the
          // source's observed facts stand where the manifest says nothing.
          want.locations = nonEmpty(
            [...new Set([...(c.locations ?? []), ...((known.locations as string[] | null) ?? [])])].sort(),
          );
          for (const k of ['kind', 'fingerprint', 'issuedAt', 'lastRotatedAt', 'expiresAt'] as const)
            if (want[k] === null) delete want[k];
        }
        w.append(
          diffChild('credential', 'cred', want, curCreds.get(ck), id, effectiveAt, result.credentials),
        );
      }
      for (const [ck, cur] of curCreds) {
        // only what the manifest itself declared; a discovery source speaks for its own
        if (seenCreds.has(ck) || cur.status === 'vanished' || cur.source) continue;
        w.append([
          {
            type: 'credential.vanished',
            subject: `credential:${cur.id}`,
            identityId: id,
            payload: { source: 'manifest', set: { status: 'vanished' } },
            effectiveAt,
          },
        ]);
        result.credentials.vanished += 1;
      }

      const curEnts = entsByIdentity.get(id) ?? new Map<string, Fields & { id: string }>();
      const seenEnts = new Set<string>();
      const scopes = new Map<string, Set<string>>();
      for (const s of m.scope ?? []) {
        let set = scopes.get(s.resource);
        if (!set) scopes.set(s.resource, (set = new Set()));
        for (const a of s.actions) set.add(a);
      }
      for (const [resource, actions] of scopes) {
        const ek = `${idKey}|${resource}`;
        seenEnts.add(ek);
        const want: Fields = {
          identityId: id,
          naturalKey: ek,
          resource,
          actions: [...actions].sort(),
          grantedVia: 'manifest',
          grantedAt: orNull(m.approval?.approvedAt),
          approvalRef: orNull(m.approval?.ticket),
          status: 'active',
        };
        w.append(
          diffChild('entitlement', 'ent', want, curEnts.get(ek), id, effectiveAt, result.entitlements),
        );
      }
      for (const [ek, cur] of curEnts) {
        if (seenEnts.has(ek) || cur.status === 'revoked' || cur.source) continue;
        w.append([
          {
            type: 'entitlement.revoked',
            subject: `entitlement:${cur.id}`,
            identityId: id,
            payload: { source: 'manifest', set: { status: 'revoked' } },
            effectiveAt,
          },
        ]);
        result.entitlements.vanished += 1;
      }

      done += 1;
      if (done % 2000 === 0) {
        await w.flush();
        opts.onProgress?.(done, parsed.identities.length);
      }
    }

    // Identities whose manifest file was read (or sat under a folder read) but that are no longer in it.
    const candidates = await w.tx
      .selectFrom('identities')
      .select(['id', 'manifest_file', 'status', 'sightings'])
      .where('manifest_file', 'is not', null)
      .where('status', '!=', 'vanished')
      .execute();
    for (const c of candidates) {
      if (seenIds.has(c.id)) continue;
      const file = c.manifest_file!;
      const covered =
        files.has(file) || roots.some((root) => file === root || file.startsWith(root + path.sep));
      if (!covered) continue;
      const discovered = (JSON.parse(c.sightings ?? '[]') as string[]).length > 0;
      // Still seen at its source: it is no longer declared, not gone.
      w.append([
        {
          type: discovered ? 'identity.changed' : 'identity.vanished',
          subject: `identity:${c.id}`,
          identityId: c.id,
          payload: { source: 'manifest', set: discovered ? { manifestFile: null } : { status: 'vanished' } },
          effectiveAt,
        },
      ]);
      if (discovered) result.identities.changed += 1;
      else result.identities.vanished += 1;
    }
    opts.onProgress?.(parsed.identities.length, parsed.identities.length);
    result.linked = (await linkFoundSecrets(w, 'manifest', effectiveAt, result)).linked;

    if (w.appended > 0) {
      result.events = w.appended + 1;
      w.append([
        {
          type: 'import.completed',
          subject: `import:${newId('run')}`,
          payload: {
            source: 'manifest',
            files: parsed.files.map((f) => ({ path: f.path, sha256: f.sha256, documents: f.documents })),
            identities: result.identities,
            credentials: result.credentials,
            entitlements: result.entitlements,
            linked: result.linked,
          },
          effectiveAt,
        },
      ]);
    }
    return result;
  });
}

function diffChild(
  kind: 'credential' | 'entitlement',
  prefix: string,
  want: Fields,
  current: (Fields & { id: string }) | undefined,
  identityId: string,
  effectiveAt: string,
  tally: ImportCounts,
): NewEvent[] {
  if (!current) {
    tally.new += 1;
    return [
      {
        type: `${kind}.created`,
        subject: `${kind}:${newId(prefix)}`,
        identityId,
        payload: { source: 'manifest', set: withoutNulls(want) },
        effectiveAt,
      },
    ];
  }
  const diff = changedFields(want, current);
  if (!diff) {
    tally.unchanged += 1;
    return [];
  }
  tally.changed += 1;
  return [
    {
      type: `${kind}.changed`,
      subject: `${kind}:${current.id}`,
      identityId,
      payload: { source: 'manifest', set: diff },
      effectiveAt,
    },
  ];
}

function mergeServices(
  services: BackstageService[],
  owners: (string | null)[],
  identities: ManifestIdentity[],
): Map<string, Fields> {
  const out = new Map<string, Fields>();
  for (const m of identities) {
    if (m.service && !out.has(m.service)) out.set(m.service, { name: m.service });
  }
  services.forEach((s, i) => {
    out.set(s.name, {
      name: s.name,
      owner: owners[i] ?? null,
      system: orNull(s.system),
      description: orNull(s.description),
    });
  });
  return out;
}

/** Creates or updates named records (services, vendors); only fields given are compared. */
async function upsertNamed(
  db: Tx,
  kind: 'service' | 'vendor',
  wanted: Map<string, Fields>,
  effectiveAt: string,
): Promise<NewEvent[]> {
  if (wanted.size === 0) return [];
  const table = kind === 'service' ? 'services' : 'vendors';
  const names = [...wanted.keys()];
  const existing = new Map<string, Fields>();
  for (let i = 0; i < names.length; i += 1000) {
    const rows = await db
      .selectFrom(table)
      .selectAll()
      .where('name', 'in', names.slice(i, i + 1000))
      .execute();
    for (const r of rows) existing.set(r.name, rowToFields(table, r));
  }
  const events: NewEvent[] = [];
  for (const [name, fields] of wanted) {
    const cur = existing.get(name);
    if (!cur) {
      events.push({
        type: `${kind}.created`,
        subject: `${kind}:${name}`,
        payload: { source: 'manifest', set: fields },
        effectiveAt,
      });
      continue;
    }
    const diff = changedFields(fields, cur);
    if (diff)
      events.push({
        type: `${kind}.changed`,
        subject: `${kind}:${name}`,
        payload: { source: 'manifest', set: diff },
        effectiveAt,
      });
  }
  return events;
}
