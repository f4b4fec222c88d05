/** The projection table each kind of subject lives in, and how its fields map to columns. */
export type SubjectTable =
  'identities' | 'credentials' | 'entitlements' | 'principals' | 'services' | 'vendors' | 'findings';

/** Columns whose values are JSON-encoded arrays or objects. */
const JSON_COLUMNS = new Set([
  'labels',
  'shared_with',
  'revocation_triggers',
  'locations',
  'actions',
  'attributes',
  'sightings',
  'frameworks',
  'exception',
]);

const TABLE_COLUMNS: Record<SubjectTable, readonly string[]> = {
  identities: [
    'id',
    'natural_key',
    'name',
    'kind',
    'source',
    'external_id',
    'environment',
    'status',
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
    'manifest_file',
    'attributes',
    'sightings',
    'source_created_at',
    'linked_to',
    'first_seen',
    'last_seen',
    'last_used_at',
    'updated_seq',
  ],
  credentials: [
    'id',
    'identity_id',
    'natural_key',
    'kind',
    'external_id',
    'fingerprint',
    'status',
    'issued_at',
    'last_rotated_at',
    'expires_at',
    'rotation_max_age',
    'locations',
    'last_used_at',
    'source',
    'attributes',
    'first_seen',
    'last_seen',
    'updated_seq',
  ],
  entitlements: [
    'id',
    'identity_id',
    'natural_key',
    'resource',
    'actions',
    'granted_via',
    'granted_at',
    'approval_ref',
    'status',
    'last_used_at',
    'source',
    'attributes',
    'updated_seq',
  ],
  principals: [
    'id',
    'kind',
    'directory_id',
    'name',
    'email',
    'team',
    'manager',
    'status',
    'left_at',
    'updated_seq',
  ],
  services: ['id', 'name', 'owner', 'system', 'description', 'updated_seq'],
  vendors: ['id', 'name', 'contracting_owner', 'contract_ends', 'updated_seq'],
  findings: [
    'id',
    'natural_key',
    'rule',
    'identity_id',
    'subject_name',
    'title',
    'severity',
    'status',
    'assignee',
    'assigned_role',
    'due_at',
    'first_seen',
    'last_seen',
    'resolved_at',
    'frameworks',
    'exception',
    'exception_expires_at',
    'updated_seq',
  ],
};

/** Columns not carried in event payloads: maintained by the projector. */
const BOOKKEEPING = new Set(['id', 'first_seen', 'last_seen', 'updated_seq']);

/** Which table a subject's state is projected into (undefined: the event has no projection). */
export function tableOf(subject: string): { table: SubjectTable; id: string } | undefined {
  const colon = subject.indexOf(':');
  const prefix = subject.slice(0, colon);
  switch (prefix) {
    case 'identity':
      return { table: 'identities', id: subject.slice(colon + 1) };
    case 'credential':
      return { table: 'credentials', id: subject.slice(colon + 1) };
    case 'entitlement':
      return { table: 'entitlements', id: subject.slice(colon + 1) };
    case 'person':
    case 'team':
      return { table: 'principals', id: subject };
    case 'service':
      return { table: 'services', id: subject };
    case 'vendor':
      return { table: 'vendors', id: subject };
    case 'finding':
      return { table: 'findings', id: subject.slice(colon + 1) };
    default:
      return undefined;
  }
}

export function columnsOf(table: SubjectTable): readonly string[] {
  return TABLE_COLUMNS[table];
}

const camelCache = new Map<string, string>();
const snakeCache = new Map<string, string>();

/** `businessOwner` → `business_owner`. */
export function toColumn(field: string): string {
  let c = snakeCache.get(field);
  if (c === undefined) {
    c = field.replace(/[A-Z]/g, (m) => '_' + m.toLowerCase());
    snakeCache.set(field, c);
  }
  return c;
}

/** `business_owner` → `businessOwner`. */
export function toField(column: string): string {
  let f = camelCache.get(column);
  if (f === undefined) {
    f = column.replace(/_([a-z])/g, (_, m: string) => m.toUpperCase());
    camelCache.set(column, f);
  }
  return f;
}

/** Encodes a payload value for its column. */
export function encodeValue(column: string, value: unknown): string | number | null {
  if (value === null || value === undefined) return null;
  if (JSON_COLUMNS.has(column)) return JSON.stringify(value);
  if (typeof value === 'number') return value;
  if (typeof value === 'string') return value;
  return JSON.stringify(value);
}

/** Decodes a column value into the payload field value. */
export function decodeValue(column: string, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (JSON_COLUMNS.has(column) && typeof value === 'string') return JSON.parse(value) as unknown;
  return value;
}

/** Reads a projection row back into payload fields (camelCase), without bookkeeping columns. */
export function rowToFields(table: SubjectTable, projectionRow: object): Record<string, unknown> {
  const row = projectionRow as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const col of TABLE_COLUMNS[table]) {
    if (BOOKKEEPING.has(col)) continue;
    out[toField(col)] = decodeValue(col, row[col]);
  }
  return out;
}

/** Payload fields a subject may carry (columns minus bookkeeping). */
export function fieldsOf(table: SubjectTable): string[] {
  return TABLE_COLUMNS[table].filter((c) => !BOOKKEEPING.has(c)).map(toField);
}
