/** A counting semaphore with a bounded wait: caps concurrent fills without opening more upstream connections. */
import { LimitExceeded } from '../oci/errors.js';

export class Slots {
  private used = 0;
  private readonly waiters: Array<{ grant: () => void }> = [];

  constructor(private readonly max: number, private readonly waitMs: number, private readonly onQueue?: (waiting: number) => void) {}

  /** Slots in use now. */
  get inUse(): number {
    return this.used;
  }

  /** Takes a slot, waiting up to the configured time; throws {@link LimitExceeded} after it. */
  async acquire(): Promise<() => void> {
    if (this.used < this.max) {
      this.used++;
      return this.releaser();
    }
    await new Promise<void>((resolve, reject) => {
      const waiter = {
        grant: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        this.onQueue?.(this.waiters.length);
        reject(new LimitExceeded('fill-queue', 'too many upstream fills in progress', 5));
      }, this.waitMs);
      this.waiters.push(waiter);
      this.onQueue?.(this.waiters.length);
    });
    return this.releaser();
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      this.onQueue?.(this.waiters.length);
      if (next) next.grant();
      else this.used--;
    };
  }
}
