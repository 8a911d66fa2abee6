import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanupAll, tmpDir } from '../harness/proc.js';
import { openLmdbIndex, type LmdbCacheIndex } from '../../src/store/index/lmdb-index.js';
import { IndexTagStore } from '../../src/tags/index-store.js';
import type { IndexOp } from '../../src/store/index/health.js';

after(cleanupAll);

const D = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;

/** An index with a clock the test moves. */
async function fresh(opts: { onError?: (op: IndexOp, err: unknown) => void; warn?: string[] } = {}): Promise<{ index: LmdbCacheIndex; clock: { t: number }; dir: string }> {
  const dir = await tmpDir('index-');
  const clock = { t: 1_000_000 };
  const warn = opts.warn;
  const index = openLmdbIndex({
    dataDir: dir,
    now: () => clock.t,
    flushIntervalMs: 60_000,
    onError: opts.onError,
    log: { warn: (_o, m) => warn?.push(m), info: () => {} },
  });
  return { index, clock, dir };
}

test('recordCommit stores size, last access and namespaces; totals follow by kind', async () => {
  const { index, clock } = await fresh();
  await index.recordCommit('blob', D(1), 100, 'docker.io');
  clock.t += 10;
  await index.recordCommit('blob', D(1), 100, 'ghcr.io');
  await index.recordCommit('manifest', D(2), 7, 'docker.io');
  await index.recordCommit('blob', D(3), 50);
  assert.deepEqual(index.get('blob', D(1)), { kind: 'blob', digest: D(1), size: 100, lastAccess: 1_000_010, namespaces: ['docker.io', 'ghcr.io'] });
  assert.equal(index.get('manifest', D(1)), undefined, 'a blob is not a manifest of the same digest');
  assert.deepEqual(index.totals(), { blob: { bytes: 150, objects: 2 }, manifest: { bytes: 7, objects: 1 }, bytes: 157, objects: 3 });
  assert.equal(await index.remove('blob', D(1)), true);
  assert.equal(await index.remove('blob', D(1)), false);
  assert.deepEqual(index.totals().blob, { bytes: 50, objects: 1 });
  assert.deepEqual(index.verify(), []);
  await index.close();
});

test('touch is buffered until flush, reorders LRU, never creates an entry', async () => {
  const { index, clock } = await fresh();
  for (let i = 1; i <= 5; i++) {
    clock.t += 1;
    await index.recordCommit('blob', D(i), 10 * i, 'docker.io');
  }
  clock.t += 100;
  index.touch('blob', D(1), 'quay.io');
  index.touch('blob', D(99));
  assert.equal(index.get('blob', D(1))?.lastAccess, 1_000_001, 'not written before the flush');
  assert.deepEqual(index.lruCandidates(10).entries.map((e) => e.digest), [D(1), D(2), D(3), D(4), D(5)]);
  await index.flush();
  assert.equal(index.get('blob', D(1))?.lastAccess, 1_000_105);
  assert.deepEqual(index.get('blob', D(1))?.namespaces, ['docker.io', 'quay.io']);
  assert.equal(index.get('blob', D(99)), undefined);
  assert.deepEqual(index.lruCandidates(10).entries.map((e) => e.digest), [D(2), D(3), D(4), D(5), D(1)]);
  // Paging with the cursor yields the same order without repeats.
  const first = index.lruCandidates(2);
  const second = index.lruCandidates(2, first.cursor);
  const third = index.lruCandidates(2, second.cursor);
  assert.deepEqual([...first.entries, ...second.entries, ...third.entries].map((e) => e.digest), [D(2), D(3), D(4), D(5), D(1)]);
  assert.deepEqual(index.totals().blob, { bytes: 150, objects: 5 }, 'touches do not change totals');
  assert.deepEqual(index.verify(), []);
  await index.close();
});

test('a full touch buffer flushes by itself once flushEntries objects are buffered', async () => {
  const dir = await tmpDir('index-');
  let t = 0;
  const index = openLmdbIndex({ dataDir: dir, now: () => ++t, flushIntervalMs: 60_000, flushEntries: 3 });
  for (let i = 1; i <= 3; i++) await index.recordCommit('blob', D(i), 1);
  for (let i = 1; i <= 3; i++) index.touch('blob', D(i));
  // No flush() call here: the buffer must write itself (poll, generous deadline for a loaded machine).
  for (let i = 0; i < 200 && index.get('blob', D(1))?.lastAccess !== 4; i++) await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(index.lruCandidates(3).entries.map((e) => e.lastAccess), [4, 5, 6]);
  await index.close();
});

test('tag answers: per Accept class, exact tag only, removable, survive reopen', async () => {
  const { index, dir } = await fresh();
  const key = { namespace: 'docker.io', repository: 'library/alpine', tag: '3' };
  const a = { digest: D(1), mediaType: 'application/vnd.oci.image.index.v1+json', size: 10, checkedAt: 5 };
  const b = { digest: D(2), mediaType: 'application/vnd.docker.distribution.manifest.v2+json', size: 20, checkedAt: 6 };
  await index.setTag(key, 'oci', a);
  await index.setTag(key, 'docker', b);
  await index.setTag({ ...key, tag: '3.20' }, 'oci', b);
  await index.setTag({ ...key, repository: 'library/alpine/x' }, 'oci', b);
  assert.deepEqual(index.getTag(key, 'oci'), a);
  assert.deepEqual([...index.tagsFor(key)].sort(), [['docker', b], ['oci', a]]);
  await index.close();
  const again = openLmdbIndex({ dataDir: dir });
  assert.deepEqual(again.getTag(key, 'docker'), b);
  const store = new IndexTagStore(again);
  assert.deepEqual(await store.get({ ...key, tag: '3.20' }, 'oci'), b);
  assert.equal(await again.removeTag(key), 2);
  assert.equal(again.getTag(key, 'oci'), undefined);
  assert.equal(again.tagsFor({ ...key, tag: '3.20' }).size, 1, 'another tag is untouched');
  assert.equal(again.allTags().length, 2);
  await again.close();
});

test('pins: replaced as a set, by digest whatever the kind', async () => {
  const { index } = await fresh();
  await index.setPins(new Map([[D(1), ['alpine:3']], [D(2), ['alpine:3', 'app:1']]]));
  assert.equal(index.isPinned(D(1)), true);
  assert.equal(index.isPinned({ algorithm: 'sha256', hex: D(2).slice(7), value: D(2) }), true);
  await index.setPins(new Map([[D(2), ['app:1']]]));
  assert.equal(index.isPinned(D(1)), false);
  assert.deepEqual([...index.pins()], [[D(2), ['app:1']]]);
  await index.close();
});

test('entries, totals and LRU order survive close and reopen', async () => {
  const { index, clock, dir } = await fresh();
  for (let i = 1; i <= 50; i++) {
    clock.t += 1;
    await index.recordCommit(i % 2 ? 'blob' : 'manifest', D(i), i);
  }
  await index.close();
  const again = openLmdbIndex({ dataDir: dir });
  assert.equal(again.totals().objects, 50);
  assert.equal(again.totals().bytes, (50 * 51) / 2);
  assert.equal(again.lruCandidates(1).entries[0]?.digest, D(1));
  assert.equal(again.entriesWithPrefix('blob', D(1).slice(0, 9)).length, 25, 'every blob digest starts sha256:00');
  assert.deepEqual(again.verify(), []);
  await again.close();
});

test('failures never throw: they are counted, reported and logged once per state change', async () => {
  const errors: IndexOp[] = [];
  const warn: string[] = [];
  const { index } = await fresh({ onError: (op) => errors.push(op), warn });
  await index.recordCommit('blob', D(1), 1);
  // Pull the environment from under the index: every later operation fails inside lmdb.
  await (index as unknown as { env: { close(): Promise<void> } }).env.close();
  await index.recordCommit('blob', D(2), 1);
  await index.setTag({ namespace: 'n', repository: 'r', tag: 't' }, 'a', { digest: D(1), mediaType: 'm', size: 1, checkedAt: 1 });
  assert.equal(index.get('blob', D(1)), undefined);
  assert.deepEqual(index.lruCandidates(5).entries, []);
  index.touch('blob', D(1));
  await index.flush();
  await index.close();
  assert.ok(index.errors >= 3, `errors counted: ${index.errors}`);
  assert.equal(errors.length, index.errors);
  assert.equal(warn.length, 1, `logged once: ${JSON.stringify(warn)}`);
});
