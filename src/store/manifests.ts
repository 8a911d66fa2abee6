/**
 * Verified manifests: on disk (content-addressed, media type stored with the bytes) with an
 * in-memory LRU in front, bounded by bytes.
 */
import { mkdir, readFile, rename, writeFile, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Digest } from '../oci/digest.js';
import type { Layout } from './layout.js';
import { DiskError } from '../oci/errors.js';
import type { CacheIndex } from './index/cache-index.js';
import { NoopCacheIndex } from './index/noop-index.js';

/** A manifest as the mirror serves it. */
export interface StoredManifest {
  /** `alg:hex` */
  digest: string;
  mediaType: string;
  bytes: Buffer;
}

export class ManifestStore {
  private readonly memory: LRUCache<string, StoredManifest>;

  /** @param index the durable index, told of every commit and hit (default: none) */
  constructor(readonly layout: Layout, memoryBytes: number, private readonly index: CacheIndex = new NoopCacheIndex()) {
    this.memory = new LRUCache<string, StoredManifest>({
      maxSize: Math.max(1, memoryBytes),
      sizeCalculation: (m) => m.bytes.length + m.mediaType.length + 64,
    });
  }

  /** A manifest held in memory (no disk access). */
  peek(d: Digest): StoredManifest | undefined {
    const m = this.memory.get(d.value);
    if (m) this.index.touch('manifest', d);
    return m;
  }

  /** A cached manifest, from memory or disk; undefined when not cached. */
  async get(d: Digest): Promise<StoredManifest | undefined> {
    const hit = this.peek(d);
    if (hit) return hit;
    let raw: Buffer;
    try {
      raw = await readFile(this.layout.manifest(d));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new DiskError('cannot read a cached manifest', err);
    }
    const nl = raw.indexOf(0x0a);
    if (nl < 0) return undefined;
    const m: StoredManifest = { digest: d.value, mediaType: raw.subarray(0, nl).toString('utf8'), bytes: raw.subarray(nl + 1) };
    this.memory.set(d.value, m);
    this.index.touch('manifest', d);
    return m;
  }

  /** Forgets an evicted manifest's copy in memory. */
  forget(digest: string): void {
    this.memory.delete(digest);
  }

  /** Keeps a verified manifest in memory only (when the disk would not take it). */
  remember(d: Digest, mediaType: string, bytes: Buffer): StoredManifest {
    const m: StoredManifest = { digest: d.value, mediaType, bytes };
    this.memory.set(d.value, m);
    return m;
  }

  /** Stores a manifest whose bytes the caller has verified against `d`. */
  async put(d: Digest, mediaType: string, bytes: Buffer): Promise<StoredManifest> {
    const m: StoredManifest = { digest: d.value, mediaType, bytes };
    const target = this.layout.manifest(d);
    const temp = `${this.layout.tmp}/m-${d.hex.slice(0, 16)}-${randomBytes(6).toString('hex')}`;
    try {
      await mkdir(dirname(target), { recursive: true });
      const file = Buffer.concat([Buffer.from(`${mediaType.replace(/[\r\n]/g, '')}\n`), bytes]);
      await writeFile(temp, file, { flush: true });
      await rename(temp, target);
      await this.index.recordCommit('manifest', d, file.length);
    } catch (err) {
      await rm(temp, { force: true }).catch(() => undefined);
      throw new DiskError('cannot write a manifest to the cache', err);
    }
    this.memory.set(d.value, m);
    return m;
  }
}
