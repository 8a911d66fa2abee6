/**
 * What the status page shows, gathered from the mirror's parts: cache totals (from an index when one is
 * provided), traffic since start (the metrics counters), each upstream's health, the fills in flight,
 * recent errors, cluster peers (when a provider is given), version and uptime. `/status.json` is this
 * report; the HTML page renders it. Nothing secret goes in: no credentials, URLs without user info or
 * query, no request headers.
 */
import { readFileSync } from 'node:fs';
import type { Counter } from 'prom-client';
import type { Metrics } from '../metrics.js';
import type { FillSnapshot } from '../fill/fills.js';
import type { UpstreamHealth, UpstreamError, RateLimit } from './upstream-health.js';
import type { RecentError, RecentErrors } from './recent-errors.js';

/** Cache totals as a durable index knows them. */
export interface CacheTotals {
  /** Bytes of committed content. */
  bytes: number;
  /** Objects (blobs and manifests) held. */
  objects: number;
  /** The configured cap, when there is one. */
  capBytes?: number;
  /** Bytes free below the cap (or on the disk), when known. */
  freeBytes?: number;
  /** Over the cache's life, when the index keeps them. */
  lifetime?: { hits: number; misses: number; bytesSaved: number };
}

/** A cluster peer, when the mirror runs in one. */
export interface PeerStatus {
  /** How the peer is named (host:port); no credentials. */
  name: string;
  state: string;
  /** ISO time last heard from. */
  lastSeen?: string;
}

/** One configured upstream, as the page may show it. */
export interface UpstreamInfo {
  namespace: string;
  /** The upstream URL; user info and query are stripped before it is shown. */
  url: string;
  /** Its bandwidth cap, bytes/s (0: none of its own). */
  bandwidth?: number;
}

/**
 * Where the numbers come from. Every provider but the required ones is optional: what is not provided
 * shows as "n/a" (cache totals until the durable index exists, peers outside a cluster).
 */
export interface StatusSources {
  metrics: Metrics;
  health: UpstreamHealth;
  errors: RecentErrors;
  upstreams: readonly UpstreamInfo[];
  fills: () => FillSnapshot[];
  /** Cache totals from the durable index. */
  cache?: () => CacheTotals | Promise<CacheTotals>;
  /** The data directory's filesystem. */
  disk?: () => Promise<{ freeBytes: number; totalBytes: number }>;
  /** Cluster peers. */
  peers?: () => PeerStatus[] | Promise<PeerStatus[]>;
  /** The overall bandwidth cap, bytes/s (0: unlimited). */
  bandwidth?: number;
  /** Version shown (default: package.json's). */
  version?: string;
  /** Clock, epoch ms (default Date.now). */
  now?: () => number;
}

/** One upstream on the page. */
export interface UpstreamStatus {
  namespace: string;
  /** scheme://host[:port] only. */
  endpoint: string;
  /** `ok` (last answer good), `failing` (last event an error), `unknown` (not asked yet). */
  state: 'ok' | 'failing' | 'unknown';
  lastSuccessAt: string | null;
  lastError: UpstreamError | null;
  /** True when tag answers were served stale since the last good upstream answer. */
  servingStale: boolean;
  staleServed: number;
  rateLimit: RateLimit | null;
  bandwidthLimit: number | null;
}

/** The whole report (`/status.json`). */
export interface StatusReport {
  version: string;
  now: string;
  startedAt: string;
  uptimeSeconds: number;
  cache: {
    /** `index` when totals come from the durable index, `none` when there is none yet. */
    source: 'index' | 'none';
    bytes: number | null;
    objects: number | null;
    capBytes: number | null;
    freeBytes: number | null;
    diskFreeBytes: number | null;
    diskTotalBytes: number | null;
    lifetime: CacheTotals['lifetime'] | null;
  };
  traffic: {
    hits: number;
    misses: number;
    /** hits / (hits + misses), null before the first request. */
    hitRatio: number | null;
    /** Body bytes sent to clients. */
    bytesServed: number;
    bytesServedFromCache: number;
    /** Body bytes read from upstreams (fills, manifests, range misses). */
    bytesFromUpstream: number;
    /** bytesServed − bytesFromUpstream (never below 0): what the cache spared the upstreams. */
    bytesSaved: number;
    fillsCompleted: number;
    fillsFailed: number;
  };
  bandwidth: { overall: number | null };
  upstreams: UpstreamStatus[];
  fills: FillSnapshot[];
  errors: { total: number; recent: RecentError[] };
  peers: PeerStatus[];
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Sums a counter's values, optionally only those whose labels match. */
async function sum(c: Counter<string>, where: (labels: Record<string, string | number | undefined>) => boolean = () => true): Promise<number> {
  const { values } = await c.get();
  let n = 0;
  for (const v of values) if (where(v.labels as Record<string, string | number | undefined>)) n += v.value;
  return n;
}

/** scheme://host[:port] of a URL: never its user info, path or query. */
export function endpointOf(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`;
  } catch {
    return 'invalid';
  }
}

/** Gathers {@link StatusReport}s. */
export class StatusCollector {
  private readonly started: number;
  private readonly version: string;
  private readonly now: () => number;
  /** Per upstream: the stale-served count at its last good answer, to tell whether it serves stale now. */
  private readonly staleBaseline = new Map<string, { atSuccess: number; count: number }>();

  constructor(private readonly sources: StatusSources) {
    this.now = sources.now ?? Date.now;
    this.started = this.now();
    this.version = sources.version ?? packageVersion();
  }

  async collect(): Promise<StatusReport> {
    const s = this.sources;
    const m = s.metrics;
    const t = this.now();
    const [hits, misses, served, fromCache, upstreamBytes, rangeBytes, completed, failed] = await Promise.all([
      sum(m.hits),
      sum(m.misses),
      sum(m.bytesServed),
      sum(m.bytesServed, (l) => l.source === 'cache'),
      sum(m.upstreamBytes),
      sum(m.rangeUpstreamBytes),
      sum(m.fillsCompleted),
      sum(m.fillsFailed),
    ]);
    const fromUpstream = upstreamBytes + rangeBytes;
    const [cache, disk, peers, upstreams] = await Promise.all([
      s.cache ? Promise.resolve(s.cache()).catch(() => undefined) : undefined,
      s.disk ? s.disk().catch(() => undefined) : undefined,
      s.peers ? Promise.resolve(s.peers()).catch(() => []) : [],
      this.upstreams(),
    ]);
    return {
      version: this.version,
      now: new Date(t).toISOString(),
      startedAt: new Date(this.started).toISOString(),
      uptimeSeconds: Math.max(0, Math.floor((t - this.started) / 1000)),
      cache: {
        source: cache ? 'index' : 'none',
        bytes: cache?.bytes ?? null,
        objects: cache?.objects ?? null,
        capBytes: cache?.capBytes ?? null,
        freeBytes: cache?.freeBytes ?? null,
        diskFreeBytes: disk?.freeBytes ?? null,
        diskTotalBytes: disk?.totalBytes ?? null,
        lifetime: cache?.lifetime ?? null,
      },
      traffic: {
        hits,
        misses,
        hitRatio: hits + misses === 0 ? null : hits / (hits + misses),
        bytesServed: served,
        bytesServedFromCache: fromCache,
        bytesFromUpstream: fromUpstream,
        bytesSaved: Math.max(0, served - fromUpstream),
        fillsCompleted: completed,
        fillsFailed: failed,
      },
      bandwidth: { overall: s.bandwidth ? s.bandwidth : null },
      upstreams,
      fills: s.fills(),
      errors: { total: s.errors.count, recent: s.errors.list() },
      peers,
    };
  }

  private async upstreams(): Promise<UpstreamStatus[]> {
    const stale = await this.sources.metrics.staleServed.get();
    const staleBy = new Map<string, number>();
    for (const v of stale.values) staleBy.set(String(v.labels.upstream), v.value);
    return this.sources.upstreams.map((u) => {
      const h = this.sources.health.get(u.namespace);
      const count = staleBy.get(u.namespace) ?? 0;
      let base = this.staleBaseline.get(u.namespace);
      // The first look after a good answer takes the stale count as the baseline: stale answers beyond it
      // mean tag revalidations failed since the upstream last answered well.
      if (!base || base.atSuccess !== h.lastSuccessMs) {
        base = { atSuccess: h.lastSuccessMs, count };
        this.staleBaseline.set(u.namespace, base);
      }
      const state: UpstreamStatus['state'] = h.lastSuccessMs === 0 && h.lastErrorMs === 0 ? 'unknown' : h.lastErrorMs > h.lastSuccessMs ? 'failing' : 'ok';
      return {
        namespace: u.namespace,
        endpoint: endpointOf(u.url),
        state,
        lastSuccessAt: h.lastSuccessAt,
        lastError: h.lastError,
        servingStale: count > base.count,
        staleServed: count,
        rateLimit: h.rateLimit,
        bandwidthLimit: u.bandwidth ? u.bandwidth : null,
      };
    });
  }
}
