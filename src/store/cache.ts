/**
 * The disk cache's lifecycle parts, built once: the durable index (lmdb; a do-nothing index when it cannot
 * be opened, so a broken index costs eviction accuracy, never a request), and the size-capped LRU evictor.
 * Metrics for both are read at scrape time.
 */
import type { CacheConfig } from '../config/types.js';
import { resolveCap } from '../config/max-size.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { CacheIndex, MaintainableIndex } from './index/cache-index.js';
import { Evictor } from './index/evictor.js';
import { openLmdbIndex } from './index/lmdb-index.js';
import { NoopCacheIndex } from './index/noop-index.js';
import type { ObjectKind } from './index/types.js';
import type { Layout } from './layout.js';
import { checkSpace } from './space.js';

/** The index and the evictor of one data directory. */
export interface DiskCache {
  index: CacheIndex;
  /** The index when it opened (reconciliation needs its maintenance methods). */
  maintainable: MaintainableIndex | undefined;
  evictor: Evictor;
}

/** What the evictor asks the serving code. */
export interface DiskCacheHooks {
  /** True while the object (of `scope`, see store/layout.ts) is being read or filled. */
  isInUse: (kind: ObjectKind, digest: string, scope: string | undefined) => boolean;
  /** Told of every evicted object (to drop copies held in memory). */
  evicted: (kind: ObjectKind, digest: string, scope: string | undefined) => void;
}

/** Opens the index of `layout` and builds its evictor. */
export function openDiskCache(layout: Layout, config: CacheConfig, metrics: Metrics, log: Logger, hooks: () => DiskCacheHooks): DiskCache {
  let index: CacheIndex;
  let maintainable: MaintainableIndex | undefined;
  try {
    maintainable = openLmdbIndex({ dataDir: layout.root, log, onError: (op) => metrics.indexErrors.inc({ op }) });
    index = maintainable;
  } catch (err) {
    metrics.indexErrors.inc({ op: 'open' });
    log.error({ err: (err as Error).message }, 'cache index cannot be opened: serving without eviction until restart');
    index = new NoopCacheIndex();
  }
  let lastCap = 0;
  const evictor = new Evictor({
    index,
    layout,
    cap: async () => (lastCap = await resolveCap(config.maxSize, layout.root)),
    high: config.evictHigh,
    low: config.evictLow,
    isInUse: (kind, digest, scope) => hooks().isInUse(kind, digest, scope),
    onEvict: (e, reason) => {
      metrics.evictions.inc({ reason });
      metrics.evictedBytes.inc({ reason }, e.size);
      hooks().evicted(e.kind, e.digest, e.scope);
    },
    log,
  });
  metrics.onCollect(async () => {
    const t = index.totals();
    metrics.cacheSize.set({ kind: 'blob' }, t.blob.bytes);
    metrics.cacheSize.set({ kind: 'manifest' }, t.manifest.bytes);
    metrics.cacheObjects.set({ kind: 'blob' }, t.blob.objects);
    metrics.cacheObjects.set({ kind: 'manifest' }, t.manifest.objects);
    metrics.cacheMaxSize.set(lastCap || (await resolveCap(config.maxSize, layout.root)));
    metrics.filesystemFree.set((await checkSpace(layout.root)).freeBytes);
  });
  return { index, maintainable, evictor };
}
