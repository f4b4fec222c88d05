import {
  changedFields,
  emptyCounts,
  orNull,
  withoutNulls,
  type Fields,
  type ImportCounts,
} from './fields.js';
import type { IdentitiesTable } from '../store/schema.js';
import type { Tx } from '../store/store.js';
import type { IdentityType } from '../importers/manifest/types.js';
import { effectiveTime, newId, type CommandOptions, type InventoryDeps } from './context.js';
import { rowToFields } from './subjects.js';
import { ValidationError } from '../domain/errors.js';
import { linkFoundSecrets } from './link-secrets.js';

/** A credential as a discovery source reports it: metadata and a keyed fingerprint, never a value. */
export interface DiscoveredCredential {
  /** The credential's own id at its source: AKIA…, a GCP key id, an Entra keyId, a deploy key id… */
  externalId: string;
  kind: string;
  status?: 'active' | 'inactive' | 'expired';
  fingerprint?: string;
  issuedAt?: string;
  lastRotatedAt?: string;
  expiresAt?: string;
  lastUsedAt?: string;
  locations?: string[];
  attributes?: Record<string, unknown>;
}

/** A grant as a discovery source reports it (a policy statement, a role binding, an OAuth scope …). */
export interface DiscoveredEntitlement {
  resource: string;
  actions: string[];
  /** What grants it: a policy ARN, a role binding, an app role … */
  grantedVia?: string;
  grantedAt?: string;
  lastUsedAt?: string;
  attributes?: Record<string, unknown>;
}

export interface DiscoveredIdentity {
  /** Globally meaningful id (an ARN, a service-account email, `system:serviceaccount:ns:name` …). */
  externalId: string;
  name: string;
  kind: IdentityType;
  environment?: string;
  status?: 'active' | 'disabled';
  /** When the source says it was created. */
  createdAt?: string;
  lastUsedAt?: string;
  attributes?: Record<string, unknown>;
  credentials?: DiscoveredCredential[];
  entitlements?: DiscoveredEntitlement[];
}

/** One import run of one source. */
export interface DiscoveryBatch {
  /** Importer name: aws-iam, aws-credential-report, kubernetes … */
  source: string;
  /**
   * What the export covers (an AWS account, a cluster, a GCP project). A snapshot import
   * marks identities this source saw in this scope before, but not now, as vanished.
   */
  scope: string;
  snapshot: boolean;
  /** When the export was taken: the effective time of what it says. */
  observedAt?: string;
  files: { path: string; sha256: string }[];
  identities: DiscoveredIdentity[];
  /**
   * The same identities handed over a few thousand at a time, for sources too large to hold as
   * objects all at once (a million IAM users and roles). When present, `importDiscovery` reads
   * this and never touches `identities`.
   */
  stream?: IdentityStream;
}

/** Identities in batch order, produced on demand, chunk by chunk; can be read more than once. */
export interface IdentityStream {
  count: number;
  chunks(): Iterable<DiscoveredIdentity[]>;
}

export interface DiscoveryImportResult {
  source: string;
  scope: string;
  identities: ImportCounts;
  credentials: ImportCounts;
  entitlements: ImportCounts;
  /** Found secrets linked to the known credentials they are, in this import. */
  linked: number;
  events: number;
}

type Current = Fields & { id: string };

/** Attributes of grants folded together: a flag set by any of them stays set. */
function mergeFlags(a: Fields | undefined, b: Fields | undefined): Fields | undefined {
  if (!a || !b) return a ?? b;
  const out: Fields = { ...a, ...b };
  for (const k in a) if (typeof a[k] === 'boolean' && typeof b[k] === 'boolean') out[k] = a[k] || b[k];
  return out;
}

/** Usage only moves forward: an older export does not erase a later use. */
const isLater = (t: string, current: unknown): boolean => typeof current !== 'string' || t > current;

/** Natural key of a discovered identity: the external id, shared with manifests (an ARN is an ARN). */
export const discoveredKey = (externalId: string): string => `ext:${externalId}`;

/** Identities per chunk: current state is loaded, and events are flushed, once per chunk. */
const CHUNK = 2000;

function* inChunks(identities: DiscoveredIdentity[]): Iterable<DiscoveredIdentity[]> {
  for (let i = 0; i < identities.length; i += CHUNK) yield identities.slice(i, i + CHUNK);
}

/**
 * Each identity of the stream with the current state of its chunk: identity rows by natural key,
 * and credentials and entitlements by identity id and natural key. Loaded chunk by chunk, so that
 * only the state of the identities at hand is in memory however large the batch (each identity's
 * state is its own: nothing carries over from one chunk to the next).
 */
async function* withCurrentState(
  tx: Tx,
  stream: IdentityStream,
  check: ((d: DiscoveredIdentity) => void) | undefined,
): AsyncGenerator<{
  d: DiscoveredIdentity;
  byKey: Map<string, IdentitiesTable>;
  creds: Map<string, Map<string, Current>>;
  ents: Map<string, Map<string, Current>>;
}> {
  for (const chunk of stream.chunks()) {
    if (check) for (const d of chunk) check(d);
    const keys = chunk.map((d) => discoveredKey(d.externalId));
    const byKey = new Map<string, IdentitiesTable>();
    for (let i = 0; i < keys.length; i += 1000) {
      for (const r of await tx
        .selectFrom('identities')
        .selectAll()
        .where('natural_key', 'in', keys.slice(i, i + 1000))
        .execute()) {
        byKey.set(r.natural_key, r);
      }
    }
    const ids = [...byKey.values()].map((r) => r.id);
    const creds = new Map<string, Map<string, Current>>();
    const ents = new Map<string, Map<string, Current>>();
    for (let i = 0; i < ids.length; i += 1000) {
      const part = ids.slice(i, i + 1000);
      for (const c of await tx
        .selectFrom('credentials')
        .selectAll()
        .where('identity_id', 'in', part)
        .execute()) {
        let m = creds.get(c.identity_id);
        if (!m) creds.set(c.identity_id, (m = new Map<string, Current>()));
        m.set(c.natural_key, { ...rowToFields('credentials', c), id: c.id });
      }
      for (const e of await tx
        .selectFrom('entitlements')
        .selectAll()
        .where('identity_id', 'in', part)
        .execute()) {
        let m = ents.get(e.identity_id);
        if (!m) ents.set(e.identity_id, (m = new Map<string, Current>()));
        m.set(e.natural_key, { ...rowToFields('entitlements', e), id: e.id });
      }
    }
    for (const d of chunk) yield { d, byKey, creds, ents };
  }
}

/**
 * The identities whose sightings match `pattern` and that have not vanished, in id order, a page
 * at a time (after a first import of a million identities, that is all of them).
 */
async function* sightedIdentities(
  tx: Tx,
  pattern: string,
): AsyncGenerator<{ id: string; natural_key: string; sightings: string | null }> {
  let after = '';
  for (;;) {
    const page = await tx
      .selectFrom('identities')
      .select(['id', 'natural_key', 'sightings'])
      .where('sightings', 'like', pattern)
      .where('status', '!=', 'vanished')
      .where('id', '>', after)
      .orderBy('id')
      .limit(CHUNK)
      .execute();
    yield* page;
    if (page.length < CHUNK) return;
    after = page[page.length - 1]!.id;
  }
}

/**
 * Imports what a discovery source reports, through the same write path as every other
 * command: identities merge on external id with manifests and other sources; discovery
 * sets only the facts it observes (kind, environment, status, usage, attributes) and never
 * an accountability field; each event names its source in the payload so every field
 * remembers who said it and when. A snapshot marks what disappeared as vanished.
 */
export async function importDiscovery(
  deps: InventoryDeps,
  batch: DiscoveryBatch,
  opts: CommandOptions & { onProgress?: (done: number, total: number) => void },
): Promise<DiscoveryImportResult> {
  const now = deps.now();
  const effectiveAt =
    opts.effectiveAt !== undefined
      ? effectiveTime(opts, now)
      : batch.observedAt && batch.observedAt < now.toISOString()
        ? batch.observedAt
        : now.toISOString();
  const sighting = `${batch.source}:${batch.scope}`;
  /** The external ids of the batch (all of them once the identities are written). */
  const dup = new Set<string>();
  const once = (d: DiscoveredIdentity) => {
    if (dup.has(d.externalId)) {
      // An importer must fold what it reads about one identity into one record.
      throw new ValidationError(
        `${batch.source}: the batch names ${d.externalId} twice; nothing was imported`,
        [
          {
            file: batch.files[0]?.path ?? batch.source,
            field: 'externalId',
            message: `expected each identity once, got ${d.externalId} again`,
          },
        ],
      );
    }
    dup.add(d.externalId);
  };
  // A list is checked before anything is written; a stream as it is read (inside the transaction,
  // which a duplicate rolls back: nothing is imported either way).
  if (!batch.stream) for (const d of batch.identities) once(d);
  const stream = batch.stream ?? {
    count: batch.identities.length,
    chunks: () => inChunks(batch.identities),
  };
  const result: DiscoveryImportResult = {
    source: batch.source,
    scope: batch.scope,
    identities: emptyCounts(),
    credentials: emptyCounts(),
    entitlements: emptyCounts(),
    linked: 0,
    events: 0,
  };
  const src = { source: batch.source };

  return deps.ledger.write(
    { actor: opts.actor, reason: opts.reason ?? `${batch.source} import` },
    async (w) => {
      let done = 0;
      for await (const { d, byKey, creds, ents } of withCurrentState(
        w.tx,
        stream,
        batch.stream ? once : undefined,
      )) {
        const key = discoveredKey(d.externalId);
        const existing = byKey.get(key);
        let id: string;
        if (!existing) {
          id = newId('nhi');
          const fields: Fields = {
            naturalKey: key,
            name: d.name,
            kind: d.kind,
            source: batch.source,
            externalId: d.externalId,
            environment: orNull(d.environment),
            status: d.status ?? 'active',
            lastUsedAt: orNull(d.lastUsedAt),
            sourceCreatedAt: orNull(d.createdAt),
            attributes:
              d.attributes && Object.keys(d.attributes).length ? { [sighting]: d.attributes } : null,
            sightings: [sighting],
          };
          w.append([
            {
              type: 'identity.created',
              subject: `identity:${id}`,
              identityId: id,
              payload: { ...src, set: withoutNulls(fields) },
              effectiveAt,
            },
          ]);
          result.identities.new += 1;
          byKey.set(key, { id } as IdentitiesTable);
        } else {
          id = existing.id;
          const cur = rowToFields('identities', existing);
          const sightings = new Set((cur.sightings as string[] | null) ?? []);
          sightings.add(sighting);
          // Only what this source observes; an accountability field is never touched here.
          const desired: Fields = {
            kind: cur.kind ?? d.kind,
            sightings: [...sightings].sort(),
          };
          // A listing says what exists; a usage log only that something was used once, so it
          // never brings back a vanished identity or re-enables a disabled one.
          // A found secret linked to the known credential it is stays linked while it is seen.
          const status = d.status ?? 'active';
          if ((batch.snapshot || d.status !== undefined) && !(cur.status === 'linked' && status === 'active'))
            desired.status = status;
          if (d.environment !== undefined) desired.environment = d.environment;
          if (d.createdAt !== undefined) desired.sourceCreatedAt = d.createdAt;
          // Usage only moves forward: an older export does not erase a later use.
          if (d.lastUsedAt !== undefined && isLater(d.lastUsedAt, cur.lastUsedAt))
            desired.lastUsedAt = d.lastUsedAt;
          if (d.attributes && Object.keys(d.attributes).length) {
            // Each source and scope speaks for its own facts: its attributes replace only its own.
            desired.attributes = { ...(cur.attributes ?? {}), [sighting]: d.attributes };
          }
          const diff = changedFields(desired, cur);
          if (diff) {
            const type =
              cur.status === 'vanished' && diff.status === 'active'
                ? 'identity.reappeared'
                : 'identity.changed';
            w.append([
              {
                type,
                subject: `identity:${id}`,
                identityId: id,
                payload: { ...src, set: diff },
                effectiveAt,
              },
            ]);
            result.identities.changed += 1;
          } else result.identities.unchanged += 1;
        }
        const idKey = existing?.natural_key ?? key;

        // Credentials reported by this source; those it reported before and no longer does are gone.
        const curCreds = creds.get(id) ?? new Map<string, Current>();
        const seenCreds = new Set<string>();
        for (const c of d.credentials ?? []) {
          const ck = `${idKey}|${c.externalId}`;
          if (seenCreds.has(ck)) continue;
          seenCreds.add(ck);
          const cur = curCreds.get(ck);
          const want: Fields = {
            kind: c.kind,
            status: c.status ?? 'active',
            fingerprint: orNull(c.fingerprint),
            issuedAt: orNull(c.issuedAt),
            lastRotatedAt: orNull(c.lastRotatedAt),
            expiresAt: orNull(c.expiresAt),
            attributes: c.attributes && Object.keys(c.attributes).length ? c.attributes : null,
          };
          if (!cur) {
            w.append([
              {
                type: 'credential.created',
                subject: `credential:${newId('cred')}`,
                identityId: id,
                payload: {
                  ...src,
                  set: withoutNulls({
                    ...want,
                    identityId: id,
                    naturalKey: ck,
                    externalId: c.externalId,
                    source: sighting,
                    lastUsedAt: orNull(c.lastUsedAt),
                    locations: c.locations?.length ? [...new Set(c.locations)].sort() : null,
                  }),
                },
                effectiveAt,
              },
            ]);
            result.credentials.new += 1;
            continue;
          }
          // Merge, never drop: a manifest's rotation policy or another scan's locations stay.
          for (const k of ['fingerprint', 'issuedAt', 'lastRotatedAt', 'expiresAt', 'attributes'] as const) {
            if (want[k] === null) delete want[k];
          }
          if (!batch.snapshot && c.status === undefined) delete want.status;
          if (c.lastUsedAt !== undefined && isLater(c.lastUsedAt, cur.lastUsedAt))
            want.lastUsedAt = c.lastUsedAt;
          if (cur.source == null) want.source = sighting; // declared elsewhere, now discovered too
          if (c.locations?.length) {
            want.locations = [
              ...new Set([...((cur.locations as string[] | null) ?? []), ...c.locations]),
            ].sort();
          }
          const diff = changedFields(want, cur);
          if (diff) {
            w.append([
              {
                type: 'credential.changed',
                subject: `credential:${cur.id}`,
                identityId: id,
                payload: { ...src, set: diff },
                effectiveAt,
              },
            ]);
            result.credentials.changed += 1;
          } else result.credentials.unchanged += 1;
        }
        for (const [ck, cur] of curCreds) {
          if (seenCreds.has(ck) || cur.source !== sighting || cur.status === 'vanished' || !batch.snapshot)
            continue;
          // Gone from its source: evidence that the credential was revoked.
          w.append([
            {
              type: 'credential.vanished',
              subject: `credential:${cur.id}`,
              identityId: id,
              payload: { ...src, set: { status: 'vanished' } },
              effectiveAt,
            },
          ]);
          result.credentials.vanished += 1;
        }

        const curEnts = ents.get(id) ?? new Map<string, Current>();
        const seenEnts = new Set<string>();
        const grants = new Map<string, DiscoveredEntitlement>();
        for (const e of d.entitlements ?? []) {
          const ek = `${idKey}|${sighting}|${e.grantedVia ?? ''}|${e.resource}`;
          const prior = grants.get(ek);
          const attributes = mergeFlags(prior?.attributes, e.attributes);
          grants.set(
            ek,
            prior
              ? { ...prior, actions: [...prior.actions, ...e.actions], ...(attributes ? { attributes } : {}) }
              : e,
          );
        }
        for (const [ek, e] of grants) {
          seenEnts.add(ek);
          const want: Fields = {
            resource: e.resource,
            actions: [...new Set(e.actions)].sort(),
            grantedVia: orNull(e.grantedVia),
            grantedAt: orNull(e.grantedAt),
            status: 'active',
            attributes: e.attributes && Object.keys(e.attributes).length ? e.attributes : null,
          };
          const cur = curEnts.get(ek);
          if (!cur) {
            w.append([
              {
                type: 'entitlement.created',
                subject: `entitlement:${newId('ent')}`,
                identityId: id,
                payload: {
                  ...src,
                  set: withoutNulls({
                    ...want,
                    identityId: id,
                    naturalKey: ek,
                    source: sighting,
                    lastUsedAt: orNull(e.lastUsedAt),
                  }),
                },
                effectiveAt,
              },
            ]);
            result.entitlements.new += 1;
            continue;
          }
          if (e.lastUsedAt !== undefined && isLater(e.lastUsedAt, cur.lastUsedAt))
            want.lastUsedAt = e.lastUsedAt;
          const diff = changedFields(want, cur);
          if (diff) {
            w.append([
              {
                type: 'entitlement.changed',
                subject: `entitlement:${cur.id}`,
                identityId: id,
                payload: { ...src, set: diff },
                effectiveAt,
              },
            ]);
            result.entitlements.changed += 1;
          } else result.entitlements.unchanged += 1;
        }
        for (const [ek, cur] of curEnts) {
          if (seenEnts.has(ek) || cur.source !== sighting || cur.status === 'revoked' || !batch.snapshot)
            continue;
          w.append([
            {
              type: 'entitlement.revoked',
              subject: `entitlement:${cur.id}`,
              identityId: id,
              payload: { ...src, set: { status: 'revoked' } },
              effectiveAt,
            },
          ]);
          result.entitlements.vanished += 1;
        }

        done += 1;
        if (done % CHUNK === 0) {
          await w.flush();
          opts.onProgress?.(done, stream.count);
        }
      }

      if (batch.snapshot) {
        // Everything this source saw in this scope before but not now is gone from its source.
        const pattern = `%${JSON.stringify(sighting).slice(0, -1)}"%`;
        for await (const r of sightedIdentities(w.tx, pattern)) {
          const sightings = JSON.parse(r.sightings ?? '[]') as string[];
          // Seen now: its natural key is the discovered key of one of the batch's external ids.
          const seenNow = r.natural_key.startsWith('ext:') && dup.has(r.natural_key.slice(4));
          if (seenNow || !sightings.includes(sighting)) continue;
          // Gone from this scope: it vanishes once no source sees it anywhere any more.
          const remaining = sightings.filter((x) => x !== sighting);
          w.append([
            {
              type: remaining.length ? 'identity.changed' : 'identity.vanished',
              subject: `identity:${r.id}`,
              identityId: r.id,
              payload: {
                ...src,
                set: remaining.length ? { sightings: remaining } : { sightings: [], status: 'vanished' },
              },
              effectiveAt,
            },
          ]);
          if (remaining.length) result.identities.changed += 1;
          else result.identities.vanished += 1;
          // What this scope granted it goes with it.
          for (const e of await w.tx
            .selectFrom('entitlements')
            .select(['id'])
            .where('identity_id', '=', r.id)
            .where('source', '=', sighting)
            .where('status', '!=', 'revoked')
            .execute()) {
            w.append([
              {
                type: 'entitlement.revoked',
                subject: `entitlement:${e.id}`,
                identityId: r.id,
                payload: { ...src, set: { status: 'revoked' } },
                effectiveAt,
              },
            ]);
            result.entitlements.vanished += 1;
          }
          for (const c of await w.tx
            .selectFrom('credentials')
            .select(['id'])
            .where('identity_id', '=', r.id)
            .where('source', '=', sighting)
            .where('status', '!=', 'vanished')
            .execute()) {
            w.append([
              {
                type: 'credential.vanished',
                subject: `credential:${c.id}`,
                identityId: r.id,
                payload: { ...src, set: { status: 'vanished' } },
                effectiveAt,
              },
            ]);
            result.credentials.vanished += 1;
          }
        }
      }
      opts.onProgress?.(stream.count, stream.count);
      result.linked = (await linkFoundSecrets(w, batch.source, effectiveAt, result)).linked;

      if (w.appended > 0) {
        w.append([
          {
            type: 'import.completed',
            subject: `import:${newId('run')}`,
            payload: {
              source: batch.source,
              scope: batch.scope,
              snapshot: batch.snapshot,
              files: batch.files,
              identities: result.identities,
              credentials: result.credentials,
              entitlements: result.entitlements,
              linked: result.linked,
            },
            effectiveAt,
          },
        ]);
      }
      await w.flush();
      result.events = w.appended;
      return result;
    },
  );
}
