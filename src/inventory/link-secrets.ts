import type { LedgerWriter } from '../ledger/ledger.js';
import type { ImportCounts } from './fields.js';

/** What linking did in one import: found secrets linked, and known credentials given new locations. */
export interface LinkCounts {
  linked: number;
  credentials: number;
}

interface Found {
  identityId: string;
  status: string;
  linkedTo: string | null;
  fingerprint: string | null;
  keyId: string | null;
  locations: string[];
  /** The scan that found it (`source:scope`). */
  source: string | null;
}

interface Known {
  id: string;
  identityId: string;
  fingerprint: string | null;
  externalId: string | null;
  locations: string[];
  source: string | null;
}

const CHUNK = 500;

const parseList = (s: string | null): string[] => (s ? (JSON.parse(s) as string[]) : []);

/** Whether an identity's attributes (per sighting) say a scanner found it with no owner. */
function isUnmanaged(attributes: string | null): boolean {
  if (!attributes) return false;
  const bySighting = JSON.parse(attributes) as Record<string, unknown>;
  return Object.values(bySighting).some(
    (a) => typeof a === 'object' && a !== null && (a as Record<string, unknown>).unmanaged === true,
  );
}

/** The AWS access key id a finding carries (an identifier, not a secret), if any. */
function keyIdOf(attributes: string | null): string | null {
  if (!attributes) return null;
  const id = (JSON.parse(attributes) as Record<string, unknown>).awsAccessKeyId;
  return typeof id === 'string' ? id : null;
}

/**
 * Secret sprawl: links secrets found in code (identities of kind `secret` that a scanner marked
 * `unmanaged`) to the known credentials they are — same keyed fingerprint (a manifest's declared
 * fingerprint, a Kubernetes token secret, another scan), or the same AWS access key id (a key
 * seen by CloudTrail or declared in a manifest). The known credential's locations then include
 * every place the secret was found, and the found identity is marked `linked` with `linkedTo`
 * naming the credential, so it is no longer an unmanaged credential. Runs at the end of every
 * import, in its transaction, so that the order in which sources arrive does not matter;
 * writes nothing when nothing changed. Cost is proportional to the number of found secrets.
 */
export async function linkFoundSecrets(
  w: LedgerWriter,
  source: string,
  effectiveAt: string,
  counts?: { identities: ImportCounts; credentials: ImportCounts },
): Promise<LinkCounts> {
  const out: LinkCounts = { linked: 0, credentials: 0 };
  await w.flush();
  const rows = await w.tx
    .selectFrom('identities as i')
    .innerJoin('credentials as c', 'c.identity_id', 'i.id')
    .select([
      'i.id as identityId',
      'i.status as status',
      'i.linked_to as linkedTo',
      'i.attributes as identityAttributes',
      'c.fingerprint as fingerprint',
      'c.attributes as attributes',
      'c.locations as locations',
      'c.source as source',
    ])
    .where('i.kind', '=', 'secret')
    .where('i.status', 'in', ['active', 'linked'])
    .orderBy('i.id')
    .execute();
  const found: Found[] = [];
  const foundIds = new Set<string>();
  for (const r of rows) {
    if (!isUnmanaged(r.identityAttributes)) continue;
    foundIds.add(r.identityId);
    const keyId = keyIdOf(r.attributes);
    if (!r.fingerprint && !keyId) continue;
    found.push({
      identityId: r.identityId,
      status: r.status,
      linkedTo: r.linkedTo,
      fingerprint: r.fingerprint,
      keyId,
      locations: parseList(r.locations),
      source: r.source,
    });
  }
  if (!found.length) return out;

  const fingerprints = [...new Set(found.flatMap((f) => (f.fingerprint ? [f.fingerprint] : [])))];
  const keyIds = [...new Set(found.flatMap((f) => (f.keyId ? [f.keyId] : [])))];
  const known: Known[] = [];
  const select = () =>
    w.tx
      .selectFrom('credentials')
      .select(['id', 'identity_id', 'fingerprint', 'external_id', 'locations', 'source'])
      .orderBy('id');
  type Row = Awaited<ReturnType<ReturnType<typeof select>['execute']>>;
  const add = (rs: Row) => {
    for (const r of rs) {
      if (foundIds.has(r.identity_id)) continue;
      known.push({
        id: r.id,
        identityId: r.identity_id,
        fingerprint: r.fingerprint,
        externalId: r.external_id,
        locations: parseList(r.locations),
        source: r.source,
      });
    }
  };
  for (let i = 0; i < fingerprints.length; i += CHUNK)
    add(
      await select()
        .where('fingerprint', 'in', fingerprints.slice(i, i + CHUNK))
        .execute(),
    );
  for (let i = 0; i < keyIds.length; i += CHUNK)
    add(
      await select()
        .where('external_id', 'in', keyIds.slice(i, i + CHUNK))
        .execute(),
    );
  if (!known.length) return out;

  const byFingerprint = new Map<string, Known[]>();
  const byKeyId = new Map<string, Known[]>();
  const seenKnown = new Set<string>();
  for (const k of known) {
    if (seenKnown.has(k.id)) continue; // matched both ways
    seenKnown.add(k.id);
    if (k.fingerprint) byFingerprint.set(k.fingerprint, [...(byFingerprint.get(k.fingerprint) ?? []), k]);
    if (k.externalId) byKeyId.set(k.externalId, [...(byKeyId.get(k.externalId) ?? []), k]);
  }

  // Locations each known credential gains, from every found secret that is it.
  const gained = new Map<
    string,
    { k: Known; from: Set<string>; locations: Set<string>; source: string | null }
  >();
  for (const f of found) {
    const matches = [
      ...(f.fingerprint ? (byFingerprint.get(f.fingerprint) ?? []) : []),
      ...(f.keyId ? (byKeyId.get(f.keyId) ?? []) : []),
    ].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const first = matches[0];
    if (!first) continue;
    for (const k of matches) {
      let g = gained.get(k.id);
      if (!g) gained.set(k.id, (g = { k, from: new Set(), locations: new Set(k.locations), source: null }));
      g.source ??= f.source;
      g.from.add(`identity:${f.identityId}`);
      for (const l of f.locations) g.locations.add(l);
    }
    if (f.status === 'linked' && f.linkedTo === first.id) continue;
    w.append([
      {
        type: 'identity.linked',
        subject: `identity:${f.identityId}`,
        identityId: f.identityId,
        payload: {
          source,
          credential: `credential:${first.id}`,
          set: { status: 'linked', linkedTo: first.id },
        },
        effectiveAt,
      },
    ]);
    out.linked += 1;
    if (counts) counts.identities.changed += 1;
  }
  for (const { k, from, locations, source: scan } of gained.values()) {
    const set: Record<string, unknown> = {};
    if (locations.size !== k.locations.length) set.locations = [...locations].sort();
    // Declared elsewhere, now found too: like any discovered credential, it keeps what scans saw.
    if (k.source == null && scan) set.source = scan;
    if (!Object.keys(set).length) continue;
    w.append([
      {
        type: 'credential.changed',
        subject: `credential:${k.id}`,
        identityId: k.identityId,
        payload: { source, linkedFrom: [...from].sort(), set },
        effectiveAt,
      },
    ]);
    out.credentials += 1;
    if (counts) counts.credentials.changed += 1;
  }
  await w.flush();
  return out;
}
