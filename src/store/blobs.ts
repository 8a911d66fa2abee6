/**
 * Verified blobs on disk, content-addressed. Bytes reach this store only through
 * {@link BlobStore.commit}, which a fill calls after the digest matched.
 *
 * The serving methods take the request's namespace; the layout maps it to a scope (the shared trees,
 * or the namespace's own with `isolateNamespaces`), which keys the files, the memory tier, the readers
 * and the index entry alike. The evictor's methods ({@link BlobStore.inUse}, {@link BlobStore.forget})
 * take the scope of the index entry.
 */
import { mkdir, open, rename, rm, stat, readdir, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Digest } from '../oci/digest.js';
import { LRUCache } from 'lru-cache';
import { scopedKey, type Layout, type Scope } from './layout.js';
import { DiskError } from '../oci/errors.js';
import type { CacheIndex } from './index/cache-index.js';
import { NoopCacheIndex } from './index/noop-index.js';

/** An open committed blob: a file handle and its size. The caller closes it. */
export interface OpenBlob {
  handle: FileHandle;
  size: number;
  /** Call once the handle is closed: the blob may be evicted again. */
  done: () => void;
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

export class BlobStore {
  /** Small verified blobs kept in memory after their first hit (bounded by bytes). */
  private readonly memory: LRUCache<string, Buffer> | undefined;

  /**
   * @param memoryBytes bytes of small blobs held in memory (0: none)
   * @param memoryItemMax largest blob held in memory
   */
  /** Open handles on committed files by digest: what is being read is never evicted. */
  private readonly reading = new Map<string, number>();

  /**
   * @param index the durable index, told of every commit (default: none)
   */
  constructor(readonly layout: Layout, memoryBytes = 0, readonly memoryItemMax = 0, private readonly index: CacheIndex = new NoopCacheIndex()) {
    this.memory = memoryBytes > 0 && memoryItemMax > 0 ? new LRUCache<string, Buffer>({ maxSize: memoryBytes, sizeCalculation: (b) => b.length + 64 }) : undefined;
    if (!this.memory) this.memoryItemMax = -1;
  }

  /** A small blob held in memory for `namespace`'s scope, if it is. */
  fromMemory(d: Digest, namespace?: string): Buffer | undefined {
    return this.memory?.get(scopedKey(d.value, this.layout.scopeOf(namespace)));
  }

  /** True while a committed file of `digest` in `scope` is open for reading. */
  inUse(digest: string, scope?: Scope): boolean {
    return this.reading.has(scopedKey(digest, scope));
  }

  /** Marks a committed file (by its scoped key) as being read until the returned function is called. */
  private hold(digest: string): () => void {
    this.reading.set(digest, (this.reading.get(digest) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = (this.reading.get(digest) ?? 1) - 1;
      if (n <= 0) this.reading.delete(digest);
      else this.reading.set(digest, n);
    };
  }

  /** Forgets an evicted blob's copy in memory. */
  forget(digest: string, scope?: Scope): void {
    this.memory?.delete(scopedKey(digest, scope));
  }

  /** Keeps a small verified blob (read from its committed file) in memory. */
  remember(d: Digest, bytes: Buffer, namespace?: string): void {
    this.memory?.set(scopedKey(d.value, this.layout.scopeOf(namespace)), bytes);
  }

  /** Creates the directories and removes temp files a crash may have left (they are never served). */
  async init(): Promise<number> {
    await mkdir(this.layout.tmp, { recursive: true });
    const leftovers = await readdir(this.layout.tmp);
    await Promise.all(leftovers.map((f) => rm(`${this.layout.tmp}/${f}`, { force: true, recursive: true })));
    return leftovers.length;
  }

  /** Size of a committed blob, without opening it; undefined when not cached. */
  async size(d: Digest, namespace?: string): Promise<number | undefined> {
    try {
      return (await stat(this.layout.blob(d, this.layout.scopeOf(namespace)))).size;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw new DiskError('cannot stat a cached blob', err);
    }
  }

  /** Opens a committed blob for reading; undefined when not cached. */
  async open(d: Digest, namespace?: string): Promise<OpenBlob | undefined> {
    const scope = this.layout.scopeOf(namespace);
    let handle: FileHandle;
    try {
      handle = await open(this.layout.blob(d, scope), 'r');
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw new DiskError('cannot open a cached blob', err);
    }
    try {
      return { handle, size: (await handle.stat()).size, done: this.hold(scopedKey(d.value, scope)) };
    } catch (err) {
      await handle.close();
      throw new DiskError('cannot stat a cached blob', err);
    }
  }

  /** Moves a verified temp file of `size` bytes into place (atomic rename), then records it in the index. */
  async commit(tempPath: string, d: Digest, size: number, namespace?: string): Promise<void> {
    const scope = this.layout.scopeOf(namespace);
    const target = this.layout.blob(d, scope);
    await mkdir(dirname(target), { recursive: true });
    await rename(tempPath, target);
    // After the rename, never before: an entry must not exist without its file.
    await this.index.recordCommit('blob', d, size, namespace, scope);
  }

  /** Records a read of a committed blob (batched by the index, off the hot path). */
  touched(d: Digest, namespace?: string): void {
    this.index.touch('blob', d, namespace, this.layout.scopeOf(namespace));
  }

  /** Removes a temp file; never throws. */
  async discard(tempPath: string): Promise<void> {
    await rm(tempPath, { force: true }).catch(() => undefined);
  }
}
