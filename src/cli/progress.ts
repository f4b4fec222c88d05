import cliProgress from 'cli-progress';
import type { Io } from './output.js';

/** A progress bar on stderr when it is a terminal; silent otherwise. */
export function progressBar(
  io: Io,
  label: string,
): { update(done: number, total: number): void; stop(): void } {
  if (!io.err.isTTY) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    { stream: io.err, format: `${label} [{bar}] {percentage}% {value}/{total}`, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(done, total) {
      if (!started) {
        bar.start(total, done);
        started = true;
      } else bar.update(done);
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
