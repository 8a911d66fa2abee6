/**
 * A Readable over a fill: serves [start, end] of the blob from the fill's file as the bytes arrive,
 * waiting for progress when it has caught up. Each reader has its own position and backpressure, so a
 * slow reader never slows the fill or other readers. When the fill fails, the stream is destroyed with
 * its error (the HTTP response is aborted, never ended cleanly).
 */
import { Readable } from 'node:stream';
import type { BlobFill } from './blob-fill.js';

/** Largest single read from the fill file. */
const CHUNK = 256 * 1024;

export class FillReader extends Readable {
  private pos: number;
  private readonly last: number;
  private reading = false;
  private waiting = false;
  private released = false;

  /**
   * @param start first byte offset (inclusive)
   * @param end last byte offset (inclusive); Infinity when the size is unknown
   * @param onBytes called with every chunk size handed to the consumer
   */
  constructor(private readonly fill: BlobFill, start = 0, end = Infinity, private readonly onBytes?: (n: number) => void) {
    super({ highWaterMark: CHUNK });
    this.pos = start;
    this.last = end;
    fill.attach();
  }

  override _read(): void {
    if (!this.reading) void this.pump();
  }

  private readonly onProgress = (): void => {
    this.waiting = false;
    this.fill.off('progress', this.onProgress);
    if (!this.reading) void this.pump();
  };

  private async pump(): Promise<void> {
    this.reading = true;
    try {
      for (;;) {
        if (this.destroyed) return;
        if (this.pos > this.last) {
          this.push(null);
          return;
        }
        const fill = this.fill;
        if (fill.state === 'failed') {
          this.destroy(fill.error ?? new Error('fill failed'));
          return;
        }
        const limit = Math.min(fill.readable, this.last + 1);
        const avail = limit - this.pos;
        if (avail > 0) {
          const n = Math.min(avail, CHUNK);
          const buf = Buffer.allocUnsafe(n);
          const got = await fill.read(buf, n, this.pos);
          if (this.destroyed) return;
          if (got <= 0) {
            this.destroy(new Error('fill file shorter than its progress'));
            return;
          }
          this.pos += got;
          this.onBytes?.(got);
          if (!this.push(got === n ? buf : buf.subarray(0, got))) return;
          continue;
        }
        if (fill.state === 'done') {
          // Verified and complete: a range past the end (size was unknown) simply ends here.
          this.push(null);
          return;
        }
        if (!this.waiting) {
          this.waiting = true;
          fill.on('progress', this.onProgress);
        }
        return;
      }
    } catch (err) {
      this.destroy(err as Error);
    } finally {
      this.reading = false;
    }
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.fill.off('progress', this.onProgress);
    if (!this.released) {
      this.released = true;
      this.fill.detach();
    }
    cb(err);
  }

}
