import type { SourceImporter } from './source.js';

/** Every discovery source, by the name used in `steward import <source>`; modules load on demand. */
export const SOURCES: Record<string, { description: string; load: () => Promise<SourceImporter> }> = {
  'aws-iam': {
    description:
      'AWS IAM users and roles, with trust and expanded policy entitlements (aws iam get-account-authorization-details JSON)',
    load: async () => (await import('./aws-iam/index.js')).importer,
  },
  'aws-credential-report': {
    description:
      'AWS IAM credential report: users, root, access keys and certificates with rotation and last use (CSV, or the get-credential-report JSON)',
    load: async () => (await import('./aws-credential-report/index.js')).importer,
  },
  cloudtrail: {
    description:
      'AWS CloudTrail logs (S3 Records, JSON arrays, JSON lines, EventBridge; gzip): usage per IAM user, role and access key',
    load: async () => (await import('./cloudtrail/index.js')).importer,
  },
  'vault-audit': {
    description:
      'HashiCorp Vault audit device logs (JSON lines, gzip): usage per entity and token, HMAC-ed accessors kept as logged',
    load: async () => (await import('./vault-audit/index.js')).importer,
  },
  kubernetes: {
    description:
      'Kubernetes ServiceAccounts, token Secrets and RBAC bindings (kubectl get … -A -o json/yaml, or manifests)',
    load: async () => (await import('./kubernetes/index.js')).importer,
  },
  gcp: {
    description:
      'Google Cloud service accounts, keys and IAM bindings (Cloud Asset Inventory exports, gcloud keys/service-accounts list JSON) and their usage (Cloud Audit Logs)',
    load: async () => (await import('./gcp/index.js')).importer,
  },
  entra: {
    description:
      'Microsoft Entra ID applications and service principals with secrets, certificates and granted permissions (Graph v1.0 listings), and their use (Entra audit and sign-in logs, Azure Activity log)',
    load: async () => (await import('./entra/index.js')).importer,
  },
  github: {
    description:
      'GitHub organisation audit logs (usage of tokens, apps, bots, deploy keys; secret-scanning alerts) or REST listings of deploy keys, app installations and fine-grained PATs',
    load: async () => (await import('./github/index.js')).importer,
  },
  gitleaks: {
    description:
      'gitleaks findings (JSON report or SARIF): leaked secrets as unmanaged identities, by fingerprint',
    load: async () => (await import('./gitleaks/index.js')).importer,
  },
  secrets: {
    description:
      'secrets in folders, or with --history in every commit of git repositories (secretlint): unmanaged identities, by fingerprint',
    load: async () => (await import('./secrets/index.js')).importer,
  },
};
