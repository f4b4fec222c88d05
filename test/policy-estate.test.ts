import path from 'node:path';
import { describe, it, expect } from 'vitest';
import { dialects, testClock, withSteward, type TestEnv } from './helpers/steward.js';
import { corpus, corporaAvailable } from './helpers/corpora.js';
import { parseDirectoryFile } from '../src/importers/directory/parse.js';
import { parseManifestPaths } from '../src/importers/manifest/parse.js';
import { importDirectory } from '../src/inventory/import-directory.js';
import { importManifests } from '../src/inventory/import-manifests.js';
import { importDiscovery } from '../src/inventory/import-discovery.js';
import { importer as kubernetes } from '../src/importers/kubernetes/index.js';
import { importer as credentialReport } from '../src/importers/aws-credential-report/index.js';
import { importer as awsIam } from '../src/importers/aws-iam/index.js';
import { importer as cloudtrail } from '../src/importers/cloudtrail/index.js';
import { importer as vaultAudit } from '../src/importers/vault-audit/index.js';
import { importer as gitleaks } from '../src/importers/gitleaks/index.js';
import type { SourceImporter } from '../src/importers/source.js';
import { loadDocuments, type NhiDocument } from '../src/policy/document.js';
import { loadRules } from '../src/policy/rules.js';
import { evaluate, DEFAULT_SLA } from '../src/policy/evaluate.js';
import { listFindings, type FindingView } from '../src/policy/findings.js';

/**
 * The built-in pack over a real estate: the example directory and manifests (as `npm start`
 * imports them) plus public sample exports — the KubiScan minikube dump, the cloudmapper
 * credential report and authorization details, cloudsplaining's iam-vulnerable lab account, the
 * Stratus Red Team CloudTrail captures, a Vault audit log and two gitleaks reports. Every rule is
 * evaluated directly over `loadDocuments` at fixed times; the expected findings were checked by
 * hand against the imported records (see the comments).
 */

const EXAMPLES = path.join(import.meta.dirname, '..', 'examples');
/** When the estate is imported and judged: after Frank left (2026-09-30) and the dbt token expired (2026-11-10). */
const NOW = new Date('2026-11-15T00:00:00Z');
/** The day after the cloudmapper credential report was generated (2019-05-07T15:40:22Z). */
const REPORT_DAY = new Date('2019-05-08T00:00:00Z');

const SOURCES: [SourceImporter, string][] = [
  [kubernetes, 'kubernetes-rbac/combined.json'],
  [credentialReport, 'aws-credential-report/iam-get-credential-report.json'],
  [awsIam, 'aws-iam-authz-details/iam-get-account-authorization-details.json'],
  [awsIam, 'aws-iam-authz-details/example.json'],
  [cloudtrail, 'aws-cloudtrail/stratus-red-team-detonation-logs'],
  [vaultAudit, 'vault-audit/test-audit.log'],
  [gitleaks, 'secret-scanning/gitleaks-testdata/expected/report/json_simple.json'],
  [gitleaks, 'secret-scanning/gitleaks-testdata/baseline/baseline.json'],
];

async function buildEstate(env: TestEnv): Promise<NhiDocument[]> {
  const s = env.steward;
  await importDirectory(s, await parseDirectoryFile(path.join(EXAMPLES, 'directory.csv')), { actor: 'test' });
  const manifests = [path.join(EXAMPLES, 'manifests'), path.join(EXAMPLES, 'catalog-info.yaml')];
  await importManifests(s, await parseManifestPaths(manifests), { actor: 'test', roots: manifests });
  for (const [importer, file] of SOURCES) {
    const { batch, skipped } = await importer.read([corpus(file)], { skipInvalid: false, keys: s.keys });
    expect(skipped, file).toEqual([]);
    await importDiscovery(s, batch, { actor: 'test' });
  }
  const docs: NhiDocument[] = [];
  for await (const page of loadDocuments(s.store.db)) docs.push(...page);
  return docs;
}

const rules = loadRules();

/** true, false, or 'error' (a CEL evaluation error). */
function outcome(f: () => boolean): boolean | 'error' {
  try {
    return f();
  } catch {
    return 'error';
  }
}
const key = (d: NhiDocument): string => d.externalId ?? d.name;

/** Rule id → the identities it flags (external id, else name), sorted. */
function evaluatePack(docs: NhiDocument[], now: Date): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const rule of rules) {
    out[rule.id] = docs
      .filter((nhi) => rule.test({ nhi, now, params: rule.params }))
      .map(key)
      .sort();
  }
  return out;
}

/** The rules that flag one identity. */
function rulesOn(findings: Record<string, string[]>, id: string): string[] {
  return Object.keys(findings)
    .filter((r) => findings[r]!.includes(id))
    .sort();
}

const count = (findings: Record<string, string[]>): Record<string, number> =>
  Object.fromEntries(Object.entries(findings).map(([r, ids]) => [r, ids.length]));

/** Rules about who is accountable and what is on record, as opposed to what the identity can do. */
const ACCOUNTABILITY = [
  'nobody-accountable',
  'no-business-owner',
  'no-technical-owner',
  'no-control-owner',
  'shared-without-primary-team',
  'no-approval',
  'purpose-missing',
  'no-revocation-path',
  'owner-departed',
  'third-party-without-contracting-owner',
  'ai-agent-without-sponsor',
];

const ACCOUNT = 'arn:aws:iam::123456789012';
const ROOT = `${ACCOUNT}:root`;
const USER = `${ACCOUNT}:user/user`;
const AUDITOR = `${ACCOUNT}:user/auditor_tmp`;
const KUBE_SYSTEM_DEFAULT = 'system:serviceaccount:kube-system:default';
const SETTLEMENT = `${ACCOUNT}:user/payments-settlement-batch`;
const STRIPE = 'rk_live_payments_refunds';
const DBT = 'dbt:account/7734/token/119';
const EXPORTER = 'system:serviceaccount:observability:exporter';
const SALESFORCE = 'salesforce:connected-app:3MVG9ACME00001';
const LEDGER_CERT = 'CN=payments-api,OU=payments,O=Acme;serial=4F:2A:91:0C';
const LAB = 'arn:aws:iam::200611803367';

describe.runIf(corporaAvailable).each(dialects)(
  'built-in rule pack over a real estate on $name',
  (dialect) => {
    it('finds exactly what the estate holds, rule by rule and identity by identity', async () => {
      await withSteward(
        dialect,
        async (env) => {
          const docs = await buildEstate(env);
          // 10 manifest identities, 45 KubiScan accounts, 3 credential-report rows,
          // 6 + 116 IAM users and roles, 40 CloudTrail principals, 3 Vault entities, 3 found secrets.
          expect(docs).toHaveLength(226);
          // The compiled rules answer exactly as cel-js's interpreter does, on every real document.
          for (const now of [new Date('2026-11-15T00:00:00Z'), new Date('2019-05-08T12:00:00Z')]) {
            for (const rule of rules) {
              for (const nhi of docs) {
                const ctx = { nhi, now, params: rule.params };
                expect(
                  outcome(() => rule.test(ctx)),
                  `${rule.id} on ${key(nhi)}`,
                ).toBe(outcome(() => rule.interpret(ctx)));
              }
            }
          }
          expect(docs.filter((d) => d.declared)).toHaveLength(10);
          const f = evaluatePack(docs, NOW);

          expect(count(f)).toEqual({
            'admin-or-wildcard-entitlement': 18,
            'ai-agent-high-risk-without-sign-off': 0,
            'ai-agent-without-sponsor': 0,
            'ci-pipeline-static-cloud-key': 0,
            'credential-exposed-in-code': 0,
            'credential-lifetime-exceeds-policy': 0,
            'credential-not-rotated-after-owner-left': 1,
            'cross-account-trust-without-external-id': 3,
            'default-service-account-with-permissions': 1,
            'environment-crossing': 0,
            'expired-credential-active': 1,
            'human-use-of-nhi': 2,
            'leaked-credential-not-revoked': 0,
            // every identity but the three found secrets and the three fully approved manifests
            'no-approval': 220,
            // the 213 discovered identities, and warehouse-loader (declared without one on purpose)
            'no-business-owner': 214,
            'no-control-owner': 218,
            // 32 CloudTrail principals with an AKIA key, the 3 report rows, KubiScan's token, the deploy key
            'no-expiry-or-rotation': 37,
            'no-revocation-path': 217,
            'no-technical-owner': 213,
            // every discovered identity except the found secrets: nobody has claimed any of them
            'nobody-accountable': 213,
            'owner-departed': 1,
            'purpose-missing': 213,
            'repeated-access-failures': 2,
            // the 122 IAM users and roles and the 3 report rows, never reviewed since 2018–2020
            'review-overdue': 125,
            'root-access-key': 1,
            'rotation-overdue': 20,
            'shared-without-primary-team': 1,
            'static-key-where-federation-available': 36,
            'third-party-without-contracting-owner': 3,
            'unmanaged-credential': 3,
            // 32 CloudTrail AKIA keys last used in 2024, the 3 report rows
            'unused-credential': 35,
            'unused-entitlement': 0,
            // 79 IAM roles, 40 CloudTrail principals, 3 report rows, 3 Vault entities
            'unused-identity': 125,
            'used-by-many-workloads': 0,
            'vendor-contract-ended': 0,
          });

          // KubiScan: kube-system/default is bound to cluster-admin (minikube-rbac); it is the only
          // Kubernetes account with an admin grant, and grants to a default account are shared.
          expect(f['default-service-account-with-permissions']).toEqual([KUBE_SYSTEM_DEFAULT]);
          expect(rulesOn(f, KUBE_SYSTEM_DEFAULT)).toEqual([
            'admin-or-wildcard-entitlement',
            'default-service-account-with-permissions',
            'no-approval',
            'no-business-owner',
            'no-control-owner',
            'no-revocation-path',
            'no-technical-owner',
            'nobody-accountable',
            'purpose-missing',
          ]);
          // kubiscan-sa keeps a long-lived token Secret: static, never expiring, issued 2024-07-15.
          expect(rulesOn(f, 'system:serviceaccount:default:kubiscan-sa')).toEqual(
            expect.arrayContaining([
              'no-expiry-or-rotation',
              'rotation-overdue',
              'static-key-where-federation-available',
            ]),
          );
          expect(rulesOn(f, 'system:serviceaccount:default:kubiscan-sa')).not.toContain(
            'admin-or-wildcard-entitlement',
          );

          // Admin or wildcard: kube-system/default, terraform-runner's roles/editor (manifest), the
          // cloudmapper roles with s3:* and * (exfiller, bad_role), and 14 principals of the lab
          // account: AdministratorAccess, `*`, service-wide (`iam:*`, `s3:*`) and NotAction grants.
          // Its 8 service-linked roles are left out (AWS owns their policies).
          expect(f['admin-or-wildcard-entitlement']).toEqual(
            [
              KUBE_SYSTEM_DEFAULT,
              'terraform-runner@acme-prod.iam.gserviceaccount.com',
              `${ACCOUNT}:role/exfiller`,
              `${ACCOUNT}:role/bad_role`,
              `${LAB}:user/fn4-exploitableNotAction-user`,
              `${LAB}:user/fp1-allow-and-deny-user`,
              `${LAB}:user/fp2-allow-and-deny-multiple-policies-user`,
              `${LAB}:user/privesc-sre-user`,
              `${LAB}:role/AWS-QuickSetup-StackSet-Local-ExecutionRole`,
              `${LAB}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_AdministratorAccess_dc6414f7f2ab04fc`,
              `${LAB}:role/fn4-exploitableNotAction-role`,
              `${LAB}:role/fp1-allow-and-deny-role`,
              `${LAB}:role/fp2-allow-and-deny-multiple-policies-role`,
              `${LAB}:role/OrganizationAccountAccessRole`,
              `${LAB}:role/privesc-AssumeRole-ending-role`,
              `${LAB}:role/privesc-high-priv-service-role`,
              `${LAB}:role/privesc-sre-role`,
              `${LAB}:role/stacksets-exec-b5520cb2730c2f54b523d6375a319abb`,
            ].sort(),
          );

          // Trust to `*` (bad_role), to the organisation's management account and to its StackSets
          // role, none with an external id; all three are also third-party access with no owner.
          const crossAccount = [
            `${ACCOUNT}:role/bad_role`,
            `${LAB}:role/OrganizationAccountAccessRole`,
            `${LAB}:role/stacksets-exec-b5520cb2730c2f54b523d6375a319abb`,
          ].sort();
          expect(f['cross-account-trust-without-external-id']).toEqual(crossAccount);
          expect(f['third-party-without-contracting-owner']).toEqual(crossAccount);

          // The credential report (generated 2019-05-07): root's key, auditor_tmp's unused key, and
          // user's two keys (one never used) are all older than 90 days by now, and the password is
          // a console login on a service user.
          const report = [ROOT, AUDITOR, USER].sort();
          const reportOnly = (ids: string[]) => ids.filter((id) => report.includes(id));
          expect(reportOnly(f['rotation-overdue']!)).toEqual(report);
          expect(reportOnly(f['unused-credential']!)).toEqual(report);
          expect(reportOnly(f['unused-identity']!)).toEqual(report);
          expect(reportOnly(f['no-expiry-or-rotation']!)).toEqual(report);
          expect(reportOnly(f['static-key-where-federation-available']!)).toEqual([AUDITOR, USER].sort());
          expect(f['root-access-key']).toEqual([ROOT]);
          expect(f['human-use-of-nhi']).toEqual(
            [USER, 'vault:entity:e4f5c67a-6f7e-789d-ae56-a1fe3ae23046'].sort(),
          );

          // The day after the report: root's key was rotated 2018-11-23 (165 days) and last used
          // 2018-11-27; user's access_key_2 was rotated and last used 2018-05-07 (365 days); the
          // keys of auditor_tmp and user's access_key_1 are a day old and not yet used (no finding).
          const day = evaluatePack(docs, REPORT_DAY);
          expect(reportOnly(day['rotation-overdue']!)).toEqual([ROOT, USER].sort());
          expect(reportOnly(day['unused-credential']!)).toEqual([ROOT, USER].sort());
          // root's password was used 2019-03-03 (65 days): only user is stale
          expect(reportOnly(day['unused-identity']!)).toEqual([USER]);

          // CloudTrail: the two Stratus roles denied 15 and 30 times.
          expect(f['repeated-access-failures']).toEqual([
            'arn:aws:iam::321848314756:role/stratus-red-team-get-usr-data-role',
            'arn:aws:iam::457448411975:role/stratus-red-team-ec2-get-password-data-role',
          ]);

          // gitleaks: three secrets nobody owns; they are not counted as "nobody accountable" too.
          expect(f['unmanaged-credential']).toHaveLength(3);
          for (const id of f['unmanaged-credential']!) {
            expect(id).toMatch(/^secret:hmac-sha256:[0-9a-f]{64}$/);
            expect(rulesOn(f, id)).toEqual(['unmanaged-credential']);
          }
          // Nobody accountable: exactly the discovered identities (no manifest claims any of them).
          expect(f['nobody-accountable']).toEqual(
            docs
              .filter((d) => !d.declared && !d.unmanaged)
              .map(key)
              .sort(),
          );

          // Manifests. payments-settlement-batch has full accountability: its only finding is its
          // static AWS access key.
          expect(rulesOn(f, SETTLEMENT)).toEqual(['static-key-where-federation-available']);
          expect(rulesOn(f, SETTLEMENT).filter((r) => ACCOUNTABILITY.includes(r))).toEqual([]);
          // Frank, its technical owner, left on 2026-09-30; the key dates from 2025-11-14 (366 days
          // old on a one-year policy), and nobody is named to revoke it.
          expect(rulesOn(f, STRIPE)).toEqual([
            'credential-not-rotated-after-owner-left',
            'no-control-owner',
            'no-revocation-path',
            'owner-departed',
            'rotation-overdue',
          ]);
          expect(rulesOn(f, DBT)).toEqual([
            'expired-credential-active',
            'no-approval',
            'no-control-owner',
            'no-revocation-path',
            'rotation-overdue',
          ]);
          expect(rulesOn(f, EXPORTER)).toEqual([
            'no-approval',
            'no-control-owner',
            'no-revocation-path',
            'shared-without-primary-team',
          ]);
          expect(rulesOn(f, 'snowflake:acme.eu-west-1:LOADER_SVC')).toEqual([
            'no-approval',
            'no-business-owner',
            'no-control-owner',
            'no-revocation-path',
          ]);
          // The support agent has a sponsor and only reads, comments and assigns: no agent finding.
          expect(rulesOn(f, 'support-triage-agent')).toEqual(['no-approval', 'no-control-owner']);
          expect(rulesOn(f, SALESFORCE)).toEqual(['no-approval']);

          // Later: the ledger certificate (and its identity) expires on 2026-12-15, the Salesforce
          // contract ends on 2027-01-31.
          expect(evaluatePack(docs, new Date('2026-12-16T00:00:00Z'))['expired-credential-active']).toEqual(
            [DBT, LEDGER_CERT].sort(),
          );
          expect(evaluatePack(docs, new Date('2027-01-31T12:00:00Z'))['vendor-contract-ended']).toEqual([]);
          expect(evaluatePack(docs, new Date('2027-02-01T00:00:00Z'))['vendor-contract-ended']).toEqual([
            SALESFORCE,
          ]);
        },
        { clock: testClock(NOW.toISOString()) },
      );
    });

    it('`evaluate` records exactly those findings, each routed to who must act, and only changes move them', async () => {
      await withSteward(
        dialect,
        async (env) => {
          const docs = await buildEstate(env);
          const byId = new Map(docs.map((d) => [d.id, d]));
          const held = (views: FindingView[]): Record<string, string[]> => {
            const out: Record<string, string[]> = Object.fromEntries(rules.map((r) => [r.id, []]));
            for (const v of views) out[v.rule]!.push(key(byId.get(v.subject.id)!));
            for (const ids of Object.values(out)) ids.sort();
            return out;
          };
          const run = (now: Date) => evaluate(env.steward, { rules, actor: 'policy', now, workers: 0 });

          const first = await run(NOW);
          expect(first.errors).toEqual([]);
          expect(first.identities).toBe(226);
          const open = await listFindings(env.steward.store);
          expect(first.opened).toBe(open.length);
          // the findings table holds what the rules say of the documents, no more, no less
          expect(held(open)).toEqual(evaluatePack(docs, NOW));

          for (const v of open) {
            const rule = rules.find((r) => r.id === v.rule)!;
            expect(v.status).toBe('open');
            expect(v.firstSeen).toBe(NOW.toISOString());
            expect(v.subject.name).toBe(byId.get(v.subject.id)!.name);
            expect(v.dueAt, v.id).toBe(
              new Date(NOW.getTime() + DEFAULT_SLA[rule.severity] * 86_400_000).toISOString(),
            );
            expect(v.frameworks['owasp-nhi-2025'] ?? v.frameworks['nist-csf-2.0'], v.rule).toBeDefined();
          }
          const on = (id: string) =>
            open
              .filter((v) => key(byId.get(v.subject.id)!) === id)
              .map((v) => [v.rule, v.assignee, v.assignedRole])
              .sort((a, b) => a[0]!.localeCompare(b[0]!));
          // Frank (the Stripe key's technical owner) left and nobody controls it: everything
          // falls through to the primary team.
          expect(on(STRIPE)).toEqual([
            ['credential-not-rotated-after-owner-left', 'team:payments', 'primary'],
            ['no-control-owner', 'team:payments', 'primary'],
            ['no-revocation-path', 'team:payments', 'primary'],
            ['owner-departed', 'team:payments', 'primary'],
            ['rotation-overdue', 'team:payments', 'primary'],
          ]);
          // a fully accountable identity: the finding goes to the role the rule names
          expect(on(SETTLEMENT)).toEqual([
            ['static-key-where-federation-available', 'person:leo@example.com', 'technical'],
          ]);
          // nobody claims kube-system/default: every finding on it is unassigned, and one says so
          const kube = on(KUBE_SYSTEM_DEFAULT);
          expect(kube.map(([, assignee, role]) => [assignee, role])).toEqual(kube.map(() => [null, null]));
          const nobody = open.find(
            (v) => v.rule === 'nobody-accountable' && key(byId.get(v.subject.id)!) === KUBE_SYSTEM_DEFAULT,
          );
          expect(nobody?.severity).toBe('critical');
          expect(
            await listFindings(env.steward.store, { owner: 'team:payments', rule: 'owner-departed' }),
          ).toHaveLength(1);

          // The same moment again: nothing changed, nothing is written.
          const again = await run(NOW);
          expect([again.opened, again.resolved, again.reopened, again.reassigned, again.events]).toEqual([
            0, 0, 0, 0, 0,
          ]);

          // A month on the ledger certificate has expired; by February the Salesforce contract has ended.
          const december = new Date('2026-12-16T00:00:00Z');
          const later = await run(december);
          const expected = evaluatePack(docs, december);
          const inDecember = held(await listFindings(env.steward.store));
          expect(inDecember).toEqual(expected);
          expect(inDecember['expired-credential-active']).toEqual([DBT, LEDGER_CERT].sort());
          const before = held(open);
          const diff = (a: Record<string, string[]>, b: Record<string, string[]>) =>
            Object.keys(a).reduce((n, r) => n + a[r]!.filter((id) => !b[r]!.includes(id)).length, 0);
          expect(later.opened).toBe(diff(expected, before));
          expect(later.resolved).toBe(diff(before, expected));
          expect(later.opened).toBeGreaterThan(0);
          const resolved = await listFindings(env.steward.store, { status: 'resolved' });
          expect(resolved).toHaveLength(later.resolved);
          for (const v of resolved) expect(v.resolvedAt).toBe(december.toISOString());

          const february = new Date('2027-02-01T00:00:00Z');
          await run(february);
          const feb = await listFindings(env.steward.store, { rule: 'vendor-contract-ended' });
          expect(feb.map((v) => key(byId.get(v.subject.id)!))).toEqual([SALESFORCE]);
          expect(feb[0]!.firstSeen).toBe(february.toISOString());
          expect(held(await listFindings(env.steward.store))).toEqual(evaluatePack(docs, february));
        },
        { clock: testClock(NOW.toISOString()) },
      );
    });
  },
);
