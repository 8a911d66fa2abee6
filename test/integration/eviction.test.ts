/**
 * Issue 10 items 1 and 5: least-recently-used eviction within the cap; pinned images are fetched at start and
 * never evicted; the cache stays within the cap plus one fill while bytes far beyond it are pulled through.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { cleanupAll, delay, requireCommands, tmpDir } from '../harness/proc.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { makeImage, pushImageHttp, putBlob, randomBlobFile, type BlobFile, type GeneratedImage } from '../harness/oci.js';
import { startMirror, type TestMirror } from '../helpers/mirror.js';
import { httpDigest } from '../helpers/http.js';

const MiB = 2 ** 20;

async function blobBytesOnDisk(dataDir: string): Promise<{ bytes: number; digests: Set<string> }> {
  let bytes = 0;
  const digests = new Set<string>();
  const root = join(dataDir, 'blobs', 'sha256');
  for (const d of await readdir(root).catch(() => [])) {
    for (const f of await readdir(join(root, d)).catch(() => [])) {
      bytes += (await stat(join(root, d, f))).size;
      digests.add(`sha256:${f}`);
    }
  }
  return { bytes, digests };
}

describe('eviction within the cap', () => {
  let upstream: Registry;
  let m: TestMirror;
  let pinned: GeneratedImage;
  const others: BlobFile[] = [];

  before(async () => {
    requireCommands('docker-registry');
    upstream = await startRegistry();
    pinned = await makeImage({ layers: [1 * MiB, 512 * 1024] });
    await pushImageHttp(upstream.url, 'acme/pinned', '1', pinned);
    const dir = await tmpDir('evict-src-');
    for (let i = 0; i < 10; i++) {
      const b = await randomBlobFile(dir, 2 * MiB);
      await putBlob(upstream.url, 'acme/other', b);
      others.push(b);
    }
    const config = join(await tmpDir('evict-cfg-'), 'config.yml');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(config, `maxSize: 8MiB\nblobMemory: 0\npin:\n  - acme/pinned:1\n`);
    const { readConfigFile } = await import('../../src/config/load.js');
    m = await startMirror({ ...readConfigFile(config), upstreams: [`docker.io=${upstream.url}`] });
  });
  after(cleanupAll);

  test('pinned image fetched at start and kept; least-recently-used blobs evicted; never above the cap plus one fill', { timeout: 120_000 }, async () => {
    const pinnedBlobs = [pinned.configDigest, ...pinned.layers.map((l) => l.digest)];
    // The pin is fetched through the mirror at start, with no client asking for it.
    for (let i = 0; i < 100 && !(await readFile(m.logFile, 'utf8')).includes('pinned images fetched'); i++) await delay(100);
    assert.ok((await readFile(m.logFile, 'utf8')).includes('pinned images fetched'), 'the pin was processed at start');
    let disk = await blobBytesOnDisk(m.dataDir);
    for (const d of pinnedBlobs) assert.ok(disk.digests.has(d), `pinned blob ${d} fetched at start`);

    let peak = 0;
    // 10 × 2 MiB through an 8 MiB cache, each read twice (the second read touches it: most recent).
    for (const b of others) {
      const url = `${m.url}/v2/acme/other/blobs/${b.digest}`;
      assert.equal((await httpDigest(url)).digest, b.digest);
      assert.equal((await httpDigest(url)).digest, b.digest);
      disk = await blobBytesOnDisk(m.dataDir);
      peak = Math.max(peak, disk.bytes);
    }
    await delay(300);
    disk = await blobBytesOnDisk(m.dataDir);
    for (const d of pinnedBlobs) assert.ok(disk.digests.has(d), `pinned blob ${d} never evicted`);
    assert.ok(peak <= 8 * MiB + 2 * MiB, `never above the cap plus one fill (peak ${(peak / MiB).toFixed(1)} MiB)`);
    assert.ok(disk.digests.has(others.at(-1)!.digest), 'the most recent blob is kept');
    assert.ok(!disk.digests.has(others[0]!.digest), 'the least recently used blob was evicted');
    assert.ok((await m.metric('regmirror_evictions_total')) >= 3, 'evictions counted');
    assert.equal(await m.metric('regmirror_cache_max_size_bytes'), 8 * MiB);
    // An evicted blob is simply fetched again.
    assert.equal((await httpDigest(`${m.url}/v2/acme/other/blobs/${others[0]!.digest}`)).digest, others[0]!.digest);
  });
});
