/**
 * secretlint rules for what the recommended preset lacks.
 *
 * - AWS key pairs. The preset's AWS rule reports a secret access key only next to a label
 *   (`aws_secret_access_key = …`) and, with `enableIDScanRule`, access key ids on their own: it
 *   never says which key id a secret belongs to. A secret access key is only useful to Steward
 *   together with its key id (the id is how CloudTrail, the credential report and manifests name
 *   the key), so this rule pairs them.
 * - GitLab tokens other than personal access tokens (deploy, runner, trigger, CI/CD job …
 *   tokens): machine credentials, which the preset's GitLab rule (`glpat-` only) does not know.
 */
import type { SecretLintRuleCreator, SecretLintSourceCode } from '@secretlint/types';

export const AWS_KEY_PAIR_RULE = '@steward/secretlint-rule-aws-key-pair';

/** Access key ids that have a secret access key: long-term (AKIA) and session (ASIA). */
const KEY_ID = /\b((?:AKIA|ASIA)[A-Z0-9]{16})\b/g;
/** A secret access key: 40 characters of base64 (30 random bytes, so never padded). */
const SECRET_KEY = /(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])/g;
/** How far (in lines) a secret access key may be from its key id. */
const WINDOW = 5;

/** AWS documentation's example keys (the preset ignores these too). */
const isDocumentationExample = (id: string, secret?: string): boolean =>
  id.endsWith('EXAMPLE') || (secret !== undefined && secret.endsWith('EXAMPLEKEY'));

/** Random base64 has every character class; words, paths, hex digests and hashes do not. */
const looksRandom = (s: string): boolean =>
  /[a-z]/.test(s) && /[A-Z]/.test(s) && /[0-9]/.test(s) && !/(.)\1{5}/.test(s);

interface Match {
  text: string;
  start: number;
  line: number;
}

function matches(source: SecretLintSourceCode, re: RegExp, group: number): Match[] {
  const out: Match[] = [];
  for (const m of source.content.matchAll(re)) {
    const text = m[group] ?? '';
    const start = (m.index ?? 0) + m[0].indexOf(text);
    out.push({ text, start, line: source.indexToPosition(start).line });
  }
  return out;
}

const messages = {
  AWSAccessKeyPair: {
    // The key id is an identifier, not a secret; the secret access key is never put in the message.
    en: (props: { ID: string; KEY: string }) => `found AWS access key ${props.ID} with its secret access key`,
  },
};

/**
 * Reports an AWS access key id (`AKIA…`/`ASIA…`) together with the secret access key nearest to
 * it (a 40-character random base64 string within five lines), once at each of the two places,
 * with data `{ID, KEY}`. A secret is paired with one key id only.
 */
export const awsKeyPairRule: SecretLintRuleCreator = {
  messages,
  meta: {
    id: AWS_KEY_PAIR_RULE,
    recommended: true,
    type: 'scanner',
    supportedContentTypes: ['text'],
  },
  create(context) {
    const t = context.createTranslator(messages);
    return {
      file(source) {
        const ids = matches(source, KEY_ID, 1).filter((m) => !isDocumentationExample(m.text));
        if (ids.length === 0) return;
        const secrets = matches(source, SECRET_KEY, 0).filter((m) => looksRandom(m.text));
        const used = new Set<number>();
        for (const id of ids) {
          let best: Match | undefined;
          let bestDistance = Infinity;
          for (const s of secrets) {
            if (used.has(s.start)) continue;
            const lines = Math.abs(s.line - id.line);
            if (lines > WINDOW) continue;
            // nearer lines first; on the same distance, the secret after the id (credentials files, CSV)
            const distance = lines * 2 + (s.start < id.start ? 1 : 0);
            if (distance < bestDistance) {
              best = s;
              bestDistance = distance;
            }
          }
          if (best === undefined || isDocumentationExample(id.text, best.text)) continue;
          used.add(best.start);
          const message = t('AWSAccessKeyPair', { ID: id.text, KEY: best.text });
          context.report({ message, range: [best.start, best.start + best.text.length] });
          if (id.line !== best.line)
            context.report({ message, range: [id.start, id.start + id.text.length] });
        }
      },
    };
  },
};

export const GITLAB_TOKENS_RULE = '@steward/secretlint-rule-gitlab-tokens';

/**
 * GitLab's documented token prefixes other than `glpat-` (which the preset's GitLab rule covers):
 * deploy, runner, CI/CD job, trigger, feed, incoming mail, agent, SCIM, feature flag, workspace
 * tokens and OAuth application secrets, and the legacy `GR1348941` runner registration token.
 * Most are credentials of machines, not people: exactly what Steward keeps an inventory of.
 */
const GITLAB_TOKEN =
  /(?<![A-Za-z0-9_-])(?:(?:gloas|gldt|glrtr|glrt|glcbt|glptt|glft|glimt|glagent|glsoat|glffct|glwt)-[A-Za-z0-9_.-]{20,300}|GR1348941[A-Za-z0-9_-]{20,})(?![A-Za-z0-9_.-])/g;

const gitlabMessages = {
  GITLAB_TOKEN: {
    en: (props: { TOKEN: string; PREFIX: string }) => `found a GitLab ${props.PREFIX} token`,
  },
};

/** Reports GitLab tokens by their documented prefixes, with data `{TOKEN, PREFIX}`. */
export const gitlabTokensRule: SecretLintRuleCreator = {
  messages: gitlabMessages,
  meta: {
    id: GITLAB_TOKENS_RULE,
    recommended: true,
    type: 'scanner',
    supportedContentTypes: ['text'],
  },
  create(context) {
    const t = context.createTranslator(gitlabMessages);
    return {
      file(source) {
        for (const m of source.content.matchAll(GITLAB_TOKEN)) {
          const start = m.index ?? 0;
          const prefix = m[0].startsWith('GR1348941') ? 'GR1348941' : m[0].slice(0, m[0].indexOf('-'));
          context.report({
            message: t('GITLAB_TOKEN', { TOKEN: m[0], PREFIX: prefix }),
            range: [start, start + m[0].length],
          });
        }
      },
    };
  },
};
