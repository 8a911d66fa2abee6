/**
 * Remembered upstream 404s. dockerd and containerd retry a missing tag or manifest several times, and a
 * fleet of them multiplies that: each retry would be one more upstream request for an answer that is
 * known. A not-found is remembered for a few seconds (`negativeTtlMs`, default 5 s: short, so a tag
 * pushed a moment later shows up soon) and answered the same way (404 MANIFEST_UNKNOWN, or whichever
 * not-found the upstream gave). Bounded by count (LRU), so junk names cannot grow it without limit.
 */
import { LRUCache } from 'lru-cache';
import { NotFound } from '../oci/errors.js';

/** Entries kept at most (each is a key and a small error: well under 1 KiB). */
const MAX_ENTRIES = 10_000;

export class NegativeCache {
  private readonly entries: LRUCache<string, NotFound> | undefined;

  /** @param ttlMs how long a 404 is remembered; 0 turns remembering off. */
  constructor(ttlMs: number, max = MAX_ENTRIES) {
    this.entries = ttlMs > 0 ? new LRUCache<string, NotFound>({ max, ttl: ttlMs, ttlAutopurge: false, updateAgeOnGet: false }) : undefined;
  }

  /** Remembers an upstream not-found for `key`. */
  remember(key: string, err: NotFound): void {
    this.entries?.set(key, err);
  }

  /** Forgets `key` (the upstream has since answered with content). */
  forget(key: string): void {
    this.entries?.delete(key);
  }

  /**
   * The remembered not-found for `key` as a fresh error with the same answer (what, message, detail),
   * labelled `negative-cache` for logs; undefined when nothing is remembered.
   */
  recall(key: string): NotFound | undefined {
    const e = this.entries?.get(key);
    if (!e) return undefined;
    return new NotFound(e.what, e.message, { ...(e.detail ? { detail: e.detail } : {}), reason: 'negative-cache' });
  }

  /** Entries held (for tests and metrics). */
  get size(): number {
    return this.entries?.size ?? 0;
  }
}
