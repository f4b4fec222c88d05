import type {
  DiscoveredCredential,
  DiscoveredEntitlement,
  DiscoveredIdentity,
} from '../../inventory/import-discovery.js';
import type { Json } from '../common.js';
import type { RecordCheck } from './check.js';
import { deployKeyId, installationId, tokenId } from './audit.js';
import { sshKeyFacts, type SshKeyFacts } from './ssh.js';

/** The three REST listings this importer reads, by what their elements hold. */
export type ListingKind = 'deploy-keys' | 'installations' | 'tokens';

/** One element of `GET /repos/{owner}/{repo}/keys`. */
export interface DeployKey {
  id: string;
  ssh: SshKeyFacts;
  /** `owner/repo` from the key's `url` (`…/repos/{owner}/{repo}/keys/{id}`), when it has one. */
  urlRepository?: string;
  title?: string;
  verified?: boolean;
  createdAt?: string;
  readOnly: boolean;
  addedBy?: string;
  lastUsed?: string;
  enabled?: boolean;
}

/** One element of `GET /orgs/{org}/installations` (`installations[]`). */
export interface Installation {
  id: string;
  appId?: string;
  appSlug: string;
  account: string;
  targetType?: string;
  repositorySelection?: string;
  permissions: Record<string, string>;
  events: string[];
  createdAt?: string;
  updatedAt?: string;
  suspendedAt?: string;
  suspendedBy?: string;
}

/** One element of `GET /orgs/{org}/personal-access-tokens`: a fine-grained PAT granted to the org. */
export interface TokenGrant {
  id: string;
  owner: string;
  ownerId?: string;
  repositorySelection?: string;
  organizationPermissions: Record<string, string>;
  repositoryPermissions: Record<string, string>;
  otherPermissions: Record<string, string>;
  accessGrantedAt?: string;
  tokenId: string;
  tokenName?: string;
  tokenExpired?: boolean;
  tokenExpiresAt?: string;
  tokenLastUsedAt?: string;
}

const KEY_URL_RE = /\/repos\/([^/]+)\/([^/]+)\/keys(?:\/|$)/;

/** Reads a deploy key; problems go to `c`. */
export function readDeployKey(c: RecordCheck, o: Json): DeployKey | undefined {
  const id = c.requiredId(o, 'id');
  const keyText = c.required(o, 'key', 'the public key (a string such as "ssh-ed25519 AAAA…")');
  let ssh: SshKeyFacts | undefined;
  if (keyText !== undefined) {
    const facts = sshKeyFacts(keyText);
    // the key is public, but the message names only its shape
    if (typeof facts === 'string') c.fail('key', `${facts}, got a string of ${keyText.length} characters`);
    else ssh = facts;
  }
  const readOnly = c.bool(o, 'read_only');
  if (readOnly === undefined)
    c.fail('read_only', `expected true or false, got ${o.read_only === null ? 'null' : 'nothing'}`);
  const url = c.str(o, 'url');
  const m = url ? KEY_URL_RE.exec(url) : null;
  const k: DeployKey = { id: id ?? '', ssh: ssh!, readOnly: readOnly ?? true };
  if (m) k.urlRepository = `${decodeURIComponent(m[1]!)}/${decodeURIComponent(m[2]!)}`;
  const title = c.str(o, 'title');
  if (title) k.title = title;
  const verified = c.bool(o, 'verified');
  if (verified !== undefined) k.verified = verified;
  const createdAt = c.time(o, 'created_at');
  if (createdAt) k.createdAt = createdAt;
  const addedBy = c.str(o, 'added_by');
  if (addedBy) k.addedBy = addedBy;
  const lastUsed = c.time(o, 'last_used');
  if (lastUsed) k.lastUsed = lastUsed;
  const enabled = c.bool(o, 'enabled');
  if (enabled !== undefined) k.enabled = enabled;
  return c.ok ? k : undefined;
}

/** Reads an app installation; problems go to `c`. */
export function readInstallation(c: RecordCheck, o: Json): Installation | undefined {
  const id = c.requiredId(o, 'id');
  const appSlug = c.required(o, 'app_slug', 'the app slug (a string)');
  const account = c.obj(o, 'account');
  const login = account
    ? c.required(account, 'login', 'the account login (a string)', 'account.login')
    : undefined;
  if (!account)
    c.fail(
      'account',
      `expected the account the app is installed on (an object), got ${o.account === null ? 'null' : 'nothing'}`,
    );
  const i: Installation = {
    id: id ?? '',
    appSlug: appSlug ?? '',
    account: login ?? '',
    permissions: c.permissions(o, 'permissions') ?? {},
    events: c.strings(o, 'events') ?? [],
  };
  const appId = c.id(o, 'app_id');
  if (appId) i.appId = appId;
  const target = c.str(o, 'target_type');
  if (target) i.targetType = target;
  const selection = c.str(o, 'repository_selection');
  if (selection) i.repositorySelection = selection;
  const createdAt = c.time(o, 'created_at');
  if (createdAt) i.createdAt = createdAt;
  const updatedAt = c.time(o, 'updated_at');
  if (updatedAt) i.updatedAt = updatedAt;
  const suspendedAt = c.time(o, 'suspended_at');
  if (suspendedAt) i.suspendedAt = suspendedAt;
  const by = c.obj(o, 'suspended_by');
  const byLogin = by ? c.str(by, 'login', 'suspended_by.login') : undefined;
  if (byLogin) i.suspendedBy = byLogin;
  return c.ok ? i : undefined;
}

/** Reads a fine-grained PAT grant; problems go to `c`. */
export function readTokenGrant(c: RecordCheck, o: Json): TokenGrant | undefined {
  if (o.access_granted_at === undefined && o.reason !== undefined) {
    // GET /orgs/{org}/personal-access-token-requests lists requests not yet granted
    c.fail(
      '',
      'expected a fine-grained PAT grant (GET /orgs/{org}/personal-access-tokens), got a pending request (…/personal-access-token-requests has reason and no access_granted_at)',
    );
    return undefined;
  }
  const id = c.requiredId(o, 'id');
  const tokenIdValue = c.requiredId(o, 'token_id');
  const owner = c.obj(o, 'owner');
  if (!owner)
    c.fail(
      'owner',
      `expected the token's owner (an object with login), got ${o.owner === null ? 'null' : 'nothing'}`,
    );
  const login = owner ? c.required(owner, 'login', "the owner's login (a string)", 'owner.login') : undefined;
  const perms = c.obj(o, 'permissions');
  const t: TokenGrant = {
    id: id ?? '',
    tokenId: tokenIdValue ?? '',
    owner: login ?? '',
    organizationPermissions:
      (perms && c.permissions(perms, 'organization', 'permissions.organization')) ?? {},
    repositoryPermissions: (perms && c.permissions(perms, 'repository', 'permissions.repository')) ?? {},
    otherPermissions: (perms && c.permissions(perms, 'other', 'permissions.other')) ?? {},
  };
  const ownerId = owner ? c.id(owner, 'id', 'owner.id') : undefined;
  if (ownerId) t.ownerId = ownerId;
  const selection = c.str(o, 'repository_selection');
  if (selection) t.repositorySelection = selection;
  const granted = c.time(o, 'access_granted_at');
  if (granted) t.accessGrantedAt = granted;
  const name = c.str(o, 'token_name');
  if (name) t.tokenName = name;
  const expired = c.bool(o, 'token_expired');
  if (expired !== undefined) t.tokenExpired = expired;
  const expires = c.time(o, 'token_expires_at');
  if (expires) t.tokenExpiresAt = expires;
  const used = c.time(o, 'token_last_used_at');
  if (used) t.tokenLastUsedAt = used;
  return c.ok ? t : undefined;
}

// ---------------------------------------------------------------------------------------------
// Entitlements from permission maps

/** Organisation-level GitHub App and PAT permissions (the rest are repository or user permissions). */
const ORG_PERMISSION_RE = /^(organization_|members$|team_discussions$|custom_properties_for_organizations$)/;
/** Permissions on the users who authorise the app, not on the organisation or its repositories. */
const USER_PERMISSIONS = new Set([
  'blocking',
  'codespaces_user_secrets',
  'copilot_messages',
  'copilot_editor_context',
  'email_addresses',
  'followers',
  'gpg_keys',
  'git_ssh_keys',
  'interaction_limits',
  'knowledge_bases',
  'plan',
  'profile',
  'starring',
  'watching',
]);
/** Permissions whose write level is administration of the org or its repositories. */
const ADMIN_PERMISSIONS = new Set(['administration', 'organization_administration']);

/**
 * One entitlement per resource, its actions `<permission>:<level>` (`contents:write`), flagged
 * `write` (any level above read) and `admin` (an `admin` level, or write on administration).
 */
function entitlements(
  perms: Record<string, string>,
  resourceOf: (permission: string) => string,
  grantedVia: string,
  grantedAt: string | undefined,
): DiscoveredEntitlement[] {
  const byResource = new Map<string, DiscoveredEntitlement>();
  for (const [perm, level] of Object.entries(perms).sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    const resource = resourceOf(perm);
    let e = byResource.get(resource);
    if (!e) {
      e = { resource, actions: [], grantedVia, attributes: { write: false, admin: false } };
      if (grantedAt) e.grantedAt = grantedAt;
      byResource.set(resource, e);
    }
    e.actions.push(`${perm}:${level}`);
    const a = e.attributes!;
    if (level !== 'read' && level !== 'none') a.write = true;
    if (level === 'admin' || (ADMIN_PERMISSIONS.has(perm) && level === 'write')) a.admin = true;
  }
  return [...byResource.values()];
}

const orgResource = (org: string) => `github:org:${org.toLowerCase()}`;

/** A deploy key of `repo` as an identity: the key's fingerprint is its credential, never the key text. */
export function deployKeyIdentity(repo: string, k: DeployKey): DiscoveredIdentity {
  const attributes: Record<string, unknown> = {
    repository: repo,
    deployKeyId: k.id,
    fingerprint: k.ssh.sha256,
    readOnly: k.readOnly,
  };
  if (k.title !== undefined) attributes.title = k.title;
  if (k.verified !== undefined) attributes.verified = k.verified;
  if (k.enabled !== undefined) attributes.enabled = k.enabled;
  if (k.addedBy) {
    const stamp: Record<string, string> = { actor: k.addedBy, action: 'deploy_key.listed' };
    if (k.createdAt) stamp.at = k.createdAt;
    attributes.createdBy = stamp;
  }
  const cred: DiscoveredCredential = {
    externalId: k.ssh.sha256,
    kind: 'deploy-key',
    status: k.enabled === false ? 'inactive' : 'active',
    attributes: {
      deployKeyId: k.id,
      keyType: k.ssh.type,
      ...(k.ssh.bits !== undefined ? { bits: k.ssh.bits } : {}),
      md5: k.ssh.md5,
      readOnly: k.readOnly,
    },
  };
  if (k.createdAt) cred.issuedAt = k.createdAt;
  if (k.lastUsed) cred.lastUsedAt = k.lastUsed;
  const ent: DiscoveredEntitlement = {
    resource: `github:repo:${repo.toLowerCase()}`,
    actions: k.readOnly ? ['contents:read'] : ['contents:read', 'contents:write'],
    grantedVia: `deploy-key:${k.id}`,
    attributes: { write: !k.readOnly, admin: false },
  };
  if (k.createdAt) ent.grantedAt = k.createdAt;
  const d: DiscoveredIdentity = {
    externalId: deployKeyId(repo, k.ssh.sha256),
    name: `${k.title || `deploy key ${k.id}`} (${repo})`,
    kind: 'deploy-key',
    status: k.enabled === false ? 'disabled' : 'active',
    attributes,
    credentials: [cred],
    entitlements: [ent],
  };
  if (k.createdAt) d.createdAt = k.createdAt;
  if (k.lastUsed) d.lastUsedAt = k.lastUsed;
  return d;
}

/** A GitHub App installation on `org` as an identity; its permissions are its entitlements. */
export function installationIdentity(org: string, i: Installation): DiscoveredIdentity {
  const slug = i.appSlug.toLowerCase();
  const attributes: Record<string, unknown> = {
    org,
    appSlug: slug,
    installationId: i.id,
    permissions: i.permissions,
    events: [...i.events].sort(),
  };
  if (i.appId) attributes.appId = i.appId;
  if (i.targetType) attributes.targetType = i.targetType;
  if (i.repositorySelection) attributes.repositorySelection = i.repositorySelection;
  if (i.updatedAt) attributes.updatedAt = i.updatedAt;
  if (i.suspendedAt) attributes.suspendedAt = i.suspendedAt;
  if (i.suspendedBy) attributes.suspendedBy = i.suspendedBy;
  const repos = `${orgResource(org)}/repositories:${i.repositorySelection ?? 'all'}`;
  const d: DiscoveredIdentity = {
    externalId: installationId(org, slug),
    name: `${slug}@${org}`,
    kind: 'oauth-app',
    status: i.suspendedAt ? 'disabled' : 'active',
    attributes,
    entitlements: entitlements(
      i.permissions,
      (p) =>
        ORG_PERMISSION_RE.test(p)
          ? orgResource(org)
          : USER_PERMISSIONS.has(p)
            ? `${orgResource(org)}/users`
            : repos,
      `installation:${i.id}`,
      i.createdAt,
    ),
  };
  if (i.createdAt) d.createdAt = i.createdAt;
  return d;
}

/** A fine-grained PAT granted to `org` as an identity: it acts for its owner, a person. */
export function tokenIdentity(org: string, t: TokenGrant): DiscoveredIdentity {
  const attributes: Record<string, unknown> = {
    org,
    tokenId: t.tokenId,
    grantId: t.id,
    owner: t.owner,
    humanBound: true,
    tokenTypes: ['Fine-grained personal access token'],
  };
  if (t.ownerId) attributes.ownerId = t.ownerId;
  if (t.tokenName) attributes.tokenName = t.tokenName;
  if (t.repositorySelection) attributes.repositorySelection = t.repositorySelection;
  if (t.accessGrantedAt) attributes.accessGrantedAt = t.accessGrantedAt;
  if (t.tokenExpired !== undefined) attributes.tokenExpired = t.tokenExpired;
  if (Object.keys(t.otherPermissions).length) attributes.otherPermissions = t.otherPermissions;
  const cred: DiscoveredCredential = {
    externalId: t.tokenId,
    kind: 'github-token',
    status: t.tokenExpired ? 'expired' : 'active',
  };
  if (t.tokenExpiresAt) cred.expiresAt = t.tokenExpiresAt;
  if (t.tokenLastUsedAt) cred.lastUsedAt = t.tokenLastUsedAt;
  const via = `pat-grant:${t.id}`;
  const d: DiscoveredIdentity = {
    externalId: tokenId(t.tokenId),
    name: t.tokenName || `token ${t.tokenId}`,
    kind: 'token',
    status: t.tokenExpired ? 'disabled' : 'active',
    attributes,
    credentials: [cred],
    entitlements: [
      ...entitlements(t.organizationPermissions, () => orgResource(org), via, t.accessGrantedAt),
      ...entitlements(
        t.repositoryPermissions,
        () => `${orgResource(org)}/repositories:${t.repositorySelection ?? 'all'}`,
        via,
        t.accessGrantedAt,
      ),
    ],
  };
  if (t.tokenLastUsedAt) d.lastUsedAt = t.tokenLastUsedAt;
  return d;
}
