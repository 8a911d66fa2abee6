/**
 * A Readable over bytes [start, end] of a {@link BodySource}, for the parts of a multipart answer that are
 * too large to read into memory at once. Each reader has its own position and backpressure, so a slow
 * client never slows a fill or other readers. When the source fails, the stream is destroyed with its error.
 */
import { Readable } from 'node:stream';
import type { BodySource } from './source.js';

/** Largest single read. */
const CHUNK = 256 * 1024;

export class SourceReadable extends Readable {
  private pos: number;
  private reading = false;

  /**
   * @param holdLast for a source still being verified: resolves once it is, before the last byte is pushed
   * @param onBytes called with every chunk size handed to the consumer
   */
  constructor(
    private readonly src: BodySource,
    start: number,
    private readonly end: number,
    private readonly onBytes: (n: number) => void,
    private readonly holdLast?: () => Promise<void>,
  ) {
    super({ highWaterMark: CHUNK });
    this.pos = start;
  }

  override _read(): void {
    if (!this.reading) void this.pump();
  }

  private async pump(): Promise<void> {
    this.reading = true;
    try {
      for (;;) {
        if (this.destroyed) return;
        if (this.pos > this.end) {
          this.push(null);
          return;
        }
        const left = this.end - this.pos + 1;
        const avail = await this.src.available(this.pos, Math.min(CHUNK, left));
        if (this.destroyed) return;
        if (avail <= 0) {
          this.destroy(new Error('source ended before the range did'));
          return;
        }
        const n = Math.min(avail, CHUNK, left);
        const buf = Buffer.allocUnsafe(n);
        const got = await this.src.read(buf, n, this.pos);
        if (this.destroyed) return;
        if (got <= 0) {
          this.destroy(new Error('source shorter than it said'));
          return;
        }
        if (this.pos + got - 1 === this.end && this.holdLast) await this.holdLast();
        if (this.destroyed) return;
        this.pos += got;
        this.onBytes(got);
        if (!this.push(got === n ? buf : buf.subarray(0, got))) return;
      }
    } catch (err) {
      this.destroy(err as Error);
    } finally {
      this.reading = false;
    }
  }
}
