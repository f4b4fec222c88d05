/** Ledger row: one appended event. Never updated, never deleted (enforced by triggers). */
export interface EventsTable {
  seq: number;
  type: string;
  subject: string;
  identity_id: string | null;
  payload: string;
  actor: string;
  reason: string | null;
  effective_at: string;
  recorded_at: string;
  prev_hash: string;
  hash: string;
}

export interface LedgerHeadTable {
  id: number;
  seq: number;
  hash: string;
  updated_at: string;
}

export interface CheckpointsTable {
  seq: number;
  head_hash: string;
  signed_at: string;
  key_id: string;
  signature: string;
}

export interface PrincipalsTable {
  id: string; // canonical ref: person:<email-or-id> | team:<id>
  kind: string; // person | team
  directory_id: string | null;
  name: string | null;
  email: string | null;
  team: string | null; // team ref
  manager: string | null; // person ref
  status: string; // active | departed
  left_at: string | null;
  updated_seq: number;
}

export interface ServicesTable {
  id: string; // service:<name>
  name: string;
  owner: string | null;
  system: string | null;
  description: string | null;
  updated_seq: number;
}

export interface VendorsTable {
  id: string; // vendor:<name>
  name: string;
  contracting_owner: string | null;
  contract_ends: string | null;
  updated_seq: number;
}

export interface IdentitiesTable {
  id: string;
  natural_key: string;
  name: string;
  kind: string | null;
  source: string | null;
  external_id: string | null;
  environment: string | null;
  status: string;
  sensitivity: string | null;
  service: string | null;
  purpose: string | null;
  labels: string | null;
  business_owner: string | null;
  technical_owner: string | null;
  control_owner: string | null;
  primary_team: string | null;
  shared_with: string | null;
  approver: string | null;
  approved_at: string | null;
  approval_ticket: string | null;
  origin_kind: string | null;
  origin_ref: string | null;
  origin_merged_by: string | null;
  vendor: string | null;
  rotation_max_age: string | null;
  expires_at: string | null;
  revocation_triggers: string | null;
  revocation_owner: string | null;
  revocation_runbook: string | null;
  sponsor: string | null;
  manifest_file: string | null;
  attributes: string | null;
  sightings: string | null;
  source_created_at: string | null;
  /** For a found secret that is a known credential: that credential's id. */
  linked_to: string | null;
  first_seen: string;
  last_seen: string;
  last_used_at: string | null;
  updated_seq: number;
}

export interface CredentialsTable {
  id: string;
  identity_id: string;
  natural_key: string;
  kind: string | null;
  external_id: string;
  fingerprint: string | null;
  status: string;
  issued_at: string | null;
  last_rotated_at: string | null;
  expires_at: string | null;
  rotation_max_age: string | null;
  locations: string | null;
  last_used_at: string | null;
  source: string | null;
  attributes: string | null;
  first_seen: string;
  last_seen: string;
  updated_seq: number;
}

export interface EntitlementsTable {
  id: string;
  identity_id: string;
  natural_key: string;
  resource: string;
  actions: string;
  granted_via: string | null;
  granted_at: string | null;
  approval_ref: string | null;
  status: string;
  last_used_at: string | null;
  source: string | null;
  attributes: string | null;
  updated_seq: number;
}

export interface FindingsTable {
  id: string;
  natural_key: string; // <rule>|<identity id>
  rule: string;
  identity_id: string;
  subject_name: string | null;
  title: string;
  severity: string;
  status: string; // open | resolved | excepted
  assignee: string | null;
  assigned_role: string | null;
  due_at: string | null;
  first_seen: string;
  last_seen: string;
  resolved_at: string | null;
  frameworks: string | null;
  exception: string | null;
  exception_expires_at: string | null;
  updated_seq: number;
}

export interface Database {
  events: EventsTable;
  ledger_head: LedgerHeadTable;
  checkpoints: CheckpointsTable;
  principals: PrincipalsTable;
  services: ServicesTable;
  vendors: VendorsTable;
  identities: IdentitiesTable;
  credentials: CredentialsTable;
  entitlements: EntitlementsTable;
  findings: FindingsTable;
  metrics_daily: { day: string; data: string; recorded_at: string };
  meta: { key: string; value: string };
}
