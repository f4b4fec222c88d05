import path from 'node:path';
import { describe, it, expect } from 'vitest';
import { loadRules, testRule } from '../src/policy/rules.js';
import { loadCatalog } from '../src/policy/standards.js';

const rules = loadRules();
const byId = new Map(rules.map((r) => [r.id, r]));

/** The accountability gaps the built-in pack must cover, each with the rule(s) that detect it. */
const GAPS: Record<string, string[]> = {
  'no business owner': ['no-business-owner'],
  'no technical owner': ['no-technical-owner'],
  'no control owner': ['no-control-owner'],
  'shared with several teams and no primary team': ['shared-without-primary-team'],
  'no approver or approval on record': ['no-approval'],
  'purpose missing or a placeholder': ['purpose-missing'],
  'no expiry and no rotation policy': ['no-expiry-or-rotation'],
  'rotation overdue': ['rotation-overdue'],
  'credential older than its policy': ['credential-lifetime-exceeds-policy'],
  'expired credential still active': ['expired-credential-active'],
  'no revocation trigger or no revocation owner': ['no-revocation-path'],
  'owner departed': ['owner-departed', 'credential-not-rotated-after-owner-left'],
  'vendor contract ended, identity still active': ['vendor-contract-ended'],
  'third-party access without a contracting owner': ['third-party-without-contracting-owner'],
  'used in more than one environment': ['environment-crossing'],
  'console password or interactive use (human use)': ['human-use-of-nhi'],
  'admin or wildcard entitlements': ['admin-or-wildcard-entitlement'],
  'granted-but-unused entitlements': ['unused-entitlement'],
  'unused for N days but enabled': ['unused-identity', 'unused-credential'],
  'repeated access failures': ['repeated-access-failures'],
  'unmanaged credential found in code': ['unmanaged-credential'],
  'leaked credential still valid past the response deadline': [
    'credential-exposed-in-code',
    'leaked-credential-not-revoked',
  ],
  'static long-lived key where federation is available': [
    'static-key-where-federation-available',
    'ci-pipeline-static-cloud-key',
  ],
  'AI agent without a human sponsor': ['ai-agent-without-sponsor'],
  'AI agent with high-risk tools and no sign-off policy': ['ai-agent-high-risk-without-sign-off'],
  'review overdue for its sensitivity': ['review-overdue'],
  'nobody accountable': ['nobody-accountable'],
};

describe('built-in rule pack', () => {
  it('loads every rule file of rules/ (one rule per file, all built in)', () => {
    expect(rules.length).toBe(35);
    expect(rules.every((r) => r.builtin)).toBe(true);
    expect(new Set(rules.map((r) => r.file)).size).toBe(rules.length);
    for (const r of rules) expect(path.basename(r.file)).toBe(`${r.id}.yaml`);
  });

  it('every accountability gap of the brief has its rule(s)', () => {
    const missing = Object.entries(GAPS).flatMap(([gap, ids]) =>
      ids.filter((id) => !byId.has(id)).map((id) => `${gap}: ${id}`),
    );
    expect(missing).toEqual([]);
  });

  it('every OWASP NHI Top 10 (2025) risk is covered by at least one rule', () => {
    const owasp = loadCatalog().frameworks.get('owasp-nhi-2025')!;
    const covered = new Map<string, string[]>();
    for (const r of rules)
      for (const id of r.frameworks['owasp-nhi-2025'] ?? [])
        covered.set(id, [...(covered.get(id) ?? []), r.id]);
    expect(owasp.controls.map((c) => c.id)).toEqual([
      'NHI1',
      'NHI2',
      'NHI3',
      'NHI4',
      'NHI5',
      'NHI6',
      'NHI7',
      'NHI8',
      'NHI9',
      'NHI10',
    ]);
    for (const c of owasp.controls) expect(covered.get(c.id) ?? [], c.id).not.toEqual([]);
    // The risks whose detection depends on one rule each: losing it loses the risk.
    expect(covered.get('NHI6')).toEqual(['ci-pipeline-static-cloud-key']);
    expect(covered.get('NHI8')).toEqual(['environment-crossing']);
    expect(covered.get('NHI10')).toEqual(['human-use-of-nhi']);
  });

  it('every rule maps to NIST CSF 2.0, AI-agent rules also to NIST AI RMF, and all but one to OWASP', () => {
    for (const r of rules) expect(r.frameworks['nist-csf-2.0'] ?? [], r.id).not.toEqual([]);
    for (const r of rules.filter((x) => x.id.startsWith('ai-agent-')))
      expect(r.frameworks['nist-ai-rmf-1.0'] ?? [], r.id).not.toEqual([]);
    // Repeated access failures are a monitoring signal no OWASP NHI risk describes.
    expect(rules.filter((r) => !r.frameworks['owasp-nhi-2025']).map((r) => r.id)).toEqual([
      'repeated-access-failures',
    ]);
  });

  it('nobody-accountable is critical and routed to the primary team', () => {
    expect(byId.get('nobody-accountable')).toMatchObject({ severity: 'critical', routeTo: 'primary' });
  });

  it('every rule has a title, description, remediation, and examples both ways', () => {
    for (const r of rules) {
      expect(r.title.length, r.id).toBeGreaterThan(5);
      expect(r.description.length, r.id).toBeGreaterThan(40);
      expect(r.remediation.length, r.id).toBeGreaterThan(20);
      expect(
        r.examples.some((e) => e.expect),
        r.id,
      ).toBe(true);
      expect(
        r.examples.some((e) => !e.expect),
        r.id,
      ).toBe(true);
    }
  });

  it('no rule flags a vanished identity: every condition requires an active identity and has a vanished example', () => {
    for (const r of rules) {
      expect(r.when, r.id).toMatch(/^nhi\.status == 'active'/);
      const vanished = r.examples.filter((e) => e.doc.status === 'vanished');
      expect(vanished.length, r.id).toBeGreaterThan(0);
      for (const e of vanished) expect(e.expect, `${r.id}: ${e.name}`).toBe(false);
    }
  });

  it('every declared parameter is used by its rule', () => {
    for (const r of rules)
      for (const k of Object.keys(r.params)) expect(r.when, `${r.id}: ${k}`).toContain(`params.${k}`);
  });

  it('every threshold is a parameter: no number in a condition but 0, 1 and the account field of an ARN', () => {
    for (const r of rules) {
      const text = r.when.replace(/'[^']*'/g, "''").replace(/split\(''\)\) > 4|split\(''\)\[4\]/g, '');
      const numbers = [...text.matchAll(/(?<![\w.])\d+(?![\w.])/g)].map((m) => m[0]);
      expect(
        numbers.filter((n) => n !== '0' && n !== '1'),
        r.id,
      ).toEqual([]);
    }
  });
});

describe.each(rules.map((r) => r.id))('%s', (id) => {
  const rule = byId.get(id)!;
  for (const result of testRule(rule)) {
    it(`${id}: ${result.name}`, () => {
      expect(result.got, `${rule.file}:${result.line}`).toBe(result.expect);
    });
  }
});
