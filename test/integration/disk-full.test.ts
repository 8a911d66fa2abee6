/**
 * Issue 10 item 5 / issue 9 item 8: a full disk never fails a pull the upstream can serve. On a small
 * tmpfs (mounted by the test: CI runs as root) a 64 MiB blob does not fit; the client and its joiner still
 * get every byte, verified, streamed from the upstream without caching (counted), nothing partial stays on
 * disk, and once there is room again the next request caches it by itself.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cleanupAll, registerCleanup, requireCommands, tmpDir } from '../harness/proc.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { putBlob, randomBlobFile, type BlobFile } from '../harness/oci.js';
import { startRelay, type Relay } from '../harness/relay.js';
import { startMirror, type TestMirror } from '../helpers/mirror.js';
import { httpDigest } from '../helpers/http.js';
import { filesUnder } from '../helpers/files.js';

describe('a full disk', () => {
  let upstream: Registry;
  let relay: Relay;
  let m: TestMirror;
  let blob: BlobFile;
  let dataDir: string;
  const filler = () => join(dataDir, 'filler');

  before(async () => {
    requireCommands('docker-registry', 'mount', 'umount');
    upstream = await startRegistry();
    relay = await startRelay({ target: upstream.url });
    blob = await randomBlobFile(await tmpDir('disk-full-src-'), 64 * 2 ** 20);
    await putBlob(upstream.url, 'acme/big', blob);
    dataDir = await tmpDir('disk-full-data-');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=96m', 'tmpfs', dataDir]);
    registerCleanup('umount tmpfs', async () => {
      execFileSync('umount', ['-l', dataDir]);
    });
    // 60 MiB of other data: 36 MiB left, not enough for the 64 MiB blob.
    await writeFile(filler(), Buffer.alloc(60 * 2 ** 20, 1));
    m = await startMirror({ dataDir, upstreams: [`docker.io=${relay.url}`] });
  });
  after(cleanupAll);

  test('the client and a joiner get every byte (verified) uncached; nothing partial is left; caching resumes when space returns', { timeout: 120_000 }, async () => {
    const url = `${m.url}/v2/acme/big/blobs/${blob.digest}`;
    const [a, b] = await Promise.all([httpDigest(url), httpDigest(url)]);
    for (const r of [a, b]) {
      assert.equal(r.status, 200);
      assert.ok(r.complete, 'the transfer ended cleanly');
      assert.equal(r.bytes, blob.size);
      assert.equal(r.digest, blob.digest, 'the right bytes');
    }
    assert.equal(await m.metric('regmirror_uncached_pulls_total', { reason: 'disk' }), 1, 'one fill, served uncached, counted');
    const left = (await filesUnder(dataDir)).filter((f) => !f.endsWith('/filler') && !f.endsWith('regmirror.lock') && !f.includes('/index/'));
    assert.deepEqual(left, [], 'no blob and no temp file left on the full disk');
    const { statfsSync } = await import('node:fs');
    const used = () => {
      const st = statfsSync(dataDir);
      return (st.blocks - st.bfree) * st.bsize;
    };
    for (let i = 0; i < 50 && used() > 62 * 2 ** 20; i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(used() <= 62 * 2 ** 20, `the temp file's space was given back (${(used() / 2 ** 20).toFixed(1)} MiB used, 60 MiB of it the filler)`);
    assert.ok(relay.stats().requests <= 2, `one upstream fetch for both clients (${relay.stats().requests} relay requests)`);

    // Space comes back: the next pull caches the blob without any intervention.
    await rm(filler());
    const c = await httpDigest(url);
    assert.equal(c.digest, blob.digest);
    const hex = blob.digest.slice('sha256:'.length);
    const files = await filesUnder(join(dataDir, 'blobs'));
    assert.ok(files.some((f) => f.endsWith(hex)), 'cached once there was room');
    const d = await httpDigest(url);
    assert.equal(d.digest, blob.digest);
  });
});
