/**
 * Two tiers (issue 11, item 6) with real parts: node-local regmirror processes whose upstreams are a
 * regional regmirror process (`--upstream docker.io=REGIONAL --upstream ghcr.io=REGIONAL
 * --mirror-upstream '*'`), the regional pulling from real distribution 2.8 registries.
 *
 * - namespaces pass through: the node sends `?ns=` on manifests, blobs, tag lists and referrers, so the
 *   regional asks the right registry (a decoy of the same name on the other registry is never served);
 * - bounded staleness: a tag moved upstream is visible at the node within one TTL (+ slack) of the
 *   regional's confirmation, not two; the node's answers carry the regional's Age;
 * - a stale answer of the regional (its registry down) reaches the node's clients as stale, with the
 *   Warning, and is not taken as confirmed: once the registry is back, the node sees fresh answers again;
 * - the regional down: the node serves its last answer stale with a Warning, digests from its cache;
 * - containerd (`?ns=docker.io`) pulling through node → regional → registry: each blob GET once at the
 *   registry, and a second node pulling the same image through the regional costs the registry nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanupAll, delay, freePort, requireCommands, spawnProc, tmpDir, type Proc } from '../harness/proc.js';
import { countAccess, startRegistry, type AccessEntry, type Registry } from '../harness/registry.js';
import { makeImage, MediaType, pushImageHttp, type GeneratedImage } from '../harness/oci.js';
import { ctrContentList, ctrFetch, startContainerd, writeHostsToml } from '../harness/containerd.js';
import { http, httpDigest } from '../helpers/http.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const ACCEPT = { accept: `${MediaType.ociManifest}, ${MediaType.dockerManifest}` };

/** A regmirror process on a fixed port and data dir, so it can be stopped and started again as the same mirror. */
interface Tier {
  url: string;
  port: number;
  dataDir: string;
  args: string[];
  proc: Proc;
  /** `request` log lines (method, path with query, status) since the process started. */
  requests(): Array<{ method: string; path: string; status: number }>;
}

async function startTier(name: string, args: string[], port?: number, dataDir?: string): Promise<Tier> {
  const p = port ?? (await freePort());
  const dir = dataDir ?? (await tmpDir(`tier-${name}-`));
  const proc = await spawnProc(process.execPath, [CLI, 'serve', '--listen', `127.0.0.1:${p}`, '--data-dir', dir, '--log-level', 'info', ...args], {
    name,
    env: { ...process.env, REGMIRROR_CONFIG: '' },
    ready: /regmirror listening/,
    readyTimeoutMs: 30_000,
  });
  const requests = () =>
    proc
      .output('stdout')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg?: string; method?: string; path?: string; status?: number })
      .filter((o) => o.msg === 'request' && o.path !== undefined)
      .map((o) => ({ method: o.method ?? '', path: o.path!, status: o.status ?? 0 }));
  return { url: `http://127.0.0.1:${p}`, port: p, dataDir: dir, args, proc, requests };
}

const describeLog = (log: AccessEntry[]) => log.map((e) => `${e.method} ${e.path} ${e.status}`).join('\n');
const imageDigests = (img: GeneratedImage) => [img.manifestDigest, img.configDigest, ...img.layers.map((l) => l.digest)].sort();

describe('two tiers: node mirrors whose upstream is a regional mirror', () => {
  /** Both tiers' tag TTL. */
  const TTL_S = 4;
  let regA: Registry; // docker.io
  let regB: Registry; // ghcr.io
  let regional: Tier;
  let node: Tier;
  let one: GeneratedImage;
  let two: GeneratedImage;
  let toolA: GeneratedImage; // the decoy: docker.io's org/tool:2
  let toolB: GeneratedImage; // ghcr.io's org/tool:2

  before(async () => {
    requireCommands('docker-registry');
    [regA, regB] = await Promise.all([startRegistry({ name: 'tier-registry-a' }), startRegistry({ name: 'tier-registry-b' })]);
    [one, two, toolA, toolB] = await Promise.all([
      makeImage({ layers: [90_000], tag: 'one' }),
      makeImage({ layers: [110_000], tag: 'two' }),
      makeImage({ layers: [40_000], tag: '2' }),
      makeImage({ layers: [60_000, 3000], tag: '2' }),
    ]);
    await pushImageHttp(regA.url, 'acme/web', 'stable', one);
    await pushImageHttp(regA.url, 'org/tool', '2', toolA);
    await pushImageHttp(regA.url, 'org/tool', 'decoy', toolA);
    await pushImageHttp(regB.url, 'org/tool', '2', toolB);
    regional = await startTier('regional', ['--upstream', `docker.io=${regA.url}`, '--upstream', `ghcr.io=${regB.url}`, '--tag-ttl', `${TTL_S}s`]);
    node = await startTier('node', ['--upstream', `docker.io=${regional.url}`, '--upstream', `ghcr.io=${regional.url}`, '--mirror-upstream', '*', '--tag-ttl', `${TTL_S}s`]);
    await Promise.all([regA.settle(), regB.settle()]);
    regA.resetLog();
    regB.resetLog();
  });
  after(cleanupAll);

  test('namespaces pass through both tiers: ?ns= on manifests, blobs, tag lists and referrers', async () => {
    const tool = await http(`${node.url}/v2/org/tool/manifests/2?ns=ghcr.io`, { headers: ACCEPT });
    assert.equal(tool.status, 200);
    assert.equal(tool.headers['docker-content-digest'], toolB.manifestDigest, 'ghcr.io’s org/tool, not docker.io’s decoy');
    assert.equal(tool.headers['oci-namespace'], 'ghcr.io');
    for (const b of [toolB.configBlob, ...toolB.layers]) {
      const got = await httpDigest(`${node.url}/v2/org/tool/blobs/${b.digest}?ns=ghcr.io`);
      assert.equal(got.digest, b.digest);
    }
    const web = await http(`${node.url}/v2/acme/web/manifests/stable`, { headers: ACCEPT }); // no ns: the default, docker.io
    assert.equal(web.headers['docker-content-digest'], one.manifestDigest);
    const tags = await http(`${node.url}/v2/org/tool/tags/list?ns=ghcr.io`);
    assert.equal(tags.status, 200);
    assert.deepEqual((JSON.parse(tags.body.toString()) as { tags: string[] }).tags, ['2'], 'ghcr.io’s tag list (docker.io’s has a decoy tag)');
    const tagsA = await http(`${node.url}/v2/org/tool/tags/list?ns=docker.io`);
    assert.deepEqual((JSON.parse(tagsA.body.toString()) as { tags: string[] }).tags, ['2', 'decoy']);
    const refs = await http(`${node.url}/v2/org/tool/referrers/${toolB.manifestDigest}?ns=ghcr.io`);
    assert.equal(refs.status, 200);
    await Promise.all([regA.settle(), regB.settle()]);
    const logA = regA.accessLog();
    const logB = regB.accessLog();
    for (const e of logB) if (e.kind !== 'base') assert.equal(e.repo, 'org/tool', `registry B saw only org/tool:\n${describeLog(logB)}`);
    assert.equal(countAccess(logA, { reference: toolA.manifestDigest }), 0, 'the decoy was never fetched');
    assert.equal(countAccess(logA, { method: 'GET', kind: 'blob' }), 0, `no blob from A:\n${describeLog(logA)}`);
    assert.ok(logB.some((e) => e.path.includes('/referrers/') || e.path.includes(`sha256-${toolB.manifestDigest.slice(7)}`)), `B was asked for the referrers:\n${describeLog(logB)}`);
    for (const e of [...logA, ...logB]) assert.ok(!e.path.includes('ns='), `?ns= is for the regional, not the registry: ${e.path}`);
    // The regional was asked with ?ns= on every endpoint kind (its log line is written when the response closes: wait for it).
    const expected = [/^\/v2\/org\/tool\/manifests\/2\?ns=ghcr\.io$/, /^\/v2\/org\/tool\/blobs\/sha256:[0-9a-f]{64}\?ns=ghcr\.io$/, /^\/v2\/org\/tool\/tags\/list\?ns=ghcr\.io$/, /^\/v2\/org\/tool\/referrers\/sha256:[0-9a-f]{64}\?ns=ghcr\.io$/, /^\/v2\/acme\/web\/manifests\/stable\?ns=docker\.io$/, /^\/v2\/org\/tool\/tags\/list\?ns=docker\.io$/];
    const deadline = performance.now() + 10_000;
    while (!expected.every((re) => regional.requests().some((r) => re.test(r.path))) && performance.now() < deadline) await delay(50);
    const asked = regional.requests();
    for (const re of expected) assert.ok(asked.some((r) => re.test(r.path)), `regional asked ${re}:\n${asked.map((r) => `${r.method} ${r.path} ${r.status}`).join('\n')}`);
    assert.ok(asked.every((r) => /[?&]ns=(docker\.io|ghcr\.io)(&|$)/.test(r.path) || r.path === '/v2/'), 'every request of the node carried ?ns=');
  });

  test('a tag moved upstream is visible at the node within one TTL of the regional’s confirmation, not two', { timeout: 60_000 }, async () => {
    const ttlMs = TTL_S * 1000;
    // The regional confirms the tag now (its TTL runs from here) ...
    await delay(ttlMs + 100); // both tiers' earlier answers expire
    const confirmed = performance.now();
    const r0 = await http(`${regional.url}/v2/acme/web/manifests/stable?ns=docker.io`, { headers: ACCEPT });
    assert.equal(r0.headers['docker-content-digest'], one.manifestDigest);
    assert.equal(r0.headers.age, '0', 'just confirmed: Age 0');
    // ... the node asks late in that TTL: the regional's answer is old, and says so.
    await delay(ttlMs - 1200);
    const n0 = await http(`${node.url}/v2/acme/web/manifests/stable`, { headers: ACCEPT });
    assert.equal(n0.headers['docker-content-digest'], one.manifestDigest);
    const nodeAge = Number(n0.headers.age);
    assert.ok(nodeAge >= TTL_S - 2, `the node passes the regional's Age on (got ${n0.headers.age})`);
    // The tag moves upstream right after.
    await pushImageHttp(regA.url, 'acme/web', 'stable', two);
    const moved = performance.now();
    let seenAt = 0;
    let polls = 0;
    while (performance.now() - confirmed < 3 * ttlMs) {
      polls++;
      const r = await http(`${node.url}/v2/acme/web/manifests/stable`, { headers: ACCEPT });
      assert.equal(r.status, 200);
      if (r.headers['docker-content-digest'] === two.manifestDigest) {
        seenAt = performance.now();
        break;
      }
      await delay(100);
    }
    assert.ok(seenAt > 0, 'the new digest reached the node');
    const sinceConfirm = seenAt - confirmed;
    const sinceMove = seenAt - moved;
    process.stdout.write(`# two tiers, TTL ${TTL_S}s each: node asked ${(n0.headers.age as string)}s into the regional's TTL; new digest at the node ${Math.round(sinceMove)} ms after the move, ${Math.round(sinceConfirm)} ms after the regional's confirmation (sum of TTLs would allow ${TTL_S + TTL_S - 1}s+); ${polls} polls\n`);
    // One TTL (+1 s of slack for the polls and both tiers' requests), where adding the TTLs would allow about 2 TTLs − 1.2 s.
    assert.ok(sinceConfirm < ttlMs + 1000, `visible ${Math.round(sinceConfirm)} ms after the confirmation: within one TTL (+1 s), not two`);
  });

  test('a stale answer of the regional (its registry down) is stale at the node, with the Warning, and not taken as confirmed', { timeout: 60_000 }, async () => {
    const ttlMs = TTL_S * 1000;
    const fresh = await http(`${node.url}/v2/acme/web/manifests/stable`, { headers: ACCEPT });
    assert.equal(fresh.headers['docker-content-digest'], two.manifestDigest);
    await regA.stop();
    // Past both tiers' TTLs with a margin: the regional's confirmation can be up to a poll younger than the node's.
    await delay(ttlMs + 1500);
    const stale = await http(`${node.url}/v2/acme/web/manifests/stable`, { headers: ACCEPT });
    assert.equal(stale.status, 200);
    assert.equal(stale.headers['docker-content-digest'], two.manifestDigest);
    assert.match(String(stale.headers.warning), /^299 - "regmirror: upstream docker\.io unavailable/, 'the regional’s Warning reaches the node’s client');
    assert.ok(Number(stale.headers.age) >= TTL_S, `Age tells how old it is: ${stale.headers.age}`);
    // Not confirmed: the node asks the regional again on the next request (no TTL of trust for a stale answer).
    const before = regional.requests().filter((r) => r.path.startsWith('/v2/acme/web/manifests/stable')).length;
    const again = await http(`${node.url}/v2/acme/web/manifests/stable`, { headers: ACCEPT });
    assert.match(String(again.headers.warning), /^299 /);
    await delay(300); // the regional logs a request when its response closes
    assert.equal(regional.requests().filter((r) => r.path.startsWith('/v2/acme/web/manifests/stable')).length, before + 1, 'the node revalidated again');
    // The registry back: fresh answers at the node within one TTL (the regional retries after its outage backoff).
    await regA.restart();
    const back = performance.now();
    let fine = false;
    while (performance.now() - back < ttlMs + 3000) {
      const r = await http(`${node.url}/v2/acme/web/manifests/stable`, { headers: ACCEPT });
      if (r.status === 200 && r.headers.warning === undefined) {
        fine = true;
        process.stdout.write(`# registry back: node answers fresh again after ${Math.round(performance.now() - back)} ms\n`);
        break;
      }
      await delay(200);
    }
    assert.ok(fine, 'fresh answers again once the registry is back');
  });

  test('the regional down: the node serves its last answer stale with a Warning, digests from its cache', { timeout: 60_000 }, async () => {
    const ttlMs = TTL_S * 1000;
    const known = await http(`${node.url}/v2/acme/web/manifests/stable`, { headers: ACCEPT });
    assert.equal(known.headers['docker-content-digest'], two.manifestDigest);
    const layer = two.layers[0]!;
    assert.equal((await httpDigest(`${node.url}/v2/acme/web/blobs/${layer.digest}`)).digest, layer.digest);
    const exit = await regional.proc.stop();
    assert.equal(exit.code, 0, 'the regional drained and exited 0');
    await delay(ttlMs + 1500);
    const stale = await http(`${node.url}/v2/acme/web/manifests/stable`, { headers: ACCEPT });
    assert.equal(stale.status, 200);
    assert.equal(stale.headers['docker-content-digest'], two.manifestDigest);
    assert.match(String(stale.headers.warning), /^299 - "regmirror: upstream docker\.io unavailable/);
    assert.equal((await httpDigest(`${node.url}/v2/acme/web/blobs/${layer.digest}`)).digest, layer.digest, 'a cached blob still served');
    const byDigest = await http(`${node.url}/v2/acme/web/manifests/${two.manifestDigest}`, { headers: ACCEPT });
    assert.equal(byDigest.status, 200);
    assert.equal(byDigest.headers.warning, undefined, 'a digest is never stale');
  });
});

describe('two tiers with containerd: node → regional → registry', () => {
  let reg: Registry;
  let regional: Tier;
  let img: GeneratedImage;

  before(async () => {
    requireCommands('docker-registry', 'containerd', 'ctr');
    reg = await startRegistry({ name: 'tier-registry-hub' });
    img = await makeImage({ layers: [400_000, 150_000, 7000], tag: 'tag' });
    await pushImageHttp(reg.url, 'library/x', 'tag', img);
    regional = await startTier('regional-ctr', ['--upstream', `docker.io=${reg.url}`, '--tag-ttl', '1h']);
    await reg.settle();
    reg.resetLog();
  });
  after(cleanupAll);

  test('containerd pulls docker.io/library/x:tag through a node mirror and the regional: each blob GET once; a second node costs the registry nothing', { timeout: 180_000 }, async () => {
    const dead = `http://127.0.0.1:${await freePort()}`; // a fallback to the "registry itself" cannot succeed
    const nodeArgs = ['--upstream', `docker.io=${regional.url}`, '--mirror-upstream', 'docker.io', '--tag-ttl', '1h'];
    const started = performance.now();
    const nodes: Tier[] = [];
    let afterFirst = 0;
    for (const [i, name] of ['node-1', 'node-2'].entries()) {
      const node = await startTier(name, nodeArgs);
      nodes.push(node);
      const certs = await tmpDir(`certs-${name}-`);
      writeHostsToml(certs, 'docker.io', dead, node.url);
      const ctd = await startContainerd();
      await ctrFetch({ sock: ctd.sock, hostsDir: certs, ref: 'docker.io/library/x:tag' });
      // containerd verified every digest while fetching; its content store holds exactly the image.
      assert.deepEqual((await ctrContentList(ctd.sock)).map((c) => c.digest).sort(), imageDigests(img), `${name}: containerd holds the image`);
      await ctd.stop();
      await reg.settle();
      const log = reg.accessLog();
      const blobGets = log.filter((e) => e.method === 'GET' && e.kind === 'blob');
      process.stdout.write(`# containerd via ${name}: registry requests so far ${log.length} (${blobGets.length} blob GETs for ${1 + img.layers.length} blobs)\n`);
      for (const b of [img.configBlob, ...img.layers]) assert.equal(countAccess(log, { method: 'GET', kind: 'blob', reference: b.digest }), 1, `${name}: blob ${b.digest} fetched from the registry once:\n${describeLog(log)}`);
      assert.equal(blobGets.length, 1 + img.layers.length);
      assert.equal(countAccess(log, { method: 'GET', kind: 'manifest', reference: img.manifestDigest }), 1, 'the manifest GET once');
      if (i === 0) afterFirst = log.length;
      if (i === 1) {
        assert.equal(log.length, afterFirst, `node 2 cost the registry no request at all:\n${describeLog(log)}`);
        // Node 2 asked the regional for everything, and the regional had it all: the registry saw nothing new.
        const asked = regional.requests().filter((r) => r.method === 'GET' && r.path.includes('/blobs/'));
        assert.equal(asked.length, 2 * (1 + img.layers.length), 'the regional served each blob to each node once');
      }
      // containerd sent ?ns=docker.io to the node, and the node sent it on to the regional.
      assert.ok(node.requests().some((r) => /^\/v2\/library\/x\/manifests\/tag\?ns=docker\.io$/.test(r.path)), 'containerd → node with ?ns=docker.io');
    }
    const registryRequests = reg.accessLog().length;
    for (const r of regional.requests()) if (r.path !== '/v2/') assert.match(r.path, /[?&]ns=docker\.io(&|$)/, 'node → regional with ?ns=docker.io');
    process.stdout.write(`# containerd two-tier: 2 nodes, ${registryRequests} registry requests in all, ${Math.round(performance.now() - started)} ms\n`);
    for (const n of nodes) assert.equal((await n.proc.stop()).code, 0);
  });
});
