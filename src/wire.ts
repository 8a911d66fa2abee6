/**
 * The one module that builds the mirror's parts from its configuration: stores, upstreams, fills, the
 * domain services and the HTTP routes. Every part gets its dependencies here, explicitly.
 */
import type { Agent } from 'undici';
import type { MirrorConfig } from './config/types.js';
import type { Logger } from './log.js';
import { Metrics } from './metrics.js';
import { Layout } from './store/layout.js';
import { BlobStore } from './store/blobs.js';
import { ManifestStore } from './store/manifests.js';
import type { TagStore } from './tags/store.js';
import { RedisTagStore } from './tags/redis-store.js';
import { TagService } from './tags/service.js';
import { ManifestService } from './manifests/service.js';
import { BlobService } from './blobs/service.js';
import { Fills } from './fill/fills.js';
import { Slots } from './fill/slots.js';
import { createDispatcher, Upstream } from './upstream/client.js';
import { Namespaces } from './upstream/namespaces.js';
import { Bandwidth } from './upstream/bandwidth.js';
import { blobHandler } from './http/handlers/blob.js';
import { manifestHandler } from './http/handlers/manifest.js';
import { tagsListHandler } from './http/handlers/tags-list.js';
import { referrersHandler } from './http/handlers/referrers.js';
import { TagListService } from './tags/list.js';
import { ReferrersService } from './tags/referrers.js';
import type { PipelineDeps } from './http/server.js';
import { BufferBudget } from './body/buffer-budget.js';
import { ReadinessCheck } from './http/readiness.js';
import { checkSpace } from './store/space.js';
import { openDiskCache, type DiskCache } from './store/cache.js';
import { LifetimeStats } from './status/lifetime.js';
import { resolveCap } from './config/max-size.js';
import type { Counter } from 'prom-client';

import { IndexTagStore } from './tags/index-store.js';
import { Sender } from './body/sender.js';
import { UpstreamHealth } from './status/upstream-health.js';
import { RecentErrors } from './status/recent-errors.js';
import { StatusCollector, type StatusSources } from './status/collector.js';
import { statusRoute } from './status/handler.js';
import { Cluster } from './cluster/cluster.js';
import { ClusterMetrics } from './cluster/metrics.js';
import { peerEndpoint } from './cluster/peer-endpoint.js';
import { Reclaimer } from './reclaim.js';

/** The sum of a counter over all its labels. */
async function sumOf(c: Counter<string>): Promise<number> {
  return (await c.get()).values.reduce((n, v) => n + v.value, 0);
}

/** Least free space on the data directory's filesystem for /readyz to answer ready (a fill needs room). */
const MIN_FREE_BYTES = 64 * 2 ** 20;

/** Everything a running mirror is made of. */
export interface MirrorParts {
  config: MirrorConfig;
  log: Logger;
  metrics: Metrics;
  layout: Layout;
  blobStore: BlobStore;
  tagStore: TagStore;
  fills: Fills;
  namespaces: Namespaces;
  blobs: BlobService;
  manifests: ManifestService;
  tags: TagService;
  /** The request pipeline's dependencies. */
  pipeline: PipelineDeps;
  /** The keep-alive dispatcher shared by every upstream. */
  dispatcher: Agent;
  /** The durable index and the evictor. */
  cache: DiskCache;
  /** Counters over the cache's life (status page), kept in the data directory. */
  lifetime: LifetimeStats;
  /** The global budget of transfer buffers. */
  budget: BufferBudget;
  /** What the status page shows. */
  status: StatusCollector;
  /** Cluster mode's parts, when `cluster.advertise` is set. */
  cluster?: Cluster;
}

/** Builds the parts of a mirror (no I/O: see Mirror.create for start-up). */
export function wire(
  config: MirrorConfig,
  log: Logger,
  opts: { processMetrics: boolean; draining: () => boolean; statusSources?: Pick<StatusSources, 'cache' | 'peers'> },
): MirrorParts {
  const metrics = new Metrics({ defaultMetrics: opts.processMetrics });
  // isolateNamespaces: each namespace's content in its own trees (store/layout.ts), one index and cap over all.
  const layout = new Layout(config.dataDir, { isolate: config.isolateNamespaces });
  // The evictor asks what is in use; those parts exist only below, hence the late-bound hooks.
  const cache = openDiskCache(layout, config.cache, metrics, log, () => ({
    isInUse: (kind, digest, scope) => kind === 'blob' && (blobStore.inUse(digest, scope) || fills.has(digest, scope)),
    evicted: (kind, digest, scope) => (kind === 'blob' ? blobStore.forget(digest, scope) : manifestStore.forget(digest, scope)),
  }));
  const blobStore = new BlobStore(layout, config.blobMemoryBytes, config.blobMemoryItemBytes, cache.index);
  const manifestStore = new ManifestStore(layout, config.manifestMemoryBytes, cache.index);
  // Tag answers survive restarts in the index; with Redis they are shared through it as well.
  const tagStore: TagStore = config.redisUrl
    ? new RedisTagStore({ url: config.redisUrl, policy: config.redis, log, metrics, local: new IndexTagStore(cache.index) })
    : new IndexTagStore(cache.index);
  const dispatcher = createDispatcher(config.upstreamTimeouts);
  const health = new UpstreamHealth();
  const recentErrors = new RecentErrors();
  const namespaces = new Namespaces(
    config.upstreams.map((u) => new Upstream(u, { dispatcher, timeouts: config.upstreamTimeouts, trust: config.trust, metrics, log, observer: health })),
    config.defaultNamespace,
  );
  const slots = new Slots(config.fill.maxConcurrent, config.fill.queueTimeoutMs, (n) => metrics.fillQueueWaiting.set(n));
  const reclaimer = new Reclaimer();
  const fills = new Fills({
    store: blobStore,
    metrics,
    log,
    acquireSlot: () => slots.acquire(),
    abortWhenOrphaned: config.fill.abortWhenOrphaned,
    reserve: (bytes) => cache.evictor.reserve(bytes),
    afterCommit: () => void cache.evictor.check(),
    ...(reclaimer.active ? { received: (bytes: number) => reclaimer.received(bytes) } : {}),
  });
  const manifests = new ManifestService({ store: manifestStore, metrics, log, maxBytes: config.maxManifestBytes, negativeTtlMs: config.negativeTtlMs });
  // Cluster metrics are on the mirror's registry always (dashboards read them as 0 on a lone mirror).
  const clusterMetrics = new ClusterMetrics(metrics.registry);
  const cluster = config.cluster.advertise && config.redisUrl
    ? new Cluster({ redisUrl: config.redisUrl, advertise: config.cluster.advertise, token: config.cluster.token, redisTimeoutMs: config.redis.timeoutMs, bodyIdleMs: config.upstreamTimeouts.bodyIdleMs, metrics: clusterMetrics, log })
    : undefined;
  const tags = new TagService({ store: tagStore, manifests, metrics, log, ttlMs: config.tagTtlMs, revalidateMs: config.upstreamTimeouts.revalidateMs, negativeTtlMs: config.negativeTtlMs, ...(cluster ? { gate: cluster.tagGate } : {}) });
  const bandwidth = new Bandwidth(config.bandwidth);
  // Peer fills are off with isolated namespaces: the peer protocol names a digest only, and a peer must not
  // become a way to read another namespace's copy. Leases, directory and the peer endpoint then see no
  // isolated content (the endpoint answers from the shared trees, which stay empty); tag revalidation is
  // still shared, its keys carry the namespace.
  const peerFills = cluster && !config.isolateNamespaces ? cluster.origins : undefined;
  const blobs = new BlobService({ store: blobStore, fills, metrics, range: config.range, bandwidth, ...(peerFills ? { origins: peerFills } : {}) });
  const budget = new BufferBudget(config.limits.transferBufferBytes);
  const sender = new Sender({ budget, writeIdleMs: config.limits.writeIdleTimeoutMs });
  const referrers = new ReferrersService({ tags, metrics, log, ttlMs: config.tagTtlMs, maxBytes: config.maxManifestBytes });
  const lifetime = new LifetimeStats(layout.root, async () => {
    const [hits, misses, served, fetched, ranged] = await Promise.all([sumOf(metrics.hits), sumOf(metrics.misses), sumOf(metrics.bytesServed), sumOf(metrics.upstreamBytes), sumOf(metrics.rangeUpstreamBytes)]);
    return { hits, misses, bytesSaved: Math.max(0, served - fetched - ranged) };
  });
  const status = new StatusCollector({
    metrics,
    health,
    errors: recentErrors,
    upstreams: config.upstreams.map((u) => ({ namespace: u.namespace, url: u.url, bandwidth: config.bandwidth.perUpstream[u.namespace] ?? 0 })),
    fills: () => fills.snapshot(),
    disk: async () => checkSpace(layout.root),
    bandwidth: config.bandwidth.overall,
    cache: async () => {
      const t = cache.index.totals();
      const [capBytes, space] = await Promise.all([resolveCap(config.cache.maxSize, layout.root), checkSpace(layout.root)]);
      return { bytes: t.bytes, objects: t.objects, capBytes, freeBytes: space.freeBytes, lifetime: await lifetime.total() };
    },
    ...opts.statusSources,
  });
  const pipeline: PipelineDeps = {
    routes: {
      manifest: manifestHandler({ manifests, tags, metrics }),
      blob: blobHandler({ blobs, sender, metrics }),
      tagsList: tagsListHandler({ tagLists: new TagListService({ metrics }), metrics }),
      referrers: referrersHandler({ referrers, metrics }),
    },
    namespaces,
    metrics,
    log,
    ...(cluster ? { internal: peerEndpoint({ blobs, sender, metrics: clusterMetrics, token: config.cluster.token }) } : {}),
    draining: opts.draining,
    status: statusRoute(status),
    onError: (e) => recentErrors.add(e),
    readiness: new ReadinessCheck({
      draining: opts.draining,
      space: () => checkSpace(layout.root),
      redisDegraded: () => tagStore.degraded?.() ?? false,
      minFreeBytes: MIN_FREE_BYTES,
    }),
  };
  return { config, log, metrics, layout, cache, lifetime, blobStore, tagStore, fills, namespaces, blobs, manifests, tags, pipeline, dispatcher, budget, status, ...(cluster ? { cluster } : {}) };
}
