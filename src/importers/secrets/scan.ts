/**
 * Scans text for secrets with secretlint (`@secretlint/core` and the recommended preset, plus the
 * rules in `rules.ts`), and turns each report into a hit that holds the secret's keyed
 * fingerprint and never the secret.
 *
 * secretlint puts the secret in a report's `data` (and quotes it in `message`): `data` is read
 * only to fingerprint it and to find an AWS key id, `message` never; neither leaves this module.
 */
import { lintSource } from '@secretlint/core';
import { secretLintProfiler } from '@secretlint/profiler';
import { creator as recommended } from '@secretlint/secretlint-rule-preset-recommend';
import type { SecretLintCoreConfig, SecretLintCoreResultMessage } from '@secretlint/types';
import { AWS_KEY_ID } from '../findings.js';
import { AWS_KEY_PAIR_RULE, awsKeyPairRule, GITLAB_TOKENS_RULE, gitlabTokensRule } from './rules.js';

/** One secret found in a text: where, by which rule, and its keyed fingerprint. */
export interface ScanHit {
  /** 1-based line where the secret starts. */
  line: number;
  /** `<rule>/<messageId>`, e.g. `github/GITHUB_TOKEN`, `aws-key-pair/AWSAccessKeyPair`. */
  rule: string;
  /** Credential kind, e.g. `aws-access-key`, `github-token`, `private-key`. */
  kind: string;
  fingerprint: string;
  awsAccessKeyId: string | undefined;
}

// secretlint's core marks the start and end of every file and rule in the global performance
// timeline and its profiler keeps every entry (and searches them all at each mark): memory and
// time grow without bound over a long history. Steward does not profile scans, so marks are off.
secretLintProfiler.mark = () => {};

const PRESET_AWS = '@secretlint/secretlint-rule-aws';
const URL_CREDENTIAL_RULES = new Set([
  '@secretlint/secretlint-rule-basicauth',
  '@secretlint/secretlint-rule-database-connection-string',
]);

const CONFIG: SecretLintCoreConfig = {
  rules: [
    {
      id: recommended.meta.id,
      rule: recommended,
      rules: [
        // Key ids on their own too (a leaked id names the key), except AWS documentation's
        // placeholders (…EXAMPLE, …EXAMPLEKEY); an account id is no secret.
        {
          id: PRESET_AWS,
          options: { enableIDScanRule: true, allows: ['/EXAMPLE/'] },
          allowMessageIds: ['AWSAccountID'],
        },
      ],
    },
    { id: AWS_KEY_PAIR_RULE, rule: awsKeyPairRule },
    { id: GITLAB_TOKENS_RULE, rule: gitlabTokensRule },
  ],
};

/** Rule names as found in `rule` attributes: the rule package without its `secretlint-rule-` prefix. */
const shortRule = (id: string): string => id.replace(/^@[^/]+\//, '').replace(/^secretlint-rule-/, '');

/** Credential kind from a secretlint rule and message id. */
export function credentialKind(ruleId: string, messageId: string): string {
  const rule = shortRule(ruleId);
  if (rule === 'aws-key-pair' || messageId === 'AWSAccessKeyID') return 'aws-access-key';
  if (messageId === 'AWSSecretAccessKey') return 'aws-secret-key';
  if (rule === 'github' || messageId === 'PackageJSON_xOauthToken') return 'github-token';
  if (rule === 'gitlab' || rule === 'gitlab-tokens') return 'gitlab-token';
  if (rule === 'slack') return messageId === 'IncomingWebhook' ? 'slack-webhook' : 'slack-token';
  if (rule === 'privatekey') return 'private-key';
  if (rule === 'gcp') return 'gcp-service-account-key';
  if (rule === 'basicauth' || rule === 'database-connection-string') return 'password';
  if (
    /^(npm|openai|anthropic|groq|huggingface|linear|notion|sendgrid|shopify|databricks|vercel|figma|docker|grafana|1password|hashicorp-vault)$/.test(
      rule,
    )
  )
    return 'api-key';
  return 'secret';
}

/** The string values of a report's data (secretlint's convention: these are what it found). */
function dataValues(m: SecretLintCoreResultMessage): string[] {
  const data = (m.data ?? {}) as Record<string, unknown>;
  return Object.values(data).filter((v): v is string => typeof v === 'string' && v !== '');
}

/**
 * The secret a report is about. Rules put it in `data`; their `range` is not always its extent
 * (the AWS rule's starts at the label), so the longest data value found in the text at the
 * report is taken, else the reported range; a GCP service account key file is its private key,
 * and a URL with credentials (basic auth, database connection strings) its password.
 */
function secretOf(m: SecretLintCoreResultMessage, content: string): string {
  if (m.messageId === 'PrivateKeyJSON') {
    try {
      const key = (JSON.parse(content) as Record<string, unknown>).private_key;
      if (typeof key === 'string') return key;
    } catch {
      // the rule parsed it: cannot happen; fall back to the whole file
    }
    return content;
  }
  const [start, end] = m.range;
  if (URL_CREDENTIAL_RULES.has(m.ruleId)) {
    // The rules report the whole URL (with whatever follows it on the line): the secret is its password.
    const password = /:\/\/[^:@/\s]*:([^@/\s]+)@/.exec(content.slice(start, end))?.[1];
    if (password !== undefined) {
      try {
        return decodeURIComponent(password);
      } catch {
        return password;
      }
    }
  }
  const lineEnd = content.indexOf('\n', end);
  const limit = lineEnd === -1 ? content.length : lineEnd;
  let best: string | undefined;
  for (const v of dataValues(m)) {
    const at = content.indexOf(v, start);
    if (at !== -1 && at <= limit && (best === undefined || v.length > best.length)) best = v;
  }
  return best ?? content.slice(start, end);
}

/** Scans one text; `file` is its path (secretlint's rules look at the name and extension). */
export async function scanText(
  content: string,
  file: string,
  fingerprint: (secret: string) => string,
): Promise<ScanHit[]> {
  const result = await lintSource({
    source: { content, filePath: file, contentType: 'text' },
    // noPhysicFilePath: no rule reads the file itself (in a git history it is not on disk).
    options: { config: CONFIG, locale: 'en', noPhysicFilePath: true },
  });
  const pairedIds = new Set<string>();
  const pairedKeys = new Set<string>();
  for (const m of result.messages) {
    if (m.ruleId !== AWS_KEY_PAIR_RULE) continue;
    const data = m.data as { ID: string; KEY: string };
    pairedIds.add(data.ID);
    pairedKeys.add(data.KEY);
  }
  const hits: ScanHit[] = [];
  const seen = new Set<string>();
  for (const m of result.messages) {
    let secret: string;
    let awsAccessKeyId: string | undefined;
    if (m.ruleId === AWS_KEY_PAIR_RULE) {
      const data = m.data as { ID: string; KEY: string };
      secret = data.KEY;
      awsAccessKeyId = data.ID;
    } else {
      secret = secretOf(m, content);
      // A key id or secret key the pair rule reported with its other half is that finding.
      if (m.messageId === 'AWSAccessKeyID' && pairedIds.has(secret)) continue;
      if (m.messageId === 'AWSSecretAccessKey' && pairedKeys.has(secret)) continue;
      awsAccessKeyId = m.messageId === 'AWSAccessKeyID' ? AWS_KEY_ID.exec(secret)?.[1] : undefined;
    }
    const line = m.loc.start.line;
    const fp = fingerprint(secret);
    const key = `${line}\u0000${fp}`;
    if (seen.has(key)) continue;
    seen.add(key);
    hits.push({
      line,
      rule: `${shortRule(m.ruleId)}/${m.messageId}`,
      kind: credentialKind(m.ruleId, m.messageId),
      fingerprint: fp,
      awsAccessKeyId,
    });
  }
  return hits;
}
