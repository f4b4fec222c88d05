/**
 * Writes a large generated file piece by piece (synchronous writes of ≈ 1 MB), so that a benchmark
 * can produce gigabytes of input without holding it in memory.
 */
import fs from 'node:fs';

const FLUSH_AT = 1 << 20;

export class TextSink {
  private readonly fd: number;
  private parts: string[] = [];
  private pending = 0;
  /** Bytes written so far. */
  bytes = 0;

  constructor(file: string) {
    this.fd = fs.openSync(file, 'w');
  }

  write(s: string): void {
    this.parts.push(s);
    this.pending += s.length;
    if (this.pending >= FLUSH_AT) this.flush();
  }

  private flush(): void {
    if (!this.parts.length) return;
    const buf = Buffer.from(this.parts.join(''), 'utf8');
    fs.writeSync(this.fd, buf);
    this.bytes += buf.length;
    this.parts = [];
    this.pending = 0;
  }

  /** Flushes, closes the file and returns its size in bytes. */
  close(): number {
    this.flush();
    fs.closeSync(this.fd);
    return this.bytes;
  }
}
