/**
 * Benchmark 1 — manifest import: 100,000 NonHumanIdentity documents in 100 files, imported into an
 * empty database (parseManifestPaths + importManifests, one transaction), against a bare YAML parse
 * of the same files. Then the same files are imported again (which must write no event).
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { openSteward } from '../src/app.js';
import { importDirectory } from '../src/inventory/import-directory.js';
import { importManifests } from '../src/inventory/import-manifests.js';
import { parseManifestPaths } from '../src/importers/manifest/parse.js';
import { freshDb, progress, Rng, scaled, timed, type BenchContext, type Figure } from './lib/common.js';
import { identityYaml, makeDirectory, makeIdentity } from './lib/estate.js';

const DOCS_PER_FILE = 1000;

export async function benchManifestImport(ctx: BenchContext): Promise<Figure[]> {
  const total = scaled(100_000, ctx.scale, 10);
  const files = Math.max(1, Math.ceil(total / DOCS_PER_FILE));
  const db = await freshDb(ctx);
  const figures: Figure[] = [];
  const fig = (f: Omit<Figure, 'benchmark' | 'dialect'>) =>
    figures.push({ benchmark: 'manifest import', dialect: ctx.dialect, ...f });
  try {
    // The estate: a directory, then the manifests that name its people and teams.
    const rng = new Rng(1);
    const dir = makeDirectory(rng, scaled(5_000, ctx.scale, 40), 60, path.join(db.tmpDir, 'directory.csv'));
    const manifestDir = path.join(db.tmpDir, 'manifests');
    fs.mkdirSync(manifestDir);
    let bytes = 0;
    for (let f = 0; f < files; f++) {
      const parts: string[] = [];
      for (let i = f * DOCS_PER_FILE; i < Math.min(total, (f + 1) * DOCS_PER_FILE); i++)
        parts.push(identityYaml(makeIdentity(i, rng, dir)));
      const text = parts.join('');
      bytes += text.length;
      fs.writeFileSync(path.join(manifestDir, `nhi-${String(f).padStart(3, '0')}.yaml`), text);
    }
    progress(
      `${ctx.dialect}: manifest import: ${total} identities in ${files} file(s), ${(bytes / 1e6).toFixed(1)} MB`,
    );
    const paths = fs
      .readdirSync(manifestDir)
      .sort()
      .map((n) => path.join(manifestDir, n));

    const steward = await openSteward({ db: db.url, keysDir: db.keysDir, createKeys: true });
    try {
      await importDirectory(
        steward,
        { rows: dir.rows, file: { path: dir.rows[0]!.file, sha256: '0'.repeat(64) } },
        { actor: 'bench', reason: 'bench directory' },
      );

      // Baseline: read every file and turn each document into plain JS, nothing else.
      const base = await timed(async () => {
        let docs = 0;
        for (const p of paths) {
          const text = await fs.promises.readFile(p, 'utf8');
          for (const d of parseAllDocuments(text) as Iterable<{ toJS(): unknown }>) {
            d.toJS();
            docs += 1;
          }
        }
        return docs;
      });
      progress(`${ctx.dialect}: baseline YAML parse ${base.ms.toFixed(0)} ms (${base.result} documents)`);

      const parse = await timed(() => parseManifestPaths([manifestDir]));
      if (parse.result.identities.length !== total) {
        throw new Error(
          `parseManifestPaths returned ${parse.result.identities.length} identities, expected ${total}`,
        );
      }
      progress(`${ctx.dialect}: parseManifestPaths ${parse.ms.toFixed(0)} ms`);
      const imp = await timed(() =>
        importManifests(steward, parse.result, {
          actor: 'bench',
          roots: [manifestDir],
          onProgress: (d, t) => {
            if (d % 20_000 === 0) progress(`${ctx.dialect}: importing ${d}/${t}`);
          },
        }),
      );
      if (imp.result.identities.new !== total)
        throw new Error(`import created ${imp.result.identities.new} identities, expected ${total}`);
      progress(`${ctx.dialect}: importManifests ${imp.ms.toFixed(0)} ms, ${imp.result.events} events`);

      const again = await timed(async () => {
        const parsed = await parseManifestPaths([manifestDir]);
        return importManifests(steward, parsed, { actor: 'bench', roots: [manifestDir] });
      });
      progress(`${ctx.dialect}: re-import ${again.ms.toFixed(0)} ms, ${again.result.events} events`);

      const full = parse.ms + imp.ms;
      const ratio = full / base.ms;
      fig({
        name: `full import of ${total.toLocaleString('en-US')} identities (parse + import)`,
        unit: 's',
        value: full / 1000,
        baseline: { name: 'bare YAML parse', value: base.ms / 1000 },
        ratio,
        target: '≤ 2× baseline',
        met: ratio <= 2,
        note: `${imp.result.events} events written`,
      });
      fig({
        name: 'full import throughput',
        unit: 'identities/s',
        value: total / (full / 1000),
        baseline: { name: 'bare YAML parse', value: total / (base.ms / 1000) },
        ratio: base.ms / full,
      });
      fig({
        name: '  of which parseManifestPaths',
        unit: 's',
        value: parse.ms / 1000,
        baseline: { name: 'bare YAML parse', value: base.ms / 1000 },
        ratio: parse.ms / base.ms,
      });
      fig({
        name: '  of which importManifests',
        unit: 's',
        value: imp.ms / 1000,
        note: `${Math.round(imp.result.events / (imp.ms / 1000)).toLocaleString('en-US')} events/s`,
      });
      fig({
        name: 're-import of the same files (parse + import)',
        unit: 's',
        value: again.ms / 1000,
        baseline: { name: 'bare YAML parse', value: base.ms / 1000 },
        ratio: again.ms / base.ms,
        target: '0 events written',
        met: again.result.events === 0,
        note: `${again.result.events} events written; ${again.result.identities.unchanged} unchanged`,
      });
      fig({ name: 'database size after import', unit: 'MB', value: (await db.size()) / 1e6 });
    } finally {
      await steward.close();
    }
  } finally {
    await db.cleanup();
  }
  return figures;
}
