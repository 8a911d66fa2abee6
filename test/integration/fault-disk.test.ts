// Issue 9, item 8 (and the full-disk case under "Tests"): a full disk neither fails a pull nor leaves partial files; disk errors are classified; a verified manifest that cannot be written is still served.
/**
 * The mirror CHILD's data dir is a 40 MiB tmpfs mounted by the test (we run as root), unmounted after.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupAll, delay, registerCleanup, requireCommands, run, tmpDir } from '../harness/proc.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { makeImage, pushImageHttp, putBlob, randomBlobFile, type GeneratedImage } from '../harness/oci.js';
import { http, httpDigest } from '../helpers/http.js';
import { metricValue, startChild, type ChildMirror } from './fault-child.js';

const MiB = 2 ** 20;

/** Files under `dir`, recursively (relative paths). */
function files(dir: string, prefix = ''): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`]));
}

function usedBytes(dir: string): number {
  const s = statfsSync(dir);
  return (s.blocks - s.bfree) * s.bsize;
}

describe('full disk', () => {
  let upstream: Registry;
  let child: ChildMirror;
  let mount: string;
  let big: string;
  let img: GeneratedImage;

  before(async () => {
    requireCommands('docker-registry', 'mount', 'umount');
    upstream = await startRegistry();
    big = await putBlob(upstream.url, 'library/disk', await randomBlobFile(await tmpDir('disk-src-'), 64 * MiB));
    img = await makeImage({ layers: [1000] });
    await pushImageHttp(upstream.url, 'library/disk', '1', img);
    mount = await tmpDir('tmpfs-');
    await run('mount', ['-t', 'tmpfs', '-o', 'size=40m', 'tmpfs', mount]);
    registerCleanup(`umount ${mount}`, async () => {
      await run('umount', ['-l', mount], { allowFailure: true });
    });
    child = await startChild({ upstreams: [`docker.io=${upstream.url}`], dataDir: mount });
  });
  after(cleanupAll);

  test('a 64 MiB blob on a 40 MiB data dir is still served whole (streamed uncached), nothing partial left, reason disk', { timeout: 90_000 }, async () => {
    const r = await httpDigest(`${child.url}/v2/disk/blobs/${big}`);
    assert.equal(r.status, 200);
    assert.ok(r.complete, `the pull completed (${(r.bytes / MiB).toFixed(1)} of 64 MiB)`);
    assert.equal(r.digest, big);
    let left: string[] = [];
    for (let i = 0; i < 50; i++) {
      left = files(mount).filter((f) => f.startsWith('tmp/') || f.startsWith('blobs/'));
      if (left.length === 0) break;
      await delay(100);
    }
    assert.deepEqual(left, [], 'no temp file and no partial blob left');
    // The unlinked temp file's blocks come back once the fill's last reader closes its handle.
    for (let i = 0; i < 50 && usedBytes(mount) >= 2 * MiB; i++) await delay(100);
    assert.ok(usedBytes(mount) < 2 * MiB, `the space was given back (${(usedBytes(mount) / MiB).toFixed(1)} MiB used)`);
    const metrics = await child.metrics();
    assert.ok(metricValue(metrics, 'regmirror_uncached_pulls_total', 'reason="disk"') >= 1, `the pull served uncached is counted with reason="disk":\n${metrics.split('\n').filter((l) => /^regmirror_(fills_failed|uncached_pulls)/.test(l)).join('\n')}`);
    assert.equal(metricValue(metrics, 'regmirror_fills_failed_total', 'reason="upstream"'), 0, 'not blamed on the upstream');
    const again = await httpDigest(`${child.url}/v2/disk/blobs/${big}`);
    assert.equal(again.digest, big, 'and again');
  });

  test('a verified manifest that cannot be written (disk full) is still served', { timeout: 60_000 }, async () => {
    // Let the failed fill of the first case release its temp file, or it would free space under our filler.
    for (let i = 0; i < 100 && files(mount).some((f) => f.startsWith('tmp/')); i++) await delay(100);
    await delay(300);
    const filler = join(mount, 'filler');
    try {
      writeFileSync(filler, Buffer.alloc(40 * MiB));
    } catch (err) {
      assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC', 'the filler fills the disk');
    }
    // Prove the disk is full: a small write fails too.
    assert.throws(() => writeFileSync(join(mount, 'probe'), Buffer.alloc(8192, 1)), /ENOSPC/, 'the data dir is full');
    const m = await http(`${child.url}/v2/disk/manifests/1`, { headers: { accept: img.manifestMediaType } });
    const byDigest = await http(`${child.url}/v2/disk/manifests/${img.manifestDigest}`, { headers: { accept: img.manifestMediaType } });
    rmSync(filler, { force: true });
    assert.equal(m.status, 200, `by tag: ${m.status} ${m.body.toString().slice(0, 200)}`);
    assert.ok(m.body.equals(img.manifest));
    assert.equal(byDigest.status, 200, `by digest: ${byDigest.status}`);
    assert.ok(child.proc.running);
  });
});
