/** What every progress display implements; the run feeds it events and, at the end, the summary. */
import type { WarmEvent } from './events.js';
import { RateMeter } from './format.js';
import type { Summary } from './summary.js';
import type { Warmer } from './walker.js';

export interface Reporter {
  /** Called once before the first image starts. */
  start(): void;
  event(e: WarmEvent): void;
  /** Stops any timer and prints the summary. */
  finish(summary: Summary): void;
}

/** Where reporters write (stdout in the CLI; a buffer in tests). */
export interface Output {
  write(text: string): unknown;
}

/** The run's totals as {@link Warmer.totals} gives them. */
export type Totals = ReturnType<Warmer['totals']>;

/**
 * Calls `tick` every `intervalMs` (never when 0) with the run's totals and the transfer rate over
 * the last 10 s: the periodic total line of logs and `--json`. The timer never keeps the process alive.
 */
export class PeriodicTotals {
  private timer: NodeJS.Timeout | undefined;
  private readonly meter = new RateMeter(10_000);

  constructor(
    private readonly warmer: Warmer,
    private readonly intervalMs: number,
    private readonly tick: (t: number, totals: Totals, rate: number) => void,
  ) {}

  start(): void {
    this.meter.sample(this.warmer.elapsed(), 0);
    if (this.intervalMs <= 0) return;
    this.timer = setInterval(() => {
      const t = this.warmer.elapsed();
      const totals = this.warmer.totals();
      this.meter.sample(t, totals.received);
      this.tick(t, totals, this.meter.rate());
    }, this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
