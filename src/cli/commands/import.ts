import type { Command } from 'commander';
import { printJson, table, type Io } from '../output.js';
import { actorOf, withSteward, type GlobalOptions } from '../context.js';
import { progressBar } from '../progress.js';
import { parseManifestPaths } from '../../importers/manifest/parse.js';
import { parseDirectoryFile } from '../../importers/directory/parse.js';
import { importManifests } from '../../inventory/import-manifests.js';
import { importDirectory } from '../../inventory/import-directory.js';

interface ImportFlags {
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
      await withSteward(g(), async (s) => {
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
      });
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
      await withSteward(g(), async (s) => {
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
      });
    });
}
