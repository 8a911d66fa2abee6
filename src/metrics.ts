/**
 * Prometheus metrics. One {@link Metrics} per mirror, on its own prom-client Registry, so that
 * several mirrors in one process (tests, embedding) never share counters.
 *
 * Names follow the Prometheus conventions: `regmirror_` prefix, base unit last (`_bytes`,
 * `_seconds`), `_total` on counters. Process metrics keep their standard `process_*` / `nodejs_*`
 * names so stock dashboards and alerts work on them. deploy/prometheus/alerts.yml and
 * deploy/grafana/regmirror.json are written against these names (and tested against them).
 */
import { Counter, Histogram, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { CounterTally, FastHistogram, type Series } from './metric-batch.js';

/** Request-duration buckets (seconds): sub-millisecond cache hits up to minute-long cold pulls. */
export const DURATION_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/**
 * Fill-duration buckets (seconds). A fill is at least one upstream round trip and at most a
 * multi-GiB layer over a slow link, so nothing below 50 ms and up to 15 minutes.
 */
export const FILL_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 900];

/** Time-to-first-byte buckets (seconds): a hit answers in well under a millisecond, a cold miss waits for the upstream. */
export const TTFB_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Redis round trips (seconds): from 100 µs on loopback to the command timeout. */
export const REDIS_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** What a request asked for, as used in metric labels. */
export type Kind = 'manifest' | 'blob' | 'tag' | 'tags' | 'referrers' | 'base' | 'other';

/**
 * Reads Docker Hub's `ratelimit-limit` / `ratelimit-remaining` value (`100;w=21600`): the count
 * before the first `;`. Undefined for anything else.
 */
export function parseRateLimitHeader(value: string | string[] | undefined): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined) return undefined;
  const m = /^\s*(\d{1,12})\s*(?:;|$)/.exec(v);
  return m ? Number(m[1]) : undefined;
}

/** The mirror's metrics. */
export class Metrics {
  readonly registry = new Registry();
  readonly requests: Counter<'kind' | 'method' | 'status'>;
  /** Request start to the end of the response, by kind and cache outcome (hot path: see {@link Metrics.requestDone}). */
  readonly requestDuration: FastHistogram;
  /** Request start to the response's status line (headers), by kind and cache outcome (see {@link Metrics.firstByte}). */
  readonly ttfb: FastHistogram;
  readonly hits: Counter<'kind'>;
  readonly misses: Counter<'kind'>;
  readonly bytesServed: Counter<'source'>;
  readonly upstreamRequests: Counter<'upstream' | 'kind' | 'method' | 'status'>;
  readonly upstreamBytes: Counter<'upstream' | 'kind'>;
  /** Requests sent again because their connection dropped before an answer began (upstream/retry.ts). */
  readonly upstreamRetries: Counter<'upstream' | 'reason'>;
  /** Docker Hub's pull budget as it last answered (`ratelimit-remaining`). */
  readonly upstreamRateLimitRemaining: Gauge<'upstream'>;
  /** Docker Hub's pull budget per window (`ratelimit-limit`). */
  readonly upstreamRateLimitLimit: Gauge<'upstream'>;
  readonly upstreamLastSuccess: Gauge<'upstream'>;
  readonly verifyFailures: Counter<'kind' | 'reason'>;
  readonly staleServed: Counter<'upstream'>;
  readonly tagRevalidations: Counter<'result'>;
  readonly fillsStarted: Counter;
  readonly fillsCompleted: Counter;
  readonly fillsFailed: Counter<'reason'>;
  readonly fillJoiners: Counter;
  readonly fillJoinerBytes: Counter;
  readonly fillDuration: Histogram;
  readonly fillsInFlight: Gauge;
  readonly fillQueueWaiting: Gauge;
  readonly coalesced: Counter<'kind'>;
  readonly rangeRequests: Counter<'source' | 'parts'>;
  readonly rangeParts: Counter<'source'>;
  readonly rangeUpstreamBytes: Counter;
  readonly backgroundFills: Counter<'reason'>;
  readonly cacheSize: Gauge<'kind'>;
  readonly cacheObjects: Gauge<'kind'>;
  readonly cacheMaxSize: Gauge;
  readonly filesystemFree: Gauge;
  readonly evictions: Counter<'reason'>;
  readonly evictedBytes: Counter<'reason'>;
  readonly uncachedPulls: Counter<'reason'>;
  readonly indexErrors: Counter<'op'>;
  readonly redisErrors: Counter<'op'>;
  readonly redisUp: Gauge;
  readonly redisOperationDuration: Histogram<'op'>;
  readonly clusterPeers: Gauge;

  private readonly collectHooks: Array<() => Promise<void> | void> = [];
  private readonly requestTally = new CounterTally<'kind' | 'method' | 'status'>();
  private readonly hitTally = new CounterTally<'kind'>();
  private readonly servedTally = new CounterTally<'source'>();
  private lastDone: { kind: string; method: string; status: number; cache: string; count: { n: number }; duration: Series } | undefined;
  private lastFirstByte: { kind: string; cache: string; series: Series } | undefined;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    const p = 'regmirror_';
    // The per-request counters are tallied in plain numbers and added when read (see metric-batch.ts).
    const requestTally = this.requestTally;
    const hitTally = this.hitTally;
    const servedTally = this.servedTally;
    this.requests = new Counter({ name: `${p}requests_total`, help: 'Client requests by kind, method and status', labelNames: ['kind', 'method', 'status'], registers, collect() { requestTally.flushInto(this); } });
    this.requestDuration = new FastHistogram({ name: `${p}request_duration_seconds`, help: 'Time to the end of the response, by kind and cache outcome', labelNames: ['kind', 'cache'], buckets: DURATION_BUCKETS, registry: this.registry });
    this.ttfb = new FastHistogram({ name: `${p}time_to_first_byte_seconds`, help: 'Time from the request to the response headers, by kind and cache outcome', labelNames: ['kind', 'cache'], buckets: TTFB_BUCKETS, registry: this.registry });
    this.hits = new Counter({ name: `${p}cache_hits_total`, help: 'Requests answered from the cache without an upstream request', labelNames: ['kind'], registers, collect() { hitTally.flushInto(this); } });
    this.misses = new Counter({ name: `${p}cache_misses_total`, help: 'Requests that needed the upstream', labelNames: ['kind'], registers });
    this.bytesServed = new Counter({ name: `${p}served_bytes_total`, help: 'Body bytes sent to clients, by source (cache = committed file, fill = in-flight fill, upstream = passed through)', labelNames: ['source'], registers, collect() { servedTally.flushInto(this); } });
    this.upstreamRequests = new Counter({ name: `${p}upstream_requests_total`, help: 'Requests sent to upstreams (redirect hops and token requests included)', labelNames: ['upstream', 'kind', 'method', 'status'], registers });
    this.upstreamRetries = new Counter({ name: `${p}upstream_retries_total`, help: 'Upstream GETs and HEADs sent once more because their connection dropped before any answer (reason: ECONNRESET, EPIPE, UND_ERR_SOCKET); a steady rate means the upstream or a load balancer closes idle connections sooner than the mirror expects', labelNames: ['upstream', 'reason'], registers });
    this.upstreamBytes = new Counter({ name: `${p}upstream_bytes_total`, help: 'Body bytes received from upstreams', labelNames: ['upstream', 'kind'], registers });
    this.upstreamRateLimitRemaining = new Gauge({ name: `${p}upstream_ratelimit_remaining`, help: 'Pulls left in the current window, from the upstream\'s ratelimit-remaining header (Docker Hub; sent on HEAD too)', labelNames: ['upstream'], registers });
    this.upstreamRateLimitLimit = new Gauge({ name: `${p}upstream_ratelimit_limit`, help: 'Pulls allowed per window, from the upstream\'s ratelimit-limit header (Docker Hub)', labelNames: ['upstream'], registers });
    this.upstreamLastSuccess = new Gauge({ name: `${p}upstream_last_success_timestamp_seconds`, help: 'Unix time of the last successful answer from each upstream', labelNames: ['upstream'], registers });
    this.verifyFailures = new Counter({ name: `${p}verify_failures_total`, help: 'Fetched content rejected: digest mismatch, short body, oversize', labelNames: ['kind', 'reason'], registers });
    this.staleServed = new Counter({ name: `${p}stale_served_total`, help: 'Tag answers served stale because the upstream failed', labelNames: ['upstream'], registers });
    this.tagRevalidations = new Counter({ name: `${p}tag_revalidations_total`, help: 'Tag revalidations against the upstream by result', labelNames: ['result'], registers });
    this.fillsStarted = new Counter({ name: `${p}fills_started_total`, help: 'Blob fills started', registers });
    this.fillsCompleted = new Counter({ name: `${p}fills_completed_total`, help: 'Blob fills verified and committed', registers });
    this.fillsFailed = new Counter({ name: `${p}fills_failed_total`, help: 'Blob fills that failed', labelNames: ['reason'], registers });
    this.fillJoiners = new Counter({ name: `${p}fill_joiners_total`, help: 'Requests that joined a blob fill already in flight (coalesced)', registers });
    this.fillJoinerBytes = new Counter({ name: `${p}fill_joiner_bytes_total`, help: 'Bytes served to joiners of an in-flight fill', registers });
    this.fillDuration = new Histogram({ name: `${p}fill_duration_seconds`, help: 'Blob fill duration, first upstream request to commit', buckets: FILL_BUCKETS, registers });
    this.fillsInFlight = new Gauge({ name: `${p}fills_in_flight`, help: 'Blob fills running now', registers });
    this.fillQueueWaiting = new Gauge({ name: `${p}fill_queue_waiting`, help: 'Requests waiting for a fill slot', registers });
    this.coalesced = new Counter({ name: `${p}coalesced_total`, help: 'Requests that shared an upstream fetch already in flight, by kind', labelNames: ['kind'], registers });
    this.rangeRequests = new Counter({ name: `${p}range_requests_total`, help: 'Range requests by source and single/multi', labelNames: ['source', 'parts'], registers });
    this.rangeParts = new Counter({ name: `${p}range_parts_total`, help: 'Parts served in range answers', labelNames: ['source'], registers });
    this.rangeUpstreamBytes = new Counter({ name: `${p}range_upstream_bytes_total`, help: 'Bytes read from upstreams to answer range requests', registers });
    this.backgroundFills = new Counter({ name: `${p}background_fills_total`, help: 'Whole-blob fills started by the mirror itself, by reason (range-misses: a blob read in pieces again and again)', labelNames: ['reason'], registers });
    // Cache gauges are read from their sources at scrape time (see onCollect), not kept up per request; one
    // scrape reads four of them, so the hooks run once per scrape, not once per gauge.
    const hooks = this.collectHooks;
    let ran: Promise<void> | undefined;
    const collect = async (): Promise<void> => {
      ran ??= (async () => {
        for (const h of hooks) await h();
      })().finally(() => setTimeout(() => (ran = undefined), 100).unref());
      await ran;
    };
    this.cacheSize = new Gauge({ name: `${p}cache_size_bytes`, help: 'Bytes held in the disk cache, by kind (blob, manifest)', labelNames: ['kind'], registers, collect });
    this.cacheObjects = new Gauge({ name: `${p}cache_objects`, help: 'Objects held in the disk cache, by kind (blob, manifest)', labelNames: ['kind'], registers, collect });
    this.cacheMaxSize = new Gauge({ name: `${p}cache_max_size_bytes`, help: 'The configured cap of the disk cache (0: no cap)', registers, collect });
    this.filesystemFree = new Gauge({ name: `${p}filesystem_free_bytes`, help: 'Bytes free on the filesystem of the data directory', registers, collect });
    this.evictions = new Counter({ name: `${p}evictions_total`, help: 'Cache objects evicted, by reason (size, age, disk)', labelNames: ['reason'], registers });
    this.evictedBytes = new Counter({ name: `${p}evicted_bytes_total`, help: 'Bytes evicted from the cache, by reason', labelNames: ['reason'], registers });
    this.uncachedPulls = new Counter({ name: `${p}uncached_pulls_total`, help: 'Blobs passed through without being cached, by reason (disk full, too large, ...)', labelNames: ['reason'], registers });
    this.indexErrors = new Counter({ name: `${p}index_errors_total`, help: 'Failed operations on the durable cache index, by operation', labelNames: ['op'], registers });
    this.redisErrors = new Counter({ name: `${p}redis_errors_total`, help: 'Failed Redis operations, by operation', labelNames: ['op'], registers });
    this.redisUp = new Gauge({ name: `${p}redis_up`, help: '1 when the Redis connection is ready, 0 when it is not (or Redis is not configured)', registers });
    this.redisOperationDuration = new Histogram({ name: `${p}redis_operation_duration_seconds`, help: 'Redis round trips, by operation', labelNames: ['op'], buckets: REDIS_BUCKETS, registers });
    this.clusterPeers = new Gauge({ name: `${p}cluster_peers`, help: 'Peer mirrors this one currently knows', registers });
    // Series that exist from the start, at 0: a counter born at its first increment hides that
    // increment from rate(), and hit ratios stay NaN until both sides have moved twice.
    for (const kind of ['manifest', 'blob'] as const) {
      this.hits.inc({ kind }, 0);
      this.misses.inc({ kind }, 0);
    }
    for (const source of ['cache', 'fill', 'upstream']) this.bytesServed.inc({ source }, 0);
    if (opts.defaultMetrics) collectDefaultMetrics({ register: this.registry });
  }

  /** Runs `fn` before every scrape (cache size, free space …), ahead of the gauges it sets. */
  /** Hot path: a finished (or aborted) client request. `method` is what Node's parser accepted (a bounded set). */
  requestDone(kind: string, method: string, status: number, cache: string, seconds: number): void {
    // Consecutive requests mostly share their labels: the last label set's slots are kept, and a request
    // like the one before costs four comparisons, no key string.
    let last = this.lastDone;
    if (last === undefined || last.kind !== kind || last.method !== method || last.status !== status || last.cache !== cache) {
      last = this.lastDone = {
        kind,
        method,
        status,
        cache,
        count: this.requestTally.slot(`${kind} ${method} ${status}`, () => ({ kind, method, status: String(status) })),
        duration: this.requestDuration.seriesOf(`${kind} ${cache}`, () => ({ kind, cache })),
      };
    }
    last.count.n++;
    this.requestDuration.observeIn(last.duration, seconds);
  }

  /** Hot path: a response's status line went out. */
  firstByte(kind: string, cache: string, seconds: number): void {
    let last = this.lastFirstByte;
    if (last === undefined || last.kind !== kind || last.cache !== cache) {
      last = this.lastFirstByte = { kind, cache, series: this.ttfb.seriesOf(`${kind} ${cache}`, () => ({ kind, cache })) };
    }
    this.ttfb.observeIn(last.series, seconds);
  }

  /** Hot path: a request answered from the cache (`cache_hits_total`). */
  hit(kind: 'manifest' | 'blob'): void {
    this.hitTally.add(kind, () => ({ kind }));
  }

  /** Hot path: body bytes sent to a client (`served_bytes_total`). */
  served(source: 'cache' | 'fill' | 'upstream', bytes: number): void {
    this.servedTally.add(source, () => ({ source }), bytes);
  }

  onCollect(fn: () => Promise<void> | void): void {
    this.collectHooks.push(fn);
  }

  /** Records an upstream answer's rate-limit headers (Docker Hub sends them; others do not). */
  observeRateLimit(upstream: string, headers: Record<string, string | string[] | undefined>): void {
    const remaining = parseRateLimitHeader(headers['ratelimit-remaining']);
    if (remaining !== undefined) this.upstreamRateLimitRemaining.set({ upstream }, remaining);
    const limit = parseRateLimitHeader(headers['ratelimit-limit']);
    if (limit !== undefined) this.upstreamRateLimitLimit.set({ upstream }, limit);
  }
}
