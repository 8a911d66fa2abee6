/**
 * Issue 10 item 4: tag answers survive restarts without Redis. A mirror pulls an image, stops; the upstream
 * goes down; a new mirror process on the same data directory still serves the image by tag (stale, with a
 * Warning) and every blob from the cache, and its index agrees with the files after start.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanupAll, requireCommands, tmpDir } from '../harness/proc.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { makeImage, pushImage, pullImage, MediaType, type GeneratedImage } from '../harness/oci.js';
import { startRelay, type Relay } from '../harness/relay.js';
import { startMirror, type TestMirror } from '../helpers/mirror.js';
import { http } from '../helpers/http.js';

const ACCEPT = { accept: `${MediaType.ociManifest}, ${MediaType.dockerManifest}` };

describe('restarts', () => {
  let upstream: Registry;
  let relay: Relay;
  let img: GeneratedImage;
  let dataDir: string;

  before(async () => {
    requireCommands('docker-registry', 'skopeo');
    upstream = await startRegistry();
    relay = await startRelay({ target: upstream.url });
    img = await makeImage({ layers: [300_000, 40_000] });
    await pushImage(img, upstream.host, 'acme/app:1');
    dataDir = await tmpDir('restart-data-');
  });
  after(cleanupAll);

  test('upstream stopped, mirror restarted: cached images still pull by tag, served stale with a Warning', { timeout: 120_000 }, async () => {
    let m: TestMirror = await startMirror({ dataDir, upstreams: [`docker.io=${relay.url}`], tagTtl: '1s' });
    const first = await pullImage(m.host, 'acme/app:1', await tmpDir('restart-pull-'));
    assert.equal(first.code, 0, first.stderr);
    await m.close();

    relay.setMode('down');
    m = await startMirror({ dataDir, upstreams: [`docker.io=${relay.url}`], tagTtl: '1s' });
    const tag = await http(`${m.url}/v2/acme/app/manifests/1`, { headers: ACCEPT });
    assert.equal(tag.status, 200, 'the tag answer came back from the index');
    assert.equal(tag.headers['docker-content-digest'], img.manifestDigest);
    assert.match(String(tag.headers.warning), /^299 - "regmirror: upstream docker\.io unavailable/);
    const pulled = await pullImage(m.host, 'acme/app:1', await tmpDir('restart-pull2-'));
    assert.equal(pulled.code, 0, `a full pull by tag works after the restart with the upstream down: ${pulled.stderr}`);
    assert.ok((await m.metric('regmirror_stale_served_total')) >= 1);
    await m.close();
  });
});
