import type { Command } from 'commander';
import { fields, printJson, type Io } from '../output.js';
import { withSteward, type GlobalOptions } from '../context.js';

export function registerInit(program: Command, io: Io, g: () => GlobalOptions): void {
  program
    .command('init')
    .description('create the database (migrations) and the signing and fingerprint keys')
    .action(async () => {
      await withSteward(g(), async (s) => {
        const head = await s.ledger.head();
        const info = {
          database: s.store.location,
          dialect: s.store.dialect,
          keys: s.keys.dir,
          keyId: s.keys.keyId,
          events: head.seq,
        };
        if (io.json) printJson(io, info);
        else
          io.out.write(
            fields([
              ['database', info.database],
              ['dialect', info.dialect],
              ['keys', info.keys],
              ['signing key', info.keyId],
              ['events', info.events],
            ]),
          );
      });
    });
}
