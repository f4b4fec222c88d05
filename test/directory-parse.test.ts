import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it, expect } from 'vitest';
import { parseDirectoryFile } from '../src/importers/directory/parse.js';
import { ValidationError } from '../src/domain/errors.js';
import { formatProblem, type Problem } from '../src/domain/problems.js';

const EXAMPLES = path.resolve(import.meta.dirname, '..', 'examples');
const HEADER = 'type,id,name,email,team,manager,status,left_at\n';

function tempFile(name: string, content: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'steward-directory-'));
  const p = path.join(dir, name);
  fs.writeFileSync(p, content);
  return p;
}

async function problemsOf(file: string): Promise<Problem[]> {
  try {
    await parseDirectoryFile(file);
  } catch (e) {
    expect(e).toBeInstanceOf(ValidationError);
    const v = e as ValidationError;
    expect(v.message.split('\n')[0]).toBe(
      `${v.problems.length} problem(s) in directory file; nothing was imported`,
    );
    return v.problems;
  }
  throw new Error('expected parseDirectoryFile to throw');
}

const lines = (problems: Problem[]): string[] => problems.map(formatProblem);

describe('parseDirectoryFile on the example', () => {
  it('reads people and teams with their lines and the file hash', async () => {
    const file = path.join(EXAMPLES, 'directory.csv');
    const r = await parseDirectoryFile(file);
    expect(r.file).toEqual({
      path: file,
      sha256: crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex'),
    });
    expect(r.rows.filter((x) => x.type === 'team').map((x) => x.id)).toEqual([
      'payments',
      'platform',
      'data',
      'security',
      'growth',
    ]);
    expect(r.rows.filter((x) => x.type === 'person')).toHaveLength(13);
    expect(r.rows[0]).toEqual({
      file,
      line: 2,
      type: 'team',
      id: 'payments',
      name: 'Payments',
      email: 'payments@example.com',
      manager: 'alice',
      status: 'active',
    });
    expect(r.rows.find((x) => x.id === 'frank')).toEqual({
      file,
      line: 13,
      type: 'person',
      id: 'frank',
      name: 'Frank Foster',
      email: 'frank@example.com',
      team: 'payments',
      manager: 'alice',
      status: 'departed',
      leftAt: '2026-09-30T00:00:00.000Z',
    });
    expect(r.rows.find((x) => x.id === 'maya')).not.toHaveProperty('manager');
    expect(r.rows.filter((x) => x.status === 'departed').map((x) => x.id)).toEqual(['frank']);
  });
});

describe('parseDirectoryFile CSV', () => {
  it('accepts columns in any order, trims values, defaults status, skips blank lines and handles quoted newlines', async () => {
    const file = tempFile(
      'd.csv',
      'ID, Type ,email,name,left_at,status\n' +
        ' alice ,person,alice@example.com,"Adams,\nAlice",,\n' +
        '\n' +
        'bob,PERSON,,Bob,2026-01-15T12:00:00Z,Departed\n' +
        'payments,team,,,,\n',
    );
    const r = await parseDirectoryFile(file);
    expect(r.rows).toEqual([
      {
        file,
        line: 2,
        type: 'person',
        id: 'alice',
        name: 'Adams,\nAlice',
        email: 'alice@example.com',
        status: 'active',
      },
      {
        file,
        line: 5,
        type: 'person',
        id: 'bob',
        name: 'Bob',
        status: 'departed',
        leftAt: '2026-01-15T12:00:00.000Z',
      },
      { file, line: 6, type: 'team', id: 'payments', status: 'active' },
    ]);
  });

  it('reports missing required columns', async () => {
    const file = tempFile('d.csv', 'name,email\nAlice,alice@example.com\n');
    expect(lines(await problemsOf(file))).toEqual([
      `${file}:1: missing required columns type, id; expected a header row with columns type, id, name, email, team, manager, status, left_at (type and id required), got "name,email"`,
    ]);
    const one = tempFile('d.csv', 'type,name\nperson,Alice\n');
    expect((await problemsOf(one)).map((p) => p.message)).toEqual([
      expect.stringMatching(/^missing required column id;/),
    ]);
  });

  it('reports extra columns and rows with the wrong number of fields', async () => {
    const file = tempFile('d.csv', 'type,id,nickname\nperson,alice,ally\nperson,bob\n');
    expect(lines(await problemsOf(file))).toEqual([
      `${file}:1: nickname: unknown column; expected columns type, id, name, email, team, manager, status, left_at`,
      `${file}:3: expected 3 fields as in the header, got 2`,
    ]);
  });

  it('reports bad type, status, dates, emails and missing ids with exact lines', async () => {
    const file = tempFile(
      'd.csv',
      HEADER +
        'person,alice,Alice,alice@example.com,payments,,active,\n' +
        'robot,r2,,,,,,\n' +
        'person,bob,Bob,bob@example.com,,,departed,\n' +
        'person,carol,Carol,carol@example.com,,,gone,\n' +
        'person,dave,Dave,dave-at-example.com,,,active,\n' +
        'person,erin,Erin,,,,active,2026-01-01\n' +
        'person,frank,Frank,,,,departed,last friday\n' +
        'person,,Nobody,,,,,\n',
    );
    expect(lines(await problemsOf(file))).toEqual([
      `${file}:3: type: expected person or team, got string "robot"`,
      `${file}:4: left_at: expected a date when status is departed, got nothing`,
      `${file}:5: status: expected active or departed, got string "gone"`,
      `${file}:6: email: expected an email address, got string "dave-at-example.com"`,
      `${file}:7: left_at: expected no left_at when status is active, got string "2026-01-01"`,
      `${file}:8: left_at: expected date (YYYY-MM-DD) or ISO-8601 timestamp, got string "last friday"`,
      `${file}:9: id: expected an id, got nothing`,
    ]);
  });

  it('reports duplicate ids (per type) and duplicate person emails, naming the first line', async () => {
    const file = tempFile(
      'd.csv',
      HEADER +
        'person,alice,Alice,alice@example.com,,,,\n' +
        'team,alice,Team Alice,,,,,\n' +
        'person,alice,Alice Again,other@example.com,,,,\n' +
        'person,al,Al,ALICE@example.com,,,,\n',
    );
    expect(lines(await problemsOf(file))).toEqual([
      `${file}:4: id: expected a unique person id, got "alice" which is already used at ${file}:2`,
      `${file}:5: email: expected a unique email, got "ALICE@example.com" which is already used at ${file}:2`,
    ]);
  });

  it('reports malformed CSV with its line', async () => {
    const file = tempFile('d.csv', HEADER + 'person,alice,"Alice,alice@example.com,,,,\n');
    const problems = await problemsOf(file);
    expect(problems).toHaveLength(1);
    expect(problems[0]!.message).toMatch(/^invalid CSV: /);
    expect(problems[0]!.line).toBeGreaterThanOrEqual(2);
  });

  it('reports an empty file', async () => {
    const file = tempFile('d.csv', '');
    expect(lines(await problemsOf(file))).toEqual([
      `${file}:1: expected a header row with columns type, id, name, email, team, manager, status, left_at, got an empty file`,
    ]);
  });

  it('reports a file that does not exist, or a directory, as one problem', async () => {
    const missing = path.join(os.tmpdir(), `steward-missing-${process.pid}.csv`);
    expect(lines(await problemsOf(missing))).toEqual([`${missing}: cannot read file: file does not exist`]);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'steward-directory-'));
    expect(await problemsOf(dir)).toHaveLength(1);
  });
});

describe('parseDirectoryFile JSON', () => {
  it('reads an array of objects, with left_at or leftAt, and the line of each element', async () => {
    const file = tempFile(
      'people.json',
      JSON.stringify(
        [
          { type: 'team', id: 'payments', name: 'Payments' },
          { type: 'person', id: 'alice', email: 'alice@example.com', team: 'payments', status: 'active' },
          { type: 'person', id: 'frank', status: 'departed', leftAt: '2026-09-30' },
          {
            type: 'person',
            id: 'gina',
            status: 'departed',
            left_at: '2026-10-01T08:00:00+02:00',
            manager: null,
          },
        ],
        null,
        2,
      ),
    );
    const r = await parseDirectoryFile(file);
    expect(r.rows).toEqual([
      { file, line: 2, type: 'team', id: 'payments', name: 'Payments', status: 'active' },
      {
        file,
        line: 7,
        type: 'person',
        id: 'alice',
        email: 'alice@example.com',
        team: 'payments',
        status: 'active',
      },
      { file, line: 14, type: 'person', id: 'frank', status: 'departed', leftAt: '2026-09-30T00:00:00.000Z' },
      { file, line: 20, type: 'person', id: 'gina', status: 'departed', leftAt: '2026-10-01T06:00:00.000Z' },
    ]);
    expect(r.file.sha256).toBe(crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex'));
  });

  it('reports problems per element with its line', async () => {
    const file = tempFile(
      'people.json',
      '[\n' +
        '  {"type": "person", "id": "a", "status": "departed"},\n' +
        '  {"type": "person", "id": 7, "nick": "x"},\n' +
        '  "bob",\n' +
        '  {"type": "person", "id": "a", "email": "a@example.com"}\n' +
        ']\n',
    );
    expect(lines(await problemsOf(file))).toEqual([
      `${file}:2: left_at: expected a date when status is departed, got nothing`,
      `${file}:3: nick: unknown field`,
      `${file}:3: id: expected an id, got number 7`,
      `${file}:4: [2]: expected an object, got string "bob"`,
      `${file}:5: id: expected a unique person id, got "a" which is already used at ${file}:2`,
    ]);
  });

  it('reports invalid JSON and a root that is not an array', async () => {
    const bad = tempFile('bad.json', '[\n  {"type": "person",}\n]\n');
    const problems = await problemsOf(bad);
    expect(problems).toHaveLength(1);
    expect(problems[0]!.message).toMatch(/^invalid JSON: /);
    expect(problems[0]!.line).toBe(2);
    const obj = tempFile('obj.json', '{"people": []}');
    expect(lines(await problemsOf(obj))).toEqual([
      `${obj}:1: expected a JSON array of people and teams, got mapping`,
    ]);
  });
});
