/** Normalised content of one `apiVersion: steward/v1`, `kind: NonHumanIdentity` document. */
export const IDENTITY_TYPES = [
  'service-account',
  'api-key',
  'access-key',
  'oauth-app',
  'token',
  'certificate',
  'ssh-key',
  'deploy-key',
  'k8s-service-account',
  'workload',
  'ai-agent',
  'secret',
] as const;
export type IdentityType = (typeof IDENTITY_TYPES)[number];

export const SENSITIVITIES = ['critical', 'high', 'medium', 'low'] as const;
export type Sensitivity = (typeof SENSITIVITIES)[number];

/** A principal reference exactly as written: `person:<email-or-id>` or `team:<name-or-id>`. */
export type PrincipalRef = string;

export interface ManifestCredential {
  id: string;
  kind?: string;
  /** The secret's keyed fingerprint (`steward fingerprint`), never the secret itself. */
  fingerprint?: string;
  issuedAt?: string; // ISO-8601 UTC, normalised
  lastRotatedAt?: string;
  expiresAt?: string;
  rotationMaxAge?: string; // e.g. "90d", as written
  locations?: string[];
}

export interface ManifestScope {
  resource: string;
  actions: string[];
}

export interface ManifestIdentity {
  /** Absolute path of the file it came from, and the 1-based line of the document start. */
  file: string;
  line: number;
  name: string;
  environment?: string;
  labels?: Record<string, string>;
  type?: IdentityType;
  source?: string;
  externalId?: string;
  service?: string;
  purpose?: string;
  sensitivity?: Sensitivity;
  owners?: { business?: PrincipalRef; technical?: PrincipalRef; control?: PrincipalRef };
  primaryTeam?: PrincipalRef;
  sharedWith?: PrincipalRef[];
  approval?: { approver?: PrincipalRef; approvedAt?: string; ticket?: string };
  origin?: { kind?: string; ref?: string; mergedBy?: PrincipalRef };
  vendor?: { name: string; contractingOwner?: PrincipalRef; contractEnds?: string };
  scope?: ManifestScope[];
  credentials?: ManifestCredential[];
  rotation?: { maxAge?: string };
  expires?: string;
  revocation?: { triggers?: string[]; owner?: PrincipalRef; runbook?: string };
  sponsor?: PrincipalRef;
}

/** A Backstage catalog entity (Component, System, Resource, API …) that names an owner for a service. */
export interface BackstageService {
  file: string;
  line: number;
  kind: string; // Backstage kind, e.g. Component
  name: string; // metadata.name
  namespace?: string;
  /** spec.owner normalised to a principal ref (`team:<name>` unless already `person:`/`team:`/`user:`/`group:` qualified). */
  owner?: PrincipalRef;
  system?: string;
  description?: string;
}

export interface ManifestParseResult {
  identities: ManifestIdentity[];
  services: BackstageService[];
  /** Every file read, with its SHA-256 (hex) — the import-run evidence. */
  files: { path: string; sha256: string; documents: number }[];
}
