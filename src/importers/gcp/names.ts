/**
 * GCP names and classifications: key and service-account resource names, the container
 * (project, folder, organisation) an asset lives in, what kind of service account an email
 * is, and what a role grants at a glance.
 */
import { describeJson, isObject, type Json } from '../common.js';

/** `…/serviceAccounts/<account>/keys/<key id>` with or without `//iam.googleapis.com/`. */
const KEY_NAME_RE =
  /^(?:\/\/iam\.googleapis\.com\/)?projects\/([^/]+)\/serviceAccounts\/([^/]+)\/keys\/([^/]+)$/;
/** `…/serviceAccounts/<account>` with or without `//iam.googleapis.com/`. */
const ACCOUNT_NAME_RE = /^(?:\/\/iam\.googleapis\.com\/)?projects\/([^/]+)\/serviceAccounts\/([^/]+)$/;
const CONTAINER_RE = /(?:^|\/)((?:projects|folders|organizations)\/[^/]+)/;
const CRM_CONTAINER_RE =
  /^\/\/cloudresourcemanager\.googleapis\.com\/((?:projects|folders|organizations)\/[^/]+)$/;
const UNIQUE_ID_RE = /^\d{6,}$/;
const EMAIL_RE = /^[^@\s/]+@[^@\s/]+$/;
const SA_EMAIL_RE = /^[^@\s/]+@(?:[a-z0-9-]+\.)*gserviceaccount\.com$/i;

/** A service-account key named by its resource name. */
export interface KeyName {
  /** The project segment as written (`-` is the wildcard). */
  project: string;
  /** The account segment: an email, or the account's numeric unique id. */
  account: string;
  keyId: string;
}

/** Splits a key resource name; undefined when it is not one. */
export function parseKeyName(name: string): KeyName | undefined {
  const m = KEY_NAME_RE.exec(name);
  if (!m) return undefined;
  const account = decodeURIComponent(m[2]!);
  if (!EMAIL_RE.test(account) && !UNIQUE_ID_RE.test(account)) return undefined;
  return { project: m[1]!, account, keyId: m[3]! };
}

/** `projects/p/serviceAccounts/<account>` → its project and account segments; undefined otherwise. */
export function parseAccountName(name: string): { project: string; account: string } | undefined {
  const m = ACCOUNT_NAME_RE.exec(name);
  return m ? { project: m[1]!, account: decodeURIComponent(m[2]!) } : undefined;
}

export const KEY_NAME_EXPECTED =
  'a service account key name (projects/<project>/serviceAccounts/<email or unique id>/keys/<key id>)';

/** An email address (as IAM members and service-account data carry them). */
export const isEmail = (s: string): boolean => EMAIL_RE.test(s);

/** An email that is a Google service account's (`…gserviceaccount.com`). */
export const isServiceAccountEmail = (s: string): boolean => SA_EMAIL_RE.test(s);

/** A service account's numeric unique id (what CAI names accounts and their keys by). */
export const isUniqueId = (s: string): boolean => UNIQUE_ID_RE.test(s);

/** Service-account emails are case-insensitive; IAM writes them lower-case. */
export const normaliseEmail = (s: string): string => s.trim().toLowerCase();

/** The container named by a resource name (`//iam.googleapis.com/projects/p/…` → `projects/p`). */
export function containerOfName(name: string): string | undefined {
  const m = CONTAINER_RE.exec(name.replace(/^\/\/[^/]+\//, ''));
  return m?.[1];
}

/** A CAI `resource.parent` that is a project, folder or organisation (`//cloudresourcemanager…/projects/1`). */
export function containerOfParent(parent: string): string | undefined {
  return CRM_CONTAINER_RE.exec(parent)?.[1];
}

/** The project a service-account email names, when its domain says (`x@p.iam.gserviceaccount.com`). */
export function projectOfEmail(email: string): string | undefined {
  const domain = email.slice(email.indexOf('@') + 1);
  const compute = /^(\d+)-compute@developer\.gserviceaccount\.com$/.exec(email);
  if (compute) return `projects/${compute[1]}`;
  const m = /^([a-z][a-z0-9-]{4,28}[a-z0-9])\.iam\.gserviceaccount\.com$/.exec(domain);
  if (m && !m[1]!.startsWith('gcp-sa-')) return `projects/${m[1]}`;
  const app = /^([a-z][a-z0-9-]{4,28}[a-z0-9])\.appspot\.gserviceaccount\.com$/.exec(domain);
  if (app) return `projects/${app[1]}`;
  return undefined;
}

/** What an email says about its account: a project's default account, a Google-managed agent. */
export interface AccountClass {
  /** `compute-engine` (`<n>-compute@developer…`), `app-engine` (`<p>@appspot…`), `cloud-build` (`<n>@cloudbuild…`). */
  defaultAccount: 'compute-engine' | 'app-engine' | 'cloud-build' | null;
  /** A service agent Google creates and manages (`service-<n>@gcp-sa-….iam…`, `<n>@cloudservices…`). */
  googleManaged: boolean;
  /** The project number the email carries, when it carries one. */
  projectNumber: string | null;
}

export function classifyAccount(email: string): AccountClass {
  const e = email.toLowerCase();
  const at = e.indexOf('@');
  const local = e.slice(0, at);
  const domain = e.slice(at + 1);
  let m: RegExpExecArray | null;
  if ((m = /^(\d+)-compute$/.exec(local)) && domain === 'developer.gserviceaccount.com')
    return { defaultAccount: 'compute-engine', googleManaged: false, projectNumber: m[1]! };
  if (domain === 'appspot.gserviceaccount.com')
    return { defaultAccount: 'app-engine', googleManaged: false, projectNumber: null };
  if ((m = /^(\d+)$/.exec(local)) && domain === 'cloudbuild.gserviceaccount.com')
    return { defaultAccount: 'cloud-build', googleManaged: false, projectNumber: m[1]! };
  if ((m = /^service-(?:org-|folder-)?(\d+)$/.exec(local)))
    return {
      defaultAccount: null,
      googleManaged: true,
      projectNumber: local.includes('-org-') || local.includes('-folder-') ? null : m[1]!,
    };
  if ((m = /^(\d+)$/.exec(local)) && domain === 'cloudservices.gserviceaccount.com')
    return { defaultAccount: null, googleManaged: true, projectNumber: m[1]! };
  if (
    domain === 'system.gserviceaccount.com' ||
    /^gcp-sa-[a-z0-9-]+\.iam\.gserviceaccount\.com$/.test(domain)
  )
    return { defaultAccount: null, googleManaged: true, projectNumber: null };
  return { defaultAccount: null, googleManaged: false, projectNumber: null };
}

const PRIMITIVE = new Set(['roles/owner', 'roles/editor', 'roles/viewer']);
/** Roles that let a member act as, or mint credentials for, service accounts. */
const IMPERSONATION = new Set([
  'roles/iam.serviceAccountUser',
  'roles/iam.serviceAccountTokenCreator',
  'roles/iam.serviceAccountKeyAdmin',
  'roles/iam.serviceAccountAdmin',
  'roles/iam.workloadIdentityUser',
  'roles/iam.serviceAccountOpenIdTokenCreator',
]);

/** What a role grants at a glance. */
export interface RoleFlags {
  /** A basic role: `roles/owner`, `roles/editor`, `roles/viewer`. */
  primitive: boolean;
  /** Broad control: owner, editor, or a predefined `….admin` / `…Admin` role. */
  admin: boolean;
  /** May act as or mint credentials for service accounts (`serviceAccountUser`, `…TokenCreator`, …). */
  impersonation: boolean;
  /** A custom role (`projects/p/roles/x`, `organizations/o/roles/x`), not a predefined `roles/…`. */
  customRole: boolean;
}

export function roleFlags(role: string): RoleFlags {
  const last = role.slice(role.lastIndexOf('/') + 1);
  const predefined = role.startsWith('roles/');
  return {
    primitive: PRIMITIVE.has(role),
    admin:
      role === 'roles/owner' ||
      role === 'roles/editor' ||
      (predefined && (/\.admin$/i.test(last) || /Admin$/.test(last) || last === 'admin')),
    impersonation: IMPERSONATION.has(role),
    customRole: /^(?:projects|organizations)\/[^/]+\/roles\/[^/]+$/.test(role),
  };
}

const GRPC_CODES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;

/** `google.rpc.Code` name of a status code (`7` → `PERMISSION_DENIED`); `CODE_<n>` for unknown ones. */
export function grpcCodeName(code: number): string {
  return GRPC_CODES[code] ?? `CODE_${code}`;
}

// ---------------------------------------------------------------------------------------------
// Reading one record: fields under any of their spellings, each problem with its JSON path

/**
 * Collects the problems of one record, each with the JSON path of the field. Exports spell some
 * keys differently (`asset_type` in `gcloud asset export`, `assetType` in `gcloud asset list`,
 * `protopayload` where Panther lower-cased them): every accessor takes the spellings to accept.
 */
export class RecordCheck {
  readonly problems: { field: string | undefined; message: string }[] = [];
  constructor(readonly base: string) {}

  /** `base.rel`, or `base[0]` style when `rel` starts with `[`. */
  path(rel: string): string {
    if (this.base === '') return rel;
    if (rel === '') return this.base;
    return rel.startsWith('[') ? `${this.base}${rel}` : `${this.base}.${rel}`;
  }

  fail(rel: string, message: string): void {
    const field = this.path(rel);
    this.problems.push({ field: field === '' ? undefined : field, message });
  }

  /** The first of `keys` present (not undefined) in `o`: its spelling and value. */
  pick(o: Json, keys: readonly string[]): { key: string; value: unknown } {
    for (const k of keys) if (o[k] !== undefined) return { key: k, value: o[k] };
    return { key: keys[0]!, value: undefined };
  }

  /** An optional string (null counts as absent). */
  string(o: Json, keys: readonly string[], at: string, required = false): string | undefined {
    const { key, value } = this.pick(o, keys);
    const rel = at === '' ? key : `${at}.${key}`;
    if (value === undefined || value === null) {
      if (required) this.fail(rel, `expected a string, got ${describeJson(value)}`);
      return undefined;
    }
    if (typeof value !== 'string' || (required && value.trim() === '')) {
      this.fail(rel, `expected ${required ? 'a non-empty' : 'a'} string, got ${describeJson(value)}`);
      return undefined;
    }
    return value;
  }

  boolean(o: Json, keys: readonly string[], at: string): boolean | undefined {
    const { key, value } = this.pick(o, keys);
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'boolean') {
      this.fail(at === '' ? key : `${at}.${key}`, `expected true or false, got ${describeJson(value)}`);
      return undefined;
    }
    return value;
  }

  /** An optional object; `{}` when absent. */
  object(o: Json, keys: readonly string[], at: string): { value: Json | undefined; at: string } {
    const { key, value } = this.pick(o, keys);
    const rel = at === '' ? key : `${at}.${key}`;
    if (value === undefined || value === null) return { value: undefined, at: rel };
    if (!isObject(value)) {
      this.fail(rel, `expected an object, got ${describeJson(value)}`);
      return { value: undefined, at: rel };
    }
    return { value, at: rel };
  }

  /** An optional array; `[]` when absent. */
  array(o: Json, keys: readonly string[], at: string): { value: unknown[]; at: string } {
    const { key, value } = this.pick(o, keys);
    const rel = at === '' ? key : `${at}.${key}`;
    if (value === undefined || value === null) return { value: [], at: rel };
    if (!Array.isArray(value)) {
      this.fail(rel, `expected an array, got ${describeJson(value)}`);
      return { value: [], at: rel };
    }
    return { value, at: rel };
  }
}
