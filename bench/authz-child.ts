/**
 * The process whose memory the authz-import benchmark measures (started by bench/authz-import.ts,
 * or by hand):
 *
 *   node dist/bench/authz-child.js import <file> <db> <keys-dir>   aws-iam read + importDiscovery
 *   node dist/bench/authz-child.js parse <file>                    bare stream-json pass, counting identities
 *
 * It reports one JSON object (times in ms, sizes in bytes; `maxRss` from process.resourceUsage())
 * to its parent over IPC, or on stdout when run by hand. Progress goes to stderr.
 */
import fs from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { jsonParser, type Token } from 'stream-json/core/parser.js';
import { openSteward } from '../src/app.js';
import { importer } from '../src/importers/aws-iam/index.js';
import { importDiscovery } from '../src/inventory/import-discovery.js';

export interface ChildReport {
  mode: 'import' | 'parse';
  ms: number;
  /** Peak resident set size of this process, in bytes. */
  maxRss: number;
  identities: number;
  readMs?: number;
  importMs?: number;
  /** Peak RSS when the read had finished (before importDiscovery), in bytes. */
  maxRssAfterRead?: number;
  heapUsedAfterRead?: number;
  events?: number;
  entitlements?: number;
}

const maxRss = () => process.resourceUsage().maxRSS * 1024;
const memory = () => {
  const m = process.memoryUsage();
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
  return `RSS ${mib(m.rss)} (V8 heap ${mib(m.heapTotal)}, of which used ${mib(m.heapUsed)}; external ${mib(m.external)})`;
};
const say = (msg: string) =>
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] child: ${msg}\n`);

type Feed = (chunk: string | symbol) => { values?: Token[] } | symbol | undefined;
const NONE = Symbol.for('object-stream.none');

/** Tokenizes the file with stream-json's parser (as the importer does) and counts users and roles. */
async function parseOnly(file: string): Promise<number> {
  const feed = jsonParser({ packValues: true, streamValues: false }) as unknown as Feed;
  let depth = 0;
  let key = '';
  let list = false;
  let count = 0;
  const tokens = (out: ReturnType<Feed>) => {
    if (!out || typeof out !== 'object' || !out.values) return;
    for (const t of out.values) {
      switch (t.name) {
        case 'startObject':
        case 'startArray':
          if (depth === 1) list = key === 'UserDetailList' || key === 'RoleDetailList';
          else if (depth === 2 && list && t.name === 'startObject') count++;
          depth++;
          break;
        case 'endObject':
        case 'endArray':
          depth--;
          break;
        case 'keyValue':
          if (depth === 1) key = t.value;
          break;
        default:
      }
    }
  };
  const decoder = new StringDecoder('utf8');
  for await (const chunk of fs.createReadStream(file) as AsyncIterable<Buffer>)
    tokens(feed(decoder.write(chunk)));
  tokens(feed(decoder.end()));
  tokens(feed(NONE));
  return count;
}

async function main(): Promise<ChildReport> {
  const [mode, file, db, keysDir] = process.argv.slice(2);
  const t0 = performance.now();
  if (mode === 'parse' && file) {
    const identities = await parseOnly(file);
    return { mode, ms: performance.now() - t0, maxRss: maxRss(), identities };
  }
  if (mode !== 'import' || !file || !db || !keysDir)
    throw new Error('usage: authz-child.js import <file> <db> <keys-dir> | parse <file>');
  const steward = await openSteward({ db, keysDir, createKeys: true });
  try {
    const r0 = performance.now();
    const { batch } = await importer.read([file], { skipInvalid: false, keys: steward.keys });
    const readMs = performance.now() - r0;
    // (not batch.identities: on a streamed batch that would build every identity at once)
    const count = batch.stream?.count ?? batch.identities.length;
    const maxRssAfterRead = maxRss();
    const heapUsedAfterRead = process.memoryUsage().heapUsed;
    say(
      `read ${count} identities in ${(readMs / 1000).toFixed(1)} s; peak RSS ${(maxRssAfterRead / 2 ** 20).toFixed(0)} MiB, heap used ${(heapUsedAfterRead / 2 ** 20).toFixed(0)} MiB`,
    );
    const i0 = performance.now();
    const step = Math.max(2000, Math.round(count / 10 / 2000) * 2000);
    const result = await importDiscovery(steward, batch, {
      actor: 'bench',
      reason: 'authz import benchmark',
      onProgress: (done, total) => {
        if (done % step === 0 && done < total) say(`imported ${done}/${total} identities; ${memory()}`);
      },
    });
    const importMs = performance.now() - i0;
    return {
      mode,
      ms: performance.now() - t0,
      maxRss: maxRss(),
      identities: result.identities.new,
      readMs,
      importMs,
      maxRssAfterRead,
      heapUsedAfterRead,
      events: result.events,
      entitlements: result.entitlements.new,
    };
  } finally {
    await steward.close();
  }
}

const report = await main();
if (process.send) process.send(report);
else process.stdout.write(JSON.stringify(report) + '\n');
