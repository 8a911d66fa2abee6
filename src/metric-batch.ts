/**
 * Metrics for the per-request hot path, at a few nanoseconds an update instead of prom-client's
 * microsecond (it hashes a label object on every `inc` and `observe`). A request's label values are
 * joined into one key by the caller; the label object is only made the first time a key is seen.
 *
 * - {@link CounterTally}: increments summed in plain numbers and added to a prom-client Counter when it
 *   is read (its `collect` hook), so `/metrics`, `counter.get()` and the status page see exact totals.
 * - {@link FastHistogram}: a histogram of its own with fixed buckets, registered on the prom-client
 *   Registry as a metric like any other; `/metrics` renders it exactly as prom-client renders its own.
 */
import type { Counter, Metric, MetricValueWithName, Registry } from 'prom-client';

type Labels<L extends string> = Partial<Record<L, string>>;

/** Pending increments of a prom-client Counter, by label key. */
export class CounterTally<L extends string> {
  private readonly pending = new Map<string, { labels: Labels<L>; n: number }>();

  /** Adds `n` under `key` (the label values joined); `labels()` is called only for a key not seen since the last read. */
  add(key: string, labels: () => Labels<L>, n = 1): void {
    this.slot(key, labels).n += n;
  }

  /** The tally of one label set, to add to directly (`slot.n += …`) while it is the caller's current one. */
  slot(key: string, labels: () => Labels<L>): { n: number } {
    let p = this.pending.get(key);
    if (p === undefined) {
      p = { labels: labels(), n: 0 };
      this.pending.set(key, p);
    }
    return p;
  }

  /** Moves the pending increments into the counter (called from its `collect` hook). */
  flushInto(counter: Counter<L>): void {
    for (const p of this.pending.values()) {
      if (p.n > 0) counter.inc(p.labels, p.n);
      p.n = 0;
    }
    // Keys stay (their label objects are reused); a key that stays at 0 costs one map entry.
  }
}

/** One label set's buckets. */
export interface Series {
  labels: Record<string, string>;
  /** Observations per bucket (not cumulative); the last slot is +Inf. */
  counts: Float64Array;
  sum: number;
  count: number;
}

/** Options of {@link FastHistogram}. */
export interface FastHistogramOptions {
  name: string;
  help: string;
  labelNames: readonly string[];
  /** Upper bounds, ascending (seconds for a `_seconds` histogram). */
  buckets: readonly number[];
  registry: Registry;
}

/** A Prometheus histogram for the hot path (see the module comment). */
export class FastHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram' as const;
  readonly aggregator = 'sum' as const;
  private readonly buckets: Float64Array;
  private readonly series = new Map<string, Series>();

  constructor(private readonly opts: FastHistogramOptions) {
    this.name = opts.name;
    this.help = opts.help;
    this.buckets = Float64Array.from(opts.buckets);
    // prom-client's registry takes any object with its metric shape (name, help, type, get, reset).
    opts.registry.registerMetric(this as unknown as Metric<string>);
  }

  /** Records `value` under `key` (the label values joined); `labels()` is called only for a new key. */
  observe(key: string, labels: () => Record<string, string>, value: number): void {
    this.observeIn(this.seriesOf(key, labels), value);
  }

  /** One label set's series, to observe into with {@link observeIn} while it is the caller's current one. */
  seriesOf(key: string, labels: () => Record<string, string>): Series {
    let s = this.series.get(key);
    if (s === undefined) {
      s = { labels: labels(), counts: new Float64Array(this.buckets.length + 1), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    return s;
  }

  /** Records `value` in a series of this histogram. */
  observeIn(s: Series, value: number): void {
    const b = this.buckets;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  /** The series in prom-client's shape: cumulative `_bucket` lines with `le`, then `_sum` and `_count`. */
  async get(): Promise<{ name: string; help: string; type: 'histogram'; values: MetricValueWithName<string>[]; aggregator: 'sum' }> {
    const values: MetricValueWithName<string>[] = [];
    for (const s of this.series.values()) {
      let acc = 0;
      for (let i = 0; i <= this.buckets.length; i++) {
        acc += s.counts[i]!;
        const le = i < this.buckets.length ? this.buckets[i]! : '+Inf';
        values.push({ labels: { le, ...s.labels }, value: acc, metricName: `${this.name}_bucket` });
      }
      values.push({ labels: { ...s.labels }, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...s.labels }, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** Zeroes every series (prom-client's `registry.resetMetrics()`); series handed out stay valid. */
  reset(): void {
    for (const s of this.series.values()) {
      s.counts.fill(0);
      s.sum = 0;
      s.count = 0;
    }
  }

  /** The label names (documentation; label values are the caller's). */
  get labelNames(): readonly string[] {
    return this.opts.labelNames;
  }
}
