/**
 * Prometheus metrics. One {@link Metrics} per mirror, on its own prom-client Registry, so that
 * several mirrors in one process (tests, embedding) never share counters.
 */
import { Counter, Histogram, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/** Histogram buckets (seconds) that resolve sub-millisecond cache hits as well as minute-long fills. */
export const DURATION_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** What a request asked for, as used in metric labels. */
export type Kind = 'manifest' | 'blob' | 'tag' | 'tags' | 'referrers' | 'base' | 'other';

/** The mirror's metrics. */
export class Metrics {
  readonly registry = new Registry();
  readonly requests: Counter<'kind' | 'method' | 'status'>;
  readonly requestDuration: Histogram<'kind' | 'cache'>;
  readonly hits: Counter<'kind'>;
  readonly misses: Counter<'kind'>;
  readonly bytesServed: Counter<'source'>;
  readonly upstreamRequests: Counter<'upstream' | 'kind' | 'method' | 'status'>;
  readonly upstreamBytes: Counter<'upstream' | 'kind'>;
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
  readonly redisErrors: Counter<'op'>;
  readonly redisUp: Gauge;
  readonly redisOperationDuration: Histogram<'op'>;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    const p = 'regmirror_';
    this.requests = new Counter({ name: `${p}requests_total`, help: 'Client requests by kind, method and status', labelNames: ['kind', 'method', 'status'], registers });
    this.requestDuration = new Histogram({ name: `${p}request_duration_seconds`, help: 'Time to the end of the response, by kind and cache outcome', labelNames: ['kind', 'cache'], buckets: DURATION_BUCKETS, registers });
    this.hits = new Counter({ name: `${p}cache_hits_total`, help: 'Requests answered from the cache without an upstream request', labelNames: ['kind'], registers });
    this.misses = new Counter({ name: `${p}cache_misses_total`, help: 'Requests that needed the upstream', labelNames: ['kind'], registers });
    this.bytesServed = new Counter({ name: `${p}bytes_served_total`, help: 'Body bytes sent to clients, by source (cache = committed file, fill = in-flight fill, upstream = passed through)', labelNames: ['source'], registers });
    this.upstreamRequests = new Counter({ name: `${p}upstream_requests_total`, help: 'Requests sent to upstreams (redirect hops and token requests included)', labelNames: ['upstream', 'kind', 'method', 'status'], registers });
    this.upstreamBytes = new Counter({ name: `${p}upstream_bytes_total`, help: 'Body bytes received from upstreams', labelNames: ['upstream', 'kind'], registers });
    this.verifyFailures = new Counter({ name: `${p}verify_failures_total`, help: 'Fetched content rejected: digest mismatch, short body, oversize', labelNames: ['kind', 'reason'], registers });
    this.staleServed = new Counter({ name: `${p}stale_served_total`, help: 'Tag answers served stale because the upstream failed', labelNames: ['upstream'], registers });
    this.tagRevalidations = new Counter({ name: `${p}tag_revalidations_total`, help: 'Tag revalidations against the upstream by result', labelNames: ['result'], registers });
    this.fillsStarted = new Counter({ name: `${p}fills_started_total`, help: 'Blob fills started', registers });
    this.fillsCompleted = new Counter({ name: `${p}fills_completed_total`, help: 'Blob fills verified and committed', registers });
    this.fillsFailed = new Counter({ name: `${p}fills_failed_total`, help: 'Blob fills that failed', labelNames: ['reason'], registers });
    this.fillJoiners = new Counter({ name: `${p}fill_joiners_total`, help: 'Requests that joined a blob fill already in flight (coalesced)', registers });
    this.fillJoinerBytes = new Counter({ name: `${p}fill_joiner_bytes_total`, help: 'Bytes served to joiners of an in-flight fill', registers });
    this.fillDuration = new Histogram({ name: `${p}fill_duration_seconds`, help: 'Blob fill duration, first upstream request to commit', buckets: DURATION_BUCKETS, registers });
    this.fillsInFlight = new Gauge({ name: `${p}fills_in_flight`, help: 'Blob fills running now', registers });
    this.fillQueueWaiting = new Gauge({ name: `${p}fill_queue_waiting`, help: 'Requests waiting for a fill slot', registers });
    this.coalesced = new Counter({ name: `${p}coalesced_total`, help: 'Requests that shared an upstream fetch already in flight, by kind', labelNames: ['kind'], registers });
    this.rangeRequests = new Counter({ name: `${p}range_requests_total`, help: 'Range requests by source and single/multi', labelNames: ['source', 'parts'], registers });
    this.rangeParts = new Counter({ name: `${p}range_parts_total`, help: 'Parts served in range answers', labelNames: ['source'], registers });
    this.rangeUpstreamBytes = new Counter({ name: `${p}range_upstream_bytes_total`, help: 'Bytes read from upstreams to answer range requests', registers });
    this.redisErrors = new Counter({ name: `${p}redis_errors_total`, help: 'Redis commands that failed or missed their deadline, by operation', labelNames: ['op'], registers });
    this.redisUp = new Gauge({ name: `${p}redis_up`, help: '1 when Redis is connected and its breaker is closed; 0 while tags take the local path', registers });
    this.redisOperationDuration = new Histogram({ name: `${p}redis_operation_duration_seconds`, help: 'Redis command duration, by operation', labelNames: ['op'], buckets: DURATION_BUCKETS, registers });
    if (opts.defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: p });
  }
}
