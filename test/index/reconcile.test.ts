import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, utimesSync, writeFileSync, existsSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupAll, tmpDir } from '../harness/proc.js';
import { Layout } from '../../src/store/layout.js';
import { openLmdbIndex } from '../../src/store/index/lmdb-index.js';
import { reconcile } from '../../src/store/index/reconcile.js';
import { commitFile } from './fixtures/objects.js';

after(cleanupAll);

test('reconcile indexes files without entries, drops entries without files, removes old temp files', async () => {
  const dir = await tmpDir('reconcile-');
  const layout = new Layout(dir);
  const index = openLmdbIndex({ dataDir: dir });
  // Agreeing: committed and indexed.
  const kept = commitFile(layout, 'blob', 300);
  await index.recordCommit('blob', kept.digest, kept.size, 'docker.io');
  // A file the index does not know (crash between rename and recordCommit), with an old mtime.
  const orphan = commitFile(layout, 'blob', 1234);
  utimesSync(orphan.path, new Date(1_600_000_000_000), new Date(1_600_000_000_000));
  const orphanManifest = commitFile(layout, 'manifest', 77);
  // Entries whose files are gone (crash between unlink and remove).
  const gone = commitFile(layout, 'blob', 500);
  await index.recordCommit('blob', gone.digest, gone.size);
  unlinkSync(gone.path);
  await index.recordCommit('manifest', 'sha512:' + 'ab'.repeat(64), 9);
  // Not ours: a name that is not a digest of its directory.
  mkdirSync(join(layout.root, 'blobs', 'sha256', 'zz'), { recursive: true });
  writeFileSync(join(layout.root, 'blobs', 'sha256', 'zz', 'notes.txt'), 'x');
  // Temp files: one left by a dead process (old), one of a fill in progress (new).
  writeFileSync(join(layout.tmp, 'sha256-dead'), 'partial');
  utimesSync(join(layout.tmp, 'sha256-dead'), new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
  const started = Date.now() - 1000;
  writeFileSync(join(layout.tmp, 'sha256-live'), 'filling');

  const report = await reconcile({ index, layout, tmpOlderThan: started });
  assert.equal(report.files, 3);
  assert.equal(report.indexed, 2);
  assert.equal(report.indexedBytes, 1234 + 77);
  assert.equal(report.dropped, 2);
  assert.equal(report.droppedBytes, 509);
  assert.equal(report.tmpRemoved, 1);
  assert.equal(report.aborted, false);
  assert.deepEqual(index.get('blob', orphan.digest), { kind: 'blob', digest: orphan.digest.value, size: 1234, lastAccess: 1_600_000_000_000, namespaces: [] });
  assert.equal(index.get('manifest', orphanManifest.digest)?.size, 77);
  assert.deepEqual(index.get('blob', kept.digest)?.namespaces, ['docker.io'], 'agreeing entries untouched');
  assert.equal(index.get('blob', gone.digest), undefined);
  assert.deepEqual(index.totals(), { blob: { bytes: 1534, objects: 2 }, manifest: { bytes: 77, objects: 1 }, bytes: 1611, objects: 3 });
  assert.equal(existsSync(join(layout.tmp, 'sha256-dead')), false);
  assert.equal(existsSync(join(layout.tmp, 'sha256-live')), true);
  assert.equal(existsSync(join(layout.root, 'blobs', 'sha256', 'zz', 'notes.txt')), true);
  assert.deepEqual(index.verify(), []);

  // A second run finds nothing to do; with tmpOlderThan: false no temp file is touched.
  const again = await reconcile({ index, layout, tmpOlderThan: false });
  assert.deepEqual([again.indexed, again.dropped, again.tmpRemoved, again.files], [0, 0, 0, 3]);
  await index.close();
});

test('reconcile does not undo a commit that lands while it runs', async () => {
  const dir = await tmpDir('reconcile-');
  const layout = new Layout(dir);
  const index = openLmdbIndex({ dataDir: dir });
  const files = Array.from({ length: 200 }, () => commitFile(layout, 'blob', 64));
  const running = reconcile({ index, layout });
  // Meanwhile the mirror commits new objects the usual way: rename, then recordCommit.
  const late = [];
  for (let i = 0; i < 50; i++) {
    const f = commitFile(layout, 'blob', 32);
    await index.recordCommit('blob', f.digest, f.size, 'docker.io');
    late.push(f);
  }
  await running;
  for (const f of [...files, ...late]) assert.ok(index.get('blob', f.digest), `entry for ${f.digest.value}`);
  for (const f of late) assert.deepEqual(index.get('blob', f.digest)?.namespaces, ['docker.io']);
  assert.equal(index.totals().blob.objects, 250);
  assert.deepEqual(index.verify(), []);
  await index.close();
});

test('reconcile stops when its signal aborts', async () => {
  const dir = await tmpDir('reconcile-');
  const layout = new Layout(dir);
  const index = openLmdbIndex({ dataDir: dir });
  const ac = new AbortController();
  ac.abort();
  const report = await reconcile({ index, layout, signal: ac.signal });
  assert.equal(report.aborted, true);
  await index.close();
});
