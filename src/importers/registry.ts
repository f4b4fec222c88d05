import type { SourceImporter } from './source.js';

/** Every discovery source, by the name used in `steward import <source>`; modules load on demand. */
export const SOURCES: Record<string, { description: string; load: () => Promise<SourceImporter> }> = {};
