/** `--json`: every event as one JSON object per line, a `progress` object every `intervalMs`, then the summary. */
import type { WarmEvent } from './events.js';
import { RateMeter } from './format.js';
import type { Output, Reporter } from './reporter.js';
import type { Summary } from './summary.js';
import type { Warmer } from './walker.js';

export class JsonProgress implements Reporter {
  private timer: NodeJS.Timeout | undefined;
  private readonly meter = new RateMeter(10_000);

  constructor(
    private readonly out: Output,
    private readonly warmer: Warmer,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    this.meter.sample(this.warmer.elapsed(), 0);
    if (this.intervalMs > 0) {
      this.timer = setInterval(() => {
        const t = this.warmer.elapsed();
        const totals = this.warmer.totals();
        this.meter.sample(t, totals.received);
        this.write({ type: 'progress', t: Math.round(t), ...totals, bytesPerSecond: Math.round(this.meter.rate()) });
      }, this.intervalMs);
      this.timer.unref();
    }
  }

  private write(o: object): void {
    this.out.write(`${JSON.stringify(o)}\n`);
  }

  event(e: WarmEvent): void {
    this.write({ ...e, t: Math.round(e.t) });
  }

  finish(summary: Summary): void {
    if (this.timer) clearInterval(this.timer);
    this.write(summary);
  }
}
