/**
 * Microsoft Graph v1.0 listings of one tenant: `servicePrincipals`, `applications`,
 * `appRoleAssignments`, `oauth2PermissionGrants` and `organization`, folded into identities with
 * their credentials and granted permissions (see the module comment of `index.ts`).
 */
import { ValidationError } from '../../domain/errors.js';
import type { Problem } from '../../domain/problems.js';
import type {
  DiscoveredCredential,
  DiscoveredEntitlement,
  DiscoveredIdentity,
} from '../../inventory/import-discovery.js';
import type { Json } from '../common.js';
import type { ReadOptions } from '../source.js';
import { Check, join } from './check.js';

export type GraphKind =
  'servicePrincipal' | 'application' | 'appRoleAssignment' | 'oauth2PermissionGrant' | 'organization';

/** Tenants Microsoft's own (first-party) applications are registered in. */
export const MICROSOFT_TENANTS: ReadonlyMap<string, string> = new Map([
  ['f8cdef31-a31e-4b4a-93e4-5f571e91255a', 'Microsoft Services'],
  ['72f988bf-86f1-41af-91ab-2d7cd011db47', 'Microsoft'],
]);

/** The app role id Graph uses for an assignment that grants no specific role. */
const DEFAULT_ACCESS = '00000000-0000-0000-0000-000000000000';

const ODATA_TYPES: Record<string, GraphKind> = {
  '#microsoft.graph.serviceprincipal': 'servicePrincipal',
  '#microsoft.graph.application': 'application',
  '#microsoft.graph.approleassignment': 'appRoleAssignment',
  '#microsoft.graph.oauth2permissiongrant': 'oauth2PermissionGrant',
  '#microsoft.graph.organization': 'organization',
};

const CONTEXT_SEGMENTS: Record<string, GraphKind> = {
  serviceprincipals: 'servicePrincipal',
  applications: 'application',
  approleassignments: 'appRoleAssignment',
  approleassignedto: 'appRoleAssignment',
  oauth2permissiongrants: 'oauth2PermissionGrant',
  organization: 'organization',
};

/** The last entity-set segment of an `@odata.context` (`…$metadata#servicePrincipals('x')/appRoleAssignments`). */
export function contextSegment(context: unknown): string | undefined {
  if (typeof context !== 'string') return undefined;
  const i = context.indexOf('#');
  if (i < 0) return undefined;
  const parts = context
    .slice(i + 1)
    .replace(/\([^)]*\)/g, '')
    .split('/')
    .filter((p) => p !== '' && p !== '$entity' && p !== '$delta');
  return parts[parts.length - 1]?.toLowerCase();
}

/** The Graph object kind an `@odata.context` announces, if it is a listing this importer reads. */
export const contextKind = (context: unknown): GraphKind | undefined => {
  const seg = contextSegment(context);
  return seg === undefined ? undefined : CONTEXT_SEGMENTS[seg];
};

/**
 * What kind of Graph object a record is: its `@odata.type`, else the page's `@odata.context`, else
 * its shape. `undefined` when it is not recognisably one.
 */
export function graphKindOf(r: Json, context: unknown): GraphKind | undefined {
  const t = r['@odata.type'];
  if (typeof t === 'string') {
    const k = ODATA_TYPES[t.toLowerCase()];
    if (k) return k;
  }
  const byContext = contextKind(context);
  if (byContext) return byContext;
  if ('servicePrincipalType' in r || 'appOwnerOrganizationId' in r || 'servicePrincipalNames' in r)
    return 'servicePrincipal';
  if ('appRoleId' in r && 'principalId' in r && 'resourceId' in r) return 'appRoleAssignment';
  if ('clientId' in r && 'consentType' in r) return 'oauth2PermissionGrant';
  if (
    'appId' in r &&
    ('requiredResourceAccess' in r || 'identifierUris' in r || 'publisherDomain' in r || 'api' in r)
  )
    return 'application';
  if ('verifiedDomains' in r || 'tenantType' in r) return 'organization';
  return undefined;
}

interface Cred {
  keyId: string;
  kind: string;
  on: 'application' | 'servicePrincipal';
  displayName: string | undefined;
  start: string | undefined;
  end: string | undefined;
  keyType: string | undefined;
  usage: string | undefined;
  thumbprint: string | undefined;
  fingerprint: string | undefined;
  /** A federated identity credential: the external tokens it trusts. */
  federated?: { issuer: string | undefined; subject: string | undefined; audiences: string[] };
}

interface Sp {
  id: string;
  appId: string;
  displayName: string | undefined;
  type: string | undefined;
  owner: string | undefined;
  accountEnabled: boolean | undefined;
  signInAudience: string | undefined;
  tags: string[];
  alternativeNames: string[];
  createdAt: string | undefined;
  appRoleAssignmentRequired: boolean | undefined;
  verifiedPublisher: string | undefined;
  disabledByMicrosoft: string | undefined;
  creds: Cred[];
  appRoles: Map<string, string>;
  scopes: Map<string, string>;
  where: string;
}

interface App {
  id: string;
  appId: string;
  displayName: string | undefined;
  createdAt: string | undefined;
  signInAudience: string | undefined;
  publisherDomain: string | undefined;
  verifiedPublisher: string | undefined;
  disabledByMicrosoft: string | undefined;
  tags: string[];
  creds: Cred[];
  required: { resourceAppId: string; access: { id: string; type: string }[] }[];
  appRoles: number;
  scopes: number;
}

interface Assignment {
  id: string;
  appRoleId: string;
  principalId: string;
  principalType: string | undefined;
  resourceId: string;
  resourceDisplayName: string | undefined;
  createdAt: string | undefined;
}

interface Grant {
  id: string;
  clientId: string;
  consentType: string;
  principalId: string | undefined;
  resourceId: string;
  scopes: string[];
}

/** What a listing read held, for the run summary. */
export interface GraphStats {
  servicePrincipals: number;
  applications: number;
  appRoleAssignments: number;
  oauth2PermissionGrants: number;
  organizations: number;
  /** Grants whose client or principal is not in the listing (or is not a service principal). */
  unattributedGrants: number;
}

/**
 * Permissions that control the directory, other applications' credentials, role assignments or
 * all data of a kind: `*.ReadWrite.All`, `RoleManagement.*`, `Application.ReadWrite.*`,
 * `AppRoleAssignment.ReadWrite.*`, `Directory.ReadWrite.*`, `Directory.AccessAsUser.All`,
 * `Policy.ReadWrite.*`, `PrivilegedAccess.ReadWrite.*`, `*.FullControl.All`, Exchange's
 * `full_access_as_app`, and as application permissions `Mail.ReadWrite` and `Mail.Send` (any mailbox).
 */
export function isHighPrivilege(permission: string, type: 'application' | 'delegated'): boolean {
  if (
    /\.ReadWrite\.All$/i.test(permission) ||
    /\.FullControl\.All$/i.test(permission) ||
    /^RoleManagement\./i.test(permission) ||
    /^(Application|AppRoleAssignment|Directory|Policy|PrivilegedAccess)\.ReadWrite\./i.test(permission) ||
    /^Directory\.AccessAsUser\.All$/i.test(permission) ||
    /^full_access_as_app$/i.test(permission)
  )
    return true;
  return type === 'application' && /^Mail\.(ReadWrite|Send)$/i.test(permission);
}

/** A certificate thumbprint (hex) from Graph's base64 `customKeyIdentifier`; undefined when it is not one. */
export function thumbprintOf(customKeyIdentifier: string): string | undefined {
  const s = customKeyIdentifier.trim();
  if (/^[0-9a-f]{40}$|^[0-9a-f]{64}$/i.test(s)) return s.toUpperCase();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(s)) return undefined;
  const b = Buffer.from(s, 'base64');
  return b.length === 20 || b.length === 32 ? b.toString('hex').toUpperCase() : undefined;
}

const sortedUnique = (xs: Iterable<string>): string[] => [...new Set(xs)].sort();

/** Drops undefined values (attributes are stored as JSON; absent and undefined must look the same). */
function defined(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out;
}

/** Accumulates Graph objects of one tenant, record by record, and builds the snapshot. */
export class GraphListing {
  private readonly sps = new Map<string, Sp>();
  private readonly apps = new Map<string, App>();
  private readonly assignments = new Map<string, Assignment>();
  private readonly grants = new Map<string, Grant>();
  private readonly orgs = new Set<string>();
  /** Pages by `@odata.context`: how many, and how many say more pages follow. */
  private readonly pages = new Map<string, { pages: number; withNext: number; file: string; line: number }>();
  /** Delta rounds (items with `@removed`) are changes, not listings. */
  private readonly removed: Problem[] = [];
  readonly stats: GraphStats = {
    servicePrincipals: 0,
    applications: 0,
    appRoleAssignments: 0,
    oauth2PermissionGrants: 0,
    organizations: 0,
    unattributedGrants: 0,
  };

  constructor(private readonly keys: ReadOptions['keys']) {}

  /** Whether anything was listed. */
  get size(): number {
    return this.sps.size + this.apps.size + this.assignments.size + this.grants.size + this.orgs.size;
  }

  /** Reads one Graph object; returns its problems (none: it was kept). */
  add(kind: GraphKind, r: Json, file: string, line: number, path: string): Problem[] {
    const c = new Check(file, line);
    if ('@removed' in r) {
      this.removed.push({
        file,
        line,
        ...(path ? { field: path } : {}),
        message: 'expected a full listing, got a delta round (an item with @removed)',
      });
      return [];
    }
    switch (kind) {
      case 'servicePrincipal': {
        const sp = this.readSp(c, r, path, `${file}:${line}`);
        if (sp && !c.problems.length) {
          this.sps.set(sp.id, sp);
          this.stats.servicePrincipals += 1;
          // $expand=appRoleAssignments,oauth2PermissionGrants on the service principal itself
          for (const { o, path: p } of c.objects(
            r,
            'appRoleAssignments',
            path,
            'an appRoleAssignment object',
          ))
            this.addAssignment(c, o, p);
          for (const { o, path: p } of c.objects(
            r,
            'oauth2PermissionGrants',
            path,
            'an oauth2PermissionGrant object',
          ))
            this.addGrant(c, o, p);
        }
        break;
      }
      case 'application': {
        const app = this.readApp(c, r, path);
        if (app && !c.problems.length) {
          this.apps.set(app.id, app);
          this.stats.applications += 1;
        }
        break;
      }
      case 'appRoleAssignment':
        this.addAssignment(c, r, path);
        break;
      case 'oauth2PermissionGrant':
        this.addGrant(c, r, path);
        break;
      case 'organization': {
        const id = c.str(r, 'id', path, true);
        if (id && !c.problems.length) {
          this.orgs.add(id);
          this.stats.organizations += 1;
        }
        break;
      }
    }
    return c.problems;
  }

  /** A page wrapper ended: remember whether it said that more pages follow. */
  page(fields: Json, file: string, line: number): void {
    const ctx =
      typeof fields['@odata.context'] === 'string' ? fields['@odata.context'] : '(no @odata.context)';
    const p = this.pages.get(ctx) ?? { pages: 0, withNext: 0, file, line };
    p.pages += 1;
    if (typeof fields['@odata.nextLink'] === 'string') p.withNext += 1;
    this.pages.set(ctx, p);
  }

  private readCreds(c: Check, r: Json, path: string, on: Cred['on']): Cred[] {
    const out: Cred[] = [];
    for (const [key, password] of [
      ['passwordCredentials', true],
      ['keyCredentials', false],
    ] as const) {
      for (const { o, path: p } of c.objects(r, key, path, 'a credential object')) {
        const keyId = c.str(o, 'keyId', p, true);
        const displayName = c.str(o, 'displayName', p);
        const start = c.time(o, 'startDateTime', p);
        const end = c.time(o, 'endDateTime', p);
        let keyType: string | undefined;
        let usage: string | undefined;
        let thumbprint: string | undefined;
        let fingerprint: string | undefined;
        if (password) {
          // `hint` is the first characters of the secret and `secretText` the secret itself (in an
          // addPassword response): secret material. The hint is only type-checked, never kept; the
          // secret text is kept as a keyed fingerprint only.
          c.str(o, 'hint', p, false, true);
          const secret = c.str(o, 'secretText', p, false, true);
          if (secret) fingerprint = this.keys.fingerprint(secret);
          c.str(o, 'customKeyIdentifier', p, false, true);
        } else {
          keyType = c.str(o, 'type', p);
          usage = c.str(o, 'usage', p);
          const cki = c.str(o, 'customKeyIdentifier', p);
          if (cki) thumbprint = thumbprintOf(cki);
          // `key` (the public certificate) is not needed and never kept
        }
        if (!keyId) continue;
        const kind = password
          ? 'client-secret'
          : /x509|cert/i.test(keyType ?? '')
            ? 'certificate'
            : 'client-secret';
        out.push({ keyId, kind, on, displayName, start, end, keyType, usage, thumbprint, fingerprint });
      }
    }
    // workload identity federation ($expand=federatedIdentityCredentials): tokens of another issuer
    // (a GitHub Actions workflow, a Kubernetes service account …) that the application trusts
    for (const { o, path: p } of c.objects(
      r,
      'federatedIdentityCredentials',
      path,
      'a federatedIdentityCredential object',
    )) {
      const id = c.str(o, 'id', p, true);
      const displayName = c.str(o, 'name', p);
      const federated = {
        issuer: c.str(o, 'issuer', p),
        subject: c.str(o, 'subject', p),
        audiences: c.strings(o, 'audiences', p),
      };
      if (!id) continue;
      out.push({
        keyId: id,
        kind: 'federated-credential',
        on,
        displayName,
        start: undefined,
        end: undefined,
        keyType: undefined,
        usage: undefined,
        thumbprint: undefined,
        fingerprint: undefined,
        federated,
      });
    }
    return out;
  }

  private readRoles(c: Check, list: { o: Json; path: string }[]): Map<string, string> {
    const m = new Map<string, string>();
    for (const { o, path } of list) {
      const id = c.str(o, 'id', path, true);
      const value = c.str(o, 'value', path);
      if (id && value) m.set(id.toLowerCase(), value);
    }
    return m;
  }

  private readSp(c: Check, r: Json, path: string, where: string): Sp | undefined {
    const id = c.str(r, 'id', path, true);
    const appId = c.str(r, 'appId', path, true);
    const vp = c.obj(r, 'verifiedPublisher', path);
    const sp: Sp = {
      id: id ?? '',
      appId: appId?.toLowerCase() ?? '',
      displayName: c.str(r, 'displayName', path),
      type: c.str(r, 'servicePrincipalType', path),
      owner: c.str(r, 'appOwnerOrganizationId', path)?.toLowerCase(),
      accountEnabled: c.bool(r, 'accountEnabled', path),
      signInAudience: c.str(r, 'signInAudience', path),
      tags: c.strings(r, 'tags', path),
      alternativeNames: c.strings(r, 'alternativeNames', path),
      createdAt: c.time(r, 'createdDateTime', path),
      appRoleAssignmentRequired: c.bool(r, 'appRoleAssignmentRequired', path),
      verifiedPublisher: vp ? c.str(vp, 'displayName', join(path, 'verifiedPublisher')) : undefined,
      disabledByMicrosoft: c.str(r, 'disabledByMicrosoftStatus', path),
      creds: this.readCreds(c, r, path, 'servicePrincipal'),
      appRoles: this.readRoles(c, c.objects(r, 'appRoles', path, 'an appRole object')),
      scopes: this.readRoles(c, c.objects(r, 'oauth2PermissionScopes', path, 'a permissionScope object')),
      where,
    };
    return id && appId ? sp : undefined;
  }

  private readApp(c: Check, r: Json, path: string): App | undefined {
    const id = c.str(r, 'id', path, true);
    const appId = c.str(r, 'appId', path, true);
    const vp = c.obj(r, 'verifiedPublisher', path);
    const api = c.obj(r, 'api', path);
    const required: App['required'] = [];
    for (const { o, path: p } of c.objects(
      r,
      'requiredResourceAccess',
      path,
      'a requiredResourceAccess object',
    )) {
      const resourceAppId = c.str(o, 'resourceAppId', p, true);
      const access: { id: string; type: string }[] = [];
      for (const { o: a, path: ap } of c.objects(o, 'resourceAccess', p, 'a resourceAccess object')) {
        const aid = c.str(a, 'id', ap, true);
        const type = c.str(a, 'type', ap, true);
        if (aid && type) access.push({ id: aid.toLowerCase(), type });
      }
      if (resourceAppId) required.push({ resourceAppId: resourceAppId.toLowerCase(), access });
    }
    const app: App = {
      id: id ?? '',
      appId: appId?.toLowerCase() ?? '',
      displayName: c.str(r, 'displayName', path),
      createdAt: c.time(r, 'createdDateTime', path),
      signInAudience: c.str(r, 'signInAudience', path),
      publisherDomain: c.str(r, 'publisherDomain', path),
      verifiedPublisher: vp ? c.str(vp, 'displayName', join(path, 'verifiedPublisher')) : undefined,
      tags: c.strings(r, 'tags', path),
      disabledByMicrosoft: c.str(r, 'disabledByMicrosoftStatus', path),
      creds: this.readCreds(c, r, path, 'application'),
      required,
      appRoles: c.objects(r, 'appRoles', path, 'an appRole object').length,
      scopes: api
        ? c.objects(api, 'oauth2PermissionScopes', join(path, 'api'), 'a permissionScope object').length
        : 0,
    };
    return id && appId ? app : undefined;
  }

  private addAssignment(c: Check, r: Json, path: string): void {
    const before = c.problems.length;
    const a: Assignment = {
      id: c.str(r, 'id', path, true) ?? '',
      appRoleId: (c.str(r, 'appRoleId', path, true) ?? '').toLowerCase(),
      principalId: c.str(r, 'principalId', path, true) ?? '',
      principalType: c.str(r, 'principalType', path),
      resourceId: c.str(r, 'resourceId', path, true) ?? '',
      resourceDisplayName: c.str(r, 'resourceDisplayName', path),
      createdAt: c.time(r, 'createdDateTime', path),
    };
    if (c.problems.length > before) return;
    this.assignments.set(a.id, a);
    this.stats.appRoleAssignments += 1;
  }

  private addGrant(c: Check, r: Json, path: string): void {
    const before = c.problems.length;
    const scope = c.str(r, 'scope', path);
    const g: Grant = {
      id: c.str(r, 'id', path, true) ?? '',
      clientId: c.str(r, 'clientId', path, true) ?? '',
      consentType: c.str(r, 'consentType', path, true) ?? '',
      principalId: c.str(r, 'principalId', path),
      resourceId: c.str(r, 'resourceId', path, true) ?? '',
      scopes: (scope ?? '').split(/\s+/).filter((s) => s !== ''),
    };
    if (c.problems.length > before) return;
    this.grants.set(g.id, g);
    this.stats.oauth2PermissionGrants += 1;
  }

  /**
   * The tenant the listing is of: the one `organization` listed, else the owner tenant of the
   * service principals of the applications registered in it (an application object exists only in
   * its home tenant). Refuses a listing of several tenants, or one that does not say.
   */
  tenant(file: string): string {
    const home = new Set<string>();
    const appIds = new Set([...this.apps.values()].map((a) => a.appId));
    for (const sp of this.sps.values()) if (sp.owner && appIds.has(sp.appId)) home.add(sp.owner);
    const orgs = [...this.orgs].map((o) => o.toLowerCase());
    const refuse = (message: string) =>
      new ValidationError(`${file}: ${message}; nothing was imported`, [{ file, message }]);
    if (orgs.length > 1)
      throw refuse(
        `expected the listing of one tenant, got ${orgs.length} organizations (${orgs.join(', ')})`,
      );
    const tenant = orgs[0];
    if (tenant) {
      const other = [...home].filter((h) => h !== tenant);
      if (other.length)
        throw refuse(
          `expected the listing of tenant ${tenant} (its organization), got applications registered in ${other.join(', ')}`,
        );
      return tenant;
    }
    if (home.size > 1)
      throw refuse(
        `expected the listing of one tenant, got applications registered in ${[...home].sort().join(', ')}`,
      );
    const only = [...home][0];
    if (only) return only;
    throw refuse(
      'cannot tell which tenant this listing is of: expected the applications listing (GET /v1.0/applications) with the service principals, or the organization (GET /v1.0/organization)',
    );
  }

  /** Refusals that hold whatever `skipInvalid` says: a partial listing must not vanish the rest. */
  completeness(): Problem[] {
    const out = [...this.removed];
    for (const [ctx, p] of this.pages) {
      if (p.withNext === p.pages)
        out.push({
          file: p.file,
          line: p.line,
          message: `expected every page of the listing ${ctx}, got ${p.pages} page(s) that each announce another (@odata.nextLink): the last page is missing`,
        });
    }
    const byApp = new Map<string, Sp>();
    for (const sp of this.sps.values()) {
      const prior = byApp.get(sp.appId);
      if (prior && prior.id !== sp.id)
        out.push({
          file: sp.where,
          field: 'appId',
          message: `expected one service principal per appId in one tenant, got ${prior.id} and ${sp.id} for ${sp.appId} (listings of several tenants?)`,
        });
      byApp.set(sp.appId, sp);
    }
    return out;
  }

  /** The identities of the tenant: one per appId (its service principal and its app registration). */
  identities(tenant: string, now: string): DiscoveredIdentity[] {
    const spByApp = new Map<string, Sp>();
    for (const sp of this.sps.values()) spByApp.set(sp.appId, sp);
    const appByApp = new Map<string, App>();
    for (const app of this.apps.values()) appByApp.set(app.appId, app);
    const spById = new Map<string, Sp>();
    for (const sp of this.sps.values()) spById.set(sp.id.toLowerCase(), sp);

    const resource = (objectId: string, name: string | undefined) => {
      const sp = spById.get(objectId.toLowerCase());
      return sp
        ? { ref: `entra:app:${sp.appId}`, name: sp.displayName ?? name, sp }
        : { ref: `entra:object:${objectId.toLowerCase()}`, name, sp: undefined };
    };

    // granted permissions, by the client's appId
    const granted = new Map<string, DiscoveredEntitlement[]>();
    const grant = (appId: string, e: DiscoveredEntitlement) => {
      let l = granted.get(appId);
      if (!l) granted.set(appId, (l = []));
      l.push(e);
    };
    const roleGroups = new Map<
      string,
      {
        appId: string;
        res: ReturnType<typeof resource>;
        roles: Set<string>;
        unresolved: Set<string>;
        at: string | undefined;
      }
    >();
    for (const a of [...this.assignments.values()].sort((x, y) => (x.id < y.id ? -1 : 1))) {
      const principal = spById.get(a.principalId.toLowerCase());
      if (!principal || (a.principalType !== undefined && a.principalType !== 'ServicePrincipal')) {
        this.stats.unattributedGrants += 1;
        continue;
      }
      const res = resource(a.resourceId, a.resourceDisplayName);
      const key = `${principal.appId}|${res.ref}`;
      let g = roleGroups.get(key);
      if (!g)
        roleGroups.set(
          key,
          (g = { appId: principal.appId, res, roles: new Set(), unresolved: new Set(), at: undefined }),
        );
      if (a.appRoleId === DEFAULT_ACCESS) g.roles.add('default-access');
      else {
        const value = res.sp?.appRoles.get(a.appRoleId);
        if (value) g.roles.add(value);
        else {
          g.roles.add(`appRole:${a.appRoleId}`);
          g.unresolved.add(a.appRoleId);
        }
      }
      if (a.createdAt && (g.at === undefined || a.createdAt < g.at)) g.at = a.createdAt;
    }
    for (const g of roleGroups.values()) {
      const actions = sortedUnique(g.roles);
      const high = actions.filter((p) => isHighPrivilege(p, 'application'));
      grant(g.appId, {
        resource: g.res.ref,
        actions,
        grantedVia: 'appRoleAssignment',
        ...(g.at ? { grantedAt: g.at } : {}),
        attributes: defined({
          permissionType: 'application',
          resourceName: g.res.name,
          highPrivilege: high.length > 0,
          highPrivilegeActions: high.length ? high : undefined,
          unresolvedAppRoleIds: g.unresolved.size ? sortedUnique(g.unresolved) : undefined,
        }),
      });
    }
    const scopeGroups = new Map<
      string,
      {
        appId: string;
        res: ReturnType<typeof resource>;
        consentType: string;
        scopes: Set<string>;
        users: Set<string>;
      }
    >();
    for (const g of [...this.grants.values()].sort((x, y) => (x.id < y.id ? -1 : 1))) {
      const client = spById.get(g.clientId.toLowerCase());
      if (!client) {
        this.stats.unattributedGrants += 1;
        continue;
      }
      const res = resource(g.resourceId, undefined);
      const key = `${client.appId}|${res.ref}|${g.consentType}`;
      let s = scopeGroups.get(key);
      if (!s)
        scopeGroups.set(
          key,
          (s = { appId: client.appId, res, consentType: g.consentType, scopes: new Set(), users: new Set() }),
        );
      for (const x of g.scopes) s.scopes.add(x);
      if (g.principalId) s.users.add(g.principalId.toLowerCase());
    }
    for (const s of scopeGroups.values()) {
      const actions = sortedUnique(s.scopes);
      const high = actions.filter((p) => isHighPrivilege(p, 'delegated'));
      grant(s.appId, {
        resource: s.res.ref,
        actions,
        grantedVia: `oauth2PermissionGrant:${s.consentType}`,
        attributes: defined({
          permissionType: 'delegated',
          consentType: s.consentType,
          resourceName: s.res.name,
          highPrivilege: high.length > 0,
          highPrivilegeActions: high.length ? high : undefined,
          users: s.consentType === 'AllPrincipals' ? undefined : s.users.size,
        }),
      });
    }

    const out: DiscoveredIdentity[] = [];
    for (const appId of sortedUnique([...spByApp.keys(), ...appByApp.keys()])) {
      const sp = spByApp.get(appId);
      const app = appByApp.get(appId);
      const owner = sp?.owner ?? (app ? tenant : undefined);
      const requested = app?.required.map((r) => {
        const res = spByApp.get(r.resourceAppId);
        const pick = (type: string) =>
          sortedUnique(
            r.access
              .filter((a) => a.type.toLowerCase() === type)
              .map((a) => (type === 'role' ? res?.appRoles : res?.scopes)?.get(a.id) ?? a.id),
          );
        return defined({
          resource: `entra:app:${r.resourceAppId}`,
          resourceName: res?.displayName,
          application: pick('role'),
          delegated: pick('scope'),
        });
      });
      const mi = sp?.alternativeNames.find((n) => n.startsWith('/subscriptions/'));
      const creds = [...(app?.creds ?? []), ...(sp?.creds ?? [])];
      const seen = new Set<string>();
      const credentials: DiscoveredCredential[] = [];
      for (const cr of creds) {
        const keyId = cr.keyId.toLowerCase();
        if (seen.has(keyId)) continue;
        seen.add(keyId);
        const status: DiscoveredCredential['status'] =
          cr.end !== undefined && cr.end <= now
            ? 'expired'
            : cr.start !== undefined && cr.start > now
              ? 'inactive'
              : 'active';
        const c: DiscoveredCredential = {
          externalId: keyId,
          kind: cr.kind,
          status,
          attributes: defined({
            on: cr.on,
            displayName: cr.displayName,
            keyType: cr.keyType,
            usage: cr.usage,
            thumbprint: cr.thumbprint,
            issuer: cr.federated?.issuer,
            subject: cr.federated?.subject,
            audiences: cr.federated?.audiences.length ? cr.federated.audiences : undefined,
          }),
        };
        if (cr.start) c.issuedAt = cr.start;
        if (cr.end) c.expiresAt = cr.end;
        if (cr.fingerprint) c.fingerprint = cr.fingerprint;
        credentials.push(c);
      }
      credentials.sort((a, b) => (a.externalId < b.externalId ? -1 : 1));
      const entitlements = (granted.get(appId) ?? []).sort((a, b) =>
        `${a.resource}|${a.grantedVia}` < `${b.resource}|${b.grantedVia}` ? -1 : 1,
      );
      const tags = sortedUnique([...(sp?.tags ?? []), ...(app?.tags ?? [])]);
      const d: DiscoveredIdentity = {
        externalId: `entra:app:${appId}`,
        name: sp?.displayName ?? app?.displayName ?? appId,
        kind: sp?.type === 'ManagedIdentity' ? 'workload' : 'service-account',
        status: sp?.accountEnabled === false ? 'disabled' : 'active',
        attributes: defined({
          tenantId: tenant,
          appId,
          servicePrincipalId: sp?.id,
          applicationObjectId: app?.id,
          servicePrincipalType: sp?.type,
          appOwnerOrganizationId: owner,
          thirdParty: owner !== undefined && owner !== tenant,
          publisher: owner ? MICROSOFT_TENANTS.get(owner) : undefined,
          registeredInTenant: app !== undefined,
          signInAudience: sp?.signInAudience ?? app?.signInAudience,
          accountEnabled: sp?.accountEnabled,
          appRoleAssignmentRequired: sp?.appRoleAssignmentRequired,
          verifiedPublisher: sp?.verifiedPublisher ?? app?.verifiedPublisher,
          publisherDomain: app?.publisherDomain,
          managedIdentityResourceId: mi,
          disabledByMicrosoftStatus: sp?.disabledByMicrosoft ?? app?.disabledByMicrosoft,
          tags: tags.length ? tags : undefined,
          requestedPermissions: requested?.length ? requested : undefined,
          exposes:
            app && (app.appRoles || app.scopes) ? { appRoles: app.appRoles, scopes: app.scopes } : undefined,
        }),
        credentials,
        entitlements,
      };
      const created = app?.createdAt ?? sp?.createdAt;
      if (created) d.createdAt = created;
      out.push(d);
    }
    return out;
  }
}
