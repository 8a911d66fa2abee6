/**
 * Size-capped LRU eviction of blobs and manifests.
 *
 * Watermarks (fractions of the cap): eviction starts when the cache (committed bytes + space
 * reserved by fills in progress) passes `high` and stops at `low`. Defaults 0.90 / 0.80:
 * - high < 1 keeps headroom for what the reservation does not see (fills of unknown size,
 *   the index file, the gap between two checks), so the cap itself is not crossed by them;
 * - the 10-point gap is hysteresis: one run frees a tenth of the cap, so a busy cache evicts in
 *   occasional batches instead of one object per commit, and every run amortises its LRU walk.
 *
 * Never evicted: pinned digests, and whatever `isInUse` says is being read or filled.
 *
 * One cap and one LRU order for the whole data directory: with `isolateNamespaces` the entries of every
 * namespace's own trees are in the same order, so a namespace that is not read loses its bytes first.
 *
 * Order of a removal: the file first, then the entry. After a kill -9 between the two, the index
 * holds an entry without a file, which (a) over-counts, so the cap is never exceeded silently, and
 * (b) is a plain miss for the serving path, and (c) is dropped by reconcile() at the next start.
 * The other order would leave bytes on disk that nothing counts until a restart. Unlinking a file
 * a client is still streaming is safe on Linux: an open descriptor keeps the inode until closed.
 */
import { unlink } from 'node:fs/promises';
import { parseDigest } from '../../oci/digest.js';
import { isScopeName, type Layout } from '../layout.js';
import type { CacheIndex } from './cache-index.js';
import { filesystemSpace } from '../../config/max-size.js';
import type { IndexEntry, IndexLogger, LruCursor, ObjectKind } from './types.js';

/** Why something was evicted (a metric label). */
export type EvictReason = 'cap' | 'reserve' | 'disk' | 'gc';

/** Options of {@link Evictor}. */
export interface EvictorOptions {
  index: CacheIndex;
  layout: Layout;
  /** The cap in bytes, asked at every decision (a `N%` cap follows the filesystem). */
  cap: () => number | Promise<number>;
  /** Start evicting above this fraction of the cap. Default 0.90. */
  high?: number;
  /** Stop evicting at this fraction of the cap. Default 0.80. */
  low?: number;
  /** True while the object (in `scope`, see store/layout.ts) is being read or filled: it is skipped. Default: nothing is in use. */
  isInUse?: (kind: ObjectKind, digest: string, scope: string | undefined) => boolean;
  /** Bytes available on the data dir's filesystem. Default: statfs of the layout root. */
  freeSpace?: () => Promise<number>;
  /** Called for every evicted object (metrics: evictions and bytes by reason). */
  onEvict?: (entry: IndexEntry, reason: EvictReason) => void;
  log?: IndexLogger;
}

/** What one eviction run did. */
export interface EvictStats {
  evicted: number;
  bytes: number;
  /** Candidates passed over because pinned or in use. */
  skipped: number;
}

/** Space held for a fill from reserve() until release() (call it when the fill commits or fails). */
export interface Reservation {
  readonly bytes: number;
  /** Idempotent. After a commit, call it once recordCommit has resolved (never counts zero). */
  release(): void;
}

function kindPath(layout: Layout, e: IndexEntry): string | undefined {
  const d = parseDigest(e.digest);
  // An entry that names no file we could have written: dropped without touching the disk.
  if (!d || (e.scope !== undefined && !isScopeName(e.scope))) return undefined;
  return e.kind === 'blob' ? layout.blob(d, e.scope) : layout.manifest(d, e.scope);
}

export class Evictor {
  private readonly high: number;
  private readonly low: number;
  private reserved = 0;
  /** Evictions run one at a time; reserve() calls queue behind the running one. */
  private chain: Promise<unknown> = Promise.resolve();
  private readonly freeSpace: () => Promise<number>;

  constructor(private readonly o: EvictorOptions) {
    this.high = o.high ?? 0.9;
    this.low = o.low ?? 0.8;
    if (!(this.low > 0 && this.low <= this.high && this.high <= 1)) {
      throw new Error(`invalid watermarks: need 0 < evictLow (${this.low}) <= evictHigh (${this.high}) <= 1`);
    }
    this.freeSpace = o.freeSpace ?? (async () => (await filesystemSpace(o.layout.root)).free);
  }

  /** Bytes reserved by fills in progress. */
  get reservedBytes(): number {
    return this.reserved;
  }

  /** Committed bytes plus reservations: what the watermarks are compared with. */
  usedBytes(): number {
    return this.o.index.totals().bytes + this.reserved;
  }

  private serial<T>(job: () => Promise<T>): Promise<T> {
    const p = this.chain.then(job, job);
    this.chain = p.catch(() => undefined);
    return p;
  }

  /**
   * Holds `bytes` for a fill that announced its size, evicting first when that would pass the high
   * watermark. Resolves undefined when the space cannot be had (object larger than the cap, too
   * much pinned or in use, or the filesystem short of space for other reasons): the caller streams
   * from the upstream without caching. Never rejects.
   */
  reserve(bytes: number): Promise<Reservation | undefined> {
    return this.serial(async () => {
      try {
        const cap = await this.o.cap();
        if (bytes > cap) return undefined;
        if (this.usedBytes() + bytes > cap * this.high) {
          await this.evictDownTo(cap * this.low - bytes - this.reserved, 'reserve');
        }
        if (this.usedBytes() + bytes > cap) return undefined;
        // The disk may be fuller than the cache: other files, another cache, a smaller volume.
        let free = await this.freeSpace();
        if (free < bytes) {
          await this.evictBytes(bytes - free, 'disk');
          free = await this.freeSpace();
          if (free < bytes) return undefined;
        }
        return this.hold(bytes);
      } catch (err) {
        this.o.log?.warn({ err }, 'space reservation failed; the fill streams uncached');
        return undefined;
      }
    });
  }

  private hold(bytes: number): Reservation {
    this.reserved += bytes;
    let held = true;
    return {
      bytes,
      release: () => {
        if (!held) return;
        held = false;
        this.reserved -= bytes;
      },
    };
  }

  /**
   * Evicts down to the low watermark when the cache is above the high one (call after a commit
   * and from a timer). Resolves what it did; undefined when nothing was needed. Never rejects.
   */
  check(): Promise<EvictStats | undefined> {
    return this.serial(async () => {
      try {
        const cap = await this.o.cap();
        if (this.usedBytes() <= cap * this.high) return undefined;
        return await this.evictDownTo(cap * this.low - this.reserved, 'cap');
      } catch (err) {
        this.o.log?.warn({ err }, 'eviction failed');
        return undefined;
      }
    });
  }

  /** Evicts LRU-first until committed bytes are at most `targetBytes` (`cache gc --to`). */
  evictTo(targetBytes: number, reason: EvictReason = 'gc'): Promise<EvictStats> {
    return this.serial(() => this.evictDownTo(targetBytes, reason));
  }

  private async evictDownTo(targetBytes: number, reason: EvictReason): Promise<EvictStats> {
    return this.run(reason, () => this.o.index.totals().bytes <= targetBytes);
  }

  private async evictBytes(bytes: number, reason: EvictReason): Promise<EvictStats> {
    let freed = 0;
    return this.run(reason, () => freed >= bytes, (e) => (freed += e.size));
  }

  /** Walks the LRU order oldest first, evicting until `done()`. */
  private async run(reason: EvictReason, done: () => boolean, counted?: (e: IndexEntry) => void): Promise<EvictStats> {
    const stats: EvictStats = { evicted: 0, bytes: 0, skipped: 0 };
    // Access times still in the touch buffer would make recently read objects look old.
    await this.o.index.flush();
    let cursor: LruCursor | undefined;
    while (!done()) {
      const page = this.o.index.lruCandidates(256, cursor);
      if (page.entries.length === 0) break;
      cursor = page.cursor;
      for (const e of page.entries) {
        if (done()) break;
        if (this.o.index.isPinned(e.digest) || this.o.isInUse?.(e.kind, e.digest, e.scope)) {
          stats.skipped++;
          continue;
        }
        if (!(await this.evictOne(e))) continue;
        stats.evicted++;
        stats.bytes += e.size;
        counted?.(e);
        this.o.onEvict?.(e, reason);
      }
      if (!cursor) break;
    }
    if (stats.evicted > 0) this.o.log?.info({ reason, ...stats }, 'evicted');
    return stats;
  }

  /** File first, then entry (see the module header). False when the file could not be removed. */
  private async evictOne(e: IndexEntry): Promise<boolean> {
    const path = kindPath(this.o.layout, e);
    if (path) {
      try {
        await unlink(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
          this.o.log?.warn({ err, digest: e.digest }, 'could not remove a cached file');
          return false;
        }
      }
    }
    await this.o.index.remove(e.kind, e.digest, e.scope);
    return true;
  }
}
