/**
 * Tag revalidation: within the TTL no upstream request; after it one HEAD; a moved tag is seen after
 * the TTL; with the upstream down the last known manifest is served with a Warning, digests still
 * served; when it is back, revalidation resumes. Concurrent requests for an expired tag send one HEAD.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanupAll, delay, requireCommands, tmpDir } from '../harness/proc.js';
import { startRegistry, countAccess, type Registry } from '../harness/registry.js';
import { makeImage, pushImage, pullImage, MediaType, type GeneratedImage } from '../harness/oci.js';
import { startRelay, type Relay } from '../harness/relay.js';
import { startMirror, type TestMirror } from '../helpers/mirror.js';
import { errorCode, http } from '../helpers/http.js';

// Long enough that a skopeo push fits inside one TTL on a busy 2-core machine (the "within" steps), short enough to wait out.
const TTL_MS = 1200;
const ACCEPT = { accept: `${MediaType.ociManifest}, ${MediaType.dockerManifest}` };

describe('tag revalidation and stale-if-error', () => {
  let upstream: Registry;
  let relay: Relay;
  let m: TestMirror;
  let one: GeneratedImage;
  let two: GeneratedImage;

  before(async () => {
    requireCommands('docker-registry', 'skopeo');
    upstream = await startRegistry();
    relay = await startRelay({ target: upstream.url });
    one = await makeImage({ layers: [100_000], tag: 'one' });
    two = await makeImage({ layers: [120_000], tag: 'two' });
    await pushImage(one, upstream.host, 'acme/web:stable');
    m = await startMirror({ upstreams: [`docker.io=${relay.url}`], tagTtl: `${TTL_MS}ms` });
  });
  after(cleanupAll);

  const manifestGets = () => relay.stats().log.filter((r) => r.method === 'GET' && r.path.includes('/manifests/')).length;
  const heads = () => relay.stats().log.filter((r) => r.method === 'HEAD' && r.path.includes('/manifests/')).length;

  test('within the TTL a tag costs no upstream request; after it, one HEAD and no GET when unchanged', async () => {
    const first = await http(`${m.url}/v2/acme/web/manifests/stable`, { headers: ACCEPT });
    assert.equal(first.headers['docker-content-digest'], one.manifestDigest);
    relay.reset();
    for (let i = 0; i < 5; i++) {
      const r = await http(`${m.url}/v2/acme/web/manifests/stable`, { headers: ACCEPT });
      assert.equal(r.status, 200);
    }
    assert.equal(relay.stats().requests, 0, 'inside the TTL: no upstream request');
    await delay(TTL_MS + 100);
    const after = await http(`${m.url}/v2/acme/web/manifests/stable`, { headers: ACCEPT });
    assert.equal(after.headers['docker-content-digest'], one.manifestDigest);
    assert.equal(heads(), 1, 'one HEAD revalidates');
    assert.equal(manifestGets(), 0, 'an unchanged digest costs no GET');
  });

  test('a tag moved upstream: old digest within the TTL, new one after it', async () => {
    await http(`${m.url}/v2/acme/web/manifests/stable`, { headers: ACCEPT });
    await pushImage(two, upstream.host, 'acme/web:stable');
    const within = await http(`${m.url}/v2/acme/web/manifests/stable`, { headers: ACCEPT });
    assert.equal(within.headers['docker-content-digest'], one.manifestDigest);
    await delay(TTL_MS + 100);
    const moved = await http(`${m.url}/v2/acme/web/manifests/stable`, { headers: ACCEPT });
    assert.equal(moved.headers['docker-content-digest'], two.manifestDigest);
    assert.ok(moved.body.equals(two.manifest));
  });

  test('N concurrent requests for an expired tag send one HEAD', async () => {
    await delay(TTL_MS + 100);
    relay.reset();
    const answers = await Promise.all(Array.from({ length: 20 }, () => http(`${m.url}/v2/acme/web/manifests/stable`, { headers: ACCEPT })));
    for (const a of answers) assert.equal(a.headers['docker-content-digest'], two.manifestDigest);
    assert.equal(heads(), 1);
    assert.ok((await m.metric('regmirror_coalesced_total', { kind: 'tag' })) >= 1, 'some requests joined the HEAD in flight');
  });

  test('upstream down: the stale tag is served with a Warning, digests still served; back up: revalidation resumes', async () => {
    // Warm the blobs of `two` so a full pull works from the cache alone.
    const warm = await pullImage(m.host, 'acme/web:stable', await tmpDir('tags-warm-'));
    assert.equal(warm.code, 0, warm.stderr);
    relay.setMode('down');
    await delay(TTL_MS + 100);
    const stale = await http(`${m.url}/v2/acme/web/manifests/stable`, { headers: ACCEPT });
    assert.equal(stale.status, 200);
    assert.equal(stale.headers['docker-content-digest'], two.manifestDigest);
    assert.match(String(stale.headers.warning), /^299 - "regmirror: upstream docker\.io unavailable/);
    assert.ok((await m.metric('regmirror_stale_served_total')) >= 1);
    const staleHead = await http(`${m.url}/v2/acme/web/manifests/stable`, { method: 'HEAD', headers: ACCEPT });
    assert.equal(staleHead.status, 200);
    assert.equal(Number(staleHead.headers['content-length']), two.manifest.length);
    const pulled = await pullImage(m.host, 'acme/web:stable', await tmpDir('tags-stale-'));
    assert.equal(pulled.code, 0, `a full pull works while the upstream is down: ${pulled.stderr}`);
    const byDigest = await http(`${m.url}/v2/acme/web/manifests/${one.manifestDigest}`);
    assert.equal(byDigest.status, 200, 'cached digests are served');
    const unknown = await http(`${m.url}/v2/acme/web/manifests/never-seen`, { headers: ACCEPT });
    assert.equal(unknown.status, 503);
    assert.equal(errorCode(unknown), 'UNAVAILABLE');

    relay.setMode('pass');
    await pushImage(one, upstream.host, 'acme/web:stable');
    // The outage backoff is at most the TTL: after it, the mirror asks again.
    await delay(TTL_MS + 100);
    const back = await http(`${m.url}/v2/acme/web/manifests/stable`, { headers: ACCEPT });
    assert.equal(back.status, 200);
    assert.equal(back.headers.warning, undefined);
    assert.equal(back.headers['docker-content-digest'], one.manifestDigest, 'revalidation resumed and saw the move');
  });

  test('upstream 5xx and 429 are outages too; a 404 for the tag is passed on', async () => {
    await delay(TTL_MS + 100);
    relay.setMode('fail', { status: 429 });
    const throttled = await http(`${m.url}/v2/acme/web/manifests/stable`, { headers: ACCEPT });
    assert.equal(throttled.status, 200);
    assert.ok(throttled.headers.warning);
    relay.setMode('pass');
    await delay(TTL_MS + 100);
    const r = await http(`${m.url}/v2/acme/web/manifests/gone`, { headers: ACCEPT });
    assert.equal(r.status, 404);
    assert.equal(errorCode(r), 'MANIFEST_UNKNOWN');
    void countAccess;
  });
});

describe('a hanging upstream', () => {
  after(cleanupAll);

  test('a tag revalidation that hangs is cut at revalidateTimeout and the stale answer served', async () => {
    requireCommands('docker-registry', 'skopeo');
    const { createServer, connect } = await import('node:net');
    const upstream = await startRegistry();
    const img = await makeImage({ layers: [1000] });
    await pushImage(img, upstream.host, 'acme/hang:1');
    // A TCP forwarder that can start swallowing connections (accept, never answer).
    let hanging = false;
    const open = new Set<import('node:net').Socket>();
    const fwd = createServer((sock) => {
      open.add(sock);
      sock.on('close', () => open.delete(sock));
      sock.on('error', () => undefined);
      if (hanging) return;
      const up = connect(upstream.port, '127.0.0.1');
      up.on('error', () => sock.destroy());
      sock.pipe(up).pipe(sock);
      sock.on('close', () => up.destroy());
    });
    await new Promise<void>((r) => fwd.listen(0, '127.0.0.1', r));
    const port = (fwd.address() as import('node:net').AddressInfo).port;
    const m = await startMirror({ upstreams: [`docker.io=http://127.0.0.1:${port}`], tagTtl: '100ms', revalidateTimeout: '300ms', headersTimeout: '20s' });
    const first = await http(`${m.url}/v2/acme/hang/manifests/1`, { headers: ACCEPT });
    assert.equal(first.status, 200);
    hanging = true;
    for (const s of open) s.destroy();
    await delay(200);
    const t0 = performance.now();
    const stale = await http(`${m.url}/v2/acme/hang/manifests/1`, { headers: ACCEPT });
    const ms = performance.now() - t0;
    assert.equal(stale.status, 200);
    assert.match(String(stale.headers.warning), /UNAVAILABLE/);
    assert.ok(ms < 3000, `answered after ${ms.toFixed(0)} ms: the 300 ms revalidation deadline applied, not the 20 s headers timeout`);
    for (const s of open) s.destroy();
    fwd.close();
  });
});
