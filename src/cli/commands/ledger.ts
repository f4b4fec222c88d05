import fs from 'node:fs';
import type { Command } from 'commander';
import { fields, printJson, type Io } from '../output.js';
import { withSteward, type GlobalOptions } from '../context.js';
import { readEvents, verifyLedger } from '../../ledger/verify.js';
import { IntegrityError } from '../../domain/errors.js';
import { canonicalJson } from '../../ledger/event.js';

export function registerLedger(program: Command, io: Io, g: () => GlobalOptions): void {
  const ledger = program.command('ledger').description('the evidence ledger');

  ledger
    .command('verify')
    .description('recompute the hash chain and check the signed checkpoints; exit 2 when tampered')
    .action(async () => {
      await withSteward(g(), async (s) => {
        const r = await verifyLedger(s.store, s.keys);
        if (io.json) printJson(io, r);
        else if (r.ok) {
          io.out.write(
            fields([
              ['ledger', 'OK'],
              ['events', r.events],
              [
                'checkpoints',
                `${r.checkpoints.verified}/${r.checkpoints.total} verified (last at event ${r.checkpoints.lastVerifiedSeq || '-'})`,
              ],
              ['signing key', s.keys.keyId],
            ]),
          );
        }
        if (!r.ok) {
          throw new IntegrityError(
            `ledger verification FAILED at event ${r.firstBad!.seq}: ${r.firstBad!.problem}`,
          );
        }
      });
    });

  ledger
    .command('checkpoint')
    .description('sign a checkpoint at the current head now')
    .action(async () => {
      await withSteward(g(), async (s) => {
        const cp = await s.ledger.checkpoint();
        if (io.json) return printJson(io, cp);
        io.out.write(
          cp
            ? `checkpoint at event ${cp.seq} signed by ${cp.keyId}\n`
            : 'the ledger is empty; nothing to sign\n',
        );
      });
    });

  ledger
    .command('export')
    .description(
      'write every event as JSON lines (with hashes), and the checkpoints, for offline verification',
    )
    .option('--out <file>', 'write to a file instead of stdout')
    .option('--from <seq>', 'first event', (v) => Number.parseInt(v, 10))
    .action(async (flags: { out?: string; from?: number }) => {
      await withSteward(g(), async (s) => {
        const sink = flags.out ? fs.createWriteStream(flags.out) : io.out;
        let n = 0;
        for await (const e of readEvents(s.store, flags.from ?? 1)) {
          if (!sink.write(canonicalJson({ kind: 'event', ...e }) + '\n'))
            await new Promise<void>((r) => sink.once('drain', () => r()));
          n += 1;
        }
        for (const c of await s.store.db.selectFrom('checkpoints').selectAll().orderBy('seq').execute()) {
          sink.write(
            canonicalJson({
              kind: 'checkpoint',
              seq: Number(c.seq),
              headHash: c.head_hash,
              signedAt: c.signed_at,
              keyId: c.key_id,
              signature: c.signature,
            }) + '\n',
          );
        }
        if (flags.out) {
          await new Promise<void>((resolve, reject) =>
            (sink as fs.WriteStream).end((err?: Error | null) => (err ? reject(err) : resolve())),
          );
          io.err.write(`${n} event(s) written to ${flags.out}\n`);
        }
      });
    });
}
