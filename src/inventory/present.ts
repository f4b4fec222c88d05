import type { IdentitiesTable } from '../store/schema.js';

/** The stable JSON shape of an identity in listings. */
export interface IdentitySummary {
  id: string;
  name: string;
  kind: string | null;
  source: string | null;
  externalId: string | null;
  environment: string | null;
  status: string;
  sensitivity: string | null;
  service: string | null;
  purpose: string | null;
  owners: { business: string | null; technical: string | null; control: string | null };
  primaryTeam: string | null;
  approver: string | null;
  revocationOwner: string | null;
  expires: string | null;
  rotation: { maxAge: string | null };
  firstSeen: string;
  lastSeen: string;
}

export function presentIdentity(r: IdentitiesTable): IdentitySummary {
  return {
    id: r.id,
    name: r.name,
    kind: r.kind,
    source: r.source,
    externalId: r.external_id,
    environment: r.environment,
    status: r.status,
    sensitivity: r.sensitivity,
    service: r.service,
    purpose: r.purpose,
    owners: { business: r.business_owner, technical: r.technical_owner, control: r.control_owner },
    primaryTeam: r.primary_team,
    approver: r.approver,
    revocationOwner: r.revocation_owner,
    expires: r.expires_at,
    rotation: { maxAge: r.rotation_max_age },
    firstSeen: r.first_seen,
    lastSeen: r.last_seen,
  };
}
