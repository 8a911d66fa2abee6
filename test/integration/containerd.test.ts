/**
 * Routing requests to upstreams by registry namespace, with real clients:
 * - containerd (`ctr content fetch` with `hosts.toml` mirror hosts) sends `?ns=<registry host>`; the
 *   mirror sends each request to the upstream configured for that namespace, echoes it in
 *   `OCI-Namespace`, and a second fetch by a fresh containerd costs the upstreams nothing;
 * - podman-style path prefixes (`MIRROR/ghcr.io/org/tool:2`) route the same way (skopeo as the client);
 * - an unconfigured namespace or prefix is 404 NAME_UNKNOWN without any upstream request, and
 *   containerd then falls back to the registry's own `server`;
 * - a request with neither goes to the default upstream (the first configured, or the bare URL).
 *
 * Two real distribution registries stand for docker.io (A) and ghcr.io (B). A also holds a repository
 * `org/tool:2` with different content than B's, so an answer from the wrong upstream cannot pass.
 * The `server` of the hosts.toml files is a port where nothing listens: a fetch that succeeded by
 * falling back to it is impossible, so success means the mirror served it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { cleanupAll, freePort, requireCommands, tmpDir } from '../harness/proc.js';
import { countAccess, startRegistry, type AccessEntry, type Registry } from '../harness/registry.js';
import { makeImage, MediaType, pullImage, pushImage, type GeneratedImage } from '../harness/oci.js';
import { ctrContentList, ctrFetch, startContainerd, writeHostsToml, type Containerd } from '../harness/containerd.js';
import { startMirror, type TestMirror } from '../helpers/mirror.js';
import { errorCode, http } from '../helpers/http.js';

const ACCEPT = { accept: `${MediaType.ociManifest}, ${MediaType.dockerManifest}` };

/** Digests of everything an image consists of (manifest, config, layers). */
function imageDigests(img: GeneratedImage): string[] {
  return [img.manifestDigest, img.configDigest, ...img.layers.map((l) => l.digest)].sort();
}

/** One `request` line of the mirror's JSON log. */
interface MirrorLogRequest {
  method: string;
  path: string;
  status: number;
}

async function mirrorRequests(m: TestMirror): Promise<MirrorLogRequest[]> {
  const text = await readFile(m.logFile, 'utf8');
  const out: MirrorLogRequest[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const o = JSON.parse(line) as { msg?: string; method?: string; path?: string; status?: number };
    if (o.msg === 'request' && o.path !== undefined) out.push({ method: o.method ?? '', path: o.path, status: o.status ?? 0 });
  }
  return out;
}

/**
 * Waits until the mirror has logged `count` requests matching `pred` (the log line is written when the
 * response closes, which may be just after the client has its answer). Fails with the log after 10 s.
 */
async function waitForMirrorRequests(m: TestMirror, pred: (r: MirrorLogRequest) => boolean, count: number): Promise<MirrorLogRequest[]> {
  const deadline = performance.now() + 10_000;
  for (;;) {
    const found = (await mirrorRequests(m)).filter(pred);
    if (found.length >= count) return found;
    if (performance.now() > deadline) {
      throw new Error(`mirror log: ${count} matching requests not seen; got:\n${(await mirrorRequests(m)).map((r) => `${r.method} ${r.path} ${r.status}`).join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Sum of the mirror's upstream request counter (every upstream, kind and status). */
function upstreamRequests(m: TestMirror): Promise<number> {
  return m.metric('regmirror_upstream_requests_total');
}

function describeLog(log: AccessEntry[]): string {
  return log.map((e) => `${e.method} ${e.path} ${e.status} ${e.userAgent}`).join('\n');
}

describe('namespace routing: containerd ?ns=, podman path prefixes, default upstream', () => {
  let regA: Registry; // docker.io
  let regB: Registry; // ghcr.io
  let app: GeneratedImage; // A: library/app:v1
  let toolA: GeneratedImage; // A: org/tool:2 (a decoy: same name as B's)
  let toolB: GeneratedImage; // B: org/tool:2
  let deadServer: string;
  let certs: string;
  let m: TestMirror;

  const both = () => [
    `docker.io=${regA.url}`,
    `ghcr.io=${regB.url}`,
  ];

  const settleAndReset = async () => {
    await Promise.all([regA.settle(), regB.settle()]);
    regA.resetLog();
    regB.resetLog();
  };

  before(async () => {
    requireCommands('docker-registry', 'skopeo', 'containerd', 'ctr');
    [regA, regB] = await Promise.all([startRegistry({ name: 'registry-a' }), startRegistry({ name: 'registry-b' })]);
    app = await makeImage({ layers: [300_000, 5000], tag: 'v1' });
    toolA = await makeImage({ layers: [70_000], tag: '2' });
    toolB = await makeImage({ layers: [250_000, 3000], tag: '2' });
    await pushImage(app, regA.host, 'library/app:v1');
    await pushImage(toolA, regA.host, 'org/tool:2');
    await pushImage(toolB, regB.host, 'org/tool:2');
    deadServer = `http://127.0.0.1:${await freePort()}`;
    m = await startMirror({ upstreams: both(), tagTtl: '1h' });
    certs = await tmpDir('certs-');
    writeHostsToml(certs, 'docker.io', deadServer, m.url);
    writeHostsToml(certs, 'ghcr.io', deadServer, m.url);
    await settleAndReset();
  });
  after(cleanupAll);

  test('containerd fetches docker.io and ghcr.io images through the mirror; each upstream sees only its own repository', async () => {
    const ctd = await startContainerd();
    const requestsBefore = await m.metric('regmirror_requests_total');
    await ctrFetch({ sock: ctd.sock, hostsDir: certs, ref: 'docker.io/library/app:v1' });
    await ctrFetch({ sock: ctd.sock, hostsDir: certs, ref: 'ghcr.io/org/tool:2' });
    await Promise.all([regA.settle(), regB.settle()]);

    const content = (await ctrContentList(ctd.sock)).map((c) => c.digest).sort();
    assert.deepEqual(content, [...imageDigests(app), ...imageDigests(toolB)].sort(), 'containerd holds exactly both images (B’s org/tool, not A’s)');

    const logA = regA.accessLog();
    const logB = regB.accessLog();
    assert.ok(logA.length > 0 && logB.length > 0, `both upstreams were asked\nA:\n${describeLog(logA)}\nB:\n${describeLog(logB)}`);
    for (const [name, log, repo] of [['A', logA, 'library/app'], ['B', logB, 'org/tool']] as const) {
      for (const e of log) {
        if (e.kind === 'base') continue;
        assert.equal(e.repo, repo, `registry ${name} saw only ${repo}:\n${describeLog(log)}`);
        assert.match(e.userAgent, /^regmirror\//, `registry ${name} was asked by the mirror, not by containerd directly`);
        assert.ok(!e.path.includes('ns='), 'the ns parameter is for the mirror, not forwarded upstream');
      }
    }
    const blobsA = logA.filter((e) => e.method === 'GET' && e.kind === 'blob').map((e) => e.reference).sort();
    const blobsB = logB.filter((e) => e.method === 'GET' && e.kind === 'blob').map((e) => e.reference).sort();
    assert.deepEqual(blobsA, [app.configDigest, ...app.layers.map((l) => l.digest)].sort(), 'A served app’s blobs once each');
    assert.deepEqual(blobsB, [toolB.configDigest, ...toolB.layers.map((l) => l.digest)].sort(), 'B served tool’s blobs once each');
    assert.equal(countAccess(logA, { method: 'GET', kind: 'manifest', reference: app.manifestDigest }), 1);
    assert.equal(countAccess(logB, { method: 'GET', kind: 'manifest', reference: toolB.manifestDigest }), 1);
    assert.equal(countAccess(logA, { repo: 'org/tool' }), 0, 'A’s decoy org/tool was never asked for');

    // containerd addressed the mirror with ?ns= for every request.
    const total = 2 + 2 + (1 + app.layers.length) + (1 + toolB.layers.length); // tag HEADs, manifest GETs, blob GETs
    const seen = await waitForMirrorRequests(m, (r) => /[?&]ns=(docker\.io|ghcr\.io)(&|$)/.test(r.path), total);
    assert.ok(seen.some((r) => r.path.startsWith('/v2/library/app/') && r.path.endsWith('?ns=docker.io')));
    assert.ok(seen.some((r) => r.path.startsWith('/v2/org/tool/') && r.path.endsWith('?ns=ghcr.io')));
    assert.ok((await m.metric('regmirror_requests_total')) - requestsBefore >= total);
    await ctd.stop();
  });

  test('the mirror echoes the namespace it used in OCI-Namespace', async () => {
    for (const method of ['GET', 'HEAD']) {
      const b = await http(`${m.url}/v2/org/tool/manifests/2?ns=ghcr.io`, { method, headers: ACCEPT });
      assert.equal(b.status, 200);
      assert.equal(b.headers['oci-namespace'], 'ghcr.io');
      assert.equal(b.headers['docker-content-digest'], toolB.manifestDigest);
      const blob = await http(`${m.url}/v2/org/tool/blobs/${toolB.configDigest}?ns=ghcr.io`, { method });
      assert.equal(blob.status, 200);
      assert.equal(blob.headers['oci-namespace'], 'ghcr.io');
      const a = await http(`${m.url}/v2/library/app/manifests/v1?ns=docker.io`, { method, headers: ACCEPT });
      assert.equal(a.status, 200);
      assert.equal(a.headers['oci-namespace'], 'docker.io');
      assert.equal(a.headers['docker-content-digest'], app.manifestDigest);
    }
  });

  test('a second fetch by a fresh containerd is served from the mirror: zero upstream requests', async () => {
    // Warm (the first test may have run alone or not at all).
    const warm = await startContainerd();
    await ctrFetch({ sock: warm.sock, hostsDir: certs, ref: 'docker.io/library/app:v1' });
    await ctrFetch({ sock: warm.sock, hostsDir: certs, ref: 'ghcr.io/org/tool:2' });
    await warm.stop();
    await settleAndReset();

    const fresh: Containerd = await startContainerd();
    const isBlobGet = (r: MirrorLogRequest) => r.method === 'GET' && r.path.includes('/blobs/') && r.status === 200;
    const blobsBefore = (await mirrorRequests(m)).filter(isBlobGet).length;
    const upBefore = await upstreamRequests(m);
    await ctrFetch({ sock: fresh.sock, hostsDir: certs, ref: 'docker.io/library/app:v1' });
    await ctrFetch({ sock: fresh.sock, hostsDir: certs, ref: 'ghcr.io/org/tool:2' });
    await Promise.all([regA.settle(), regB.settle()]);
    const content = (await ctrContentList(fresh.sock)).map((c) => c.digest).sort();
    assert.deepEqual(content, [...imageDigests(app), ...imageDigests(toolB)].sort(), 'the fresh containerd got both images');

    const logA = regA.accessLog();
    const logB = regB.accessLog();
    assert.equal(countAccess(logA, { method: 'GET', kind: 'blob' }) + countAccess(logB, { method: 'GET', kind: 'blob' }), 0, 'no upstream blob GET');
    assert.equal(countAccess(logA, { method: 'GET', kind: 'manifest' }) + countAccess(logB, { method: 'GET', kind: 'manifest' }), 0, 'no upstream manifest GET');
    assert.equal(logA.length + logB.length, 0, `no upstream request at all inside the tag TTL:\n${describeLog([...logA, ...logB])}`);
    assert.equal(await upstreamRequests(m), upBefore, 'the mirror sent nothing upstream');
    // The fetch really went through the mirror: it answered every blob to the fresh containerd.
    const blobCount = 1 + app.layers.length + 1 + toolB.layers.length;
    await waitForMirrorRequests(m, isBlobGet, blobsBefore + blobCount);
    await fresh.stop();
  });

  test('podman-style path prefix: skopeo copies MIRROR/ghcr.io/org/tool:2 from registry B only', async () => {
    const pm = await startMirror({ upstreams: both(), tagTtl: '1h' });
    await settleAndReset();
    const out = await tmpDir('prefix-pull-');
    const r = await pullImage(pm.host, 'ghcr.io/org/tool:2', out);
    assert.equal(r.code, 0, r.stderr);
    await Promise.all([regA.settle(), regB.settle()]);
    const files = await readdir(out);
    for (const d of [toolB.configDigest, ...toolB.layers.map((l) => l.digest)]) {
      assert.ok(files.includes(d.split(':')[1]!), `B's blob ${d} pulled`);
    }
    assert.equal(regA.accessLog().length, 0, `registry A untouched:\n${describeLog(regA.accessLog())}`);
    const logB = regB.accessLog();
    assert.ok(countAccess(logB, { method: 'GET', kind: 'blob' }) >= 1 + toolB.layers.length);
    for (const e of logB) if (e.kind !== 'base') assert.equal(e.repo, 'org/tool', 'the prefix is stripped before the upstream');
    const head = await http(`${pm.url}/v2/ghcr.io/org/tool/manifests/2`, { method: 'HEAD', headers: ACCEPT });
    assert.equal(head.status, 200);
    assert.equal(head.headers['oci-namespace'], 'ghcr.io');
    assert.equal(head.headers['docker-content-digest'], toolB.manifestDigest);

    // The same with the docker.io prefix reaches A (where library/ is explicit).
    await settleAndReset();
    const r2 = await pullImage(pm.host, 'docker.io/library/app:v1', await tmpDir('prefix-pull-a-'));
    assert.equal(r2.code, 0, r2.stderr);
    await Promise.all([regA.settle(), regB.settle()]);
    assert.equal(regB.accessLog().length, 0, 'registry B untouched');
    assert.ok(countAccess(regA.accessLog(), { method: 'GET', kind: 'blob', repo: 'library/app' }) >= 1);
  });

  test('an unconfigured ns or prefix is 404 NAME_UNKNOWN with no upstream request', async () => {
    await settleAndReset();
    const upBefore = await upstreamRequests(m);
    const blob = `sha256:${'a'.repeat(64)}`;
    const cases = [
      `/v2/x/y/manifests/latest?ns=quay.io`,
      `/v2/x/y/blobs/${blob}?ns=quay.io`,
      `/v2/x/y/tags/list?ns=quay.io`,
      `/v2/org/tool/manifests/2?ns=quay.io`,
      `/v2/quay.io/x/y/manifests/latest`,
      `/v2/quay.io/x/y/blobs/${blob}`,
      `/v2/quay.io/x/y/tags/list`,
      `/v2/quay.io/org/tool/manifests/2`,
    ];
    for (const path of cases) {
      const g = await http(`${m.url}${path}`, { headers: ACCEPT });
      assert.equal(g.status, 404, path);
      assert.equal(errorCode(g), 'NAME_UNKNOWN', `${path}: ${g.body.toString()}`);
      assert.match(g.body.toString(), /quay\.io/, 'the error names the registry');
      const h = await http(`${m.url}${path}`, { method: 'HEAD', headers: ACCEPT });
      assert.equal(h.status, 404, `HEAD ${path}`);
      assert.equal(h.body.length, 0);
    }
    await Promise.all([regA.settle(), regB.settle()]);
    assert.equal(regA.accessLog().length + regB.accessLog().length, 0, 'no upstream was asked');
    assert.equal(await upstreamRequests(m), upBefore);
  });

  test('containerd falls back to its server when the mirror does not serve the namespace', async () => {
    // quay.io is not configured on the mirror; the hosts.toml server for quay.io is registry B itself.
    const fbCerts = await tmpDir('certs-fallback-');
    writeHostsToml(fbCerts, 'quay.io', regB.url, m.url);
    const ctd = await startContainerd();
    await settleAndReset();
    const upBefore = await upstreamRequests(m);
    const res = await ctrFetch({ sock: ctd.sock, hostsDir: fbCerts, ref: 'quay.io/org/tool:2' });
    assert.equal(res.code, 0);
    await regB.settle();
    const content = (await ctrContentList(ctd.sock)).map((c) => c.digest).sort();
    assert.deepEqual(content, imageDigests(toolB), 'the image came from the fallback server');

    const refused = await waitForMirrorRequests(m, (r) => r.path.endsWith('?ns=quay.io'), 1);
    assert.ok(refused.every((r) => r.status === 404), `the mirror answered 404 to every quay.io request: ${JSON.stringify(refused)}`);
    assert.ok(refused.some((r) => r.method === 'HEAD' && r.path.startsWith('/v2/org/tool/manifests/2')), 'containerd asked the mirror first');
    const logB = regB.accessLog();
    assert.ok(logB.length > 0);
    assert.ok(logB.every((e) => e.userAgent.startsWith('containerd/')), `B was asked by containerd directly, never by the mirror:\n${describeLog(logB)}`);
    assert.equal(await upstreamRequests(m), upBefore, 'the mirror made no upstream request');
    await ctd.stop();
  });

  test('without ns or prefix a request goes to the default upstream: the first configured, or the bare URL', async () => {
    await settleAndReset();
    // First configured (docker.io = A) is the default; single-component names get library/.
    for (const path of ['/v2/library/app/manifests/v1', '/v2/app/manifests/v1']) {
      const r = await http(`${m.url}${path}`, { headers: ACCEPT });
      assert.equal(r.status, 200, path);
      assert.equal(r.headers['oci-namespace'], 'docker.io');
      assert.equal(r.headers['docker-content-digest'], app.manifestDigest);
    }
    // org/tool:2 without ns is A's decoy, not B's image.
    const tool = await http(`${m.url}/v2/org/tool/manifests/2`, { headers: ACCEPT });
    assert.equal(tool.status, 200);
    assert.equal(tool.headers['docker-content-digest'], toolA.manifestDigest, 'the default upstream (A) answered');
    assert.equal(tool.headers['oci-namespace'], 'docker.io');
    const viaNs = await http(`${m.url}/v2/org/tool/manifests/2?ns=ghcr.io`, { headers: ACCEPT });
    assert.equal(viaNs.headers['docker-content-digest'], toolB.manifestDigest, 'the same name under ns=ghcr.io is B’s: tags are cached per upstream');
    await Promise.all([regA.settle(), regB.settle()]);
    assert.ok(countAccess(regA.accessLog(), { repo: 'org/tool' }) >= 1, 'A was asked for org/tool');

    // A bare URL (listed last) is the default; the named upstream is used only when asked for.
    await settleAndReset();
    const bm = await startMirror({ upstreams: [`ghcr.io=${regB.url}`, regA.url], tagTtl: '1h' });
    const dflt = await http(`${bm.url}/v2/org/tool/manifests/2`, { headers: ACCEPT });
    assert.equal(dflt.status, 200);
    assert.equal(dflt.headers['docker-content-digest'], toolA.manifestDigest, 'the bare URL (A) is the default, though listed second');
    assert.equal(dflt.headers['oci-namespace'], regA.host, 'a bare URL’s namespace is its host:port');
    const lib = await http(`${bm.url}/v2/library/app/manifests/v1`, { headers: ACCEPT });
    assert.equal(lib.headers['docker-content-digest'], app.manifestDigest);
    await Promise.all([regA.settle(), regB.settle()]);
    assert.equal(regB.accessLog().length, 0, `B (named ghcr.io) got nothing:\n${describeLog(regB.accessLog())}`);
    assert.ok(countAccess(regA.accessLog(), { method: 'HEAD', kind: 'manifest', repo: 'org/tool' }) >= 1);
    const named = await http(`${bm.url}/v2/org/tool/manifests/2?ns=ghcr.io`, { headers: ACCEPT });
    assert.equal(named.headers['docker-content-digest'], toolB.manifestDigest);
  });
});
