/**
 * Real clients pull through the mirror from a real distribution registry: skopeo copies (it verifies
 * every digest); a warm copy makes zero upstream manifest and blob GETs; headers are right; Accept is honoured.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { cleanupAll, requireCommands, tmpDir } from '../harness/proc.js';
import { startRegistry, countAccess, type Registry } from '../harness/registry.js';
import { makeImage, makeIndex, pushImage, pullImage, MediaType, type GeneratedImage, type GeneratedIndex } from '../harness/oci.js';
import { startMirror, type TestMirror } from '../helpers/mirror.js';
import { errorCode, http } from '../helpers/http.js';

describe('pull through the mirror', () => {
  let upstream: Registry;
  let m: TestMirror;
  let img: GeneratedImage;
  let idx: GeneratedIndex;

  before(async () => {
    requireCommands('docker-registry', 'skopeo');
    upstream = await startRegistry();
    img = await makeImage({ layers: [3 * 2 ** 20, 200_000], tag: 'v1' });
    await pushImage(img, upstream.host, 'library/app:v1');
    idx = await makeIndex({ layers: [150_000], tag: 'multi' });
    await pushImage(idx, upstream.host, 'team/multi:1.0', { all: true });
    m = await startMirror({ upstreams: [`docker.io=${upstream.url}`], tagTtl: '1h' });
    await upstream.settle();
    upstream.resetLog();
  });
  after(cleanupAll);

  test('skopeo copies an image through the mirror; a second copy makes zero upstream GETs', async () => {
    const t0 = performance.now();
    const cold = await pullImage(m.host, 'app:v1', await tmpDir('pull-cold-'));
    const coldMs = performance.now() - t0;
    assert.equal(cold.code, 0, cold.stderr);
    await upstream.settle();
    const coldLog = upstream.accessLog();
    assert.equal(countAccess(coldLog, { method: 'GET', kind: 'blob' }), 3, 'config + 2 layers fetched once each');
    assert.ok(countAccess(coldLog, { method: 'GET', kind: 'manifest' }) >= 1);
    for (const e of coldLog.filter((x) => x.kind === 'manifest' || x.kind === 'blob')) assert.equal(e.repo, 'library/app', 'single-component names become library/<name>');
    upstream.resetLog();

    const t1 = performance.now();
    const out = await tmpDir('pull-warm-');
    const warm = await pullImage(m.host, 'app:v1', out);
    const warmMs = performance.now() - t1;
    assert.equal(warm.code, 0, warm.stderr);
    await upstream.settle();
    const warmLog = upstream.accessLog();
    assert.equal(countAccess(warmLog, { kind: 'blob' }), 0, 'no upstream blob requests');
    assert.equal(countAccess(warmLog, { kind: 'manifest' }), 0, 'no upstream manifest requests within the TTL');
    const files = await readdir(out);
    for (const l of img.layers) assert.ok(files.includes(l.digest.split(':')[1]!), `layer ${l.digest} pulled`);
    console.log(`# skopeo pull of ${img.layers.length} layers (${(img.layers.reduce((s, l) => s + l.size, 0) / 2 ** 20).toFixed(1)} MiB): cold ${coldMs.toFixed(0)} ms, warm ${warmMs.toFixed(0)} ms, warm upstream requests ${warmLog.length}`);
    assert.ok((await m.metric('regmirror_cache_hits_total', { kind: 'blob' })) >= 3);
  });

  test('manifest answers carry the spec headers, HEAD included (Content-Length set, no body)', async () => {
    for (const method of ['GET', 'HEAD']) {
      const r = await http(`${m.url}/v2/app/manifests/v1`, { method, headers: { accept: MediaType.ociManifest } });
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-type'], MediaType.ociManifest);
      assert.equal(r.headers['docker-content-digest'], img.manifestDigest);
      assert.equal(r.headers.etag, `"${img.manifestDigest}"`);
      assert.equal(Number(r.headers['content-length']), img.manifest.length);
      assert.equal(r.headers['docker-distribution-api-version'], 'registry/2.0');
      assert.equal(r.headers['oci-namespace'], 'docker.io');
      assert.match(String(r.headers.vary), /Accept/);
      assert.equal(r.body.length, method === 'HEAD' ? 0 : img.manifest.length);
      if (method === 'GET') assert.ok(r.body.equals(img.manifest), 'exact bytes');
    }
    const byDigest = await http(`${m.url}/v2/app/manifests/${img.manifestDigest}`);
    assert.ok(byDigest.body.equals(img.manifest));
  });

  test('blob answers: Content-Length, digest, Accept-Ranges; a HEAD of a cached blob reads no upstream', async () => {
    upstream.resetLog();
    const layer = img.layers[1]!;
    const head = await http(`${m.url}/v2/library/app/blobs/${layer.digest}`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(Number(head.headers['content-length']), layer.size);
    assert.equal(head.headers['docker-content-digest'], layer.digest);
    assert.equal(head.headers['accept-ranges'], 'bytes');
    assert.equal(head.body.length, 0);
    await upstream.settle();
    assert.equal(upstream.accessLog().length, 0);
  });

  test('Accept decides what a tag means: an index for multi-platform clients, never for single-platform ones', async () => {
    const all = await http(`${m.url}/v2/team/multi/manifests/1.0`, { headers: { accept: [MediaType.ociIndex, MediaType.ociManifest, MediaType.dockerList, MediaType.dockerManifest] } });
    assert.equal(all.status, 200);
    assert.equal(all.headers['content-type'], MediaType.ociIndex);
    assert.equal(all.headers['docker-content-digest'], idx.indexDigest);
    const single = await http(`${m.url}/v2/team/multi/manifests/1.0`, { headers: { accept: [MediaType.ociManifest] } });
    assert.notEqual(single.headers['content-type'], MediaType.ociIndex, 'a client that does not accept an index never gets one from the cache');
    // distribution answers 404 for an OCI index to a client that does not accept it; the mirror passes that on.
    assert.equal(single.status, 404);
    assert.equal(errorCode(single), 'MANIFEST_UNKNOWN');
    const again = await http(`${m.url}/v2/team/multi/manifests/1.0`, { headers: { accept: `${MediaType.ociIndex}, ${MediaType.ociManifest}` } });
    assert.equal(again.headers['content-type'], MediaType.ociIndex);
    const arm = idx.images[1]!;
    const platform = await http(`${m.url}/v2/team/multi/manifests/${arm.manifestDigest}`);
    assert.equal(platform.status, 200);
    assert.ok(platform.body.equals(arm.manifest));
  });

  test('skopeo --all copies the multi-platform index through the mirror', async () => {
    const r = await pullImage(m.host, 'team/multi:1.0', await tmpDir('pull-all-'), { all: true, format: 'oci' });
    assert.equal(r.code, 0, r.stderr);
  });

  test('unknown tags and blobs pass the upstream 404 on', async () => {
    const tag = await http(`${m.url}/v2/app/manifests/nope`);
    assert.equal(tag.status, 404);
    assert.equal(errorCode(tag), 'MANIFEST_UNKNOWN');
    const blob = await http(`${m.url}/v2/app/blobs/sha256:${'0'.repeat(64)}`);
    assert.equal(blob.status, 404);
    assert.equal(errorCode(blob), 'BLOB_UNKNOWN');
    const head = await http(`${m.url}/v2/app/blobs/sha256:${'0'.repeat(64)}`, { method: 'HEAD' });
    assert.equal(head.status, 404);
    assert.equal(head.body.length, 0, 'HEAD errors have no body');
    const blobs: string[] = await readdir(join(m.dataDir, 'blobs', 'sha256')).catch(() => []);
    assert.ok(!blobs.includes('00'), 'nothing cached for a 404');
  });

  test('tags/list passes through with n/last forwarded', async () => {
    for (const t of ['v2', 'v3']) await pushImage(img, upstream.host, `library/app:${t}`);
    upstream.resetLog();
    const page = await http(`${m.url}/v2/app/tags/list?n=2&last=v1`);
    assert.equal(page.status, 200);
    assert.equal(page.headers['content-type'], 'application/json');
    const body = JSON.parse(page.body.toString()) as { name: string; tags: string[] };
    assert.ok(body.tags.includes('v2') && body.tags.includes('v3'));
    assert.deepEqual(body.tags, ['v2', 'v3'], 'after last, at most n, in lexical order (the mirror applies what the upstream ignored)');
    await upstream.settle();
    const sent = upstream.accessLog().find((e) => e.kind === 'tags');
    // distribution 2.8 ignores n/last (pagination arrived in v3); the Link rewrite has a unit test.
    assert.equal(sent?.path, '/v2/library/app/tags/list?n=2&last=v1');
    const bad = await http(`${m.url}/v2/app/tags/list?n=abc`);
    assert.equal(bad.status, 400);
    assert.equal(errorCode(bad), undefined, 'no spec code fits a bad n: 400 without a body');
    assert.equal(bad.body.length, 0);
  });

  test('referrers: an upstream without the API (404) and no referrers tag: an empty image index', async () => {
    const r = await http(`${m.url}/v2/app/referrers/${img.manifestDigest}`);
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], MediaType.ociIndex);
    assert.deepEqual(JSON.parse(r.body.toString()), { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] });
  });

  test('push and delete answer UNSUPPORTED; /healthz and /metrics answer', async () => {
    for (const [method, path] of [['POST', '/v2/app/blobs/uploads/'], ['PUT', '/v2/app/manifests/v1'], ['DELETE', `/v2/app/manifests/${img.manifestDigest}`], ['PATCH', '/v2/app/blobs/uploads/x']] as const) {
      const r = await http(`${m.url}${path}`, { method });
      assert.equal(r.status, 405, `${method} ${path}`);
      assert.equal(errorCode(r), 'UNSUPPORTED');
    }
    assert.equal((await http(`${m.url}/healthz`)).status, 200);
    const metrics = await http(`${m.url}/metrics`);
    assert.match(metrics.body.toString(), /regmirror_cache_hits_total/);
    assert.match(metrics.body.toString(), /regmirror_fill_duration_seconds_bucket\{le="0.05"\}/);
    const base = await http(`${m.url}/v2/`);
    assert.equal(base.status, 200);
    assert.equal(base.headers['www-authenticate'], undefined, 'anonymous mirror: no challenge');
  });
});
