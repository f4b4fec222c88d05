/**
 * Microsoft Entra ID discovery: applications and their service principals, with client secrets,
 * certificates and granted permissions, from Microsoft Graph v1.0 listings; and their use from
 * Entra and Azure logs.
 *
 * Inputs (files, folders or `-`; `.json`, `.jsonl`, `.ndjson`, `.gz`; gzip detected by content),
 * streamed record by record (see `json-records.ts`): Graph response pages
 * `{"@odata.context", "value": […], "@odata.nextLink"?}` of `servicePrincipals`, `applications`,
 * `servicePrincipals/{id}/appRoleAssignments`, `oauth2PermissionGrants` and `organization` (one
 * page, pages concatenated or as JSON lines, a folder of pages, an array of pages, a bare array,
 * or the objects as JSON lines); and logs: Entra diagnostic-settings records (audit logs,
 * service-principal and managed-identity sign-ins; `{"records": […]}` or JSON lines), Graph
 * `directoryAudits` pages, Azure Activity log records, and Panther test rows
 * `{_source_file, _test_name, event}` of them.
 *
 * Identity: one per application, external id `entra:app:<appId>` (lower case). The appId (client
 * id) is what every log names, the same for an app registration and for its service principal in
 * every tenant, and stable for the application's life; object ids differ between the application
 * object and the service principal, and logs often name only one of them. An app registration
 * and its service principal are one identity: the credentials of both authenticate as the same
 * principal, and one owner is accountable for them. A multi-tenant application seen in several
 * tenants is one identity too, with the facts of each tenant kept under its own `entra:<tenant>`.
 * Kind `workload` for managed identities, `service-account` otherwise; `disabled` when
 * `accountEnabled` is false.
 *
 * A listing import is a snapshot of one tenant (scope: the tenant id, from the `organization`
 * listed, else from the service principals of the applications registered in it — an application
 * object exists only in its home tenant; a listing that shows neither is refused). Attributes:
 * appId, object ids, servicePrincipalType, appOwnerOrganizationId, `thirdParty` (owned by another
 * tenant than the listed one), `publisher` for Microsoft's own tenants, signInAudience, tags,
 * verified publisher, `disabledByMicrosoftStatus`, the managed identity's Azure resource id,
 * requested permissions (`requiredResourceAccess`, resolved to names).
 * Credentials: `passwordCredentials` → `client-secret`, `keyCredentials` → `certificate`
 * (a `Symmetric` key → `client-secret`); external id the keyId; issuedAt/expiresAt from
 * start/endDateTime; `expired` when endDateTime is past the time of reading (Graph pages carry
 * no time of their own), `inactive` before startDateTime; attributes `on` (application or
 * servicePrincipal), displayName, key type and usage, certificate thumbprint (hex, from
 * `customKeyIdentifier`). A password credential's `hint` is the first characters of the secret:
 * it is type-checked and dropped, never stored nor put in a message; a `secretText` (an
 * addPassword response) is kept only as a keyed fingerprint. Federated identity credentials
 * (`$expand=federatedIdentityCredentials`) → `federated-credential` with issuer, subject and
 * audiences.
 *
 * Entitlements: application permissions (app role assignments of the service principal, one per
 * resource, grantedVia `appRoleAssignment`) and delegated permissions (oauth2PermissionGrants, grantedVia
 * `oauth2PermissionGrant:AllPrincipals|Principal`); resource `entra:app:<resource appId>` when
 * the resource's service principal is listed (else `entra:object:<objectId>`), actions the
 * permission values, attributes permissionType, resourceName and `highPrivilege` (see
 * `isHighPrivilege`). A page that announces a next page (`@odata.nextLink`) whose last page is
 * missing, or a delta round, is refused: a partial listing would vanish the rest.
 *
 * A log import is usage (`snapshot: false`, scope `audit:<tenant>` or `audit:multi`): lastUsedAt
 * of applications (successful sign-ins, directory operations they initiated, Activity log calls
 * with an application caller) and of credentials (a sign-in's credential key id, when the sign-in
 * says its type), and as attributes sign-in counts and errors, credential additions and removals
 * (keyId, type, name, `addedBy`/`removedBy`, when), creation, consents and permission grants,
 * owners added. Listings and logs are imported in separate runs (one is a snapshot, the other
 * usage); an input that mixes them is refused.
 */
import { ValidationError } from '../../domain/errors.js';
import type { Problem } from '../../domain/problems.js';
import type { DiscoveryBatch } from '../../inventory/import-discovery.js';
import { isObject, listFiles, openInput, type Json } from '../common.js';
import { ProblemLog } from '../cloudtrail/index.js';
import type { ReadOptions, ReadResult, SourceImporter } from '../source.js';
import { GraphListing, contextKind, graphKindOf, type GraphStats } from './graph.js';
import { describeShape, join } from './check.js';
import { MAX_DEPTH, MAX_RECORD_CHARS, readJsonRecords, type Page, type RecordAt } from './json-records.js';
import { LogAggregator, type LogStats } from './logs.js';

export { isHighPrivilege, thumbprintOf, MICROSOFT_TENANTS } from './graph.js';
export { keyDescriptions, normaliseOperation } from './logs.js';
export { MAX_DEPTH, MAX_RECORD_CHARS } from './json-records.js';

const SOURCE = 'entra';

export interface EntraReadOptions extends ReadOptions {
  /** Longest record accepted, in characters (default {@link MAX_RECORD_CHARS}). */
  maxRecordChars?: number;
  /** Deepest nesting accepted (default {@link MAX_DEPTH}). */
  maxDepth?: number;
  /** The time of reading: credentials whose endDateTime is past it are expired (default: now). */
  now?: () => Date;
}

export interface EntraStats {
  /** Records read, valid or not. */
  records: number;
  /** Records skipped as invalid (`skipInvalid`). */
  skipped: number;
  /** What kind of input it was. */
  input: 'listing' | 'logs';
  tenant: string | undefined;
  graph: GraphStats;
  logs: LogStats;
}

export interface EntraReadResult extends ReadResult {
  stats: EntraStats;
}

/** A Panther test row wraps the record in `event` and adds `p_*` fields of its own. */
function unwrap(v: unknown): { value: unknown; path: string } {
  if (isObject(v) && isObject(v.event) && ('_source_file' in v || '_test_name' in v)) {
    const clean: Json = {};
    for (const k of Object.keys(v.event)) if (!k.startsWith('p_')) clean[k] = v.event[k];
    return { value: clean, path: 'event' };
  }
  return { value: v, path: '' };
}

const keysOf = (o: Json): string => {
  const k = Object.keys(o);
  return k.length ? `keys ${k.slice(0, 6).join(', ')}${k.length > 6 ? ', …' : ''}` : 'an empty object';
};

/** Reads Graph listings or Entra/Azure logs into one `entra` batch. */
export async function readEntra(paths: string[], options: EntraReadOptions): Promise<EntraReadResult> {
  const files = listFiles(paths, (name) => /\.(json|jsonl|ndjson|gz)$/i.test(name));
  const listing = new GraphListing(options.keys);
  const logs = new LogAggregator();
  const problems = new ProblemLog();
  const limits = {
    maxRecordChars: options.maxRecordChars ?? MAX_RECORD_CHARS,
    maxDepth: options.maxDepth ?? MAX_DEPTH,
  };
  const read: DiscoveryBatch['files'] = [];
  let records = 0;
  let listingFile: string | undefined;
  let logFile: string | undefined;

  for (const file of files) {
    const input = openInput(file, options.maxBytes);
    const shown = input.path;
    let recognised = 0;
    let values = 0;
    let firstForeign: string | undefined;
    const graphPages = new WeakSet<object>();
    const add = (p: Problem) => problems.add(p);
    const pageEnd = (page: Page) => {
      values += 1;
      // a page of Graph objects (even an empty one of a listing) is part of the listing
      if (graphPages.has(page) || (page.key === 'value' && contextKind(page.fields['@odata.context']))) {
        recognised += 1;
        listingFile ??= shown;
        listing.page(page.fields, shown, page.line);
      }
    };
    const record = (raw: unknown, at: RecordAt, page: Page | undefined): void => {
      records += 1;
      values += 1;
      const { value, path: inner } = unwrap(raw);
      const base = inner ? join(at.path, inner) : at.path;
      const bad = (field: string | undefined, message: string) => {
        const p: Problem = { file: shown, line: at.line, message };
        const f = field ? join(base, field) : base;
        if (f) p.field = f;
        add(p);
      };
      if (!isObject(value)) {
        bad(
          undefined,
          `expected a Graph object or a log record (a JSON object), got ${describeShape(value)}`,
        );
        return;
      }
      if (Array.isArray(value.value) && Object.keys(value).some((k) => k.startsWith('@odata.'))) {
        // a whole page as an element of an array (a script that collected the pages in one)
        records -= 1;
        values -= 1;
        const fields: Json = {};
        for (const k of Object.keys(value)) if (k !== 'value') fields[k] = value[k];
        const inside: Page = { key: 'value', fields, line: at.line, items: 0 };
        value.value.forEach((item, i) => {
          inside.items = i + 1;
          record(item, { line: at.line, path: `${join(base, 'value')}[${i}]` }, inside);
        });
        pageEnd(inside);
        return;
      }
      const kind = graphKindOf(value, page?.fields['@odata.context']);
      if (kind) {
        recognised += 1;
        listingFile ??= shown;
        if (page) graphPages.add(page);
        for (const p of listing.add(kind, value, shown, at.line, base)) add(p);
        return;
      }
      if (LogAggregator.recognises(value)) {
        recognised += 1;
        logFile ??= shown;
        logs.add(value, bad);
        return;
      }
      firstForeign ??= keysOf(value);
      bad(
        undefined,
        `expected a Microsoft Graph servicePrincipal, application, appRoleAssignment, oauth2PermissionGrant or organization, or an Entra / Azure log record, got an object with ${keysOf(value)}`,
      );
    };
    await readJsonRecords(
      input.stream,
      shown,
      {
        record,
        pageEnd,
        problem(at, message) {
          records += 1;
          add({ file: shown, line: at.line, ...(at.path ? { field: at.path } : {}), message });
        },
      },
      limits,
    );
    if (recognised === 0) {
      // an empty or foreign file is a failed export, refused even with skipInvalid
      throw new ValidationError(
        `${shown}: not a Microsoft Graph listing nor an Entra / Azure log; nothing was imported`,
        [
          {
            file: shown,
            message: `expected Graph pages ({"value": […]}) of servicePrincipals, applications, appRoleAssignments, oauth2PermissionGrants or organization, or Entra / Azure log records, got ${
              values === 0 ? 'an empty input' : firstForeign ? `objects with ${firstForeign}` : 'no object'
            }`,
          },
        ],
      );
    }
    read.push({ path: input.path, sha256: await input.sha256() });
  }

  if (listingFile && logFile) {
    throw new ValidationError('the input mixes Graph listings and logs; nothing was imported', [
      {
        file: logFile,
        message: `expected listings only (a snapshot of the tenant, as in ${listingFile}) or logs only (usage): import them in two runs`,
      },
    ]);
  }
  if (problems.count && !options.skipInvalid) {
    throw new ValidationError(
      `${problems.count} invalid Entra record(s); nothing was imported (--skip-invalid skips them)`,
      problems.all(files[0] ?? '-'),
    );
  }
  const skipped = problems.all(files[0] ?? '-');

  if (listingFile) {
    const refusals = listing.completeness();
    if (refusals.length)
      throw new ValidationError('the Graph listing is incomplete; nothing was imported', refusals);
    const tenant = listing.tenant(listingFile);
    const now = (options.now?.() ?? new Date()).toISOString();
    const identities = listing.identities(tenant, now);
    const g = listing.stats;
    const notes = [
      `tenant ${tenant}: ${g.servicePrincipals} service principal(s), ${g.applications} application(s), ${g.appRoleAssignments} app role assignment(s), ${g.oauth2PermissionGrants} delegated permission grant(s)`,
    ];
    if (g.unattributedGrants)
      notes.push(
        `${g.unattributedGrants} grant(s) to users, groups or unlisted service principals were not imported`,
      );
    return {
      batch: { source: SOURCE, scope: tenant, snapshot: true, files: read, identities },
      skipped,
      notes,
      stats: {
        records,
        skipped: problems.count,
        input: 'listing',
        tenant,
        graph: listing.stats,
        logs: logs.stats,
      },
    };
  }
  const identities = logs.identities();
  const tenants = [...logs.tenants].sort();
  const scope = `audit:${tenants.length === 1 ? tenants[0]! : tenants.length ? 'multi' : 'unknown'}`;
  const batch: DiscoveryBatch = { source: SOURCE, scope, snapshot: false, files: read, identities };
  if (logs.observedAt) batch.observedAt = logs.observedAt;
  const l = logs.stats;
  const notes = [
    `${l.records} log record(s): ${l.directoryAudits} directory audit entries, ${l.servicePrincipalSignIns} service-principal and ${l.managedIdentitySignIns} managed-identity sign-ins, ${l.activity} Azure Activity log records (${l.activityByApplications} by applications); not imported: ${l.userSignIns} sign-ins of people, ${l.otherResourceLogs} other resource logs`,
  ];
  for (const u of l.unresolved)
    notes.push(
      `${u.type} ${u.objectId}${u.name ? ` (${u.name})` : ''} is named by object id only and no entry gives its appId: not imported (import its entries with one that names its appId)`,
    );
  return {
    batch,
    skipped,
    notes,
    stats: {
      records,
      skipped: problems.count,
      input: 'logs',
      tenant: tenants.length === 1 ? tenants[0] : undefined,
      graph: listing.stats,
      logs: logs.stats,
    },
  };
}

export const importer: SourceImporter = {
  source: SOURCE,
  description:
    'Microsoft Entra ID: applications and service principals with secrets, certificates and granted permissions (Graph v1.0 listings), and their use (Entra audit and sign-in logs, Azure Activity log)',
  read: readEntra,
};
