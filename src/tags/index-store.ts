/**
 * The index as a {@link TagStore}: tag answers that survive restarts without Redis. With Redis
 * configured the serving code can write both (Redis shared, this one local) and read this one when
 * Redis fails, so a Redis outage after a restart still serves stale answers.
 */
import type { TagEntry, TagKey, TagStore } from './store.js';
import type { CacheIndex } from '../store/index/cache-index.js';

export class IndexTagStore implements TagStore {
  /** The index is owned by the caller; close() here does not close it. */
  constructor(private readonly index: CacheIndex) {}

  async get(key: TagKey, acceptKey: string): Promise<TagEntry | undefined> {
    return this.index.getTag(key, acceptKey);
  }

  async all(key: TagKey): Promise<Map<string, TagEntry>> {
    return this.index.tagsFor(key);
  }

  async set(key: TagKey, acceptKey: string, entry: TagEntry): Promise<void> {
    await this.index.setTag(key, acceptKey, entry);
  }

  async close(): Promise<void> {}
}
