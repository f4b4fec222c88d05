import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ValidationError } from '../domain/errors.js';
import { loadRules, SEVERITIES, type ParamOverrides, type Rule } from './rules.js';
import { DEFAULT_SLA, type Sla } from './evaluate.js';

/** Where an install's rules come from: extra rule folders and a policy file. */
export interface PolicyConfig {
  /** Folders or files of the install's own rules (absolute paths). */
  rules: string[];
  /** The install's policy file: parameter overrides and SLAs (absolute path). */
  policy?: string;
}

const POLICY_SCHEMA = z
  .object({
    params: z.record(z.string(), z.record(z.string(), z.unknown())).optional(),
    sla: z.partialRecord(z.enum(SEVERITIES), z.number().int().positive()).optional(),
  })
  .strict();

/**
 * Reads a policy file:
 * `params: { <rule id>: { <param>: value } }` and `sla: { critical: 7, high: 30, … }` (days).
 */
export function readPolicyFile(file: string): { overrides: ParamOverrides; sla: Sla } {
  let raw: unknown;
  try {
    raw = parseYaml(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ValidationError(
      `${file}: expected a readable YAML policy file: ${(e as Error).message.split('\n')[0]}`,
    );
  }
  const parsed = POLICY_SCHEMA.safeParse(raw ?? {});
  if (!parsed.success) {
    throw new ValidationError(
      `${file}: not a valid policy file`,
      parsed.error.issues.map((i) => ({ file, field: i.path.join('.'), message: i.message })),
    );
  }
  return { overrides: parsed.data.params ?? {}, sla: { ...DEFAULT_SLA, ...parsed.data.sla } };
}

/** The rules and SLAs an install evaluates with. */
export function loadPolicy(config: PolicyConfig): { rules: Rule[]; sla: Sla } {
  const policy = config.policy ? readPolicyFile(config.policy) : undefined;
  const rules = loadRules({
    paths: config.rules,
    ...(policy ? { overrides: policy.overrides, overridesFile: config.policy } : {}),
  });
  return { rules, sla: policy?.sla ?? DEFAULT_SLA };
}

/** Paths as given on the command line, made absolute so that the install remembers them. */
export function absolute(paths: string[] | undefined): string[] {
  return (paths ?? []).map((p) => path.resolve(p));
}
