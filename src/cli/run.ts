import { Command, CommanderError } from 'commander';
import { StewardError } from '../domain/errors.js';
import type { Io } from './output.js';
import type { GlobalOptions } from './context.js';
import { registerInit } from './commands/init.js';
import { registerImport } from './commands/import.js';
import { registerIdentityCommands } from './commands/identities.js';
import { registerLedger } from './commands/ledger.js';
import { registerSummary } from './commands/summary.js';
import { registerFingerprint } from './commands/fingerprint.js';
import { registerPolicy } from './commands/policy.js';

/** Runs the CLI on `argv` (without `node` and the script) and returns the exit code. */
export async function run(argv: string[], io: Omit<Io, 'json'>): Promise<number> {
  const state: Io = { ...io, json: argv.includes('--json') };
  const program = new Command('steward')
    .description('Steward: the system of record for non-human identities')
    .option('--db <path-or-url>', 'SQLite file or postgres:// URL (env STEWARD_DB; default ./steward.db)')
    .option('--keys <dir>', 'folder of the signing and fingerprint keys (env STEWARD_KEYS)')
    .option('--json', 'machine-readable output')
    .option('--actor <principal>', 'who is acting, recorded on every event (env STEWARD_ACTOR)')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.out.write(s),
      writeErr: (s) => io.err.write(s),
    })
    .showHelpAfterError();
  const g = () => program.opts<GlobalOptions>();
  registerInit(program, state, g);
  registerImport(program, state, g);
  registerIdentityCommands(program, state, g);
  registerLedger(program, state, g);
  registerSummary(program, state, g);
  registerFingerprint(program, state, g);
  registerPolicy(program, state, g);
  for (const c of program.commands) enablePositionalGlobals(c);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.code === 'commander.helpDisplayed' ||
        e.code === 'commander.help' ||
        e.code === 'commander.version'
        ? 0
        : 1;
    }
    if (e instanceof StewardError) {
      if (state.json) io.err.write(JSON.stringify(e.toJSON(), null, 2) + '\n');
      else io.err.write(`steward: ${e.message}\n`);
      return e.exitCode;
    }
    io.err.write(`steward: unexpected error: ${(e as Error).stack ?? String(e)}\n`);
    return 1;
  }
}

/** Lets global options appear after the subcommand too (`steward show x --json`). */
function enablePositionalGlobals(c: Command): void {
  c.exitOverride();
  c.configureOutput({});
  c.option('--json', 'machine-readable output');
  c.option('--db <path-or-url>', 'SQLite file or postgres:// URL');
  c.option('--keys <dir>', 'key folder');
  c.option('--actor <principal>', 'who is acting');
  c.hook('preAction', (_this, action) => {
    const own = action.opts<GlobalOptions>();
    const root = c.parent ?? c;
    for (const k of ['db', 'keys', 'actor', 'json'] as const) {
      if (own[k] !== undefined) root.setOptionValue(k, own[k]);
    }
    let p: Command | null = root;
    while (p?.parent) p = p.parent;
    for (const k of ['db', 'keys', 'actor', 'json'] as const)
      if (own[k] !== undefined) p?.setOptionValue(k, own[k]);
  });
  for (const sub of c.commands) enablePositionalGlobals(sub);
}
