/**
 * isolateNamespaces at the store level: scope names cannot leave the data dir; the index keeps one entry per
 * (kind, digest, scope) with totals and LRU order over all of them; reconcile walks every namespace's trees
 * (indexing their files with their scope, dropping entries of a scope whose trees are gone); the evictor
 * removes a scoped entry's own file.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupAll, tmpDir } from '../harness/proc.js';
import { isScopeName, Layout, scopedKey } from '../../src/store/layout.js';
import { openLmdbIndex } from '../../src/store/index/lmdb-index.js';
import { reconcile } from '../../src/store/index/reconcile.js';
import { Evictor } from '../../src/store/index/evictor.js';
import { commitFile } from './fixtures/objects.js';

after(cleanupAll);

test('scope names are registry hosts; anything that could leave ns/ is refused', () => {
  for (const ok of ['docker.io', 'ghcr.io', 'registry.example.com', '127.0.0.1:5000', 'localhost']) assert.ok(isScopeName(ok), ok);
  for (const bad of ['', '.', '..', '../x', 'a/b', '/etc', 'a\u0000b', 'Docker.io', '-x', 'x-', 'a:b', 'a\\b', '.hidden']) assert.ok(!isScopeName(bad), JSON.stringify(bad));
  const layout = new Layout('/data', { isolate: true });
  assert.throws(() => layout.scopeOf('../../etc'), /invalid namespace/);
  assert.throws(() => layout.scopeRoot('..'), /invalid cache scope/);
  assert.equal(layout.scopeOf('ghcr.io'), 'ghcr.io');
  assert.equal(layout.scopeRoot('ghcr.io'), '/data/ns/ghcr.io');
  assert.equal(new Layout('/data').scopeOf('ghcr.io'), undefined, 'not isolated: the shared trees');
  assert.notEqual(scopedKey('sha256:ab', 'ghcr.io'), scopedKey('sha256:ab', undefined));
});

test('index: one entry per scope, totals and LRU over all scopes, scopes() lists them, verify() agrees', async () => {
  const dir = await tmpDir('scopes-index-');
  const index = openLmdbIndex({ dataDir: dir });
  const d = 'sha256:' + 'ab'.repeat(32);
  await index.recordCommit('blob', d, 100, undefined);
  await index.recordCommit('blob', d, 100, 'ghcr.io', 'ghcr.io');
  await index.recordCommit('blob', d, 100, 'docker.io', 'docker.io');
  await index.recordCommit('manifest', d, 7, 'a.b', 'a.b');
  await index.recordCommit('blob', d, 100, '127.0.0.1:5000', '127.0.0.1:5000');
  assert.equal(index.totals().blob.objects, 4);
  assert.equal(index.totals().bytes, 407);
  assert.deepEqual(index.scopes(), ['127.0.0.1:5000', 'a.b', 'docker.io', 'ghcr.io']);
  assert.equal(index.get('blob', d)?.scope, undefined);
  assert.equal(index.get('blob', d, 'ghcr.io')?.scope, 'ghcr.io');
  assert.deepEqual(index.get('blob', d, 'ghcr.io')?.namespaces, ['ghcr.io']);
  assert.equal(index.get('blob', d, 'quay.io'), undefined);
  assert.deepEqual(index.entriesWithPrefix('blob', 'sha256:ab').map((e) => e.scope), [undefined], 'the shared range holds only shared entries');
  assert.deepEqual(index.entriesWithPrefix('blob', 'sha256:ab', 'docker.io').map((e) => e.scope), ['docker.io']);
  assert.equal(index.lruCandidates(10).entries.length, 5);
  index.touch('blob', d, 'ghcr.io', 'ghcr.io');
  await index.flush();
  assert.equal(index.lruCandidates(10).entries.at(-1)?.scope, 'ghcr.io', 'a touch moves only that scope\'s entry');
  assert.equal(await index.remove('blob', d, 'docker.io'), true);
  assert.ok(index.get('blob', d), 'the shared entry stays');
  assert.deepEqual(index.verify(), []);
  await index.close();
});

test('reconcile walks every namespace tree; the evictor removes a scoped entry\'s own file', async () => {
  const dir = await tmpDir('scopes-reconcile-');
  const layout = new Layout(dir, { isolate: true });
  const index = openLmdbIndex({ dataDir: dir });
  const shared = commitFile(layout, 'blob', 300);
  const ghcr = commitFile(layout, 'blob', 400, 'ghcr.io');
  const ghcrManifest = commitFile(layout, 'manifest', 50, 'ghcr.io');
  const quay = commitFile(layout, 'blob', 500, 'quay.io');
  // An entry of a scope whose trees are gone entirely.
  await index.recordCommit('blob', 'sha256:' + 'cd'.repeat(32), 42, 'old.example', 'old.example');
  const report = await reconcile({ index, layout });
  assert.equal(report.files, 4);
  assert.equal(report.indexed, 4);
  assert.equal(report.dropped, 1, 'the gone scope\'s entry was dropped');
  assert.equal(index.get('blob', shared.digest)?.scope, undefined);
  assert.deepEqual(index.get('blob', ghcr.digest, 'ghcr.io')?.namespaces, ['ghcr.io']);
  assert.ok(index.get('manifest', ghcrManifest.digest, 'ghcr.io'));
  assert.equal(index.get('blob', ghcr.digest), undefined, 'not in the shared scope');
  assert.ok(index.get('blob', quay.digest, 'quay.io'), 'trees of a namespace not configured now are still counted');
  assert.deepEqual(index.scopes(), ['ghcr.io', 'quay.io']);
  assert.deepEqual(index.verify(), []);
  // A second run agrees with everything.
  const again = await reconcile({ index, layout });
  assert.equal(again.indexed + again.dropped, 0);

  const inUse: string[] = [];
  const evictor = new Evictor({ index, layout, cap: () => 10_000, isInUse: (_k, digest, scope) => (inUse.push(`${scope}`), false) });
  const stats = await evictor.evictTo(0);
  assert.equal(stats.evicted, 4);
  for (const f of [shared, ghcr, ghcrManifest, quay]) assert.ok(!existsSync(f.path), `${f.path} removed`);
  assert.ok(inUse.includes('ghcr.io') && inUse.includes('undefined'));
  assert.equal(index.totals().objects, 0);
  // Gone trees and a fresh index: nothing left to find.
  rmSync(join(dir, 'ns'), { recursive: true, force: true });
  assert.equal((await reconcile({ index, layout })).files, 0);
  await index.close();
});
