import fs from 'node:fs';
import path from 'node:path';
import { createHmac } from 'node:crypto';
import { sourceAttributes } from '../helpers/files.js';
import { dumpDatabase } from '../helpers/dump.js';
import { describe, it, expect } from 'vitest';
import { dialects, withSteward, type TestEnv } from '../helpers/steward.js';
import { corpus, corporaAvailable } from '../helpers/corpora.js';
import { tempFiles } from '../helpers/files.js';
import { importer } from '../../src/importers/gitleaks/index.js';
import { importDiscovery } from '../../src/inventory/import-discovery.js';
import { resolveIdentity } from '../../src/inventory/queries.js';
import { ValidationError } from '../../src/domain/errors.js';
import type { ReadOptions } from '../../src/importers/source.js';

const GL = 'secret-scanning/gitleaks-testdata';
const JSON_SIMPLE = corpus(`${GL}/expected/report/json_simple.json`);
const SARIF_SIMPLE = corpus(`${GL}/expected/report/sarif_simple.sarif`);
const BASELINE_JSON = corpus(`${GL}/baseline/baseline.json`);
const BASELINE_SARIF = corpus(`${GL}/baseline/baseline.sarif`);

/** Keys for tests that never reach a database. */
const testKeys: ReadOptions['keys'] = {
  fingerprint: (s) => 'hmac-sha256:' + createHmac('sha256', 'test-key').update(s, 'utf8').digest('hex'),
};
const opts = (skipInvalid = false): ReadOptions => ({ skipInvalid, keys: testKeys });

async function credentialOf(env: TestEnv, externalId: string) {
  const id = await resolveIdentity(env.steward.store, externalId);
  const rows = await env.steward.store.db
    .selectFrom('credentials')
    .selectAll()
    .where('identity_id', '=', id.id)
    .execute();
  expect(rows).toHaveLength(1);
  const c = rows[0]!;
  return {
    ...c,
    locations: JSON.parse(c.locations ?? '[]') as string[],
    attributes: JSON.parse(c.attributes ?? '{}') as Record<string, unknown>,
  };
}

async function read(env: TestEnv, file: string) {
  return importer.read([file], { skipInvalid: false, keys: env.steward.keys });
}

async function problemsOf(p: Promise<unknown>): Promise<ValidationError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ValidationError);
  return err as ValidationError;
}

// Hand-written fixture following gitleaks' published JSON report schema (the corpus holds no
// report with an AWS key). The key id AKIALALEMEL33243OLIA is the one leaked in gitleaks' own
// test repository (testdata/expected/git/small.txt); the other values are made up.
const AWS_ID = 'AKIALALEMEL33243OLIA';
const AWS_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const GITHUB_PAT = 'ghp_Zq4mX9vB2nL7kT1rW8yH3sD6fJ0pC5gA2eUo';
function finding(over: Record<string, unknown>): Record<string, unknown> {
  return {
    RuleID: 'aws-access-token',
    Description: 'Identified a pattern that may indicate AWS credentials.',
    StartLine: 20,
    EndLine: 20,
    StartColumn: 17,
    EndColumn: 38,
    Match: `awsToken := "${AWS_ID}"`,
    Secret: AWS_ID,
    File: 'main.go',
    SymlinkFile: '',
    Commit: '1b6da43b82b22e4eaa10bcf8ee591e91abbfc587',
    Entropy: 3.5,
    Author: 'Zach Rice',
    Email: 'zach@example.com',
    Date: '2021-11-02T23:37:53Z',
    Message: 'opps I added a secret at line 20',
    Tags: [],
    Fingerprint: '1b6da43b82b22e4eaa10bcf8ee591e91abbfc587:main.go:aws-access-token:20',
    ...over,
  };
}
const FIXTURE = [
  // the same key again, in a later commit and another file: the same secret, a second location
  finding({
    File: 'api/api.go',
    StartLine: 9,
    Commit: '9a1f0c7e2d3b4a5f6e7d8c9b0a1f2e3d4c5b6a79',
    Date: '2021-12-01T08:00:00Z',
    Author: 'Later Author',
  }),
  finding({}),
  finding({}), // gitleaks reports a finding once per commit; a duplicate adds nothing
  finding({
    RuleID: 'generic-api-key',
    Description: 'Detected a Generic API Key.',
    File: 'config/credentials',
    StartLine: 3,
    Match: `aws_secret_access_key = ${AWS_SECRET}`,
    Secret: AWS_SECRET,
  }),
  finding({
    RuleID: 'github-pat',
    Description: 'Uncovered a GitHub Personal Access Token.',
    File: '.github/workflows/ci.yml',
    StartLine: 12,
    Match: `token: ${GITHUB_PAT}`,
    Secret: GITHUB_PAT,
  }),
];

describe.skipIf(!corporaAvailable).each(dialects)('gitleaks importer on $name', (dialect) => {
  it('gitleaks JSON report from its test data (json_simple.json): one finding at auth.py:1, no secret value anywhere in the database, re-import writes nothing', async () => {
    await withSteward(dialect, async (env) => {
      const { batch, skipped } = await read(env, JSON_SIMPLE);
      expect(skipped).toEqual([]);
      expect(batch).toMatchObject({ source: 'gitleaks', scope: 'json_simple.json', snapshot: true });
      expect(batch.identities).toHaveLength(1);
      const r = await importDiscovery(env.steward, batch, { actor: 'test' });
      expect(r.identities).toEqual({ new: 1, changed: 0, unchanged: 0, vanished: 0 });
      expect(r.credentials.new).toBe(1);

      const fp = env.steward.keys.fingerprint('a secret');
      const id = await resolveIdentity(env.steward.store, `secret:${fp}`);
      expect(id).toMatchObject({
        name: 'test-rule in auth.py',
        kind: 'secret',
        source: 'gitleaks',
        status: 'active',
      });
      expect(sourceAttributes(id.attributes)).toEqual({ unmanaged: true, rule: 'test-rule' });
      const c = await credentialOf(env, `secret:${fp}`);
      expect(c).toMatchObject({ external_id: fp, fingerprint: fp, kind: 'secret' });
      expect(c.locations).toEqual(['git:auth.py:1@0000000000000000']);
      expect(c.attributes).toEqual({
        rule: 'test-rule',
        author: 'John Doe',
        email: 'johndoe@gmail.com',
        date: '10-19-2003',
        commit: '0000000000000000',
      });

      const dump = await dumpDatabase(env);
      expect(dump).toContain('auth.py');
      expect(dump).not.toContain('a secret'); // Secret
      expect(dump).not.toContain('line containing secret'); // Match
      expect(dump).not.toContain('opps'); // commit message

      const head = (await env.steward.ledger.head()).seq;
      const again = await importDiscovery(env.steward, (await read(env, JSON_SIMPLE)).batch, {
        actor: 'test',
      });
      expect(again.events).toBe(0);
      expect((await env.steward.ledger.head()).seq).toBe(head);
    });
  });

  it('the SARIF log of the same finding (sarif_simple.sarif) lands on the same identity without storing the snippet; the empty SARIF baseline imports nothing', async () => {
    await withSteward(dialect, async (env) => {
      await importDiscovery(env.steward, (await read(env, JSON_SIMPLE)).batch, { actor: 'test' });
      const { batch } = await read(env, SARIF_SIMPLE);
      expect(batch.scope).toBe('sarif_simple.sarif');
      const r = await importDiscovery(env.steward, batch, { actor: 'test' });
      expect(r.identities).toEqual({ new: 0, changed: 1, unchanged: 0, vanished: 0 }); // one more sighting
      const fp = env.steward.keys.fingerprint('a secret');
      const id = await resolveIdentity(env.steward.store, `secret:${fp}`);
      expect(JSON.parse(id.sightings!)).toEqual(['gitleaks:json_simple.json', 'gitleaks:sarif_simple.sarif']);
      expect((await credentialOf(env, `secret:${fp}`)).locations).toEqual(['git:auth.py:1@0000000000000000']);
      expect(await dumpDatabase(env)).not.toContain('a secret');

      const empty = await read(env, BASELINE_SARIF);
      expect(empty.batch.identities).toEqual([]);
      expect((await importDiscovery(env.steward, empty.batch, { actor: 'test' })).events).toBe(0);
    });
  });

  it('a redacted report (gitleaks baseline.json, secrets masked with *): two findings keyed by their location, marked redacted, without a fingerprint', async () => {
    await withSteward(dialect, async (env) => {
      const { batch } = await read(env, BASELINE_JSON);
      expect(batch.identities.map((i) => i.name)).toEqual([
        'pypi-upload-token in detect/detect_test.go',
        'pypi-upload-token in detect/detect_test.go',
      ]);
      await importDiscovery(env.steward, batch, { actor: 'test' });
      const commit = '9326f35380636bcbe61e94b0584d1618c4b5c2c2';
      const fp = env.steward.keys.fingerprint(`${commit}:detect/detect_test.go:33:pypi-upload-token`);
      const id = await resolveIdentity(env.steward.store, `secret:${fp}`);
      expect(sourceAttributes(id.attributes)).toEqual({
        unmanaged: true,
        rule: 'pypi-upload-token',
        description: 'PyPI upload token',
        redacted: true,
      });
      const c = await credentialOf(env, `secret:${fp}`);
      expect(c).toMatchObject({ external_id: fp, fingerprint: null, kind: 'api-key' });
      expect(c.locations).toEqual([`git:detect/detect_test.go:33@${commit}`]);
      // the masked author and email are not facts
      expect(c.attributes).toEqual({
        rule: 'pypi-upload-token',
        date: '2022-03-07T14:33:06.000Z',
        commit,
        redacted: true,
      });
    });
  });

  it("hand-written fixture following gitleaks' published report schema: the AWS key id is kept for linking, the AWS secret key and the GitHub token are not; one key in two places is one identity; a later report vanishes a fixed leak", async () => {
    await withSteward(dialect, async (env) => {
      const dir = tempFiles({ 'gitleaks-report.json': JSON.stringify(FIXTURE, null, 1) });
      const file = path.join(dir, 'gitleaks-report.json');
      const { batch } = await read(env, file);
      expect(batch.identities.map((i) => i.name)).toEqual([
        'aws-access-token in main.go', // the earliest finding names it
        'generic-api-key in config/credentials',
        'github-pat in .github/workflows/ci.yml',
      ]);
      const r = await importDiscovery(env.steward, batch, { actor: 'test' });
      expect(r.identities.new).toBe(3);

      const awsFp = env.steward.keys.fingerprint(AWS_ID);
      const aws = await credentialOf(env, `secret:${awsFp}`);
      expect(aws).toMatchObject({ external_id: awsFp, fingerprint: awsFp, kind: 'aws-access-key' });
      expect(aws.locations).toEqual([
        'git:api/api.go:9@9a1f0c7e2d3b4a5f6e7d8c9b0a1f2e3d4c5b6a79',
        'git:main.go:20@1b6da43b82b22e4eaa10bcf8ee591e91abbfc587',
      ]);
      expect(aws.attributes).toEqual({
        rule: 'aws-access-token',
        author: 'Zach Rice',
        email: 'zach@example.com',
        date: '2021-11-02T23:37:53.000Z',
        commit: '1b6da43b82b22e4eaa10bcf8ee591e91abbfc587',
        awsAccessKeyId: AWS_ID,
      });
      const awsId = await resolveIdentity(env.steward.store, `secret:${awsFp}`);
      expect(sourceAttributes(awsId.attributes)).toMatchObject({ unmanaged: true, awsAccessKeyId: AWS_ID });

      const generic = await credentialOf(env, `secret:${env.steward.keys.fingerprint(AWS_SECRET)}`);
      expect(generic.kind).toBe('secret');
      expect(generic.attributes.awsAccessKeyId).toBeUndefined();
      expect((await credentialOf(env, `secret:${env.steward.keys.fingerprint(GITHUB_PAT)}`)).kind).toBe(
        'github-token',
      );

      const dump = await dumpDatabase(env);
      expect(dump).toContain(AWS_ID); // an identifier, kept on purpose
      expect(dump).not.toContain(AWS_SECRET);
      expect(dump).not.toContain(GITHUB_PAT);
      expect(dump).not.toContain('awsToken :='); // Match
      expect(dump).not.toContain('opps I added'); // commit message

      // the GitHub token was removed and the next report (same file name) no longer lists it
      env.clock.advance(86_400_000);
      fs.writeFileSync(file, JSON.stringify(FIXTURE.slice(0, 4)));
      const later = await importDiscovery(env.steward, (await read(env, file)).batch, { actor: 'test' });
      expect(later.identities).toEqual({ new: 0, changed: 0, unchanged: 2, vanished: 1 });
      expect(
        (await resolveIdentity(env.steward.store, `secret:${env.steward.keys.fingerprint(GITHUB_PAT)}`))
          .status,
      ).toBe('vanished');
    });
  });
});

describe.skipIf(!corporaAvailable)('gitleaks importer: hostile inputs', () => {
  it('CSV and JUnit reports from the gitleaks test data are refused with a problem saying so', async () => {
    const csv = corpus(`${GL}/expected/report/csv_simple.csv`);
    const junit = corpus(`${GL}/expected/report/junit_simple.xml`);
    expect((await problemsOf(importer.read([csv], opts(true)))).problems).toEqual([
      {
        file: csv,
        message:
          'expected a gitleaks JSON report (--report-format json) or SARIF log (--report-format sarif), got text (CSV and template reports are not supported)',
      },
    ]);
    expect((await problemsOf(importer.read([junit], opts()))).problems[0]!.message).toMatch(
      /got XML \(JUnit reports are not supported\)$/,
    );
  });

  it('truncated JSON, an empty file, a mapping that is no SARIF, and SARIF from another tool are refused even with skipInvalid', async () => {
    const dir = tempFiles({
      'cut.json': JSON.stringify(FIXTURE).slice(0, 700),
      'empty.json': '  \n',
      'object.json': JSON.stringify(FIXTURE[0]),
      'other.sarif': JSON.stringify({
        version: '2.1.0',
        runs: [{ tool: { driver: { name: 'semgrep' } }, results: [] }],
      }),
    });
    const msg = async (name: string) =>
      (await problemsOf(importer.read([path.join(dir, name)], opts(true)))).problems.map((p) =>
        p.field ? `${p.field}: ${p.message}` : p.message,
      );
    expect((await msg('cut.json'))[0]).toMatch(
      /^expected complete JSON \(truncated or malformed\?\), got a syntax error/,
    );
    expect(await msg('empty.json')).toEqual([
      'expected a gitleaks JSON report or SARIF log, got an empty input',
    ]);
    expect(await msg('object.json')).toEqual([
      'expected a list of gitleaks findings or a SARIF log (a mapping with runs), got a mapping without runs',
    ]);
    expect(await msg('other.sarif')).toEqual([
      'runs[0].tool.driver.name: expected a log written by gitleaks, got string "semgrep"',
    ]);
  });

  it('findings of the wrong shape are rejected with their path, never echoing a secret; skipInvalid skips only them', async () => {
    const bad = [
      finding({ RuleID: 42 }),
      finding({ StartLine: '20' }),
      finding({ Secret: 12345678901234 }),
      'AKIALALEMEL33243OLIA',
      finding({ Match: ['s3cr3t-in-a-list'] }),
      finding({ File: 'ok.go' }),
    ];
    const dir = tempFiles({ 'bad.json': JSON.stringify(bad) });
    const file = path.join(dir, 'bad.json');
    const e = await problemsOf(importer.read([file], opts()));
    expect(e.problems).toEqual([
      { file, field: '[0].RuleID', message: 'expected the rule id, got number 42' },
      { file, field: '[1].StartLine', message: 'expected a line number, got string "20"' },
      { file, field: '[2].Secret', message: 'expected the secret as a string, got a number' },
      {
        file,
        field: '[3]',
        message: 'expected a gitleaks finding (a mapping with RuleID, File, StartLine, Secret), got a string',
      },
      { file, field: '[4].Match', message: 'expected a string, got a list' },
    ]);
    expect(e.message).not.toContain('12345678901234');
    expect(e.message).not.toContain('s3cr3t');
    expect(e.message).not.toContain('AKIA');

    const { batch, skipped } = await importer.read([file], opts(true));
    expect(skipped).toHaveLength(5);
    expect(batch.identities.map((i) => i.credentials?.[0]?.locations)).toEqual([
      ['git:ok.go:20@1b6da43b82b22e4eaa10bcf8ee591e91abbfc587'],
    ]);
  });
});
