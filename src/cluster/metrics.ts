/**
 * Metrics of cluster mode (issue 11): Redis operations (durations down to 100 µs, errors), directory and
 * lease lookups (hit / miss / error), peer transfers and peer failures. They live on the mirror's registry.
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import { DURATION_BUCKETS } from '../metrics.js';

export class ClusterMetrics {
  /** Redis command durations by operation and result (ok, nil, error). */
  readonly redisDuration: Histogram<'op' | 'result'>;
  /** Lookups in Redis: `directory` (who holds a digest) and `lease` (who fills it); hit, miss or error. */
  readonly lookups: Counter<'kind' | 'result'>;
  /** Where cluster fills read from: peer (committed or filling), upstream (lease taken), alone (Redis failed). */
  readonly fillOrigins: Counter<'origin'>;
  /** Fills that changed source mid-stream: peer → peer or peer → upstream, resumed with a Range or restarted. */
  readonly takeovers: Counter<'to' | 'mode'>;
  /** Peer transfers that failed, by reason (connect, status, body, digest-mismatch, short-body). */
  readonly peerFailures: Counter<'reason'>;
  /** Bytes received from peers. */
  readonly peerBytes: Counter;
  /** Requests answered by the peer endpoint: hit (committed), joined (filling), miss, denied. */
  readonly peerServed: Counter<'result'>;

  constructor(registry: Registry) {
    const registers = [registry];
    const p = 'regmirror_cluster_';
    this.redisDuration = new Histogram({ name: `${p}redis_duration_seconds`, help: 'Cluster Redis command durations by operation and result', labelNames: ['op', 'result'], buckets: DURATION_BUCKETS, registers });
    this.lookups = new Counter({ name: `${p}lookups_total`, help: 'Cluster lookups in Redis by kind (directory, lease) and result (hit, miss, error)', labelNames: ['kind', 'result'], registers });
    this.fillOrigins = new Counter({ name: `${p}fill_origins_total`, help: 'Where cluster fills started reading: peer, upstream (lease held), alone (Redis unavailable)', labelNames: ['origin'], registers });
    this.takeovers = new Counter({ name: `${p}takeovers_total`, help: 'Fills whose source failed mid-stream and continued elsewhere, by new source and mode (resume, restart)', labelNames: ['to', 'mode'], registers });
    this.peerFailures = new Counter({ name: `${p}peer_failures_total`, help: 'Failed peer transfers by reason', labelNames: ['reason'], registers });
    this.peerBytes = new Counter({ name: `${p}peer_bytes_total`, help: 'Blob bytes received from peer mirrors', registers });
    this.peerServed = new Counter({ name: `${p}peer_requests_total`, help: 'Peer endpoint answers by result (hit, joined, miss, denied)', labelNames: ['result'], registers });
  }
}
