import type { NewEvent } from '../ledger/event.js';
import type { DirectoryParseResult, DirectoryRow } from '../importers/directory/types.js';
import type { Problem } from '../domain/problems.js';
import { ValidationError } from '../domain/errors.js';
import type { PrincipalsTable } from '../store/schema.js';
import { PrincipalIndex } from './principals.js';
import { effectiveTime, newId, type CommandOptions, type InventoryDeps } from './context.js';
import { rowToFields } from './subjects.js';
import { canonicalJson } from '../ledger/event.js';

export interface DirectoryImportResult {
  people: { new: number; changed: number; unchanged: number; departed: number };
  teams: { new: number; changed: number; unchanged: number };
  events: number;
}

function canonicalOf(row: DirectoryRow, existing: PrincipalIndex): string {
  const known =
    existing.resolve(`${row.type}:${row.id}`) ??
    (row.email ? existing.resolve(`person:${row.email}`) : undefined);
  if (known) return known;
  if (row.type === 'team') return `team:${row.id}`;
  return `person:${(row.email ?? row.id).toLowerCase()}`;
}

/**
 * Imports the people-and-teams feed: creates and updates principals, and records a departure
 * as effective at the person's `left_at` (so "who owned it then" sees them as present before).
 */
export async function importDirectory(
  deps: InventoryDeps,
  parsed: DirectoryParseResult,
  opts: CommandOptions,
): Promise<DirectoryImportResult> {
  const now = deps.now();
  const effectiveAt = effectiveTime(opts, now);
  const index = await PrincipalIndex.load(deps.store.db);
  const problems: Problem[] = [];

  // First pass: canonical ids for every row, so rows can name each other in any order.
  const fileIndex = new PrincipalIndex();
  const ids = parsed.rows.map((row) => {
    const id = canonicalOf(row, index);
    fileIndex.add({
      id,
      kind: row.type,
      directory_id: row.id,
      name: row.name ?? null,
      email: row.email?.toLowerCase() ?? null,
      team: null,
      manager: null,
      status: row.status,
      left_at: null,
      updated_seq: 0,
    });
    return id;
  });
  const resolve = (ref: string) => fileIndex.resolve(ref) ?? index.resolve(ref);

  const wanted = parsed.rows.map((row, i) => {
    let team: string | null = null;
    if (row.team) {
      team = resolve(`team:${row.team}`) ?? null;
      if (!team)
        problems.push({
          file: row.file,
          line: row.line,
          field: 'team',
          message: `expected a team id in this file or the directory, got unknown "${row.team}"`,
        });
    }
    let manager: string | null = null;
    if (row.manager) {
      manager = resolve(`person:${row.manager}`) ?? null;
      if (!manager)
        problems.push({
          file: row.file,
          line: row.line,
          field: 'manager',
          message: `expected a person id or email in this file or the directory, got unknown "${row.manager}"`,
        });
    }
    const fields: Record<string, unknown> = {
      kind: row.type,
      directoryId: row.id,
      name: row.name ?? null,
      email: row.email?.toLowerCase() ?? null,
      team,
      manager,
      status: row.status,
      leftAt: row.leftAt ?? null,
    };
    return { id: ids[i]!, row, fields };
  });
  if (problems.length) {
    throw new ValidationError(
      `${problems.length} problem(s) in directory file; nothing was imported`,
      problems,
    );
  }

  const result: DirectoryImportResult = {
    people: { new: 0, changed: 0, unchanged: 0, departed: 0 },
    teams: { new: 0, changed: 0, unchanged: 0 },
    events: 0,
  };
  const nowIso = now.toISOString();
  return deps.ledger.write({ actor: opts.actor, reason: opts.reason ?? 'directory import' }, async (w) => {
    const events: NewEvent[] = [];
    for (const { id, row, fields } of wanted) {
      const tally = row.type === 'person' ? result.people : result.teams;
      const existing: PrincipalsTable | undefined = index.get(id);
      if (!existing) {
        events.push({
          type: 'principal.created',
          subject: id,
          payload: { source: 'directory', set: fields },
          effectiveAt,
        });
        tally.new += 1;
        continue;
      }
      const current = rowToFields('principals', existing);
      const diff: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(fields)) {
        if (canonicalJson(v ?? null) !== canonicalJson(current[k] ?? null)) diff[k] = v;
      }
      if (Object.keys(diff).length === 0) {
        tally.unchanged += 1;
        continue;
      }
      if (diff.status === 'departed') {
        // The departure took effect when they left, not when the feed told us.
        const left = fields.leftAt as string;
        events.push({
          type: 'principal.departed',
          subject: id,
          payload: { source: 'directory', set: diff },
          effectiveAt: left < nowIso ? left : nowIso,
        });
        result.people.departed += 1;
      } else {
        events.push({
          type: diff.status === 'active' ? 'principal.returned' : 'principal.changed',
          subject: id,
          payload: { source: 'directory', set: diff },
          effectiveAt,
        });
      }
      tally.changed += 1;
    }
    w.append(events);
    if (events.length) {
      w.append([
        {
          type: 'import.completed',
          subject: `import:${newId('run')}`,
          payload: {
            source: 'directory',
            files: [{ path: parsed.file.path, sha256: parsed.file.sha256 }],
            people: result.people,
            teams: result.teams,
          },
          effectiveAt,
        },
      ]);
    }
    await w.flush();
    result.events = w.appended;
    return result;
  });
}
