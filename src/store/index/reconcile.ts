/**
 * Makes the index agree with the files, after a crash or a copy of the data dir: files without an
 * entry are indexed (size from stat, last access = mtime), entries without a file are dropped,
 * leftover temp files are removed. The files are the truth: they were verified before the
 * rename that committed them.
 *
 * Runs in the background while the mirror serves. It walks one fan-out directory at a time
 * (`blobs/sha256/ab`) beside the index range of the same prefix (`b/sha256:ab…`, contiguous in
 * key order), in sixteen slices by the next hex digit: two short lists compared per slice, no stat
 * for the objects that agree, memory bounded by one directory, the event loop given back between
 * slices.
 *
 * Every scope is walked, whatever `isolateNamespaces` says now: the shared trees, each namespace's own
 * trees under `ns/`, and the scopes the index still names whose directory is gone (their entries are
 * dropped). A data dir that switched setting stays counted against the cap until its old objects age out.
 *
 * Safe beside live traffic: inserts never overwrite an entry (a concurrent commit wins), and an
 * entry is dropped only when its file is still missing on a fresh stat and the entry is unchanged
 * since it was read (a concurrent commit rewrites last access).
 */
import { readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { setImmediate as yieldLoop } from 'node:timers/promises';
import { DIGEST_ALGORITHMS, parseDigest } from '../../oci/digest.js';
import { isScopeName, type Layout, type Scope } from '../layout.js';
import type { MaintainableIndex } from './cache-index.js';
import { OBJECT_KINDS, type IndexEntry, type IndexLogger, type ObjectKind } from './types.js';

/** Options of {@link reconcile}. */
export interface ReconcileOptions {
  index: MaintainableIndex;
  layout: Layout;
  /**
   * Remove temp files last modified before this time, ms since epoch. Default: when reconcile
   * starts, so fills started by this process (which keep writing) are left alone. Pass
   * `false` to keep every temp file (the CLI, beside a mirror that owns them).
   */
  tmpOlderThan?: number | false;
  /** Stop early (the mirror is closing). */
  signal?: AbortSignal;
  log?: IndexLogger;
}

/** What reconciliation found and did. */
export interface ReconcileReport {
  /** Committed files seen. */
  files: number;
  /** Files that had no entry and were indexed, and their bytes. */
  indexed: number;
  indexedBytes: number;
  /** Entries whose file was missing, dropped. */
  dropped: number;
  droppedBytes: number;
  /** Temp files removed. */
  tmpRemoved: number;
  durationMs: number;
  /** True when stopped by the signal before the end. */
  aborted: boolean;
}

const HEX2 = Array.from({ length: 256 }, (_v, i) => i.toString(16).padStart(2, '0'));

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

async function statOrUndefined(path: string): Promise<{ size: number; mtimeMs: number } | undefined> {
  try {
    const s = await stat(path);
    return s.isFile() ? s : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Reconciles the index with the files under the layout. Never rejects; failures are logged. */
export async function reconcile(o: ReconcileOptions): Promise<ReconcileReport> {
  const t0 = Date.now();
  const report: ReconcileReport = { files: 0, indexed: 0, indexedBytes: 0, dropped: 0, droppedBytes: 0, tmpRemoved: 0, durationMs: 0, aborted: false };
  const tmpOlderThan = o.tmpOlderThan === undefined ? t0 : o.tmpOlderThan;
  try {
    if (tmpOlderThan !== false) report.tmpRemoved = await removeTemps(o.layout.tmp, tmpOlderThan);
    const scopes: Scope[] = [undefined, ...new Set([...(await o.layout.scopesOnDisk()), ...o.index.scopes().filter(isScopeName)])];
    for (const scope of scopes) {
      for (const kind of OBJECT_KINDS) {
        for (const alg of Object.keys(DIGEST_ALGORITHMS)) {
          for (const prefix of HEX2) {
            if (o.signal?.aborted) {
              report.aborted = true;
              return report;
            }
            await reconcileDir(o, scope, kind, alg, prefix, report);
          }
        }
      }
    }
  } catch (err) {
    o.log?.warn({ err }, 'reconciliation of the cache index stopped');
  } finally {
    report.durationMs = Date.now() - t0;
  }
  return report;
}

const HEX1 = '0123456789abcdef'.split('');

async function reconcileDir(o: ReconcileOptions, scope: Scope, kind: ObjectKind, alg: string, prefix: string, report: ReconcileReport): Promise<void> {
  const dir = join(o.layout.scopeRoot(scope), kind === 'blob' ? 'blobs' : 'manifests', alg, prefix);
  // Grouped by the third hex digit: each step compares 1/16 of a directory with its index range,
  // so one step of work between two event-loop turns stays small even at millions of entries.
  const groups = new Map<string, Set<string>>();
  for (const name of await listDir(dir)) {
    // Only names that are digests of this directory; anything else is not ours to index.
    if (!name.startsWith(prefix) || !parseDigest(`${alg}:${name}`)) continue;
    const c = name.charAt(2);
    let g = groups.get(c);
    if (!g) groups.set(c, (g = new Set()));
    g.add(name);
    report.files++;
  }
  for (const c of HEX1) {
    await reconcileRange(o, scope, kind, alg, dir, prefix + c, groups.get(c) ?? new Set(), report);
    await yieldLoop();
  }
}

/** Compares the files whose names start with `hexPrefix` (`names`, consumed) with the index range of that prefix. */
async function reconcileRange(o: ReconcileOptions, scope: Scope, kind: ObjectKind, alg: string, dir: string, hexPrefix: string, names: Set<string>, report: ReconcileReport): Promise<void> {
  const entries = o.index.entriesWithPrefix(kind, `${alg}:${hexPrefix}`, scope);
  const missingFile: IndexEntry[] = [];
  for (const e of entries) {
    const hex = e.digest.slice(alg.length + 1);
    if (!names.delete(hex)) missingFile.push(e);
  }
  // What is left in `names` has no entry.
  const toInsert: IndexEntry[] = [];
  for (const hex of names) {
    const s = await statOrUndefined(join(dir, hex));
    if (!s) continue;
    // A file in a namespace's own trees was served for that namespace; a shared one's namespaces are unknown.
    const e: IndexEntry = { kind, digest: `${alg}:${hex}`, size: s.size, lastAccess: Math.floor(s.mtimeMs), namespaces: scope === undefined ? [] : [scope] };
    if (scope !== undefined) e.scope = scope;
    toInsert.push(e);
  }
  for (let i = 0; i < toInsert.length; i += 1000) {
    const chunk = toInsert.slice(i, i + 1000);
    const added = await o.index.insertMissing(chunk);
    report.indexed += added;
    if (added === chunk.length) report.indexedBytes += chunk.reduce((n, e) => n + e.size, 0);
  }
  const toDrop: IndexEntry[] = [];
  for (const e of missingFile) {
    // A fresh stat: the file may have been committed after the directory was listed.
    if (!(await statOrUndefined(join(dir, e.digest.slice(alg.length + 1))))) toDrop.push(e);
  }
  const dropped = await o.index.removeIfUnchanged(toDrop);
  report.dropped += dropped;
  if (dropped === toDrop.length) report.droppedBytes += toDrop.reduce((n, e) => n + e.size, 0);
}

async function removeTemps(tmp: string, olderThan: number): Promise<number> {
  let removed = 0;
  for (const name of await listDir(tmp)) {
    const path = join(tmp, name);
    const s = await statOrUndefined(path);
    if (!s || s.mtimeMs >= olderThan) continue;
    try {
      await unlink(path);
      removed++;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return removed;
}
