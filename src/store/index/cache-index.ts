/**
 * The durable cache index: what is on disk (blobs, manifests: size, last access, namespaces),
 * the tag answers that must survive a restart, and the pinned digests.
 *
 * An object is identified by kind, digest and scope (see store/layout.ts): the `scope` parameters name
 * the namespace whose own trees hold it (`isolateNamespaces`), undefined for the shared trees. Totals,
 * the LRU order and pins span every scope: the cap is one for the whole data directory.
 *
 * Contract for the serving code:
 * - No method throws. Reads answer `undefined` / empty on failure, writes are dropped; every failure
 *   is counted in {@link CacheIndex.errors} (and the `onError` callback) and logged once per state
 *   change. A broken index costs eviction accuracy, never a request.
 * - `touch` is a Map update in memory; access times reach the disk in one transaction per flush
 *   interval. `recordCommit`, `remove`, `setTag` are queued writes (batched by the library per event
 *   turn) whose promise never rejects.
 * - The files are the truth, the index follows them: a crash between a file operation and its index
 *   write is repaired by reconcile() at the next start.
 */
import type { Digest } from '../../oci/digest.js';
import type { TagKey } from '../../oci/tag.js';
import type { IndexEntry, IndexTotals, LruCursor, ObjectKind, TagAnswer } from './types.js';

/** A digest as the index accepts it: parsed, or its `algorithm:hex` string. */
export type DigestLike = Digest | string;

export interface CacheIndex {
  /** Failures since open (reads and writes). */
  readonly errors: number;

  /**
   * A blob or manifest was committed (renamed into place). Call after the rename, never before:
   * an entry must not exist without its file. Sets last access to now.
   */
  recordCommit(kind: ObjectKind, digest: DigestLike, size: number, namespace?: string, scope?: string): Promise<void>;

  /** A committed object was read (a hit). Buffered; unknown digests are ignored at flush. */
  touch(kind: ObjectKind, digest: DigestLike, namespace?: string, scope?: string): void;

  /** Drops an entry (after its file was removed). Resolves true when there was one. */
  remove(kind: ObjectKind, digest: DigestLike, scope?: string): Promise<boolean>;

  /** The entry of a digest in a scope, as last flushed. */
  get(kind: ObjectKind, digest: DigestLike, scope?: string): IndexEntry | undefined;

  /** Bytes and objects by kind. */
  totals(): IndexTotals;

  /**
   * Entries in last-access order, oldest first, `limit` at most, after `cursor` when given (pass
   * the returned cursor to continue). Access times still in the touch buffer are not seen: call
   * {@link flush} first when that matters (the evictor does).
   */
  lruCandidates(limit: number, cursor?: LruCursor): { entries: IndexEntry[]; cursor?: LruCursor };

  /** Entries in key order (kind, then digest), `limit` at most, after `afterKey`: for full scans. */
  scan(limit: number, afterKey?: string): { entries: IndexEntry[]; lastKey?: string };

  /** The stored answer of a tag for one Accept class. */
  getTag(key: TagKey, acceptClass: string): TagAnswer | undefined;
  /** Stores (replaces) the answer of a tag for one Accept class. */
  setTag(key: TagKey, acceptClass: string, answer: TagAnswer): Promise<void>;
  /** Every stored answer of a tag, by Accept class. */
  tagsFor(key: TagKey): Map<string, TagAnswer>;
  /** Drops every answer of a tag; resolves with how many there were. */
  removeTag(key: TagKey): Promise<number>;

  /** Replaces the pinned set: digest (`algorithm:hex`) → the configured references that need it. */
  setPins(pins: ReadonlyMap<string, readonly string[]>): Promise<void>;
  /** True when the digest is pinned (never evicted), whatever its kind. */
  isPinned(digest: DigestLike): boolean;
  /** The pinned set. */
  pins(): Map<string, string[]>;

  /** Writes the buffered access times now (and waits for queued writes). */
  flush(): Promise<void>;
  /** Flushes, then closes. Further calls are no-ops. */
  close(): Promise<void>;
}

/**
 * What reconciliation and the CLI need beyond the serving contract: conditional inserts and
 * removals (so that they never undo a concurrent commit), range reads, the tag list, a check.
 */
export interface MaintainableIndex extends CacheIndex {
  /** Inserts the entries that have no entry yet; resolves with how many were inserted. */
  insertMissing(entries: readonly IndexEntry[]): Promise<number>;
  /** Drops each entry that still has the given size and last access (one transaction); resolves how many. */
  removeIfUnchanged(entries: readonly IndexEntry[]): Promise<number>;
  /** Entries of one kind and scope whose digest starts with `digestPrefix` (e.g. `sha256:ab`), digest order. */
  entriesWithPrefix(kind: ObjectKind, digestPrefix: string, scope?: string): IndexEntry[];
  /** The scopes (isolated namespaces) that have at least one entry, in order. */
  scopes(): string[];
  /** Every stored tag answer. */
  allTags(): Array<{ key: TagKey; acceptClass: string; answer: TagAnswer }>;
  /** Problems found by a full consistency check; empty when consistent. */
  verify(): string[];
}

/** `algorithm:hex` of a DigestLike. */
export function digestString(d: DigestLike): string {
  return typeof d === 'string' ? d : d.value;
}
