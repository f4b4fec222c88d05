import type { Command } from 'commander';
import { printJson, table, type Io } from '../output.js';
import { actorOf, withSteward, type GlobalOptions } from '../context.js';
import { progressBar } from '../progress.js';
import { parseManifestPaths } from '../../importers/manifest/parse.js';
import { parseDirectoryFile } from '../../importers/directory/parse.js';
import { importManifests } from '../../inventory/import-manifests.js';
import { importDirectory } from '../../inventory/import-directory.js';
import { importDiscovery } from '../../inventory/import-discovery.js';
import { SOURCES } from '../../importers/registry.js';
import { formatProblem } from '../../domain/problems.js';

interface ImportFlags {
  skipInvalid?: boolean;
  history?: boolean;
  createMissing?: boolean;
  effectiveAt?: string;
  reason?: string;
}

export function registerImport(program: Command, io: Io, g: () => GlobalOptions): void {
  const imp = program.command('import').description('import identities and ownership from files');

  imp
    .command('manifest')
    .description('import NonHumanIdentity manifests and Backstage catalog-info entities (files or folders)')
    .argument('<paths...>', 'YAML files or folders')
    .option(
      '--create-missing',
      'create people and teams named in owner fields that the directory does not know',
    )
    .option('--effective-at <time>', 'when these facts became true (default: now)')
    .option('--reason <text>', 'why this import is made (recorded on every event)')
    .action(async (paths: string[], flags: ImportFlags) => {
      const parsed = await parseManifestPaths(paths);
      await withSteward(
        g(),
        async (s) => {
          const bar = progressBar(io, 'importing');
          try {
            const r = await importManifests(s, parsed, {
              actor: actorOf(g()),
              roots: paths,
              ...(flags.createMissing ? { createMissing: true } : {}),
              ...(flags.effectiveAt ? { effectiveAt: flags.effectiveAt } : {}),
              ...(flags.reason ? { reason: flags.reason } : {}),
              onProgress: (d, t) => bar.update(d, t),
            });
            bar.stop();
            if (io.json) return printJson(io, r);
            io.out.write(
              table(
                ['', 'new', 'changed', 'unchanged', 'vanished'],
                (['identities', 'credentials', 'entitlements'] as const).map((k) => [
                  k,
                  r[k].new,
                  r[k].changed,
                  r[k].unchanged,
                  r[k].vanished,
                ]),
              ),
            );
            io.out.write(
              `${r.files.length} file(s), ${r.events} event(s) written` +
                (r.principalsCreated.length
                  ? `; created ${r.principalsCreated.length} principal(s): ${r.principalsCreated.join(', ')}`
                  : '') +
                '\n',
            );
          } finally {
            bar.stop();
          }
        },
        { reevaluate: io },
      );
    });

  imp
    .command('directory')
    .description(
      'import the people-and-teams feed (CSV or JSON: type,id,name,email,team,manager,status,left_at)',
    )
    .argument('<file>', 'CSV or JSON file')
    .option('--effective-at <time>', 'when these facts became true (default: now)')
    .option('--reason <text>', 'why this import is made')
    .action(async (file: string, flags: ImportFlags) => {
      const parsed = await parseDirectoryFile(file);
      await withSteward(
        g(),
        async (s) => {
          const r = await importDirectory(s, parsed, {
            actor: actorOf(g()),
            ...(flags.effectiveAt ? { effectiveAt: flags.effectiveAt } : {}),
            ...(flags.reason ? { reason: flags.reason } : {}),
          });
          if (io.json) return printJson(io, r);
          io.out.write(
            table(
              ['', 'new', 'changed', 'unchanged', 'departed'],
              [
                ['people', r.people.new, r.people.changed, r.people.unchanged, r.people.departed],
                ['teams', r.teams.new, r.teams.changed, r.teams.unchanged, null],
              ],
            ),
          );
          io.out.write(`${r.events} event(s) written\n`);
        },
        { reevaluate: io },
      );
    });

  for (const [name, entry] of Object.entries(SOURCES)) {
    imp
      .command(name)
      .description(entry.description)
      .argument('<paths...>', 'files or folders (- for standard input)')
      .option('--skip-invalid', 'skip and count bad records instead of rejecting the whole input')
      .option('--history', "read git repositories' every commit (sources that scan repositories)")
      .option('--effective-at <time>', 'when the export was taken (default: what the export says, else now)')
      .option('--reason <text>', 'why this import is made')
      .action(async (paths: string[], flags: ImportFlags) => {
        const importer = await entry.load();
        await withSteward(
          g(),
          async (s) => {
            const { batch, skipped, notes } = await importer.read(paths, {
              skipInvalid: flags.skipInvalid === true,
              keys: s.keys,
              ...(flags.history ? { history: true } : {}),
            });
            const bar = progressBar(io, `importing ${name}`);
            try {
              const r = await importDiscovery(s, batch, {
                actor: actorOf(g()),
                ...(flags.effectiveAt ? { effectiveAt: flags.effectiveAt } : {}),
                ...(flags.reason ? { reason: flags.reason } : {}),
                onProgress: (d, t) => bar.update(d, t),
              });
              bar.stop();
              if (io.json)
                return printJson(io, {
                  ...r,
                  skipped: skipped.length,
                  skippedRecords: skipped,
                  ...(notes?.length ? { notes } : {}),
                });
              io.out.write(
                table(
                  ['', 'new', 'changed', 'unchanged', 'vanished'],
                  (['identities', 'credentials', 'entitlements'] as const).map((k) => [
                    k,
                    r[k].new,
                    r[k].changed,
                    r[k].unchanged,
                    r[k].vanished,
                  ]),
                ),
              );
              io.out.write(
                `${name} (${r.scope}): ${batch.files.length} file(s), ${r.events} event(s) written\n`,
              );
              for (const note of notes ?? []) io.out.write(`${note}\n`);
              if (skipped.length) {
                io.err.write(
                  `skipped ${skipped.length} invalid record(s):\n${skipped
                    .slice(0, 20)
                    .map((p) => '  ' + formatProblem(p))
                    .join('\n')}\n`,
                );
              }
            } finally {
              bar.stop();
            }
          },
          { reevaluate: io },
        );
      });
  }
}
