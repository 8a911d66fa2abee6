/**
 * dockerd as deployed with `registry-mirrors` (issue 12, item 5): a private Docker daemon pulls a
 * Docker Hub name through the mirror cold (the upstream serves each blob once, to the mirror) and,
 * after the image is removed locally, warm with 0 upstream requests (counted in the upstream
 * registry's access log). dockerd falls back to registry-1.docker.io on any mirror error, and that
 * host is unreachable here: a pull that succeeds came through the mirror.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { cleanupAll, requireCommands } from '../harness/proc.js';
import { countAccess, startRegistry, type Registry } from '../harness/registry.js';
import { makeImage, pushImage, type GeneratedImage } from '../harness/oci.js';
import { startDockerd, type Dockerd } from '../harness/dockerd.js';
import { startMirror, type TestMirror } from '../helpers/mirror.js';

/** The mirror's `request` log lines (method, path, status, cache). */
async function mirrorRequests(m: TestMirror): Promise<Array<{ method: string; path: string; status: number; cache: string }>> {
  const text = await readFile(m.logFile, 'utf8');
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as { msg?: string; method: string; path: string; status: number; cache: string })
    .filter((o) => o.msg === 'request');
}

describe('dockerd with registry-mirrors', () => {
  let reg: Registry;
  let img: GeneratedImage;
  let m: TestMirror;
  let dockerd: Dockerd;

  before(async () => {
    requireCommands('dockerd', 'docker', 'docker-registry', 'skopeo');
    reg = await startRegistry({ name: 'hub-standin' });
    img = await makeImage({ layers: [500_000, 60_000, 2000], tag: 'v1' });
    await pushImage(img, reg.host, 'library/app:v1');
    m = await startMirror({ upstreams: [`docker.io=${reg.url}`], tagTtl: '1h' });
    dockerd = await startDockerd({ mirrors: [m.url] });
    await reg.settle();
    reg.resetLog();
  });
  after(cleanupAll);

  test('cold pull: through the mirror, each blob fetched upstream once', async () => {
    const out = await dockerd.docker(['pull', 'app:v1']);
    assert.match(out.stdout, /Downloaded newer image for app:v1/);
    await reg.settle();
    const log = reg.accessLog();
    for (const e of log) assert.match(e.userAgent, /^regmirror\//, `only the mirror asked the upstream: ${e.method} ${e.path}`);
    for (const b of [img.configDigest, ...img.layers.map((l) => l.digest)]) {
      assert.equal(countAccess(log, { method: 'GET', kind: 'blob', reference: b }), 1, `blob ${b} fetched once`);
    }
    const seen = await mirrorRequests(m);
    assert.ok(seen.some((r) => r.path.startsWith('/v2/library/app/manifests/v1') && r.status === 200), 'dockerd asked the mirror for library/app');
    const inspect = await dockerd.docker(['image', 'inspect', '--format', '{{len .RootFS.Layers}}', 'app:v1']);
    assert.equal(inspect.stdout.trim(), String(img.layers.length), 'every layer unpacked');
  });

  test('warm pull after removing the image: 0 upstream requests', async () => {
    await dockerd.docker(['rmi', 'app:v1']);
    reg.resetLog();
    const before = (await mirrorRequests(m)).length;
    const out = await dockerd.docker(['pull', 'app:v1']);
    assert.match(out.stdout, /Downloaded newer image for app:v1/);
    await reg.settle();
    assert.deepEqual(reg.accessLog().map((e) => `${e.method} ${e.path}`), [], 'the upstream saw nothing');
    const warm = (await mirrorRequests(m)).slice(before).filter((r) => r.path.includes('/blobs/'));
    assert.equal(warm.length, img.layers.length + 1, 'config and layers came from the mirror');
    for (const r of warm) assert.equal(r.cache, 'hit', `${r.path} was a cache hit`);
    assert.doesNotMatch(dockerd.log(), /Attempting next endpoint/, 'dockerd never fell back');
  });
});
