import type { SourceImporter } from './source.js';

/** Every discovery source, by the name used in `steward import <source>`; modules load on demand. */
export const SOURCES: Record<string, { description: string; load: () => Promise<SourceImporter> }> = {
  kubernetes: {
    description:
      'Kubernetes ServiceAccounts, token Secrets and RBAC bindings (kubectl get … -A -o json/yaml, or manifests)',
    load: async () => (await import('./kubernetes/index.js')).importer,
  },
  gitleaks: {
    description:
      'gitleaks findings (JSON report or SARIF): leaked secrets as unmanaged identities, by fingerprint',
    load: async () => (await import('./gitleaks/index.js')).importer,
  },
};
