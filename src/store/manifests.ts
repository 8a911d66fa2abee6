/**
 * Verified manifests: on disk (content-addressed, media type stored with the bytes) with an
 * in-memory LRU in front, bounded by bytes. Like the blob store, the serving methods take the request's
 * namespace and the layout maps it to a scope (shared, or the namespace's own trees when isolated).
 */
import { mkdir, readFile, rename, writeFile, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Digest } from '../oci/digest.js';
import { scopedKey, type Layout, type Scope } from './layout.js';
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

/**
 * A manifest hit from memory tells the index at most this often, ms: the eviction order does not need
 * finer access times, and a hot manifest asked for thousands of times a second then costs no index key
 * per request.
 */
const TOUCH_EVERY_MS = 250;

export class ManifestStore {
  private readonly memory: LRUCache<string, StoredManifest>;
  /** When each manifest in memory last told the index of a hit. */
  private readonly touchedAt = new WeakMap<StoredManifest, number>();

  /** @param index the durable index, told of every commit and hit (default: none) */
  constructor(readonly layout: Layout, memoryBytes: number, private readonly index: CacheIndex = new NoopCacheIndex()) {
    this.memory = new LRUCache<string, StoredManifest>({
      maxSize: Math.max(1, memoryBytes),
      sizeCalculation: (m) => m.bytes.length + m.mediaType.length + 64,
    });
  }

  /** A manifest held in memory (no disk access). */
  peek(d: Digest, namespace?: string): StoredManifest | undefined {
    const scope = this.layout.scopeOf(namespace);
    const m = this.memory.get(scopedKey(d.value, scope));
    if (m !== undefined) {
      const now = Date.now();
      if (now - (this.touchedAt.get(m) ?? 0) >= TOUCH_EVERY_MS) {
        this.touchedAt.set(m, now);
        this.index.touch('manifest', d, scope, scope);
      }
    }
    return m;
  }

  /** A cached manifest, from memory or disk; undefined when not cached. */
  async get(d: Digest, namespace?: string): Promise<StoredManifest | undefined> {
    const hit = this.peek(d, namespace);
    if (hit) return hit;
    const scope = this.layout.scopeOf(namespace);
    let raw: Buffer;
    try {
      raw = await readFile(this.layout.manifest(d, scope));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new DiskError('cannot read a cached manifest', err);
    }
    const nl = raw.indexOf(0x0a);
    if (nl < 0) return undefined;
    const m: StoredManifest = { digest: d.value, mediaType: raw.subarray(0, nl).toString('utf8'), bytes: raw.subarray(nl + 1) };
    this.memory.set(scopedKey(d.value, scope), m);
    this.index.touch('manifest', d, scope, scope);
    return m;
  }

  /** Forgets an evicted manifest's copy in memory. */
  forget(digest: string, scope?: Scope): void {
    this.memory.delete(scopedKey(digest, scope));
  }

  /** Keeps a verified manifest in memory only (when the disk would not take it). */
  remember(d: Digest, mediaType: string, bytes: Buffer, namespace?: string): StoredManifest {
    const m: StoredManifest = { digest: d.value, mediaType, bytes };
    this.memory.set(scopedKey(d.value, this.layout.scopeOf(namespace)), m);
    return m;
  }

  /**
   * Stores a manifest whose bytes the caller has verified against `d`. An isolated manifest's entry names
   * its namespace (shared ones name none, as before: a manifest is not counted per namespace).
   */
  async put(d: Digest, mediaType: string, bytes: Buffer, namespace?: string): Promise<StoredManifest> {
    const scope = this.layout.scopeOf(namespace);
    const m: StoredManifest = { digest: d.value, mediaType, bytes };
    const target = this.layout.manifest(d, scope);
    const temp = `${this.layout.tmp}/m-${d.hex.slice(0, 16)}-${randomBytes(6).toString('hex')}`;
    try {
      await mkdir(dirname(target), { recursive: true });
      const file = Buffer.concat([Buffer.from(`${mediaType.replace(/[\r\n]/g, '')}\n`), bytes]);
      await writeFile(temp, file, { flush: true });
      await rename(temp, target);
      await this.index.recordCommit('manifest', d, file.length, scope, scope);
    } catch (err) {
      await rm(temp, { force: true }).catch(() => undefined);
      throw new DiskError('cannot write a manifest to the cache', err);
    }
    this.memory.set(scopedKey(d.value, scope), m);
    return m;
  }
}
