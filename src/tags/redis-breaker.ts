/**
 * A circuit breaker for Redis: after `failureThreshold` consecutive failed commands it opens, and for
 * `cooldownMs` every caller is told not to touch Redis; then one caller is let through as a probe
 * (half-open). A successful probe closes the breaker; a failed one opens it for another cooldown.
 */
import type { RedisBreaker } from '../config/types.js';

/** `closed`: use Redis. `open`: don't. `half-open`: one probe is in flight. */
export type BreakerState = 'closed' | 'open' | 'half-open';

export class Breaker {
  private current: BreakerState = 'closed';
  private failures = 0;
  private openedAt = 0;

  /**
   * @param onChange called on every state change (not per request), with the error that caused an opening.
   */
  constructor(
    private readonly config: RedisBreaker,
    private readonly onChange: (to: BreakerState, from: BreakerState, cause?: unknown) => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {}

  get state(): BreakerState {
    return this.current;
  }

  /** True when the caller may send a command; in the open state, after the cooldown, the first caller becomes the probe. */
  allow(): boolean {
    if (this.current === 'closed') return true;
    if (this.current === 'open' && this.now() - this.openedAt >= this.config.cooldownMs) {
      this.move('half-open');
      return true;
    }
    return false;
  }

  /** A command succeeded. */
  success(): void {
    this.failures = 0;
    if (this.current !== 'closed') this.move('closed');
  }

  /** A command failed or missed its deadline. */
  failure(cause: unknown): void {
    this.failures += 1;
    if (this.current === 'half-open' || (this.current === 'closed' && this.failures >= this.config.failureThreshold)) {
      this.openedAt = this.now();
      this.move('open', cause);
    }
  }

  private move(to: BreakerState, cause?: unknown): void {
    const from = this.current;
    this.current = to;
    this.onChange(to, from, cause);
  }
}
