import fs from 'node:fs';
import { packageFile } from '../domain/package-files.js';

/** One control (risk, subcategory, safeguard …) of a framework in the catalog. */
export interface Control {
  id: string;
  title: string;
  /** For a withdrawn CSF 1.1 id: the CSF 2.0 ids it maps to. */
  mapsTo?: string[];
}

export interface Framework {
  id: string;
  name: string;
  version: string;
  controls: Control[];
}

export interface Catalog {
  frameworks: Map<string, Framework>;
  /**
   * Resolves `framework: [ids]` as a rule writes it to canonical ids, or says what is wrong.
   * CSF 1.1 ids (`PR.AC-1`, also spelt `PR.AC-01`, under `nist-csf-1.1` or `nist-csf-2.0`) become
   * their CSF 2.0 successors under `nist-csf-2.0`.
   */
  resolve(framework: string, id: string): { framework: string; ids: string[] } | { error: string };
}

/** Path of the catalog shipped with Steward (`data/standards.json`). */
export const CATALOG_FILE = packageFile('data', 'standards.json');

let cached: Catalog | undefined;

interface RawControl {
  id: string;
  title?: string;
  csf2_catalog_id?: string;
  maps_to?: string[];
}

/** Loads the framework catalog once. */
export function loadCatalog(file = CATALOG_FILE): Catalog {
  if (cached && file === CATALOG_FILE) return cached;
  const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as {
    frameworks: { id: string; name: string; version: string; controls: RawControl[] }[];
  };
  const frameworks = new Map<string, Framework>();
  const legacy = new Map<string, string[]>();
  for (const f of raw.frameworks) {
    const controls = f.controls.map((c) => {
      const out: Control = { id: c.id, title: c.title ?? c.id };
      if (c.maps_to) out.mapsTo = c.maps_to;
      return out;
    });
    frameworks.set(f.id, { id: f.id, name: f.name, version: f.version, controls });
    if (f.id === 'nist-csf-1.1') {
      for (const c of f.controls) {
        if (!c.maps_to) continue;
        legacy.set(c.id, c.maps_to);
        if (c.csf2_catalog_id) legacy.set(c.csf2_catalog_id, c.maps_to);
      }
    }
  }
  const catalog: Catalog = {
    frameworks,
    resolve(framework, id) {
      if ((framework === 'nist-csf-1.1' || framework === 'nist-csf-2.0') && legacy.has(id)) {
        // category-level targets (GV.RR) are kept as they are
        return { framework: 'nist-csf-2.0', ids: legacy.get(id)! };
      }
      const f = frameworks.get(framework);
      if (!f)
        return {
          error: `expected a framework id from the catalog (${[...frameworks.keys()].join(', ')}), got ${JSON.stringify(framework)}`,
        };
      if (!f.controls.some((c) => c.id === id)) {
        return {
          error: `expected a control id of ${framework} (e.g. ${f.controls
            .slice(0, 3)
            .map((c) => c.id)
            .join(', ')}), got ${JSON.stringify(id)}`,
        };
      }
      return { framework, ids: [id] };
    },
  };
  if (file === CATALOG_FILE) cached = catalog;
  return catalog;
}
