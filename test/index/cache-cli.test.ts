import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanupAll, run, spawnProc, tmpDir } from '../harness/proc.js';
import { Layout } from '../../src/store/layout.js';
import { openLmdbIndex } from '../../src/store/index/lmdb-index.js';
import { reconcile } from '../../src/store/index/reconcile.js';
import { commitFile, filesOnDisk } from './fixtures/objects.js';

after(cleanupAll);

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const WRITER = fileURLToPath(new URL('./fixtures/index-writer.js', import.meta.url));

function cache(args: string[], allowFailure = false) {
  return run(process.execPath, [MAIN, 'cache', ...args], { name: `cache-${args[0]}`, allowFailure, timeoutMs: 60_000 });
}

/** A data dir with blobs and manifests in two namespaces, a tag answer and a pin; closed. */
async function seeded() {
  const dir = await tmpDir('cache-cli-');
  const layout = new Layout(dir);
  let t = 1_000_000;
  const index = openLmdbIndex({ dataDir: dir, now: () => (t += 1000) });
  const small = commitFile(layout, 'blob', 1000);
  const big = commitFile(layout, 'blob', 50_000);
  const mid = commitFile(layout, 'blob', 20_000);
  const manifest = commitFile(layout, 'manifest', 700);
  const pinned = commitFile(layout, 'blob', 3000);
  await index.recordCommit('blob', small.digest, small.size, 'docker.io');
  await index.recordCommit('blob', big.digest, big.size, 'docker.io');
  await index.recordCommit('blob', big.digest, big.size, 'ghcr.io');
  await index.recordCommit('blob', mid.digest, mid.size, 'ghcr.io');
  await index.recordCommit('manifest', manifest.digest, manifest.size, 'docker.io');
  await index.recordCommit('blob', pinned.digest, pinned.size, 'docker.io');
  await index.setTag({ namespace: 'docker.io', repository: 'library/alpine', tag: '3' }, 'oci', { digest: manifest.digest.value, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 700, checkedAt: 1 });
  await index.setPins(new Map([[pinned.digest.value, ['docker.io/library/alpine:3']]]));
  await index.close();
  return { dir, layout, small, big, mid, manifest, pinned };
}

test('cache du: size, objects by kind, cap, free space, by namespace', async () => {
  const s = await seeded();
  const r = await cache(['du', '--data-dir', s.dir, '--max-size', '1MiB', '--json']);
  const du = JSON.parse(r.stdout) as Record<string, unknown> & { byNamespace: Record<string, { bytes: number; objects: number }> };
  assert.equal(du.bytes, 74_700);
  assert.equal(du.objects, 5);
  assert.deepEqual(du.blobs, { bytes: 74_000, objects: 4 });
  assert.deepEqual(du.manifests, { bytes: 700, objects: 1 });
  assert.equal(du.capBytes, 2 ** 20);
  assert.ok((du.freeBytes as number) > 0);
  assert.equal(du.tags, 1);
  assert.equal(du.pins, 1);
  assert.deepEqual(du.byNamespace, { 'docker.io': { bytes: 54_700, objects: 4 }, 'ghcr.io': { bytes: 70_000, objects: 2 } });
  // The same through --config, with a share of the filesystem as the cap.
  const cfg = join(s.dir, 'config.yml');
  writeFileSync(cfg, `dataDir: ${s.dir}\nmaxSize: 50%\nupstreams: [https://example.invalid]\n`);
  const human = await cache(['du', '--config', cfg]);
  assert.match(human.stdout, /cached +72\.9 KiB in 5 objects/);
  assert.match(human.stdout, /cap .*\(50 % of /);
});

test('cache ls: least recently used first, or largest first, limited', async () => {
  const s = await seeded();
  const byAccess = JSON.parse((await cache(['ls', '--data-dir', s.dir, '--json'])).stdout) as Array<{ digest: string; pinned: boolean }>;
  assert.deepEqual(byAccess.map((e) => e.digest), [s.small, s.big, s.mid, s.manifest, s.pinned].map((f) => f.digest.value));
  assert.deepEqual(byAccess.map((e) => e.pinned), [false, false, false, false, true]);
  const bySize = JSON.parse((await cache(['ls', '--data-dir', s.dir, '--sort', 'size', '--limit', '2', '--json'])).stdout) as Array<{ digest: string }>;
  assert.deepEqual(bySize.map((e) => e.digest), [s.big.digest.value, s.mid.digest.value]);
  const bad = await cache(['ls', '--data-dir', s.dir, '--sort', 'name'], true);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /--sort must be access or size/);
});

test('cache rm: a digest, a tag reference, pinned only with --force', async () => {
  const s = await seeded();
  await cache(['rm', '--data-dir', s.dir, s.mid.digest.value]);
  assert.equal(existsSync(s.mid.path), false);
  const refused = await cache(['rm', '--data-dir', s.dir, s.pinned.digest.value], true);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /pinned; use --force/);
  assert.equal(existsSync(s.pinned.path), true);
  await cache(['rm', '--data-dir', s.dir, '--force', s.pinned.digest.value]);
  assert.equal(existsSync(s.pinned.path), false);
  const tag = await cache(['rm', '--data-dir', s.dir, 'alpine:3']);
  assert.match(tag.stdout, /removed manifest sha256:/);
  assert.match(tag.stdout, /removed 1 tag answers/);
  assert.equal(existsSync(s.manifest.path), false);
  const missing = await cache(['rm', '--data-dir', s.dir, 'alpine:3'], true);
  assert.equal(missing.code, 1);
  const index = openLmdbIndex({ dataDir: s.dir });
  assert.deepEqual(index.totals(), { blob: { bytes: 51_000, objects: 2 }, manifest: { bytes: 0, objects: 0 }, bytes: 51_000, objects: 2 });
  assert.equal(index.allTags().length, 0);
  assert.deepEqual(index.verify(), []);
  await index.close();
});

test('cache gc --to SIZE evicts least recently used, keeps pinned', async () => {
  const s = await seeded();
  const r = await cache(['gc', '--data-dir', s.dir, '--to', '3000']);
  assert.match(r.stdout, /evicted 4 objects/);
  const index = openLmdbIndex({ dataDir: s.dir });
  assert.equal(index.totals().bytes, 3000);
  assert.ok(index.get('blob', s.pinned.digest));
  await index.close();
  assert.deepEqual([...filesOnDisk(s.layout).keys()], [`blob ${s.pinned.digest.value}`]);
  const stuck = await cache(['gc', '--data-dir', s.dir, '--to', '0'], true);
  assert.equal(stuck.code, 1, 'pinned content cannot be collected: the target is not reached');
});

test('the cache CLI beside a running process that holds the index open and writes to it', { timeout: 180_000 }, async () => {
  const dir = await tmpDir('cache-cli-live-');
  const layout = new Layout(dir);
  const holder = await spawnProc(process.execPath, [WRITER, dir, 'hold'], { name: 'index-holder', ready: /^ready$/ });
  await holder.waitFor(/^ops 50$/, { timeoutMs: 60_000 });
  // A reader streaming a committed file when the CLI removes it keeps its bytes (open descriptor).
  const f = commitFile(layout, 'blob', 100_000);
  const idx = openLmdbIndex({ dataDir: dir });
  await idx.recordCommit('blob', f.digest, f.size, 'docker.io');
  // Pinned so that the holder's own evictor (256 KiB cap) keeps it: pins written by one process bind the other.
  await idx.setPins(new Map([[f.digest.value, ['test']]]));
  const fd = await open(f.path, 'r');
  const du = JSON.parse((await cache(['du', '--data-dir', dir, '--json'])).stdout) as { objects: number };
  assert.ok(du.objects > 1);
  await holder.waitFor(/^ops \d+$/, { fromLine: holder.lineCount, timeoutMs: 60_000 });
  assert.equal(existsSync(f.path), true, 'the pinned file survives the evictions of the holder');
  await cache(['rm', '--data-dir', dir, '--force', f.digest.value]);
  assert.equal(existsSync(f.path), false);
  const bytes = await fd.readFile();
  await fd.close();
  assert.equal(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, f.digest.value, 'the open reader still reads every byte');
  // gc to zero while the holder commits and evicts: both write the same index.
  await cache(['gc', '--data-dir', dir, '--to', '0'], true);
  const mark = holder.lineCount;
  await holder.waitFor(/^ops \d+$/, { fromLine: mark, timeoutMs: 60_000 });
  await cache(['ls', '--data-dir', dir, '--limit', '5']);
  assert.equal(holder.running, true, 'the holder is still running');
  await holder.stop({ signal: 'SIGKILL' });
  assert.deepEqual(idx.verify(), [], 'consistent after both processes wrote');
  await reconcile({ index: idx, layout });
  const disk = filesOnDisk(layout);
  assert.equal(idx.totals().objects, disk.size);
  assert.equal(idx.totals().bytes, [...disk.values()].reduce((a, b) => a + b, 0));
  await idx.close();
});
