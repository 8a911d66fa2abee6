import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { cleanupAll, tmpDir } from '../harness/proc.js';
import { Layout } from '../../src/store/layout.js';
import { Evictor, type EvictReason } from '../../src/store/index/evictor.js';
import { openLmdbIndex, type LmdbCacheIndex } from '../../src/store/index/lmdb-index.js';
import type { ObjectKind } from '../../src/store/index/types.js';
import { commitFile } from './fixtures/objects.js';

after(cleanupAll);

interface World {
  index: LmdbCacheIndex;
  layout: Layout;
  clock: { t: number };
  /** name → digest and path of a committed 100-byte blob */
  objs: Map<string, { digest: string; path: string }>;
}

/** Commits 100-byte blobs named by `names`, one ms apart, oldest first. */
async function world(names: string[], kind: ObjectKind = 'blob'): Promise<World> {
  const dir = await tmpDir('evict-');
  const layout = new Layout(dir);
  const clock = { t: 1_000_000 };
  const index = openLmdbIndex({ dataDir: dir, now: () => clock.t, flushIntervalMs: 60_000 });
  const objs = new Map<string, { digest: string; path: string }>();
  for (const n of names) {
    clock.t += 1;
    const f = commitFile(layout, kind, 100);
    await index.recordCommit(kind, f.digest, f.size);
    objs.set(n, { digest: f.digest.value, path: f.path });
  }
  return { index, layout, clock, objs };
}

function left(w: World): string[] {
  return [...w.objs].filter(([, o]) => w.index.get('blob', o.digest) !== undefined).map(([n]) => n);
}

test('evicts least recently used first, from the high watermark down to the low one; files go with entries', async () => {
  const w = await world(['a', 'b', 'c', 'd']);
  w.clock.t += 10;
  w.index.touch('blob', w.objs.get('a')!.digest); // buffered: the evictor must flush before choosing
  const evicted: Array<[string, EvictReason]> = [];
  const ev = new Evictor({ index: w.index, layout: w.layout, cap: () => 300, onEvict: (e, r) => evicted.push([e.digest, r]) });
  const stats = await ev.check();
  assert.deepEqual(stats, { evicted: 2, bytes: 200, skipped: 0 });
  assert.deepEqual(left(w), ['a', 'd']);
  assert.deepEqual(evicted, [[w.objs.get('b')!.digest, 'cap'], [w.objs.get('c')!.digest, 'cap']]);
  assert.equal(existsSync(w.objs.get('b')!.path), false);
  assert.equal(existsSync(w.objs.get('a')!.path), true);
  assert.deepEqual(w.index.totals().blob, { bytes: 200, objects: 2 });
  await w.index.close();
});

test('below the high watermark nothing is evicted', async () => {
  const w = await world(['a', 'b', 'c']);
  // 300 bytes, cap 334: 300 <= 0.9 × 334 = 300.6
  const ev = new Evictor({ index: w.index, layout: w.layout, cap: () => 334 });
  assert.equal(await ev.check(), undefined);
  assert.deepEqual(left(w), ['a', 'b', 'c']);
  // Custom watermarks: high 0.5 → evict to low 0.4 of 334 = 133.6 → one object left.
  const ev2 = new Evictor({ index: w.index, layout: w.layout, cap: () => 334, high: 0.5, low: 0.4 });
  assert.equal((await ev2.check())?.evicted, 2);
  assert.deepEqual(left(w), ['c']);
  assert.throws(() => new Evictor({ index: w.index, layout: w.layout, cap: () => 1, high: 0.5, low: 0.6 }), /watermarks/);
  await w.index.close();
});

test('pinned and in-use objects are never evicted, even when the target cannot be reached', async () => {
  const w = await world(['a', 'b', 'c', 'd']);
  await w.index.setPins(new Map([[w.objs.get('a')!.digest, ['app:1']]]));
  const inUse = new Set([w.objs.get('b')!.digest]);
  const ev = new Evictor({ index: w.index, layout: w.layout, cap: () => 100, isInUse: (_k, d) => inUse.has(d) });
  const stats = await ev.check();
  assert.deepEqual(stats, { evicted: 2, bytes: 200, skipped: 2 });
  assert.deepEqual(left(w), ['a', 'b']);
  assert.equal(existsSync(w.objs.get('a')!.path) && existsSync(w.objs.get('b')!.path), true);
  // Nothing evictable is left: a reservation that needs space is refused.
  assert.equal(await ev.reserve(50), undefined);
  await w.index.close();
});

test('reserve evicts for an announced size, holds it until release, refuses what cannot fit', async () => {
  const w = await world(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']); // 800 bytes
  const ev = new Evictor({ index: w.index, layout: w.layout, cap: () => 1000, freeSpace: async () => 1e12 });
  const small = await ev.reserve(50); // 850 <= 900: no eviction
  assert.ok(small);
  assert.deepEqual(left(w).length, 8);
  const big = await ev.reserve(200); // 800 + 50 + 200 > 900 → down to 800 - 200 - 50 = 550 committed
  assert.ok(big);
  assert.equal(ev.reservedBytes, 250);
  assert.deepEqual(left(w), ['d', 'e', 'f', 'g', 'h']);
  assert.ok(ev.usedBytes() <= 1000);
  big.release();
  big.release();
  assert.equal(ev.reservedBytes, 50, 'release is idempotent');
  small.release();
  assert.equal(await ev.reserve(1001), undefined, 'larger than the cap');
  assert.equal(ev.reservedBytes, 0);
  await w.index.close();
});

test('a filesystem short of space for other reasons: evicts for it, then refuses when still short', async () => {
  const w = await world(['a', 'b', 'c']);
  let free = 100; // the disk is fuller than the cache: only 100 bytes left
  const reasons: EvictReason[] = [];
  const ev = new Evictor({
    index: w.index,
    layout: w.layout,
    cap: () => 1e9,
    // The real statfs number cannot be steered; this is the filesystem's answer, plus what we freed.
    freeSpace: async () => free + (300 - w.index.totals().bytes),
    onEvict: (_e, r) => reasons.push(r),
  });
  const r = await ev.reserve(250);
  assert.ok(r, 'space made by evicting the two oldest');
  assert.deepEqual(left(w), ['c']);
  assert.deepEqual(reasons, ['disk', 'disk']);
  free = 0;
  assert.equal(await ev.reserve(10_000), undefined, 'nothing left to evict for it');
  assert.deepEqual(left(w), []);
  await w.index.close();
});

test('evictTo (cache gc --to) evicts to an exact target; manifests are removed from their own tree', async () => {
  const w = await world(['a', 'b', 'c'], 'manifest');
  const ev = new Evictor({ index: w.index, layout: w.layout, cap: () => 1e9 });
  const stats = await ev.evictTo(100);
  assert.equal(stats.evicted, 2);
  assert.deepEqual(w.index.totals().manifest, { bytes: 100, objects: 1 });
  assert.equal(existsSync(w.objs.get('a')!.path), false);
  assert.equal(existsSync(w.objs.get('c')!.path), true);
  await w.index.close();
});
