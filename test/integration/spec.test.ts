/**
 * Spec conformance points of issue 9 (items 12 and 13), against a real distribution 2.8 upstream, which
 * ignores `n`/`last` on tags/list and has no referrers API:
 * - an invalid reference answers 404 MANIFEST_UNKNOWN without an upstream request;
 * - error bodies use only the spec's codes, and no body where none fits (416, a path outside the API, a
 *   bad query);
 * - tags/list: lexical order, `n`, `last` and `Link` applied by the mirror;
 * - referrers from the referrers tag schema, filtered by artifactType, else an empty index; cached like a
 *   tag (no upstream request within the TTL, stale-if-error with the upstream down);
 * - an upstream 404 for a tag or a manifest is remembered for negativeTtl: retries cost no upstream request.
 * Upstream requests are counted in the registry's access log (after settle()).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanupAll, delay, requireCommands } from '../harness/proc.js';
import { startRegistry, type AccessEntry, type Registry } from '../harness/registry.js';
import { makeImage, pushImage, pushImageHttp, putManifest, MediaType, type GeneratedImage } from '../harness/oci.js';
import { startRelay, type Relay } from '../harness/relay.js';
import { startMirror, type TestMirror } from '../helpers/mirror.js';
import { errorCode, http, type HttpResult } from '../helpers/http.js';

/** distribution-spec v1.1.1 "Error Codes" (code-1 … code-14): the only codes a 4XX JSON body may carry. */
const SPEC_CODES = new Set(['BLOB_UNKNOWN', 'BLOB_UPLOAD_INVALID', 'BLOB_UPLOAD_UNKNOWN', 'DIGEST_INVALID', 'MANIFEST_BLOB_UNKNOWN', 'MANIFEST_INVALID', 'MANIFEST_UNKNOWN', 'NAME_INVALID', 'NAME_UNKNOWN', 'SIZE_INVALID', 'UNAUTHORIZED', 'DENIED', 'UNSUPPORTED', 'TOOMANYREQUESTS']);
const SBOM = 'application/vnd.example.sbom.v1';
const SIG = 'application/vnd.example.signature.v1';
const EMPTY_INDEX = JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] });
const NEGATIVE_TTL_MS = 2_000;
const REPO = 'acme/app';

type Index = { schemaVersion: number; mediaType: string; manifests: Array<{ digest: string; artifactType?: string }> };

describe('spec conformance and negative caching', () => {
  let upstream: Registry;
  let relay: Relay;
  let m: TestMirror;
  let img: GeneratedImage;
  let sbom: GeneratedImage;
  let sig: GeneratedImage;

  /** Upstream requests since the last reset, after every answered request is in the log. */
  async function upstreamLog(): Promise<AccessEntry[]> {
    await upstream.settle();
    return upstream.accessLog();
  }

  before(async () => {
    requireCommands('docker-registry', 'skopeo');
    upstream = await startRegistry();
    relay = await startRelay({ target: upstream.url });
    img = await makeImage({ layers: [2000] });
    await pushImage(img, upstream.host, `${REPO}:v1`);
    // Tags whose byte order (distribution's) differs from the spec's case-insensitive order.
    for (const tag of ['B', 'a', 'C', 'd']) await putManifest(upstream.url, REPO, tag, img.manifest, img.manifestMediaType);
    // Two referrers of `img`, listed in the referrers tag schema's index (as clients without the API push it).
    sbom = await makeImage({ layers: [100], annotations: { kind: 'sbom' } });
    sig = await makeImage({ layers: [100], annotations: { kind: 'sig' } });
    await pushImageHttp(upstream.url, REPO, sbom.manifestDigest, sbom);
    await pushImageHttp(upstream.url, REPO, sig.manifestDigest, sig);
    const referrers = {
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: [
        { mediaType: MediaType.ociManifest, digest: sbom.manifestDigest, size: sbom.manifest.length, artifactType: SBOM, annotations: { kind: 'sbom' } },
        { mediaType: MediaType.ociManifest, digest: sig.manifestDigest, size: sig.manifest.length, artifactType: SIG, annotations: { kind: 'sig' } },
      ],
    };
    await putManifest(upstream.url, REPO, `sha256-${img.manifestDigest.slice('sha256:'.length)}`, JSON.stringify(referrers), MediaType.ociIndex);
    m = await startMirror({ upstreams: [`docker.io=${relay.url}`], tagTtl: '60s', negativeTtl: `${NEGATIVE_TTL_MS}ms` });
  });
  after(cleanupAll);

  test('an invalid reference (.INVALID_MANIFEST_NAME) is 404 MANIFEST_UNKNOWN on GET and HEAD, no upstream request', async () => {
    upstream.resetLog();
    const get = await http(`${m.url}/v2/${REPO}/manifests/.INVALID_MANIFEST_NAME`);
    assert.equal(get.status, 404);
    assert.equal(errorCode(get), 'MANIFEST_UNKNOWN');
    const head = await http(`${m.url}/v2/${REPO}/manifests/.INVALID_MANIFEST_NAME`, { method: 'HEAD' });
    assert.equal(head.status, 404);
    assert.equal(head.body.length, 0);
    assert.deepEqual(await upstreamLog(), [], 'the upstream was not asked');
  });

  test('error answers carry only spec codes, and no body where none fits', async () => {
    const layer = img.layers[0]!;
    assert.equal((await http(`${m.url}/v2/${REPO}/blobs/${layer.digest}`)).status, 200, 'cache the layer');
    const cases: Array<{ path: string; method?: string; headers?: Record<string, string>; status: number; code?: string }> = [
      { path: '/v2/Bad/manifests/v1', status: 400, code: 'NAME_INVALID' },
      { path: `/v2/${REPO}/blobs/sha256:abc`, status: 400, code: 'DIGEST_INVALID' },
      { path: `/v2/${REPO}/manifests/-dash`, status: 404, code: 'MANIFEST_UNKNOWN' },
      { path: `/v2/${REPO}/manifests/never`, status: 404, code: 'MANIFEST_UNKNOWN' },
      { path: `/v2/${REPO}/blobs/sha256:${'0'.repeat(64)}`, status: 404, code: 'BLOB_UNKNOWN' },
      { path: '/v2/ok/manifests/v1?ns=nowhere.example', status: 404, code: 'NAME_UNKNOWN' },
      { path: '/v2/_catalog', status: 405, code: 'UNSUPPORTED' },
      { path: `/v2/${REPO}/manifests/v1`, method: 'PUT', status: 405, code: 'UNSUPPORTED' },
      { path: `/v2/${REPO}/blobs/${layer.digest}`, headers: { range: `bytes=${layer.size}-` }, status: 416 },
      { path: '/nothing/here', status: 404 },
      { path: `/v2/${REPO}/nonsense`, status: 404 },
      { path: `/v2/${REPO}/tags/list?n=x`, status: 400 },
      { path: `/v2/${REPO}/tags/list?last=-bad`, status: 400 },
      { path: `/v2/${REPO}/referrers/${img.manifestDigest}?artifactType=nonsense`, status: 400 },
    ];
    for (const c of cases) {
      const r = await http(`${m.url}${c.path}`, { method: c.method ?? 'GET', ...(c.headers ? { headers: c.headers } : {}) });
      const label = `${c.method ?? 'GET'} ${c.path}`;
      assert.equal(r.status, c.status, `${label}: ${r.body.toString().slice(0, 200)}`);
      if (c.code === undefined) {
        assert.equal(r.body.length, 0, `${label}: no body`);
        assert.equal(r.headers['content-type'], undefined, `${label}: no Content-Type`);
      } else {
        assert.equal(r.headers['content-type'], 'application/json', label);
        assert.equal(errorCode(r), c.code, label);
        assert.ok(SPEC_CODES.has(errorCode(r)!), `${label}: ${errorCode(r)} is a spec code`);
      }
    }
    const range = await http(`${m.url}/v2/${REPO}/blobs/${layer.digest}`, { headers: { range: `bytes=${layer.size}-` } });
    assert.equal(range.headers['content-range'], `bytes */${layer.size}`);
    assert.equal(range.headers['cache-control'], undefined, 'no success-path cache headers on an error');
  });

  test('tags/list: lexical order, n, last and Link, although the upstream ignores n and last', async () => {
    const refTag = `sha256-${img.manifestDigest.slice('sha256:'.length)}`;
    const direct = JSON.parse((await http(`${upstream.url}/v2/${REPO}/tags/list?n=2`)).body.toString()) as { tags: string[] };
    assert.ok(direct.tags.length > 2, `the upstream ignores n (sent ${direct.tags.join(',')}): the mirror has to apply it`);
    const all = await http(`${m.url}/v2/${REPO}/tags/list`);
    assert.equal(all.status, 200);
    assert.equal(all.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(all.body.toString()), { name: REPO, tags: ['a', 'B', 'C', 'd', refTag, 'v1'] }, 'case-insensitive lexical order');
    assert.equal(all.headers.link, undefined);

    const pages: string[][] = [];
    let next: string | undefined = `/v2/${REPO}/tags/list?n=2`;
    while (next) {
      const r: HttpResult = await http(`${m.url}${next}`);
      assert.equal(r.status, 200);
      const body = JSON.parse(r.body.toString()) as { tags: string[] };
      assert.ok(body.tags.length <= 2, 'at most n');
      pages.push(body.tags);
      const link = r.headers.link;
      next = typeof link === 'string' ? /^<([^>]+)>; rel="next"$/.exec(link)?.[1] : undefined;
      if (typeof link === 'string') assert.ok(next, `a well-formed Link: ${link}`);
      assert.ok(pages.length < 10, 'pagination ends');
    }
    assert.deepEqual(pages, [['a', 'B'], ['C', 'd'], [refTag, 'v1']], 'Link pages through the whole list, results after last');

    const after = JSON.parse((await http(`${m.url}/v2/${REPO}/tags/list?last=b`)).body.toString()) as { tags: string[] };
    assert.deepEqual(after.tags, ['C', 'd', refTag, 'v1'], 'last need not be a tag of the list; B sorts before b');
    const zero = await http(`${m.url}/v2/${REPO}/tags/list?n=0`);
    assert.deepEqual((JSON.parse(zero.body.toString()) as { tags: string[] }).tags, []);
    assert.equal(zero.headers.link, undefined, 'n=0: empty and no Link');
    const viaNs = await http(`${m.url}/v2/${REPO}/tags/list?n=1&ns=docker.io`);
    assert.equal(viaNs.headers.link, `</v2/${REPO}/tags/list?n=1&last=a&ns=docker.io>; rel="next"`, 'the Link keeps the client routing');

    const head = await http(`${m.url}/v2/${REPO}/tags/list`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(Number(head.headers['content-length']), all.body.length, 'HEAD has the GET Content-Length');
    assert.equal((await http(`${m.url}/v2/nobody/here/tags/list`)).status, 404, 'an unknown repository is still 404');
  });

  test('referrers from an upstream without the API: the referrers tag schema, filtered; else an empty index', async () => {
    const apiless = await http(`${upstream.url}/v2/${REPO}/referrers/${img.manifestDigest}`);
    assert.equal(apiless.status, 404, 'the upstream has no referrers API');

    const all = await http(`${m.url}/v2/${REPO}/referrers/${img.manifestDigest}`);
    assert.equal(all.status, 200);
    assert.equal(all.headers['content-type'], MediaType.ociIndex);
    const index = JSON.parse(all.body.toString()) as Index;
    assert.equal(index.schemaVersion, 2);
    assert.equal(index.mediaType, MediaType.ociIndex);
    assert.deepEqual(index.manifests.map((d) => d.digest), [sbom.manifestDigest, sig.manifestDigest]);
    assert.equal(all.headers['oci-filters-applied'], undefined, 'no filter asked, none announced');

    const filtered = await http(`${m.url}/v2/${REPO}/referrers/${img.manifestDigest}?artifactType=${encodeURIComponent(SBOM)}`);
    assert.equal(filtered.status, 200);
    assert.equal(filtered.headers['oci-filters-applied'], 'artifactType');
    assert.deepEqual((JSON.parse(filtered.body.toString()) as Index).manifests.map((d) => [d.digest, d.artifactType]), [[sbom.manifestDigest, SBOM]]);
    const none = await http(`${m.url}/v2/${REPO}/referrers/${img.manifestDigest}?artifactType=application/vnd.example.none`);
    assert.equal(none.headers['oci-filters-applied'], 'artifactType');
    assert.deepEqual((JSON.parse(none.body.toString()) as Index).manifests, []);

    const lonely = await http(`${m.url}/v2/${REPO}/referrers/${sbom.manifestDigest}`);
    assert.equal(lonely.status, 200);
    assert.equal(lonely.headers['content-type'], MediaType.ociIndex);
    assert.equal(lonely.body.toString(), EMPTY_INDEX, 'no referrers tag: an empty image index');
    const head = await http(`${m.url}/v2/${REPO}/referrers/${img.manifestDigest}`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(Number(head.headers['content-length']), all.body.length);
  });

  test('referrers are cached like a tag: within the TTL no upstream request', async () => {
    upstream.resetLog();
    for (let i = 0; i < 3; i++) {
      const r = await http(`${m.url}/v2/${REPO}/referrers/${img.manifestDigest}`);
      assert.equal((JSON.parse(r.body.toString()) as Index).manifests.length, 2);
    }
    assert.deepEqual(await upstreamLog(), [], 'answered from the cache');
  });

  test('an upstream 404 for a tag is remembered: a retry storm costs one upstream request, the same 404', async () => {
    upstream.resetLog();
    const answers = await Promise.all(Array.from({ length: 10 }, () => http(`${m.url}/v2/${REPO}/manifests/missing`)));
    for (let i = 0; i < 5; i++) answers.push(await http(`${m.url}/v2/${REPO}/manifests/missing`));
    answers.push(await http(`${m.url}/v2/${REPO}/manifests/missing`, { method: 'HEAD' }));
    for (const a of answers) assert.equal(a.status, 404);
    for (const a of answers.slice(0, -1)) assert.equal(errorCode(a), 'MANIFEST_UNKNOWN', 'a remembered 404 is the same answer');
    const asked = (await upstreamLog()).filter((e) => e.kind === 'manifest' && e.reference === 'missing');
    assert.equal(asked.length, 1, `one upstream request for 16 client requests (got ${asked.map((e) => e.method).join(',')})`);

    // Another Accept class is another key: one more upstream request, then remembered too.
    upstream.resetLog();
    for (let i = 0; i < 3; i++) assert.equal((await http(`${m.url}/v2/${REPO}/manifests/missing`, { headers: { accept: MediaType.ociIndex } })).status, 404);
    assert.equal((await upstreamLog()).filter((e) => e.reference === 'missing').length, 1);
  });

  test('an upstream 404 for a manifest digest is remembered the same way', async () => {
    const digest = `sha256:${'1'.repeat(64)}`;
    upstream.resetLog();
    for (let i = 0; i < 5; i++) {
      const r = await http(`${m.url}/v2/${REPO}/manifests/${digest}`);
      assert.equal(r.status, 404);
      assert.equal(errorCode(r), 'MANIFEST_UNKNOWN');
    }
    assert.equal((await upstreamLog()).filter((e) => e.reference === digest).length, 1);
    // Keyed by repository: another repository asks the upstream itself.
    upstream.resetLog();
    assert.equal((await http(`${m.url}/v2/acme/other/manifests/${digest}`)).status, 404);
    assert.equal((await upstreamLog()).filter((e) => e.reference === digest).length, 1);
  });

  test('after negativeTtl the upstream is asked again and a tag pushed meanwhile is found', async () => {
    upstream.resetLog();
    assert.equal((await http(`${m.url}/v2/${REPO}/manifests/late`)).status, 404);
    await putManifest(upstream.url, REPO, 'late', img.manifest, img.manifestMediaType);
    await delay(NEGATIVE_TTL_MS + 500);
    const found = await http(`${m.url}/v2/${REPO}/manifests/late`);
    assert.equal(found.status, 200);
    assert.equal(found.headers['docker-content-digest'], img.manifestDigest);
    const late = (await upstreamLog()).filter((e) => e.reference === 'late' && e.method !== 'PUT');
    assert.equal(late.length, 2, `asked once per negativeTtl: ${late.map((e) => `${e.method} ${e.status}`).join(', ')}`);
  });

  test('referrers with the upstream down: the cached referrers tag is served stale', async () => {
    const short = await startMirror({ upstreams: [`docker.io=${relay.url}`], tagTtl: '200ms' });
    const warm = await http(`${short.url}/v2/${REPO}/referrers/${img.manifestDigest}`);
    assert.equal((JSON.parse(warm.body.toString()) as Index).manifests.length, 2);
    relay.setMode('down');
    try {
      await delay(400);
      const stale = await http(`${short.url}/v2/${REPO}/referrers/${img.manifestDigest}?artifactType=${encodeURIComponent(SIG)}`);
      assert.equal(stale.status, 200, stale.body.toString());
      assert.match(String(stale.headers.warning), /^299 - "regmirror: upstream docker\.io unavailable/);
      assert.deepEqual((JSON.parse(stale.body.toString()) as Index).manifests.map((d) => d.digest), [sig.manifestDigest]);
      const unknown = await http(`${short.url}/v2/${REPO}/referrers/${sbom.manifestDigest}`);
      assert.equal(unknown.status, 503, 'nothing cached for this subject: the outage shows');
      assert.equal(errorCode(unknown), 'UNAVAILABLE');
    } finally {
      relay.setMode('pass');
    }
  });
});

/**
 * Upstreams unlike distribution 2.8, as an in-process fake (no real registry ships these behaviours here):
 * one with the referrers API that ignores artifactType, one that paginates tags/list itself, and ones
 * that send a tags list too large or not JSON.
 */
describe('spec answers over other upstream behaviours', () => {
  const subject = `sha256:${'c'.repeat(64)}`;
  const referrers = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: [
      { mediaType: MediaType.ociManifest, digest: `sha256:${'1'.repeat(64)}`, size: 10, artifactType: SBOM },
      { mediaType: MediaType.ociManifest, digest: `sha256:${'2'.repeat(64)}`, size: 10, artifactType: SIG },
    ],
  };
  let m: TestMirror;
  let asked: string[] = [];

  before(async () => {
    const { createServer } = await import('node:http');
    const server = createServer((req, res) => {
      const url = req.url ?? '/';
      asked.push(url);
      const json = (body: unknown, headers: Record<string, string> = {}) => {
        const bytes = Buffer.from(JSON.stringify(body));
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': bytes.length, ...headers });
        res.end(bytes);
      };
      if (url.startsWith('/v2/api/app/referrers/')) return json(referrers, { 'content-type': MediaType.ociIndex });
      if (url.startsWith('/v2/paged/app/tags/list')) return json({ name: 'paged/app', tags: ['b', 'a'] }, { link: '<https://up.example/v2/paged/app/tags/list?n=2&last=b>; rel="next"' });
      if (url.startsWith('/v2/huge/app/tags/list')) {
        res.writeHead(200, { 'content-type': 'application/json' }); // no Content-Length: the limit applies while reading
        const chunk = Buffer.alloc(1024 * 1024, 0x20);
        for (let i = 0; i < 9; i++) res.write(chunk);
        return res.end('{"tags":[]}');
      }
      if (url.startsWith('/v2/junk/app/tags/list')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end('<html>not json</html>');
      }
      res.writeHead(url === '/v2/' ? 200 : 404, { 'content-type': 'application/json' });
      res.end('{}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as import('node:net').AddressInfo).port;
    m = await startMirror({ upstreams: [`docker.io=http://127.0.0.1:${port}`] });
    const { registerCleanup } = await import('../harness/proc.js');
    registerCleanup('fake upstream', () => new Promise<void>((r) => server.close(() => r())));
  });
  after(cleanupAll);

  test('an upstream referrers API that ignores artifactType: the mirror filters and says so', async () => {
    const all = await http(`${m.url}/v2/api/app/referrers/${subject}`);
    assert.equal(all.status, 200);
    assert.deepEqual(JSON.parse(all.body.toString()), referrers, 'unfiltered: the upstream index as it came');
    const only = await http(`${m.url}/v2/api/app/referrers/${subject}?artifactType=${encodeURIComponent(SIG)}`);
    assert.equal(only.headers['oci-filters-applied'], 'artifactType');
    assert.deepEqual((JSON.parse(only.body.toString()) as Index).manifests.map((d) => d.artifactType), [SIG]);
    assert.ok(asked.some((u) => u.includes('artifactType=')), 'the filter was offered to the upstream first');
  });

  test('an upstream that paginates: its page ordered, its Link rewritten to the mirror', async () => {
    const r = await http(`${m.url}/v2/paged/app/tags/list?n=2`);
    assert.equal(r.status, 200);
    assert.deepEqual((JSON.parse(r.body.toString()) as { tags: string[] }).tags, ['a', 'b']);
    assert.equal(r.headers.link, '</v2/paged/app/tags/list?n=2&last=b>; rel="next"');
  });

  test('a tags list over the limit or not JSON is a 503, and the mirror goes on', async () => {
    asked = [];
    for (const repo of ['huge', 'junk']) {
      const r = await http(`${m.url}/v2/${repo}/app/tags/list`);
      assert.equal(r.status, 503, repo);
      assert.equal(errorCode(r), 'UNAVAILABLE', repo);
    }
    assert.equal((await http(`${m.url}/v2/paged/app/tags/list`)).status, 200);
  });
});
