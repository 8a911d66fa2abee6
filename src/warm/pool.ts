/** A bounded concurrency pool: at most `size` tasks run at once, the rest wait in order. */
export class Pool {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`pool size must be a positive integer, got ${size}`);
  }

  /** Runs `task` when a slot is free. Never await another pooled task inside one: that can deadlock. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.size) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.running++;
    try {
      return await task();
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }

  /** Tasks running now. */
  get active(): number {
    return this.running;
  }
}
