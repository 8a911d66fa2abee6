/** The records the durable cache index holds (see cache-index.ts). */

/** What a cached object is: a blob (layer, config) or a manifest; they live in different trees. */
export type ObjectKind = 'blob' | 'manifest';

export const OBJECT_KINDS: readonly ObjectKind[] = ['blob', 'manifest'];

/** One cached object as the index knows it. */
export interface IndexEntry {
  kind: ObjectKind;
  /** `algorithm:hex`, as checked by parseDigest. */
  digest: string;
  /** Bytes on disk (for a manifest: the stored file, media type line included). */
  size: number;
  /** ms since epoch of the last read or commit (recorded in batches, so up to a flush late). */
  lastAccess: number;
  /** Upstream namespaces the object was served for (a layer shared by docker.io and ghcr.io has both). */
  namespaces: string[];
  /**
   * The namespace whose own trees hold the object (`isolateNamespaces`); absent for the shared trees.
   * The same digest may have one entry per scope.
   */
  scope?: string;
}

/** Bytes and objects of one kind. */
export interface KindTotals {
  bytes: number;
  objects: number;
}

/** What the index holds, by kind; kept in the same transactions as the entries, so exact. */
export interface IndexTotals {
  blob: KindTotals;
  manifest: KindTotals;
  /** blob + manifest bytes */
  bytes: number;
  /** blob + manifest objects */
  objects: number;
}

/** What a tag resolved to for one Accept class, and when the upstream last confirmed it. */
export interface TagAnswer {
  digest: string;
  mediaType: string;
  size: number;
  /** ms since epoch of the last upstream confirmation. */
  checkedAt: number;
}

/** Where an LRU walk stopped: pass it back to continue after that entry. */
export interface LruCursor {
  lastAccess: number;
  key: string;
}

/** The subset of a pino logger the index uses (so tests and the CLI can pass their own). */
export interface IndexLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}
