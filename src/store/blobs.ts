/**
 * Verified blobs on disk, content-addressed. Bytes reach this store only through
 * {@link BlobStore.commit}, which a fill calls after the digest matched.
 */
import { mkdir, open, rename, rm, stat, readdir, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Digest } from '../registry/grammar.js';
import type { Layout } from './layout.js';

/** An open committed blob: a file handle and its size. The caller closes it. */
export interface OpenBlob {
  handle: FileHandle;
  size: number;
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

export class BlobStore {
  constructor(readonly layout: Layout) {}

  /** Creates the directories and removes temp files a crash may have left (they are never served). */
  async init(): Promise<number> {
    await mkdir(this.layout.tmp, { recursive: true });
    const leftovers = await readdir(this.layout.tmp);
    await Promise.all(leftovers.map((f) => rm(`${this.layout.tmp}/${f}`, { force: true, recursive: true })));
    return leftovers.length;
  }

  /** Size of a committed blob, without opening it; undefined when not cached. */
  async size(d: Digest): Promise<number | undefined> {
    try {
      return (await stat(this.layout.blob(d))).size;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Opens a committed blob for reading; undefined when not cached. */
  async open(d: Digest): Promise<OpenBlob | undefined> {
    let handle: FileHandle;
    try {
      handle = await open(this.layout.blob(d), 'r');
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    try {
      return { handle, size: (await handle.stat()).size };
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  /** Moves a verified temp file into place (atomic rename). */
  async commit(tempPath: string, d: Digest): Promise<void> {
    const target = this.layout.blob(d);
    await mkdir(dirname(target), { recursive: true });
    await rename(tempPath, target);
  }

  /** Removes a temp file; never throws. */
  async discard(tempPath: string): Promise<void> {
    await rm(tempPath, { force: true }).catch(() => undefined);
  }
}
