/**
 * A data dir with a big cache index, for the start-up figures (issue 10): N blob files under
 * blobs/sha256/xx/ with N entries in the index, and on top of that the work a reconciliation finds
 * after a crash or a copy of the data dir (files without entries, entries without files, old temp
 * files). Used by bench/index/startup.ts (a bare process opening the index) and by workload 8 of
 * `npm run bench` (the real `regmirror serve`).
 *
 * The blob files are empty: reconciliation reads names, and stats only files without entries; the
 * bytes never matter. Entry sizes are 1 B … 4 MB, so a mirror started on the fixture needs a
 * `--max-size` above their sum (about 2 TB at 1M entries), or its evictor would empty it.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Layout } from '../../src/store/layout.js';
import { indexPath, openLmdbIndex } from '../../src/store/index/lmdb-index.js';
import type { IndexEntry } from '../../src/store/index/types.js';
import { RECONCILE_WORK } from './work.js';

export { RECONCILE_WORK };


/** Creates empty blob files, making each fan-out directory once. */
function fileMaker(layout: Layout): (hex: string) => void {
  const made = new Set<string>();
  return (hex) => {
    const d = join(layout.root, 'blobs', 'sha256', hex.slice(0, 2));
    if (!made.has(d)) {
      mkdirSync(d, { recursive: true });
      made.add(d);
    }
    closeSync(openSync(join(d, hex), 'w'));
  };
}

/**
 * Writes `n` blob files and their `n` index entries (inserted in batches of 10 000, in random digest
 * order) into `dir`. Returns the size of the index file, MiB.
 */
export async function seedIndexFixture(dir: string, n: number): Promise<number> {
  const layout = new Layout(dir);
  const index = openLmdbIndex({ dataDir: dir });
  const touch = fileMaker(layout);
  try {
    let batch: IndexEntry[] = [];
    for (let i = 0; i < n; i++) {
      const hex = randomBytes(32).toString('hex');
      touch(hex);
      batch.push({ kind: 'blob', digest: `sha256:${hex}`, size: 1 + (i % 4_000_000), lastAccess: 1_700_000_000_000 + i, namespaces: ['docker.io'] });
      if (batch.length === 10_000) {
        await index.insertMissing(batch);
        batch = [];
      }
    }
    if (batch.length > 0) await index.insertMissing(batch);
  } finally {
    await index.close();
  }
  return indexMiB(dir);
}

/**
 * Adds fresh reconciliation work to a fixture (with no process holding its index): 1 000 entries
 * without files, 1 000 files without entries, 100 temp files an hour old ({@link RECONCILE_WORK}). Called before every start,
 * since each reconciliation repairs what the previous batch left.
 */
export async function addReconcileWork(dir: string): Promise<void> {
  const layout = new Layout(dir);
  const index = openLmdbIndex({ dataDir: dir });
  try {
    const orphans: IndexEntry[] = Array.from({ length: RECONCILE_WORK.entriesWithoutFiles }, () => ({
      kind: 'blob',
      digest: `sha256:${randomBytes(32).toString('hex')}`,
      size: 10,
      lastAccess: 1,
      namespaces: [],
    }));
    await index.insertMissing(orphans);
  } finally {
    await index.close();
  }
  const touch = fileMaker(layout);
  for (let i = 0; i < RECONCILE_WORK.filesWithoutEntries; i++) touch(randomBytes(32).toString('hex'));
  mkdirSync(layout.tmp, { recursive: true });
  const old = new Date(Date.now() - 3_600_000);
  for (let i = 0; i < RECONCILE_WORK.tmpLeftovers; i++) {
    const p = join(layout.tmp, `sha256-left-${randomBytes(6).toString('hex')}`);
    writeFileSync(p, 'partial');
    utimesSync(p, old, old);
  }
}

/** Size of the fixture's index file on disk, MiB. */
export function indexMiB(dir: string): number {
  return (statSync(indexPath(dir)).blocks * 512) / 2 ** 20;
}
