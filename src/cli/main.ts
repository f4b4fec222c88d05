#!/usr/bin/env -S node --max-semi-space-size=64
// A larger young generation: evaluating or importing a large estate makes many short-lived
// objects, and with the default 16 MB semi-space garbage collection took a third of the time.
import { run } from './run.js';

// A closed pipe (`steward identities | head`) is not an error worth a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}

process.exitCode = await run(process.argv.slice(2), { out: process.stdout, err: process.stderr });
