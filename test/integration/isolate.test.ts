/**
 * Issue 9: `isolateNamespaces`. Two distribution upstreams as docker.io and ghcr.io; an image pushed only to
 * ghcr.io. Isolated, a digest cached for ghcr.io is never served for docker.io (or the default namespace):
 * that request goes to docker.io's upstream and gets its 404 — from disk, from the memory tiers, and while a
 * ghcr.io fill of it is in flight. The isolated entries survive a restart with a lost index (reconcile
 * rebuilds them with their namespace) and stay isolated; one cap evicts across namespaces; `cache rm`
 * removes every copy. Shared (the default), the same digest is served from the cache with no upstream request.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, rm, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupAll, delay, requireCommands, run, tmpDir } from '../harness/proc.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { startRelay, type Relay } from '../harness/relay.js';
import { makeImage, pushImageHttp, putBlob, randomBlobFile, MediaType, type BlobFile, type GeneratedImage } from '../harness/oci.js';
import { CLI_PATH } from '../harness/mirror-proc.js';
import { startMirror, type TestMirror } from '../helpers/mirror.js';
import { errorCode, http, httpDigest } from '../helpers/http.js';

const MiB = 2 ** 20;
const ACCEPT = { accept: `${MediaType.ociManifest}, ${MediaType.dockerManifest}` };

/** Every committed blob file under a data dir, by scope ('' for the shared trees): digest → size. */
async function blobFiles(dataDir: string): Promise<Map<string, Map<string, number>>> {
  const out = new Map<string, Map<string, number>>();
  const roots: Array<[string, string]> = [['', dataDir]];
  for (const ns of await readdir(join(dataDir, 'ns')).catch(() => [])) roots.push([ns, join(dataDir, 'ns', ns)]);
  for (const [scope, root] of roots) {
    const files = new Map<string, number>();
    const alg = join(root, 'blobs', 'sha256');
    for (const d of await readdir(alg).catch(() => [])) {
      for (const f of await readdir(join(alg, d)).catch(() => [])) files.set(`sha256:${f}`, (await stat(join(alg, d, f))).size);
    }
    out.set(scope, files);
  }
  return out;
}

function blobsOf(img: GeneratedImage): string[] {
  return [img.configDigest, ...img.layers.map((l) => l.digest)];
}

async function cacheCli(args: string[]): Promise<string> {
  const r = await run(process.execPath, [CLI_PATH, 'cache', ...args], { timeoutMs: 30_000 });
  return r.stdout;
}

describe('isolateNamespaces', () => {
  let docker: Registry;
  let ghcr: Registry;
  let ghcrRelay: Relay;
  let img: GeneratedImage;
  let big: BlobFile;

  before(async () => {
    requireCommands('docker-registry');
    [docker, ghcr] = await Promise.all([startRegistry(), startRegistry()]);
    ghcrRelay = await startRelay({ target: ghcr.url, name: 'ghcr' });
    // A small config and layer (memory tier) and a 1 MiB layer (file), only on ghcr.io.
    img = await makeImage({ layers: [20_000, 1 * MiB] });
    await pushImageHttp(ghcr.url, 'acme/app', '1', img);
    big = await randomBlobFile(await tmpDir('isolate-big-'), 4 * MiB);
    await putBlob(ghcr.url, 'acme/app', big);
  });
  after(cleanupAll);

  /** Pulls the image under ghcr.io through the mirror: tag, manifest by digest, every blob twice (the second from memory or file). */
  async function pullViaGhcr(m: TestMirror): Promise<void> {
    const tag = await http(`${m.url}/v2/acme/app/manifests/1?ns=ghcr.io`, { headers: ACCEPT });
    assert.equal(tag.status, 200);
    assert.equal(tag.headers['docker-content-digest'], img.manifestDigest);
    assert.equal((await http(`${m.url}/v2/acme/app/manifests/${img.manifestDigest}?ns=ghcr.io`)).status, 200);
    for (const d of blobsOf(img)) {
      for (let i = 0; i < 2; i++) assert.equal((await httpDigest(`${m.url}/v2/acme/app/blobs/${d}?ns=ghcr.io`)).digest, d);
    }
  }

  /** Every way of asking docker.io (and the default namespace, docker.io) for what ghcr.io cached: 404s that went upstream. */
  async function assertIsolatedFromDocker(m: TestMirror): Promise<void> {
    await docker.settle();
    const before = docker.accessLog().length;
    for (const q of ['?ns=docker.io', '']) {
      const man = await http(`${m.url}/v2/acme/app/manifests/${img.manifestDigest}${q}`);
      assert.equal(man.status, 404, `manifest by digest under docker.io${q ? '' : ' (default namespace)'} is not served from ghcr.io's copy`);
      assert.equal(errorCode(man), 'MANIFEST_UNKNOWN');
      for (const d of blobsOf(img)) {
        const get = await http(`${m.url}/v2/acme/app/blobs/${d}${q}`);
        assert.equal(get.status, 404, `blob ${d} under docker.io${q} is not served from ghcr.io's copy`);
        assert.equal(errorCode(get), 'BLOB_UNKNOWN');
        assert.equal((await http(`${m.url}/v2/acme/app/blobs/${d}${q}`, { method: 'HEAD' })).status, 404);
        assert.equal((await http(`${m.url}/v2/acme/app/blobs/${d}${q}`, { headers: { range: 'bytes=0-99' } })).status, 404);
      }
    }
    await docker.settle();
    const asked = docker.accessLog().slice(before);
    const manifestGets = asked.filter((e) => e.kind === 'manifest' && e.reference === img.manifestDigest && e.status === 404);
    const blobAsks = asked.filter((e) => e.kind === 'blob' && blobsOf(img).includes(e.reference ?? '') && e.status === 404);
    // The manifest 404 is remembered for a few seconds per (upstream, repository, digest): one upstream GET for both namespaces' asks.
    assert.ok(manifestGets.length >= 1, `docker.io's upstream was asked for the manifest: ${JSON.stringify(asked.map((e) => `${e.method} ${e.path} ${e.status}`))}`);
    assert.ok(blobAsks.length >= blobsOf(img).length * 2, `docker.io's upstream was asked for every blob (${blobAsks.length} asks)`);
  }

  test('isolated: a digest cached for ghcr.io is 404 for docker.io (its upstream asked), from disk, memory and an in-flight fill', { timeout: 120_000 }, async () => {
    const m = await startMirror({ upstreams: [`docker.io=${docker.url}`, `ghcr.io=${ghcrRelay.url}`], isolateNamespaces: true });
    await pullViaGhcr(m);
    const files = await blobFiles(m.dataDir);
    assert.equal(files.get('')?.size ?? 0, 0, 'nothing in the shared trees');
    for (const d of blobsOf(img)) assert.ok(files.get('ghcr.io')?.has(d), `${d} is in ghcr.io's own tree`);
    assert.ok(existsSync(join(m.dataDir, 'ns', 'ghcr.io', 'manifests', 'sha256', img.manifestDigest.slice(7, 9), img.manifestDigest.slice(7))));
    await assertIsolatedFromDocker(m);
    // ghcr.io itself still hits its cache: no upstream request.
    ghcrRelay.reset();
    await pullViaGhcr(m);
    assert.equal(ghcrRelay.stats().log.filter((r) => r.path.includes('/blobs/')).length, 0, 'ghcr.io blobs served from its cache');

    // A ghcr.io fill in flight is not joined by docker.io: docker.io's request goes to its own upstream and gets 404.
    ghcrRelay.setThrottle(1 * MiB);
    const filling = httpDigest(`${m.url}/v2/acme/app/blobs/${big.digest}?ns=ghcr.io`);
    for (let i = 0; i < 50 && ghcrRelay.stats().log.every((r) => !r.path.includes(big.digest)); i++) await delay(20);
    await delay(200);
    assert.equal(m.mirror.parts.fills.snapshot().filter((f) => f.digest === big.digest).length, 1, 'the ghcr.io fill is in flight');
    const during = await http(`${m.url}/v2/acme/app/blobs/${big.digest}?ns=docker.io`);
    assert.equal(during.status, 404, 'docker.io does not join ghcr.io\'s fill');
    assert.equal(errorCode(during), 'BLOB_UNKNOWN');
    assert.equal((await filling).digest, big.digest, 'the ghcr.io fill completes');
    ghcrRelay.setThrottle(undefined);
    await docker.settle();
    assert.ok(docker.accessLog().some((e) => e.kind === 'blob' && e.reference === big.digest && e.status === 404), 'docker.io\'s upstream was asked for the big blob');
    await m.close();
  });

  test('isolated entries survive a restart that lost the index (reconcile) and stay isolated', { timeout: 120_000 }, async () => {
    const dataDir = await tmpDir('isolate-restart-');
    const upstreams = [`docker.io=${docker.url}`, `ghcr.io=${ghcrRelay.url}`];
    let m = await startMirror({ dataDir, upstreams, isolateNamespaces: true });
    await pullViaGhcr(m);
    await m.close();
    // The index is rebuilt from the files alone: each entry gets its scope from the tree it was found in.
    await rm(join(dataDir, 'index'), { recursive: true, force: true });
    m = await startMirror({ dataDir, upstreams, isolateNamespaces: true });
    for (let i = 0; i < 100 && !(await import('node:fs/promises').then((f) => f.readFile(m.logFile, 'utf8'))).includes('cache index reconciled'); i++) await delay(100);
    ghcrRelay.reset();
    await pullViaGhcr(m);
    assert.equal(ghcrRelay.stats().log.filter((r) => r.path.includes('/blobs/') || r.path.includes(`/manifests/sha256`)).length, 0, 'ghcr.io still served from its cache after the restart');
    await assertIsolatedFromDocker(m);
    await m.close();
    const listed = JSON.parse(await cacheCli(['ls', '--json', '--limit', '1000', '--data-dir', dataDir])) as Array<{ kind: string; digest: string; scope?: string; namespaces: string[] }>;
    for (const d of blobsOf(img)) {
      const e = listed.find((x) => x.kind === 'blob' && x.digest === d);
      assert.ok(e, `${d} is in the rebuilt index`);
      assert.equal(e.scope, 'ghcr.io');
      assert.deepEqual(e.namespaces, ['ghcr.io']);
    }
    assert.ok(listed.every((x) => x.scope === 'ghcr.io'), 'every entry is ghcr.io\'s');
    const du = JSON.parse(await cacheCli(['du', '--json', '--data-dir', dataDir])) as { objects: number; byNamespace: Record<string, { objects: number }> };
    assert.equal(du.byNamespace['ghcr.io']?.objects, du.objects, 'du counts them under ghcr.io');
  });

  test('shared (default): the digest cached for ghcr.io is served to docker.io from the cache, no upstream request', { timeout: 60_000 }, async () => {
    const m = await startMirror({ upstreams: [`docker.io=${docker.url}`, `ghcr.io=${ghcrRelay.url}`] });
    await pullViaGhcr(m);
    await docker.settle();
    const before = docker.accessLog().length;
    for (const q of ['?ns=docker.io', '']) {
      const man = await http(`${m.url}/v2/acme/app/manifests/${img.manifestDigest}${q}`);
      assert.equal(man.status, 200);
      assert.deepEqual(man.body, img.manifest);
      for (const d of blobsOf(img)) {
        assert.equal((await httpDigest(`${m.url}/v2/acme/app/blobs/${d}${q}`)).digest, d);
        assert.equal((await http(`${m.url}/v2/acme/app/blobs/${d}${q}`, { method: 'HEAD' })).status, 200);
      }
    }
    await docker.settle();
    assert.equal(docker.accessLog().length - before, 0, 'docker.io\'s upstream was not asked');
    const files = await blobFiles(m.dataDir);
    assert.equal(files.size, 1, 'no per-namespace trees');
    await m.close();
  });

  test('isolated: one cap evicts least recently used across namespaces; cache rm DIGEST removes every copy', { timeout: 120_000 }, async () => {
    const dir = await tmpDir('isolate-evict-src-');
    const shared = await randomBlobFile(dir, 1 * MiB);
    await putBlob(docker.url, 'acme/evict', shared);
    await putBlob(ghcr.url, 'acme/evict', shared);
    const blobs: Array<{ ns: string; b: BlobFile }> = [];
    for (let i = 0; i < 6; i++) {
      const b = await randomBlobFile(dir, 2 * MiB);
      const ns = i % 2 === 0 ? 'docker.io' : 'ghcr.io';
      await putBlob(ns === 'docker.io' ? docker.url : ghcr.url, 'acme/evict', b);
      blobs.push({ ns, b });
    }
    const m = await startMirror({ upstreams: [`docker.io=${docker.url}`, `ghcr.io=${ghcr.url}`], isolateNamespaces: true, maxSize: '8MiB', blobMemory: 0 });
    // The same digest from both upstreams: two copies, one per namespace.
    for (const ns of ['docker.io', 'ghcr.io']) assert.equal((await httpDigest(`${m.url}/v2/acme/evict/blobs/${shared.digest}?ns=${ns}`)).digest, shared.digest);
    let files = await blobFiles(m.dataDir);
    assert.ok(files.get('docker.io')?.has(shared.digest) && files.get('ghcr.io')?.has(shared.digest), 'one copy per namespace');
    let peak = 0;
    for (const { ns, b } of blobs) {
      assert.equal((await httpDigest(`${m.url}/v2/acme/evict/blobs/${b.digest}?ns=${ns}`)).digest, b.digest);
      files = await blobFiles(m.dataDir);
      peak = Math.max(peak, [...files.values()].reduce((n, f) => n + [...f.values()].reduce((a, s) => a + s, 0), 0));
    }
    await delay(300);
    files = await blobFiles(m.dataDir);
    const total = [...files.values()].reduce((n, f) => n + [...f.values()].reduce((a, s) => a + s, 0), 0);
    assert.ok(peak <= 8 * MiB + 2 * MiB, `the cap holds across namespaces (peak ${(peak / MiB).toFixed(1)} MiB)`);
    assert.ok(total <= 8 * MiB, `after eviction ${(total / MiB).toFixed(1)} MiB`);
    assert.ok(!files.get('docker.io')?.has(shared.digest) && !files.get('ghcr.io')?.has(shared.digest), 'the oldest (both copies of the shared digest) were evicted');
    assert.ok(files.get(blobs.at(-1)!.ns)?.has(blobs.at(-1)!.b.digest), 'the most recent blob is kept');
    assert.ok((await m.metric('regmirror_evictions_total')) >= 2);
    // Both copies again, then `cache rm` removes both (beside the serving mirror).
    for (const ns of ['docker.io', 'ghcr.io']) assert.equal((await httpDigest(`${m.url}/v2/acme/evict/blobs/${shared.digest}?ns=${ns}`)).digest, shared.digest);
    const removed = await cacheCli(['rm', shared.digest, '--data-dir', m.dataDir]);
    assert.match(removed, /docker\.io's copy/);
    assert.match(removed, /ghcr\.io's copy/);
    files = await blobFiles(m.dataDir);
    assert.ok(!files.get('docker.io')?.has(shared.digest) && !files.get('ghcr.io')?.has(shared.digest), 'cache rm removed both copies');
    await m.close();
  });
});
