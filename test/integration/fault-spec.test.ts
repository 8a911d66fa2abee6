// Issue 9, items 5, 11, 12, 13: spec answers the mirror must give itself (invalid reference, tags/list paging, referrers fallback), negative caching, error headers, HEAD Content-Length, data-dir lock, namespace-crossing failures.
/**
 * A mirror CHILD in front of distribution 2.8 (which has no referrers API) behind a counting relay that
 * strips `n` and `last` from tags/list queries (an upstream that ignores them).
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { cleanupAll, delay, requireCommands } from '../harness/proc.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { MediaType, makeImage, pushImageHttp, putBlob, putManifest, sha256, type GeneratedImage } from '../harness/oci.js';
import { startRelay, type Relay } from '../harness/relay.js';
import { errorCode, http, httpDigest, type HttpResult } from '../helpers/http.js';
import { startChild, type ChildMirror } from './fault-child.js';

/** Raw HEAD/GET on a fresh socket; returns the header block and what followed it. */
function rawRequest(port: number, method: string, path: string): Promise<{ head: string; body: string }> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write(`${method} ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
    let out = '';
    s.on('data', (c: Buffer) => (out += c.toString('latin1')));
    s.on('close', () => {
      const i = out.indexOf('\r\n\r\n');
      resolve({ head: i < 0 ? out : out.slice(0, i), body: i < 0 ? '' : out.slice(i + 4) });
    });
    s.on('error', reject);
  });
}

const TAGS = ['1', '10', '2', 'alpha', 'beta', 'gamma', 'v1.0', 'zeta'];

describe('spec answers, negative caching, lock, namespaces', () => {
  let upstream: Registry;
  let relay: Relay;
  let relayNs: Relay;
  let child: ChildMirror;
  let img: GeneratedImage;
  let sig: { digest: string; size: number };
  let sbom: { digest: string; size: number };

  before(async () => {
    requireCommands('docker-registry');
    upstream = await startRegistry();
    // The upstream ignores n and last: the relay strips them before distribution sees them.
    relay = await startRelay({ target: upstream.url, rewritePath: (p) => (p.includes('/tags/list') ? p.split('?')[0]! : p), name: 'main' });
    // A second namespace whose upstream does not have the repository the first one has (404 there).
    relayNs = await startRelay({ target: upstream.url, rewritePath: (p) => p.replace('/v2/shared/', '/v2/nothere/'), name: 'ns-a' });
    img = await makeImage({ layers: [4000] });
    await pushImageHttp(upstream.url, 'library/spec', '1', img);
    for (const t of TAGS) await putManifest(upstream.url, 'library/spec', t, img.manifest, img.manifestMediaType);
    // Referrers through the tag schema: two artifacts whose subject is img, listed in an index under `sha256-<hex>`.
    const artifact = async (artifactType: string) => {
      const cfg = Buffer.from('{}');
      await putBlob(upstream.url, 'library/spec', cfg);
      const layer = randomBytes(64);
      await putBlob(upstream.url, 'library/spec', layer);
      const m = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.ociManifest,
          artifactType,
          config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(cfg), size: cfg.length },
          layers: [{ mediaType: 'application/octet-stream', digest: sha256(layer), size: layer.length }],
          subject: { mediaType: img.manifestMediaType, digest: img.manifestDigest, size: img.manifest.length },
        }),
      );
      const digest = await putManifest(upstream.url, 'library/spec', sha256(m), m, MediaType.ociManifest);
      return { digest, size: m.length, artifactType };
    };
    const a = await artifact('application/vnd.example.sig');
    const b = await artifact('application/vnd.example.sbom');
    sig = a;
    sbom = b;
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ociIndex,
        manifests: [a, b].map((x) => ({ mediaType: MediaType.ociManifest, digest: x.digest, size: x.size, artifactType: x.artifactType })),
      }),
    );
    await putManifest(upstream.url, 'library/spec', `sha256-${img.manifestDigest.slice(7)}`, index, MediaType.ociIndex);
    child = await startChild({ upstreams: [`docker.io=${relay.url}`, `a.example=${relayNs.url}`] });
  });
  after(cleanupAll);

  /** Restarts the mirror if an earlier case crashed it, so each case tests its own point. */
  async function alive(): Promise<void> {
    if (child.proc.running) return;
    child = await startChild({ upstreams: [`docker.io=${relay.url}`, `a.example=${relayNs.url}`], dataDir: child.dataDir, port: child.port });
  }

  beforeEach(alive);

  test('GET/HEAD …/manifests/.INVALID_MANIFEST_NAME → 404 MANIFEST_UNKNOWN, upstream not asked', async () => {
    relay.reset();
    const get = await http(`${child.url}/v2/spec/manifests/.INVALID_MANIFEST_NAME`);
    assert.equal(get.status, 404);
    assert.equal(errorCode(get), 'MANIFEST_UNKNOWN');
    const head = await rawRequest(child.port, 'HEAD', '/v2/spec/manifests/.INVALID_MANIFEST_NAME');
    assert.match(head.head, /^HTTP\/1\.1 404 /);
    assert.equal(head.body, '');
    assert.equal(relay.stats().requests, 0);
  });

  test('tags/list enforces lexical order, n, last and Link when the upstream ignores them', async () => {
    // Every tag the upstream holds (the referrers tag included), in lexical (byte) order.
    const listed = JSON.parse((await http(`${upstream.url}/v2/library/spec/tags/list`)).body.toString()) as { tags: string[] };
    const sorted = [...listed.tags].sort();
    assert.ok(sorted.length >= TAGS.length);
    const all = await http(`${child.url}/v2/spec/tags/list`);
    assert.equal(all.status, 200);
    assert.deepEqual((JSON.parse(all.body.toString()) as { tags: string[] }).tags, sorted);
    const page = await http(`${child.url}/v2/spec/tags/list?n=3`);
    assert.equal(page.status, 200);
    assert.deepEqual((JSON.parse(page.body.toString()) as { tags: string[] }).tags, sorted.slice(0, 3), 'at most n, in lexical order');
    const link = String(page.headers.link ?? '');
    assert.match(link, /rel="next"/, 'a Link header to the next page');
    assert.match(link, new RegExp(`last=${encodeURIComponent(sorted[2]!).replace(/\./g, '\\.')}`), link);
    const next = await http(`${child.url}/v2/spec/tags/list?n=3&last=${sorted[2]}`);
    assert.deepEqual((JSON.parse(next.body.toString()) as { tags: string[] }).tags, sorted.slice(3, 6), 'results after last');
    const end = await http(`${child.url}/v2/spec/tags/list?n=100&last=${encodeURIComponent(sorted[sorted.length - 2]!)}`);
    assert.deepEqual((JSON.parse(end.body.toString()) as { tags: string[] }).tags, sorted.slice(-1));
    assert.equal(end.headers.link, undefined, 'no Link on the last page');
    assert.ok(child.proc.running);
  });

  test('referrers from an upstream without the API: index from the sha256-<hex> tag, artifactType filter, else empty', async () => {
    const r = await http(`${child.url}/v2/spec/referrers/${img.manifestDigest}`);
    assert.equal(r.status, 200, `got ${r.status} ${r.body.toString().slice(0, 200)}`);
    assert.match(String(r.headers['content-type']), /application\/vnd\.oci\.image\.index\.v1\+json/);
    const idx = JSON.parse(r.body.toString()) as { mediaType: string; manifests: Array<{ digest: string; artifactType?: string }> };
    assert.equal(idx.mediaType, MediaType.ociIndex);
    assert.deepEqual(idx.manifests.map((m) => m.digest).sort(), [sig.digest, sbom.digest].sort());
    const filtered = await http(`${child.url}/v2/spec/referrers/${img.manifestDigest}?artifactType=${encodeURIComponent('application/vnd.example.sig')}`);
    assert.equal(filtered.status, 200);
    assert.equal(filtered.headers['oci-filters-applied'], 'artifactType');
    assert.deepEqual((JSON.parse(filtered.body.toString()) as typeof idx).manifests.map((m) => m.digest), [sig.digest]);
    const none = await http(`${child.url}/v2/spec/referrers/sha256:${'e'.repeat(64)}`);
    assert.equal(none.status, 200, 'no referrers is an empty index, not 404');
    assert.deepEqual((JSON.parse(none.body.toString()) as typeof idx).manifests, []);
    const head = await rawRequest(child.port, 'HEAD', `/v2/spec/referrers/${img.manifestDigest}`);
    assert.match(head.head, /^HTTP\/1\.1 200 /);
    await delay(200);
    assert.ok(child.proc.running, 'HEAD referrers does not crash the mirror');
  });

  test('negative caching: two quick 404s for a missing tag cost one upstream request', async () => {
    relay.reset();
    const a = await http(`${child.url}/v2/spec/manifests/missing-tag`);
    const b = await http(`${child.url}/v2/spec/manifests/missing-tag`);
    assert.equal(a.status, 404);
    assert.equal(b.status, 404);
    assert.equal(errorCode(b), 'MANIFEST_UNKNOWN');
    const asked = relay.stats().log.filter((x) => x.path.includes('/manifests/missing-tag'));
    assert.equal(asked.length, 1, `upstream asked ${asked.length} times`);
  });

  test('error responses carry none of the success path cache headers', async () => {
    const errors: HttpResult[] = [
      await http(`${child.url}/v2/spec/blobs/sha256:${'1'.repeat(64)}`),
      await http(`${child.url}/v2/spec/manifests/sha256:${'2'.repeat(64)}`),
      await http(`${child.url}/v2/spec/blobs/${img.layers[0]!.digest}`, { headers: { range: 'bytes=999999-' } }),
    ];
    // The upstream answers the size (HEAD) and then fails the GET: the blob headers were already prepared.
    relay.setMode('fail', { status: 503, times: 1, match: (r) => r.method === 'GET' && r.path.includes('/blobs/') });
    const blob = await putBlob(upstream.url, 'library/spec', randomBytes(2000));
    errors.push(await http(`${child.url}/v2/spec/blobs/${blob}`));
    for (const e of errors) {
      assert.ok(e.status >= 400, `an error (${e.status})`);
      assert.doesNotMatch(String(e.headers['cache-control'] ?? ''), /immutable|max-age=31536000/, `status ${e.status} with Cache-Control ${String(e.headers['cache-control'])}`);
      assert.equal(e.headers.etag, undefined, `no ETag on a ${e.status}`);
    }
  });

  test('HEAD of an uncached blob has its Content-Length', async () => {
    const data = randomBytes(12_345);
    const digest = await putBlob(upstream.url, 'library/spec', data);
    const head = await rawRequest(child.port, 'HEAD', `/v2/spec/blobs/${digest}`);
    await delay(200);
    assert.ok(child.proc.running, `HEAD of an uncached blob does not crash the mirror:\n${child.proc.tail(6)}`);
    assert.match(head.head, /^HTTP\/1\.1 200 /);
    assert.match(head.head, /\r\ncontent-length: 12345\r?/i, head.head);
    assert.equal(head.body, '');
  });

  test('a second mirror on the same data dir exits with a clear error and leaves the first one alone', { timeout: 60_000 }, async () => {
    const tmp = join(child.dataDir, 'tmp');
    mkdirSync(tmp, { recursive: true });
    const inFlight = join(tmp, `sha256-${'f'.repeat(16)}-inflight`);
    writeFileSync(inFlight, 'a fill of the first process');
    const second = await startChild({ upstreams: [`docker.io=${relay.url}`], dataDir: child.dataDir, noWait: true });
    const exit = await Promise.race([second.proc.exited, delay(15_000).then(() => undefined)]);
    assert.ok(exit, 'the second process exits by itself');
    assert.notEqual(exit.code, 0);
    assert.match(second.proc.output(), /lock|in use|another (regmirror|process)/i, second.proc.tail(5));
    assert.ok(existsSync(inFlight), "the first process's fill files are not deleted");
    assert.ok(child.proc.running);
    const ok = await http(`${child.url}/v2/spec/manifests/1`, { headers: { accept: img.manifestMediaType } });
    assert.equal(ok.status, 200);
  });

  test('a shared fill that fails with 404 in namespace A does not fail a concurrent request in namespace B', { timeout: 60_000 }, async () => {
    const data = randomBytes(256 * 1024);
    const digest = await putBlob(upstream.url, 'library/shared', data);
    // A (a.example → repository "nothere/…") is slow and then 404s; B (docker.io) has the blob.
    relayNs.setMode('delay', { delayMs: 1500, match: (r) => r.path.includes('/blobs/') });
    const inA = httpDigest(`${child.url}/v2/shared/blobs/${digest}?ns=a.example`);
    await delay(300);
    const inB = await httpDigest(`${child.url}/v2/shared/blobs/${digest}?ns=docker.io`);
    const a = await inA;
    assert.equal(a.status, 404, 'A does not have it');
    assert.equal(inB.status, 200, `B must not inherit A's 404 (got ${inB.status})`);
    assert.equal(inB.digest, digest);
    relayNs.setMode('pass');
  });
});
