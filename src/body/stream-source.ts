/**
 * A source over bytes that arrive in sequence from the upstream: one forwarded range, or the parts of a
 * multi-range answer fetched as single ranges (see range/upstream-parts.ts). Positions are offsets in the
 * blob; reads must move forward within the range last selected. Nothing here can be verified.
 */
import type { Readable } from 'node:stream';
import type { BodySource } from './source.js';

/** The bytes of one range: a buffer, or a stream yielding exactly the range's bytes. */
export type RangeBytes = Uint8Array | Readable;

/** Supplies the bytes of range `index` ([start, end] of the blob), in answer order. */
export type RangeSupplier = (index: number, start: number, end: number) => RangeBytes | Promise<RangeBytes>;

export class StreamSource implements BodySource {
  readonly trust = 'unverifiable' as const;
  /** Chunks received and not yet read, the first starting at `base`. */
  private chunks: Uint8Array[] = [];
  private base = 0;
  private buffered = 0;
  private iterator: AsyncIterator<Uint8Array> | undefined;
  private stream: Readable | undefined;
  private done = true;
  private released = false;

  /**
   * @param size the blob's size, when known
   * @param supply the bytes of each range the sender selects
   */
  constructor(readonly size: number | undefined, private readonly supply: RangeSupplier, private readonly onRelease?: () => void) {}

  /** A source over one stream that starts at `start` of the blob. */
  static of(stream: Readable, start: number, size: number | undefined, onRelease?: () => void): StreamSource {
    const s = new StreamSource(size, () => stream, onRelease);
    s.pending = s.select(0, start);
    return s;
  }

  private pending: Promise<void> | undefined;

  async select(index: number, start: number, end = Infinity): Promise<void> {
    this.dropStream();
    const bytes = await this.supply(index, start, end);
    this.chunks = [];
    this.base = start;
    this.buffered = 0;
    if (bytes instanceof Uint8Array) {
      this.chunks.push(bytes);
      this.buffered = bytes.length;
      this.done = true;
    } else {
      this.stream = bytes;
      this.iterator = (bytes as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
      this.done = false;
    }
  }

  async available(position: number, want: number): Promise<number> {
    if (this.pending) {
      await this.pending;
      this.pending = undefined;
    }
    this.skipTo(position);
    while (this.buffered < want && !this.done) {
      const next = await this.iterator!.next();
      if (next.done) {
        this.done = true;
        break;
      }
      this.chunks.push(next.value);
      this.buffered += next.value.length;
    }
    return this.buffered;
  }

  async read(buf: Buffer, length: number, position: number): Promise<number> {
    this.skipTo(position);
    let n = 0;
    while (n < length && this.chunks.length > 0) {
      const c = this.chunks[0]!;
      const take = Math.min(length - n, c.length);
      buf.set(take === c.length ? c : c.subarray(0, take), n);
      n += take;
      if (take === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(take);
    }
    this.base += n;
    this.buffered -= n;
    return n;
  }

  /** Drops buffered bytes before `position` (a sender never reads backwards). */
  private skipTo(position: number): void {
    let skip = position - this.base;
    while (skip > 0 && this.chunks.length > 0) {
      const c = this.chunks[0]!;
      if (c.length <= skip) {
        this.chunks.shift();
        skip -= c.length;
        this.base += c.length;
        this.buffered -= c.length;
      } else {
        this.chunks[0] = c.subarray(skip);
        this.base += skip;
        this.buffered -= skip;
        skip = 0;
      }
    }
  }

  private dropStream(): void {
    if (this.stream && !this.stream.destroyed) {
      this.stream.on('error', () => undefined);
      this.stream.destroy();
    }
    this.stream = undefined;
    this.iterator = undefined;
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.dropStream();
    this.onRelease?.();
  }
}
