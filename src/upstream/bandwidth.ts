/**
 * Upstream bandwidth limits: a token bucket per limit (one overall, one per upstream that has its own),
 * and the shaping of upstream blob bodies through them. Only bytes that come from an upstream are shaped;
 * clients of cached content never wait on a bucket.
 *
 * Fairness: a transfer takes at most one {@link QUANTUM} of tokens at a time and queues again for the
 * next one, and waiters are served first in, first out, so concurrent transfers take turns (round robin)
 * instead of the first one draining the bucket.
 */
import { Readable } from 'node:stream';

/** Most bytes one transfer takes in one turn: small enough for fair turns, large enough to keep wake-ups rare. */
export const QUANTUM = 64 * 1024;

/** The clock, in milliseconds (injectable for unit tests). */
export type Clock = () => number;

/** Something that lets bytes through at a rate: `take(n)` resolves when `n` bytes may pass. */
export interface Shaper {
  take(n: number): Promise<void>;
}

interface Waiter {
  n: number;
  resolve: () => void;
}

/** Options of a {@link TokenBucket}. */
export interface TokenBucketOptions {
  /**
   * Most tokens the bucket holds (default: 50 ms of rate, at least 4 quanta). It bounds the burst after an
   * idle spell and absorbs late timers, so a slow event loop does not lose rate.
   */
  burst?: number;
  /** Clock in ms (default performance.now). */
  now?: Clock;
}

/** A token bucket with a FIFO queue of waiters. Starts empty, so the first second runs at the rate too. */
export class TokenBucket implements Shaper {
  readonly burst: number;
  private tokens = 0;
  private last: number;
  private readonly queue: Waiter[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: Clock;

  /** @param rate bytes per second, > 0 */
  constructor(readonly rate: number, opts: TokenBucketOptions = {}) {
    if (!(rate > 0) || !Number.isFinite(rate)) throw new RangeError(`a token bucket needs a positive rate, got ${rate}`);
    this.now = opts.now ?? (() => performance.now());
    this.burst = Math.max(opts.burst ?? Math.max(4 * QUANTUM, rate * 0.05), 1);
    this.last = this.now();
  }

  /** Transfers waiting for their turn. */
  get waiting(): number {
    return this.queue.length - this.head;
  }

  /** Resolves once `n` bytes may pass (`n` above the burst is capped to it: a turn never waits forever). */
  take(n: number): Promise<void> {
    const want = Math.min(Math.max(n, 0), this.burst);
    this.refill();
    if (this.waiting === 0 && this.tokens >= want) {
      this.tokens -= want;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      this.queue.push({ n: want, resolve });
      this.pump();
    });
  }

  private refill(): void {
    const t = this.now();
    const elapsed = t - this.last;
    this.last = t;
    if (elapsed > 0) this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.rate) / 1000);
  }

  /** Grants the waiters at the head of the queue that the tokens cover; sleeps until the next one is covered. */
  private pump(): void {
    this.refill();
    while (this.head < this.queue.length) {
      const w = this.queue[this.head]!;
      if (this.tokens < w.n) break;
      this.tokens -= w.n;
      this.queue[this.head++] = undefined as unknown as Waiter;
      w.resolve();
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    if (this.waiting === 0 || this.timer) return;
    const w = this.queue[this.head]!;
    const ms = Math.max(1, Math.ceil(((w.n - this.tokens) * 1000) / this.rate));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pump();
    }, ms);
    // A waiting transfer keeps its own request alive; the timer alone must not hold the process open.
    this.timer.unref?.();
  }
}

/** Several shapers in a row (an upstream's own limit, then the overall one): bytes pass when all let them. */
class Chain implements Shaper {
  constructor(private readonly parts: readonly Shaper[]) {}
  async take(n: number): Promise<void> {
    for (const p of this.parts) await p.take(n);
  }
}

/** The configured limits, in bytes per second; 0 or absent means unlimited. */
export interface BandwidthLimits {
  /** Overall cap across every upstream. */
  overall: number;
  /** Caps of single upstreams, by namespace. */
  perUpstream: Readonly<Record<string, number>>;
}

/** The mirror's bandwidth limits: hands out the shaper of each upstream (undefined: unlimited). */
export class Bandwidth {
  private readonly overall: TokenBucket | undefined;
  private readonly shapers = new Map<string, Shaper | undefined>();

  constructor(private readonly limits: BandwidthLimits, private readonly opts: TokenBucketOptions = {}) {
    this.overall = limits.overall > 0 ? new TokenBucket(limits.overall, opts) : undefined;
  }

  /** The shaper for bodies from the upstream `namespace`, or undefined when nothing limits it. */
  forUpstream(namespace: string): Shaper | undefined {
    if (this.shapers.has(namespace)) return this.shapers.get(namespace);
    const own = this.limits.perUpstream[namespace];
    const parts: Shaper[] = [];
    if (own !== undefined && own > 0) parts.push(new TokenBucket(own, this.opts));
    if (this.overall) parts.push(this.overall);
    const s = parts.length === 0 ? undefined : parts.length === 1 ? parts[0] : new Chain(parts);
    this.shapers.set(namespace, s);
    return s;
  }
}

/** Yields the bytes of `source` no faster than `shaper` lets them through, one quantum per turn. */
export async function* shapeChunks(source: AsyncIterable<Uint8Array>, shaper: Shaper): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) {
    for (let off = 0; off < chunk.length; off += QUANTUM) {
      const piece = off === 0 && chunk.length <= QUANTUM ? chunk : chunk.subarray(off, off + QUANTUM);
      await shaper.take(piece.length);
      yield piece;
    }
  }
}

/** A readable of `source`'s bytes at the shaper's pace; destroying it destroys `source`. */
export function shapeReadable(source: Readable, shaper: Shaper | undefined): Readable {
  if (!shaper) return source;
  const out = Readable.from(shapeChunks(source, shaper), { objectMode: false, highWaterMark: QUANTUM });
  out.once('close', () => {
    if (!source.destroyed) source.destroy();
  });
  return out;
}
