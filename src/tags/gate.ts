/** The seam through which a fleet of mirrors shares tag revalidations (implemented by src/cluster/tag-gate.ts). */
import type { TagEntry } from './store.js';

/** What the tag service asks before and after a revalidation. */
export interface RevalidationGate {
  /**
   * Before revalidating `key`: undefined → revalidate (this mirror holds the lock, or nobody can tell);
   * an entry → another mirror revalidated meanwhile, use its answer.
   */
  before(key: string, reread: () => Promise<TagEntry | undefined>, fresh: (e: TagEntry) => boolean, deadlineMs: number): Promise<TagEntry | undefined>;
  /** After a revalidation by this mirror (its answer is in the store): lets waiters go. */
  after(key: string): Promise<void>;
}
