/** `--json`: every event as one JSON object per line, a `progress` object every `intervalMs`, then the summary. */
import type { WarmEvent } from './events.js';
import { PeriodicTotals, type Output, type Reporter } from './reporter.js';
import type { Summary } from './summary.js';
import type { Warmer } from './walker.js';

export class JsonProgress implements Reporter {
  private readonly periodic: PeriodicTotals;

  constructor(
    private readonly out: Output,
    warmer: Warmer,
    intervalMs: number,
  ) {
    this.periodic = new PeriodicTotals(warmer, intervalMs, (t, totals, rate) => this.write({ type: 'progress', t: Math.round(t), ...totals, bytesPerSecond: Math.round(rate) }));
  }

  start(): void {
    this.periodic.start();
  }

  private write(o: object): void {
    this.out.write(`${JSON.stringify(o)}\n`);
  }

  event(e: WarmEvent): void {
    this.write({ ...e, t: Math.round(e.t) });
  }

  finish(summary: Summary): void {
    this.periodic.stop();
    this.write(summary);
  }
}
