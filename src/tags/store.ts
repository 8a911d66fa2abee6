/**
 * Tag metadata: what a tag resolved to, per accepted set of media types. In memory by default,
 * in Redis when configured (so that several mirror replicas share revalidation).
 */
import { LRUCache } from 'lru-cache';
import { tagKeyString, type TagKey } from '../oci/tag.js';

export { tagKeyString, type TagKey };

/** What a tag resolved to for one Accept set, and when the upstream last confirmed it. */
export interface TagEntry {
  digest: string;
  mediaType: string;
  size: number;
  /** ms since epoch of the last upstream confirmation. */
  checkedAt: number;
}


/** Where tag entries live. Implementations must not throw for a missing entry. */
export interface TagStore {
  /** The entry for this tag and Accept set. */
  get(key: TagKey, acceptKey: string): Promise<TagEntry | undefined>;
  /** Every entry of the tag, by Accept set (for stale answers to a client with another Accept set). */
  all(key: TagKey): Promise<Map<string, TagEntry>>;
  set(key: TagKey, acceptKey: string, entry: TagEntry): Promise<void>;
  close(): Promise<void>;
  /** True while a shared store is failing and requests take the local path (reported by /readyz). */
  degraded?(): boolean;
  /**
   * True for a store other mirrors write too (Redis): every answer is read from it, so a tag another
   * mirror revalidated is seen at once. A store of this process alone is read once per TTL (the tag
   * service keeps answers inside their TTL in memory).
   */
  readonly shared?: boolean;
}


/** Tag entries in process memory, bounded by count. */
export class MemoryTagStore implements TagStore {
  private readonly tags: LRUCache<string, Map<string, TagEntry>>;

  constructor(maxTags = 100_000) {
    this.tags = new LRUCache({ max: maxTags });
  }

  async get(key: TagKey, acceptKey: string): Promise<TagEntry | undefined> {
    return this.tags.get(tagKeyString(key))?.get(acceptKey);
  }

  async all(key: TagKey): Promise<Map<string, TagEntry>> {
    return new Map(this.tags.get(tagKeyString(key)) ?? []);
  }

  async set(key: TagKey, acceptKey: string, entry: TagEntry): Promise<void> {
    const k = tagKeyString(key);
    let m = this.tags.get(k);
    if (!m) {
      m = new Map();
      this.tags.set(k, m);
    }
    m.set(acceptKey, entry);
  }

  async close(): Promise<void> {}
}
