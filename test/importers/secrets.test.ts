import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { dumpDatabase } from '../helpers/dump.js';
import { describe, expect, it } from 'vitest';
import { dialects, withSteward, type TestEnv } from '../helpers/steward.js';
import { cli } from '../helpers/cli.js';
import { corpus, corporaAvailable } from '../helpers/corpora.js';
import { sourceAttributes, tempFiles } from '../helpers/files.js';
import { importer } from '../../src/importers/secrets/index.js';
import { scanText } from '../../src/importers/secrets/scan.js';
import { importDiscovery } from '../../src/inventory/import-discovery.js';
import { resolveIdentity } from '../../src/inventory/queries.js';
import { ValidationError } from '../../src/domain/errors.js';
import type { ReadOptions } from '../../src/importers/source.js';

/** Keys for tests that never reach a database. */
const testKeys: ReadOptions['keys'] = {
  fingerprint: (s) => 'hmac-sha256:' + createHmac('sha256', 'test-key').update(s, 'utf8').digest('hex'),
};

// Made-up secrets in the providers' formats, assembled here so that this file holds no literal
// token for other scanners to trip over. AWS: a key id and its 40-character secret access key.
const AWS_ID = ['AKIA', '2OGYBAH6STEWARD1'].join('');
const AWS_SECRET = ['Zq4mX9vB2nL7kT1rW8yH', '3sD6fJ0pC5gA2eUoQ7w/'].join('');
const LONE_AWS_ID = ['AKIA', 'QW3RTY7UI0PLKJH5'].join('');
const GITHUB_PAT = ['ghp', 'N7rT2kLm9QwX4vB8cZ1yH6sD3fJ0pA5gE2uR'].join('_');
const SLACK_WEBHOOK = [
  'https://hooks.slack.com/services',
  'T0A1B2C3D',
  'B4E5F6G7H',
  'q8W9e0R1t2Y3u4I5o6P7a8S9',
].join('/');
const DB_PASSWORD = 'Vx7!pQ2#mK9zR4tW';
const PG_URL = `postgres://billing:${DB_PASSWORD}@db.internal.example:5432/billing`;
const PRIVATE_KEY = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  .privateKey.export({ type: 'pkcs8', format: 'pem' })
  .toString();
const PEM_BODY = PRIVATE_KEY.split('\n')[1]!; // a line of the key's base64

function expectNoSecretIn(text: string): void {
  for (const secret of [AWS_SECRET, GITHUB_PAT, SLACK_WEBHOOK, DB_PASSWORD, PEM_BODY, 'BEGIN PRIVATE KEY'])
    expect(text).not.toContain(secret);
}

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

async function problemsOf(p: Promise<unknown>): Promise<ValidationError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ValidationError);
  return err as ValidationError;
}

/** A working tree with secrets, and things the scanner must pass over. */
function workingTree(): string {
  const dir = tempFiles({
    'README.md': '# billing\n\nNothing secret here; see AWS docs for AKIAIOSFODNN7EXAMPLE.\n',
    '.aws/credentials': `[default]\naws_access_key_id = ${AWS_ID}\naws_secret_access_key = ${AWS_SECRET}\nregion = eu-west-1\n`,
    '.env': `APP_ENV=prod\n\nGITHUB_TOKEN=${GITHUB_PAT}\n`,
    'deploy/notify.sh': `#!/bin/sh\n# post to the channel\ncurl -X POST ${SLACK_WEBHOOK} -d @msg.json\n`,
    'deploy/tls/server.key': PRIVATE_KEY,
    'src/db.ts': `export const url =\n  '${PG_URL}';\n`,
    'src/report.py': `# the key id of the reporting user, its secret is in the vault\nKEY_ID = "${LONE_AWS_ID}"\n`,
    // passed over: version control internals, dependencies
    '.git/config': `[credential]\n\thelper = store\n# ${GITHUB_PAT}\n`,
    'node_modules/leaky/index.js': `module.exports = '${GITHUB_PAT}';\n`,
  });
  // a binary file (a NUL byte early on) holding a token
  fs.writeFileSync(
    path.join(dir, 'deploy/app.bin'),
    Buffer.concat([Buffer.from([0, 1, 2, 0]), Buffer.from(GITHUB_PAT)]),
  );
  // a file over the size limit the tests use (64 KiB)
  fs.writeFileSync(path.join(dir, 'dump.sql'), `-- ${GITHUB_PAT}\n` + 'x'.repeat(70 * 1024));
  // symbolic links: one out of the tree (to a file with a token), one inside it
  const outside = tempFiles({ 'stolen.env': `GITHUB_TOKEN=${GITHUB_PAT}\n` });
  fs.symlinkSync(path.join(outside, 'stolen.env'), path.join(dir, 'linked.env'));
  fs.symlinkSync(path.join(dir, '.env'), path.join(dir, 'deploy/.env'));
  return dir;
}

const read = (env: TestEnv, paths: string[], extra: Partial<ReadOptions> = {}) =>
  importer.read(paths, { skipInvalid: false, keys: env.steward.keys, maxBytes: 64 * 1024, ...extra });

/** Runs git in `dir` with a fixed identity and clock and no user or system configuration. */
function git(
  dir: string,
  args: string[],
  when = '2024-01-01T00:00:00Z',
  who = ['Dev One', 'one@example.com'],
) {
  return execFileSync('git', ['-c', 'commit.gpgsign=false', ...args], {
    cwd: dir,
    encoding: 'utf8',
    env: {
      ...process.env,
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_AUTHOR_NAME: who[0],
      GIT_AUTHOR_EMAIL: who[1],
      GIT_AUTHOR_DATE: when,
      GIT_COMMITTER_NAME: who[0],
      GIT_COMMITTER_EMAIL: who[1],
      GIT_COMMITTER_DATE: when,
    },
  }).trim();
}

function write(dir: string, file: string, content: string) {
  fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
  fs.writeFileSync(path.join(dir, file), content);
}

/**
 * A repository whose history leaked a token that is gone from its files: committed in one file,
 * copied into another by a second author, then removed from both; a Slack webhook exists only
 * on an unmerged branch. Returns the commit ids.
 */
function leakyRepository() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'steward-repo-'));
  git(dir, ['init', '-q', '-b', 'main']);
  write(dir, 'app/settings.py', `DEBUG = False\nTIMEOUT = 30\nGITHUB_TOKEN = "${GITHUB_PAT}"\n`);
  write(dir, 'README.md', '# service\n');
  git(dir, ['add', '-A']);
  git(dir, ['commit', '-q', '-m', 'first version'], '2024-01-10T09:00:00+01:00');
  const first = git(dir, ['rev-parse', 'HEAD']);
  write(
    dir,
    'scripts/release.sh',
    `#!/bin/sh\nset -e\n\n# token for the release API\nexport GH=${GITHUB_PAT}\n`,
  );
  git(dir, ['add', '-A']);
  git(dir, ['commit', '-q', '-m', 'release script'], '2024-02-01T12:00:00Z', ['Dev Two', 'two@example.com']);
  const second = git(dir, ['rev-parse', 'HEAD']);
  write(dir, 'app/settings.py', `DEBUG = False\nTIMEOUT = 30\nGITHUB_TOKEN = os.environ["GITHUB_TOKEN"]\n`);
  write(dir, 'scripts/release.sh', `#!/bin/sh\nset -e\n`);
  git(dir, ['commit', '-q', '-am', 'read the token from the environment'], '2024-03-01T08:00:00Z');
  const third = git(dir, ['rev-parse', 'HEAD']);
  git(dir, ['checkout', '-q', '-b', 'notify']);
  write(dir, 'notify.sh', `curl -X POST ${SLACK_WEBHOOK}\n`);
  git(dir, ['add', '-A']);
  git(dir, ['commit', '-q', '-m', 'notify'], '2024-04-01T10:00:00Z');
  const branch = git(dir, ['rev-parse', 'HEAD']);
  git(dir, ['checkout', '-q', 'main']);
  return { dir, first, second, third, branch };
}

describe.each(dialects)('secrets importer on $name', (dialect) => {
  it('scans a working tree: each secret once with its file:line locations, an AWS key with its key id; .git, node_modules, binary, oversize and symlinked files are passed over; no secret value is stored; re-import writes nothing', async () => {
    await withSteward(dialect, async (env) => {
      const dir = workingTree();
      const { batch, skipped, notes } = await read(env, [dir]);
      expect(skipped).toEqual([]);
      expect(notes).toEqual([
        'scanned 7 files; skipped 1 binary, 1 over 65536 bytes, 2 symbolic links, 0 not regular, 0 unreadable',
      ]);
      expect(batch).toMatchObject({ source: 'secrets', scope: `dir:${path.basename(dir)}`, snapshot: true });
      expect(batch.files).toEqual([{ path: dir, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) as string }]);
      const fp = (s: string) => env.steward.keys.fingerprint(s);
      expect(
        batch.identities.map((i) => [i.name, i.credentials?.[0]?.kind, i.credentials?.[0]?.locations]),
      ).toEqual(
        expect.arrayContaining([
          [
            'aws-key-pair/AWSAccessKeyPair in .aws/credentials',
            'aws-access-key',
            ['file:.aws/credentials:2', 'file:.aws/credentials:3'],
          ],
          ['github/GITHUB_TOKEN in .env', 'github-token', ['file:.env:3']],
          ['slack/IncomingWebhook in deploy/notify.sh', 'slack-webhook', ['file:deploy/notify.sh:3']],
          ['privatekey/PrivateKey in deploy/tls/server.key', 'private-key', ['file:deploy/tls/server.key:1']],
          ['database-connection-string/PostgreSQLConnection in src/db.ts', 'password', ['file:src/db.ts:2']],
          ['aws/AWSAccessKeyID in src/report.py', 'aws-access-key', ['file:src/report.py:2']],
        ]),
      );
      expect(batch.identities).toHaveLength(6);

      const r = await importDiscovery(env.steward, batch, { actor: 'test' });
      expect(r.identities).toEqual({ new: 6, changed: 0, unchanged: 0, vanished: 0 });
      expect(r.credentials.new).toBe(6);

      // the AWS secret access key, found with its key id: fingerprinted, the id kept for linking
      const aws = await credentialOf(env, `secret:${fp(AWS_SECRET)}`);
      expect(aws).toMatchObject({
        external_id: fp(AWS_SECRET),
        fingerprint: fp(AWS_SECRET),
        kind: 'aws-access-key',
      });
      expect(aws.attributes).toEqual({ rule: 'aws-key-pair/AWSAccessKeyPair', awsAccessKeyId: AWS_ID });
      const awsId = await resolveIdentity(env.steward.store, `secret:${fp(AWS_SECRET)}`);
      expect(awsId).toMatchObject({ kind: 'secret', source: 'secrets', status: 'active' });
      expect(sourceAttributes(awsId.attributes)).toEqual({
        unmanaged: true,
        rule: 'aws-key-pair/AWSAccessKeyPair',
        awsAccessKeyId: AWS_ID,
      });
      // a key id found without its secret is a finding of its own, keyed by the id
      const lone = await credentialOf(env, `secret:${fp(LONE_AWS_ID)}`);
      expect(lone.attributes).toEqual({ rule: 'aws/AWSAccessKeyID', awsAccessKeyId: LONE_AWS_ID });
      // the PEM key is keyed by the whole key; the connection string by its password
      expect((await credentialOf(env, `secret:${fp(PRIVATE_KEY.trim())}`)).kind).toBe('private-key');
      expect((await credentialOf(env, `secret:${fp(DB_PASSWORD)}`)).locations).toEqual(['file:src/db.ts:2']);

      const dump = await dumpDatabase(env);
      expect(dump).toContain(AWS_ID); // an identifier, kept on purpose
      expect(dump).toContain('deploy/notify.sh');
      expectNoSecretIn(dump);

      const head = (await env.steward.ledger.head()).seq;
      const again = await importDiscovery(env.steward, (await read(env, [dir])).batch, { actor: 'test' });
      expect(again.events).toBe(0);
      expect((await env.steward.ledger.head()).seq).toBe(head);

      // the token is removed from .env: the next scan marks it vanished, the rest unchanged
      env.clock.advance(86_400_000);
      fs.writeFileSync(path.join(dir, '.env'), 'APP_ENV=prod\n\nGITHUB_TOKEN=${GITHUB_TOKEN}\n');
      const later = await importDiscovery(env.steward, (await read(env, [dir])).batch, { actor: 'test' });
      expect(later.identities).toEqual({ new: 0, changed: 0, unchanged: 5, vanished: 1 });
      expect(later.credentials.vanished).toBe(1);
      expect((await resolveIdentity(env.steward.store, `secret:${fp(GITHUB_PAT)}`)).status).toBe('vanished');
    });
  });

  it('--history: a token committed and later removed is found with commit, author, email and date; the same token in two commits is one credential with two locations; a branch is scanned too', async () => {
    await withSteward(dialect, async (env) => {
      const repo = leakyRepository();
      const fp = (s: string) => env.steward.keys.fingerprint(s);

      // the working tree no longer holds the token
      const now = await read(env, [repo.dir]);
      expect(now.batch.identities).toEqual([]);

      const { batch, notes } = await read(env, [repo.dir], { history: true });
      expect(notes).toEqual(['scanned 4 commits, 5 file changes; skipped 0 binary, 0 over 65536 bytes']);
      expect(batch.scope).toBe(`git:${path.basename(repo.dir)}`);
      expect(batch.files).toEqual([
        { path: repo.dir, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) as string },
      ]);
      expect(batch.identities.map((i) => i.name).sort()).toEqual([
        'github/GITHUB_TOKEN in app/settings.py',
        'slack/IncomingWebhook in notify.sh',
      ]);
      const r = await importDiscovery(env.steward, batch, { actor: 'test' });
      expect(r.identities.new).toBe(2);

      const token = await credentialOf(env, `secret:${fp(GITHUB_PAT)}`);
      expect(token).toMatchObject({ fingerprint: fp(GITHUB_PAT), kind: 'github-token' });
      expect(token.locations).toEqual([
        `git:app/settings.py:3@${repo.first}`,
        `git:scripts/release.sh:5@${repo.second}`,
      ]);
      // the earliest commit speaks for it (its date is normalised to UTC)
      expect(token.attributes).toEqual({
        rule: 'github/GITHUB_TOKEN',
        author: 'Dev One',
        email: 'one@example.com',
        date: '2024-01-10T08:00:00.000Z',
        commit: repo.first,
      });
      const webhook = await credentialOf(env, `secret:${fp(SLACK_WEBHOOK)}`);
      expect(webhook.locations).toEqual([`git:notify.sh:1@${repo.branch}`]);
      expect(webhook.attributes).toMatchObject({ date: '2024-04-01T10:00:00.000Z', commit: repo.branch });

      expectNoSecretIn(await dumpDatabase(env));
      const again = await importDiscovery(
        env.steward,
        (await read(env, [repo.dir], { history: true })).batch,
        {
          actor: 'test',
        },
      );
      expect(again.events).toBe(0);
    });
  });
  it('steward import secrets <repo> --history through the CLI: prints what it scanned; a folder that is no repository is refused', async () => {
    const db = await dialect.freshUrl();
    const keysDir = fs.mkdtempSync(path.join(os.tmpdir(), 'steward-keys-'));
    try {
      const env = { db, keys: keysDir };
      const repo = leakyRepository();
      const out = await cli(['import', 'secrets', repo.dir, '--history'], env);
      expect(out.code, out.stderr).toBe(0);
      expect(out.stdout).toContain(`secrets (git:${path.basename(repo.dir)}): 1 file(s),`);
      expect(out.stdout).toContain(
        'scanned 4 commits, 5 file changes; skipped 0 binary, 0 over 5242880 bytes\n',
      );
      expect(out.stdout).not.toContain(GITHUB_PAT);
      const again = await cli(['--json', 'import', 'secrets', repo.dir, '--history'], env);
      expect(again.code, again.stderr).toBe(0);
      expect(again.json()).toMatchObject({
        source: 'secrets',
        identities: { new: 0, changed: 0, unchanged: 2, vanished: 0 },
        events: 0,
        notes: ['scanned 4 commits, 5 file changes; skipped 0 binary, 0 over 5242880 bytes'],
      });
      const plain = tempFiles({ 'a.txt': 'x\n' });
      const refused = await cli(['import', 'secrets', plain, '--history'], env);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('expected a git repository (--history reads its commits)');
    } finally {
      await dialect.cleanup(db);
      fs.rmSync(keysDir, { recursive: true, force: true });
    }
  });
});

describe('secrets importer: reading', () => {
  it('pairs an AWS key id with the secret access key nearest to it, and keeps each pair apart', async () => {
    const id2 = ['AKIA', 'ZX8CV7BN6M5L4K3J'].join('');
    const secret2 = ['mN3bV5cX7zL9kJ1hG2fD', '4sA6pO8iU0yT/rE+wQ1a'].join('');
    const dir = tempFiles({
      // the IAM console's CSV download: both on one line
      'keys.csv': `Access key ID,Secret access key\n${AWS_ID},${AWS_SECRET}\n`,
      // create-access-key output: two keys, each pair apart
      'two.json': JSON.stringify(
        [
          { AccessKeyId: AWS_ID, SecretAccessKey: AWS_SECRET },
          { AccessKeyId: id2, SecretAccessKey: secret2 },
        ],
        null,
        2,
      ),
    });
    const { batch } = await importer.read([dir], { skipInvalid: false, keys: testKeys });
    const byFp = new Map(batch.identities.map((i) => [i.externalId, i]));
    const first = byFp.get(`secret:${testKeys.fingerprint(AWS_SECRET)}`)!;
    expect(first.attributes).toMatchObject({ awsAccessKeyId: AWS_ID });
    expect(first.credentials?.[0]?.locations).toEqual([
      'file:keys.csv:2',
      'file:two.json:3',
      'file:two.json:4',
    ]);
    const second = byFp.get(`secret:${testKeys.fingerprint(secret2)}`)!;
    expect(second.attributes).toMatchObject({ awsAccessKeyId: id2 });
    expect(second.credentials?.[0]?.locations).toEqual(['file:two.json:7', 'file:two.json:8']);
    expect(batch.identities).toHaveLength(2);
  });

  it.skipIf(!corporaAvailable)(
    'CredSweeper’s AWS sample (aws_multi.md): the key id on line 7 is paired with the secret access key on line 8',
    async () => {
      const file = corpus('secret-scanning/credsweeper-samples/aws_multi.md');
      const { batch } = await importer.read([file], { skipInvalid: false, keys: testKeys });
      expect(batch.scope).toBe('dir:aws_multi.md');
      expect(batch.identities).toHaveLength(1);
      expect(batch.identities[0]).toMatchObject({
        name: 'aws-key-pair/AWSAccessKeyPair in aws_multi.md',
        attributes: { unmanaged: true, awsAccessKeyId: 'AKIA0ON7V2DD57PL3JXM' },
        credentials: [{ kind: 'aws-access-key', locations: ['file:aws_multi.md:7', 'file:aws_multi.md:8'] }],
      });
    },
  );

  it('--history names files as git writes them: with spaces, tabs (quoted by git) and non-ASCII letters', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'steward-repo-'));
    git(dir, ['init', '-q', '-b', 'main']);
    for (const name of ['my file.env', 'tab\tname.env', 'config/clé.env'])
      write(dir, name, `T=${GITHUB_PAT}\n`);
    git(dir, ['add', '-A']);
    git(dir, ['commit', '-q', '-m', 'names']);
    const head = git(dir, ['rev-parse', 'HEAD']);
    const { batch } = await importer.read([dir], { skipInvalid: false, keys: testKeys, history: true });
    expect(batch.identities[0]?.credentials?.[0]?.locations).toEqual(
      [`git:my file.env:1@${head}`, `git:tab\tname.env:1@${head}`, `git:config/clé.env:1@${head}`].sort(),
    );
  });

  it('memory stays bounded: scanning leaves nothing in the performance timeline (secretlint would mark every file and rule)', async () => {
    const before = performance.getEntries().length;
    for (let i = 0; i < 200; i++) await scanText(`const n = ${i};\n`, `f${i}.ts`, testKeys.fingerprint);
    await new Promise((resolve) => setImmediate(resolve));
    expect(performance.getEntries().length).toBe(before);
  });

  it('several inputs: files are named by their input folder, the scope names them all', async () => {
    const a = tempFiles({ '.env': `GITHUB_TOKEN=${GITHUB_PAT}\n` });
    const b = tempFiles({ 'ci/.env': `GITHUB_TOKEN=${GITHUB_PAT}\n` });
    const { batch } = await importer.read([a, b], { skipInvalid: false, keys: testKeys });
    expect(batch.scope).toBe(`dir:${path.basename(a)},${path.basename(b)}`);
    expect(batch.identities[0]?.credentials?.[0]?.locations).toEqual(
      [`file:${path.basename(a)}/.env:1`, `file:${path.basename(b)}/ci/.env:1`].sort(),
    );
  });
});

describe('secrets importer: bad inputs', () => {
  const opts = (over: Partial<ReadOptions> = {}): ReadOptions => ({
    skipInvalid: false,
    keys: testKeys,
    ...over,
  });

  it('a path that does not exist, standard input, and a file given with --history are refused, naming each', async () => {
    const dir = tempFiles({ 'a.txt': 'x\n' });
    const missing = path.join(dir, 'no-such-folder');
    expect((await problemsOf(importer.read([missing, '-'], opts()))).problems).toEqual([
      { file: missing, message: 'expected a folder, file or git repository, got nothing at this path' },
      { file: '-', message: 'expected a folder, file or git repository, got standard input' },
    ]);
    const file = path.join(dir, 'a.txt');
    expect((await problemsOf(importer.read([file], opts({ history: true })))).problems).toEqual([
      { file, message: 'expected a git repository (a folder) with --history, got a file' },
    ]);
  });

  it('a folder that is not a git repository is refused with --history', async () => {
    const dir = tempFiles({ '.env': `GITHUB_TOKEN=${GITHUB_PAT}\n` });
    const e = await problemsOf(importer.read([dir], opts({ history: true })));
    expect(e.message).toMatch(/^.*: not a git repository; nothing was imported/);
    expect(e.problems).toHaveLength(1);
    expect(e.problems[0]).toMatchObject({ file: dir });
    expect(e.problems[0]!.message).toMatch(
      /^expected a git repository \(--history reads its commits\), got a folder git does not know \(fatal: not a git repository/,
    );
  });

  it('a file that cannot be read rejects the scan, naming it without content; --skip-invalid scans the rest', async () => {
    const dir = tempFiles({ '.env': `GITHUB_TOKEN=${GITHUB_PAT}\n`, 'secret.txt': `${GITHUB_PAT}\n` });
    // Root reads any file whatever its mode: then a file the kernel refuses to read is used.
    let bad: string;
    let inputs: string[];
    let expected: string;
    if (process.getuid?.() === 0) {
      bad = '/proc/self/mem';
      inputs = [dir, bad];
      expected = 'expected a readable file or folder, got EIO (i/o error, read)';
    } else {
      bad = path.join(dir, 'secret.txt');
      fs.chmodSync(bad, 0o000);
      inputs = [dir];
      expected = 'expected a readable file or folder, got EACCES (permission denied)';
    }
    const e = await problemsOf(importer.read(inputs, opts()));
    expect(e.problems).toEqual([{ file: bad, message: expected }]);
    expect(e.message).toMatch(/^1 path could not be read; nothing was imported/);
    expect(e.message).not.toContain(GITHUB_PAT);

    const { batch, skipped } = await importer.read(inputs, opts({ skipInvalid: true }));
    expect(skipped).toEqual([{ file: bad, message: expected }]);
    expect(batch.identities.map((i) => i.name)).toEqual([
      `github/GITHUB_TOKEN in ${inputs.length > 1 ? `${path.basename(dir)}/` : ''}.env`,
    ]);
  });

  it('no line of a huge or binary history change is kept: an oversize added file is counted, not scanned', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'steward-repo-'));
    git(dir, ['init', '-q', '-b', 'main']);
    write(dir, 'big.txt', `${GITHUB_PAT}\n${'y'.repeat(2000)}\n`);
    write(dir, 'small.txt', `${GITHUB_PAT}\n`);
    fs.writeFileSync(path.join(dir, 'blob.bin'), Buffer.from([0, 0, 1, 2, 3]));
    git(dir, ['add', '-A']);
    git(dir, ['commit', '-q', '-m', 'files']);
    const { batch, notes } = await importer.read([dir], opts({ history: true, maxBytes: 1024 }));
    expect(notes).toEqual(['scanned 1 commit, 1 file change; skipped 1 binary, 1 over 1024 bytes']);
    expect(batch.identities[0]?.credentials?.[0]?.locations).toEqual([
      `git:small.txt:1@${git(dir, ['rev-parse', 'HEAD'])}`,
    ]);
  });
});
