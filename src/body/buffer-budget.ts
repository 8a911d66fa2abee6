/**
 * One global budget for the buffers that carry bytes to clients. Every transfer reads into buffers taken
 * here; a transfer whose client stops reading keeps its buffer until the write-idle timeout drops it, so
 * without a budget a thousand stalled readers pin a thousand buffers. Under pressure transfers get small
 * buffers (still fast enough, far less memory); only when the budget is spent do they wait.
 */

/** Size of a transfer buffer while the budget is not under pressure. */
export const LARGE_BUFFER = 1024 * 1024;
/** Size of a transfer buffer once three quarters of the budget are in use. */
export const SMALL_BUFFER = 64 * 1024;
/** Free buffers kept for reuse, per size (bounded, so idle memory stays small). */
const POOL_MAX = 16;

export class BufferBudget {
  private inUse = 0;
  private readonly pools = new Map<number, Buffer[]>([
    [LARGE_BUFFER, []],
    [SMALL_BUFFER, []],
  ]);
  private readonly waiters: Array<() => void> = [];

  /** @param limit bytes of transfer buffers in use at once */
  constructor(readonly limit: number) {}

  /** Bytes of buffers handed out now. */
  get used(): number {
    return this.inUse;
  }

  /** A buffer if the budget has room for one now (large while under pressure-free, else small); undefined otherwise. */
  tryTake(): Buffer | undefined {
    const size = this.inUse + LARGE_BUFFER <= this.limit * 0.75 ? LARGE_BUFFER : this.inUse + SMALL_BUFFER <= this.limit ? SMALL_BUFFER : 0;
    if (size === 0) return undefined;
    this.inUse += size;
    return this.pools.get(size)!.pop() ?? Buffer.allocUnsafeSlow(size);
  }

  /** A buffer, waiting for room in the budget when it is spent. */
  async take(): Promise<Buffer> {
    for (;;) {
      const b = this.tryTake();
      if (b) return b;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Gives a buffer back (once its last write completed). */
  give(b: Buffer): void {
    this.inUse -= b.length;
    const pool = this.pools.get(b.length);
    if (pool && pool.length < POOL_MAX) pool.push(b);
    this.waiters.shift()?.();
  }
}
