/**
 * Vitest reporter that ends the output with one greppable line:
 *
 *   `N passed, N failed[, N skipped][, N errors]`
 *
 * counting test cases. `skipped` also covers tests that never ran (todo / cancelled). `errors` counts
 * failures that belong to no test case — a test file that fails to load, a failing file-level hook,
 * unhandled errors, or a failing global setup — so that such a run never looks green.
 *
 * Vitest may print more after `onTestRunEnd` (unhandled errors, a global setup failure, teardown
 * output), so in a single run the line is written from the process 'exit' handler, which makes it
 * truly the last line. In watch mode it is printed after every run instead.
 */
import { writeSync } from 'node:fs';
import type { Reporter, SerializedError, TestModule, TestRunEndReason, Vitest } from 'vitest/node';

interface Counts {
  passed: number;
  failed: number;
  skipped: number;
  errors: number;
}

export default class SummaryReporter implements Reporter {
  private watch = false;
  private counts: Counts = { passed: 0, failed: 0, skipped: 0, errors: 0 };

  onInit(vitest: Vitest): void {
    this.watch = vitest.config.watch;
    if (!this.watch) process.once('exit', (code) => this.print(code));
  }

  onTestRunEnd(
    testModules: ReadonlyArray<TestModule>,
    unhandledErrors: ReadonlyArray<SerializedError>,
    _reason: TestRunEndReason,
  ): void {
    const counts: Counts = { passed: 0, failed: 0, skipped: 0, errors: unhandledErrors.length };
    for (const module of testModules) {
      counts.errors += module.errors().length;
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') counts.passed++;
        else if (state === 'failed') counts.failed++;
        else counts.skipped++;
      }
    }
    this.counts = counts;
    if (this.watch) this.print(0);
  }

  private print(exitCode: number): void {
    const { passed, failed, skipped } = this.counts;
    let { errors } = this.counts;
    // A non-zero exit with nothing to show for it (e.g. global setup threw): count it as an error.
    if (exitCode !== 0 && failed === 0 && errors === 0) errors = 1;

    let line = `${passed} passed, ${failed} failed`;
    if (skipped > 0) line += `, ${skipped} skipped`;
    if (errors > 0) line += `, ${errors} error${errors === 1 ? '' : 's'}`;
    // Synchronous write: this may run inside process 'exit', where async writes can be lost.
    writeSync(1, `${line}\n`);
  }
}
