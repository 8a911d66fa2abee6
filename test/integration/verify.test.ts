/**
 * A lying or failing upstream never leaves a cached blob behind: bytes that do not match their digest,
 * or a body cut short, fail the client's transfer (never a clean 200), cache nothing, and are counted.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { cleanupAll, requireCommands } from '../harness/proc.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { makeImage, pushImage, sha256, readLayoutBlob, type GeneratedImage } from '../harness/oci.js';
import { startRelay, type Relay } from '../harness/relay.js';
import { startMirror, type TestMirror } from '../helpers/mirror.js';
import { http, httpDigest } from '../helpers/http.js';
import { filesUnder } from '../helpers/files.js';

describe('verification: nothing unverified is cached', () => {
  let upstream: Registry;
  let relay: Relay;
  let m: TestMirror;
  let img: GeneratedImage;

  before(async () => {
    requireCommands('docker-registry', 'skopeo');
    upstream = await startRegistry();
    relay = await startRelay({ target: upstream.url });
    img = await makeImage({ layers: [2 * 2 ** 20, 64 * 1024] });
    await pushImage(img, upstream.host, 'acme/app:1');
    m = await startMirror({ upstreams: [`docker.io=${relay.url}`] });
  });
  after(cleanupAll);

  test('bytes that do not match the digest: the transfer fails, nothing lands, the metric counts it', async () => {
    const layer = img.layers[0]!;
    relay.setMode('corrupt', { times: 1 });
    const r = await httpDigest(`${m.url}/v2/acme/app/blobs/${layer.digest}`);
    assert.equal(r.status, 200, 'headers were already sent when the bytes streamed');
    assert.equal(r.complete, false, 'the client sees an aborted transfer, not a clean body');
    assert.ok(r.bytes < layer.size, 'the client never receives the whole (wrong) body');
    assert.equal((await filesUnder(join(m.dataDir, 'blobs'))).length, 0);
    assert.equal((await filesUnder(join(m.dataDir, 'tmp'))).length, 0, 'temp file removed');
    assert.equal(await m.metric('regmirror_verify_failures_total', { kind: 'blob', reason: 'digest-mismatch' }), 1);
    assert.equal(await m.metric('regmirror_fills_failed_total', { reason: 'digest-mismatch' }), 1);
    // No negative caching: the next request fetches afresh and succeeds.
    const ok = await httpDigest(`${m.url}/v2/acme/app/blobs/${layer.digest}`);
    assert.equal(ok.complete, true);
    assert.equal(ok.digest, layer.digest);
    assert.equal((await filesUnder(join(m.dataDir, 'blobs'))).length, 1);
  });

  test('an upstream that closes mid-body: the transfer fails, nothing lands, the metric counts it', async () => {
    const layer = img.layers[1]!;
    relay.setMode('truncate', { times: 1, afterBytes: 10_000 });
    const r = await httpDigest(`${m.url}/v2/acme/app/blobs/${layer.digest}`);
    assert.equal(r.complete, false);
    assert.ok(r.bytes <= 10_000);
    const blobs = await filesUnder(join(m.dataDir, 'blobs'));
    assert.ok(!blobs.some((f) => f.endsWith(layer.digest.split(':')[1]!)), 'the cut blob is not cached');
    assert.equal((await filesUnder(join(m.dataDir, 'tmp'))).length, 0);
    assert.ok((await m.metric('regmirror_fills_failed_total')) >= 2);
    const ok = await httpDigest(`${m.url}/v2/acme/app/blobs/${layer.digest}`);
    assert.equal(ok.digest, layer.digest);
  });

  test('a manifest that does not match its digest is refused before any byte and not cached', async () => {
    relay.setMode('corrupt', { times: 1, match: (r) => r.method === 'GET' && r.path.includes('/manifests/') });
    const r = await http(`${m.url}/v2/acme/app/manifests/${img.manifestDigest}`);
    assert.equal(r.status, 503);
    assert.equal(await m.metric('regmirror_verify_failures_total', { kind: 'manifest', reason: 'digest-mismatch' }), 1);
    assert.equal((await filesUnder(join(m.dataDir, 'manifests'))).length, 0);
    const ok = await http(`${m.url}/v2/acme/app/manifests/${img.manifestDigest}`);
    assert.equal(ok.status, 200);
    assert.equal(sha256(ok.body), img.manifestDigest);
  });

  test('a temp file left by a crash is never served and is removed at start-up', async () => {
    const { writeFile, mkdir } = await import('node:fs/promises');
    const dataDir = m.dataDir;
    await m.close();
    await mkdir(join(dataDir, 'tmp'), { recursive: true });
    await writeFile(join(dataDir, 'tmp', 'sha256-deadbeef-000000'), 'partial');
    const m2 = await startMirror({ upstreams: [`docker.io=${relay.url}`], dataDir });
    assert.equal((await filesUnder(join(dataDir, 'tmp'))).length, 0);
    const cached = await httpDigest(`${m2.url}/v2/acme/app/blobs/${img.layers[0]!.digest}`);
    assert.equal(cached.digest, img.layers[0]!.digest, 'committed blobs survive a restart');
    void readLayoutBlob;
  });
});
