/**
 * Error accounting for the index. The index sits beside the serving path, never in it: a failing
 * disk or a full map must cost cache accuracy, not requests. So every failure is counted and
 * handed to a callback (metrics), and logged only when the state changes (healthy → failing →
 * recovered), not once per request.
 */
import type { IndexLogger } from './types.js';

/** What failed: a read, a write transaction, the touch flush, opening. */
export type IndexOp = 'open' | 'read' | 'write' | 'flush' | 'close';

export class IndexHealth {
  /** Failures since open. */
  errors = 0;
  private failing = false;

  constructor(
    private readonly log?: IndexLogger,
    private readonly onError?: (op: IndexOp, err: unknown) => void,
  ) {}

  /** Counts a failure; logs it when the index was healthy until now. */
  fail(op: IndexOp, err: unknown): void {
    this.errors++;
    try {
      this.onError?.(op, err);
    } catch {
      // A broken metrics callback must not turn into an index failure loop.
    }
    if (!this.failing) {
      this.failing = true;
      this.log?.warn({ err, op }, 'cache index failing; serving continues without it');
    }
  }

  /** Marks a successful write; logs the recovery when the index was failing. */
  ok(): void {
    if (this.failing) {
      this.failing = false;
      this.log?.info({ errors: this.errors }, 'cache index recovered');
    }
  }

  get healthy(): boolean {
    return !this.failing;
  }
}
