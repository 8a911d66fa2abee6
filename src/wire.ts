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
import { MemoryTagStore, type TagStore } from './tags/store.js';
import { RedisTagStore } from './tags/redis-store.js';
import { TagService } from './tags/service.js';
import { ManifestService } from './manifests/service.js';
import { BlobService } from './blobs/service.js';
import { Fills } from './fill/fills.js';
import { Slots } from './fill/slots.js';
import { createDispatcher, Upstream } from './upstream/client.js';
import { Namespaces } from './upstream/namespaces.js';
import { blobHandler } from './http/handlers/blob.js';
import { manifestHandler } from './http/handlers/manifest.js';
import { passthroughHandlers } from './http/handlers/passthrough.js';
import type { PipelineDeps } from './http/server.js';

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
}

/** Builds the parts of a mirror (no I/O: see Mirror.create for start-up). */
export function wire(config: MirrorConfig, log: Logger, opts: { processMetrics: boolean }): MirrorParts {
  const metrics = new Metrics({ defaultMetrics: opts.processMetrics });
  const layout = new Layout(config.dataDir);
  const blobStore = new BlobStore(layout, config.blobMemoryBytes, config.blobMemoryItemBytes);
  const manifestStore = new ManifestStore(layout, config.manifestMemoryBytes);
  const tagStore: TagStore = config.redisUrl
    ? new RedisTagStore({ url: config.redisUrl, policy: config.redis, log, metrics, local: new MemoryTagStore() })
    : new MemoryTagStore();
  const dispatcher = createDispatcher(config.upstreamTimeouts);
  const namespaces = new Namespaces(
    config.upstreams.map((u) => new Upstream(u, { dispatcher, timeouts: config.upstreamTimeouts, trust: config.trust, metrics, log })),
    config.defaultNamespace,
  );
  const slots = new Slots(config.fill.maxConcurrent, config.fill.queueTimeoutMs, (n) => metrics.fillQueueWaiting.set(n));
  const fills = new Fills({ store: blobStore, metrics, log, acquireSlot: () => slots.acquire(), abortWhenOrphaned: config.fill.abortWhenOrphaned });
  const manifests = new ManifestService({ store: manifestStore, metrics, log, maxBytes: config.maxManifestBytes });
  const tags = new TagService({ store: tagStore, manifests, metrics, log, ttlMs: config.tagTtlMs, revalidateMs: config.upstreamTimeouts.revalidateMs });
  const blobs = new BlobService({ store: blobStore, fills, metrics, range: config.range });
  const passthrough = passthroughHandlers({ metrics });
  const pipeline: PipelineDeps = {
    routes: {
      manifest: manifestHandler({ manifests, tags, metrics }),
      blob: blobHandler({ blobs, metrics }),
      tagsList: passthrough.tagsList,
      referrers: passthrough.referrers,
    },
    namespaces,
    metrics,
    log,
  };
  return { config, log, metrics, layout, blobStore, tagStore, fills, namespaces, blobs, manifests, tags, pipeline, dispatcher };
}
