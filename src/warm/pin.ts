/**
 * Pins: the configured images are fetched through the mirror itself at start (so they are cached and
 * verified like any pull), and every manifest and blob they need is marked pinned in the index, so eviction
 * never takes them. Runs in the background; a pin that cannot be fetched now (upstream down) keeps whatever
 * of it is cached pinned and is logged.
 */
import type { PinSpec } from '../config/pins.js';
import type { CacheIndex } from '../store/index/cache-index.js';
import type { Logger } from '../log.js';
import { MirrorClient } from './client.js';
import { Pool } from './pool.js';
import { Warmer } from './walker.js';

/** Fetches every pinned image through the mirror at `mirrorUrl` and records the pinned digests. */
export async function pinImages(mirrorUrl: string, pins: readonly PinSpec[], index: CacheIndex, log: Logger): Promise<{ pinned: number; failed: string[] }> {
  if (pins.length === 0) return { pinned: 0, failed: [] };
  const client = new MirrorClient(mirrorUrl, { connections: 4 });
  const digests = new Map<string, string[]>(index.pins());
  const failed: string[] = [];
  try {
    for (const spec of pins) {
      const warmer = new Warmer(client, { blobs: new Pool(2), manifests: new Pool(2) }, () => undefined, { platforms: spec.platforms });
      const r = await warmer.warm(spec.ref);
      if (!r.ok) {
        failed.push(spec.ref);
        log.warn({ pin: spec.ref, err: r.error?.message }, 'pinned image could not be fetched now; what is cached of it stays pinned');
        continue;
      }
      for (const d of [...warmer.manifestDigests, ...warmer.blobs.keys()]) digests.set(d, [...new Set([...(digests.get(d) ?? []), spec.ref])]);
    }
    await index.setPins(digests);
    log.info({ pins: pins.length, digests: digests.size, failed }, 'pinned images fetched and protected from eviction');
    return { pinned: digests.size, failed };
  } finally {
    await client.close();
  }
}
