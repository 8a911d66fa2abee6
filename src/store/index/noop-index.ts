/**
 * A {@link CacheIndex} that holds nothing: for a mirror whose index could not be opened (read-only
 * or broken index directory). Serving goes on uncapped and without durable tag answers; the
 * open failure is the caller's to log and count.
 */
import type { TagKey } from '../../oci/tag.js';
import type { CacheIndex } from './cache-index.js';
import type { IndexEntry, IndexTotals, LruCursor, TagAnswer } from './types.js';

export class NoopCacheIndex implements CacheIndex {
  readonly errors = 0;
  async recordCommit(): Promise<void> {}
  touch(): void {}
  async remove(): Promise<boolean> {
    return false;
  }
  get(): IndexEntry | undefined {
    return undefined;
  }
  totals(): IndexTotals {
    return { blob: { bytes: 0, objects: 0 }, manifest: { bytes: 0, objects: 0 }, bytes: 0, objects: 0 };
  }
  lruCandidates(): { entries: IndexEntry[]; cursor?: LruCursor } {
    return { entries: [] };
  }
  scan(): { entries: IndexEntry[]; lastKey?: string } {
    return { entries: [] };
  }
  getTag(_key: TagKey, _acceptClass: string): TagAnswer | undefined {
    return undefined;
  }
  async setTag(): Promise<void> {}
  tagsFor(): Map<string, TagAnswer> {
    return new Map();
  }
  async removeTag(): Promise<number> {
    return 0;
  }
  async setPins(): Promise<void> {}
  isPinned(): boolean {
    return false;
  }
  pins(): Map<string, string[]> {
    return new Map();
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}
