/**
 * Self-test of the integration-test harness (test/harness/*): every helper is exercised against
 * the real binaries. Missing binaries fail the run (never skip).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPublicKey } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { get as httpGet } from 'node:http';
import { cleanupAll, freePort, liveProcs, ProcError, requireCommands, run, spawnProc, tmpDir } from './harness/proc.js';
import { countAccess, startRegistry, sumBytes, type Registry } from './harness/registry.js';
import {
  MediaType,
  makeImage,
  makeIndex,
  pullImage,
  pushImage,
  pushIndexHttp,
  putBlob,
  randomBlobFile,
  readLayoutBlob,
  skopeoInspect,
  type GeneratedImage,
} from './harness/oci.js';
import { redisCommand, startRedis } from './harness/redis.js';
import { libtrustKeyId, parseScope, startTokenServer } from './harness/tokenserver.js';
import { startRelay } from './harness/relay.js';
import { startS3Registry } from './harness/s3.js';
import { ctrContentList, ctrFetch, startContainerd, writeHostsToml } from './harness/containerd.js';

/** GET on a new connection (no keep-alive pool), resolving with the status. */
function freshGet(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpGet(url, { agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
  });
}

/** True if `pid` exists and is not a zombie (orphans may wait for a PID 1 that never reaps). */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

const sha256hex = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const digestOf = (b: Buffer): string => `sha256:${sha256hex(b)}`;

before(() => {
  requireCommands('docker-registry', 'skopeo', 'redis-server', 'containerd', 'ctr', 'openssl');
});

after(async () => {
  await cleanupAll();
  assert.equal(liveProcs().length, 0, 'every child process is stopped');
});

describe('proc', () => {
  test('waitFor, clear errors, group kill, tmpDir, freePort', async () => {
    const p = await spawnProc('sh', ['-c', 'echo hello; echo oops >&2; sleep 60 & echo child=$!; wait'], {
      name: 'sleeper',
      ready: /child=\d+/,
    });
    const m = await p.waitFor(/child=(\d+)/);
    const childPid = Number(m[1]);
    await p.waitFor(/oops/, { stream: 'stderr' });
    assert.match(p.output('stderr'), /^oops$/);
    await assert.rejects(p.waitFor(/never printed/, { timeoutMs: 100 }), (err: unknown) => {
      assert.ok(err instanceof ProcError);
      assert.match(err.message, /did not print \/never printed\/ within 100 ms/);
      assert.match(err.message, /hello/);
      return true;
    });
    const exit = await p.stop();
    assert.equal(exit.signal, 'SIGTERM');
    assert.equal(isAlive(childPid), false, 'the grandchild went with the group');
    assert.equal(p.running, false);

    await assert.rejects(run('sh', ['-c', 'echo boom; exit 3']), /failed \(code 3\)[\s\S]*boom/);
    await assert.rejects(spawnProc('sh', ['-c', 'echo bye'], { ready: /never/ }), /exited \(code 0\) before printing/);

    const dir = await tmpDir('selftest-');
    assert.ok(existsSync(dir));
    const port = await freePort();
    assert.ok(port > 1024 && port < 65536);
  });
});

describe('registry + oci + skopeo', () => {
  let reg: Registry;
  let img: GeneratedImage;

  before(async () => {
    reg = await startRegistry();
    img = await makeImage({ layers: [1 << 20, 256 * 1024] });
  });

  test('push with skopeo, pull back, count GETs and bytes in the access log', async () => {
    assert.match(reg.host, /^127\.0\.0\.1:\d+$/);
    await pushImage(img, reg.host, 'test/app:v1');
    await reg.settle();
    assert.equal(countAccess(reg.accessLog(), { method: 'PUT', kind: 'manifest', status: 201 }), 1);
    assert.equal(await skopeoInspect(reg.host, 'test/app:v1', { raw: true }), img.manifest.toString('utf8'));
    reg.resetLog();

    const out = await tmpDir('pull-');
    const pulled = await pullImage(reg.host, 'test/app:v1', out);
    await reg.settle();
    const log = reg.accessLog();
    assert.equal(countAccess(log, { method: 'GET', kind: 'manifest', status: 200 }), 1);
    assert.equal(countAccess(log, { method: 'GET', kind: 'blob', status: 200 }), 3);
    const layerBytes = img.layers.reduce((n, l) => n + l.size, 0);
    assert.equal(sumBytes(log, { method: 'GET', kind: 'blob' }), layerBytes + img.config.length);
    assert.equal(log.find((e) => e.kind === 'manifest')?.bytes, img.manifest.length);
    for (const l of img.layers) {
      assert.equal(digestOf(await readLayoutBlob(out, l.digest)), l.digest);
    }
    assert.ok(pulled.durationMs < 20_000);
  });

  test('multi-platform index via skopeo --all; Docker list and a 64 MiB blob over HTTP', async () => {
    const idx = await makeIndex({ layers: [64 * 1024] });
    await pushImage(idx, reg.host, 'test/multi:v1', { all: true });
    const res = await fetch(`${reg.url}/v2/test/multi/manifests/v1`, { headers: { Accept: MediaType.ociIndex } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), MediaType.ociIndex);
    assert.equal(res.headers.get('docker-content-digest'), idx.indexDigest);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), idx.index);
    const arm = idx.images[1];
    assert.ok(arm);
    const out = await tmpDir('pull-arm-');
    await pullImage(reg.host, `test/multi@${arm.manifestDigest}`, out);

    const list = await makeIndex({ layers: [1000], format: 'docker' });
    const listDigest = await pushIndexHttp(reg.url, 'test/dlist', 'v1', list);
    assert.equal(listDigest, list.indexDigest);
    const lres = await fetch(`${reg.url}/v2/test/dlist/manifests/v1`, { headers: { Accept: MediaType.dockerList } });
    assert.equal(lres.headers.get('content-type'), MediaType.dockerList);
    await lres.arrayBuffer();

    const big = await randomBlobFile(await tmpDir('big-'), 64 << 20);
    assert.equal(await putBlob(reg.url, 'test/big', big), big.digest);
    const head = await fetch(`${reg.url}/v2/test/big/blobs/${big.digest}`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(64 << 20));
  });

  test("distribution's own proxy mode caches blobs (benchmark peer)", async () => {
    const proxy = await startRegistry({ name: 'registry-proxy', proxy: { remoteurl: reg.url } });
    reg.resetLog();
    await pullImage(proxy.host, 'test/app:v1', await tmpDir('pull-proxy1-'));
    // distribution 2.8's proxy reads every missed blob twice upstream (HEAD, then one GET streamed
    // to the client and one GET in the background that fills its cache): wait for the second.
    const gets = await reg.waitForCount((e) => e.method === 'GET' && e.kind === 'blob', 6);
    assert.equal(new Set(gets.map((e) => e.reference)).size, 3);
    await reg.settle();
    reg.resetLog();
    await pullImage(proxy.host, 'test/app:v1', await tmpDir('pull-proxy2-'));
    await reg.settle();
    assert.equal(countAccess(reg.accessLog(), { kind: 'blob' }), 0, 'second pull served from the proxy cache');
    await proxy.stop();
  });

  test('restart on the same port and storage', async () => {
    const port = reg.port;
    await reg.stop();
    await assert.rejects(fetch(`${reg.url}/v2/`));
    await reg.restart();
    assert.equal(reg.port, port);
    const res = await fetch(`${reg.url}/v2/test/app/manifests/v1`, { method: 'HEAD', headers: { Accept: MediaType.ociManifest } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-content-digest'), img.manifestDigest);
  });
});

describe('token auth', () => {
  test('scope parsing; libtrust key id matches an openssl + coreutils computation', async () => {
    const scope = parseScope('repository:127.0.0.1:5000/foo/bar:pull,push');
    assert.deepEqual(scope, { type: 'repository', name: '127.0.0.1:5000/foo/bar', actions: ['pull', 'push'] });
    const ts = await startTokenServer();
    const shell = await run('sh', [
      '-c',
      `openssl x509 -in '${ts.certFile}' -pubkey -noout | openssl pkey -pubin -outform DER | ` +
        'openssl dgst -sha256 -binary | head -c 30 | base32 -w0',
    ]);
    const expected = (shell.stdout.trim().match(/.{4}/g) ?? []).join(':');
    assert.match(ts.kid, /^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$/);
    assert.equal(ts.kid, expected);
    assert.equal(libtrustKeyId(createPublicKey(await readFile(ts.certFile))), ts.kid);
    await ts.close();
  });

  test('Bearer dance: anonymous pull, Basic pull and push, token requests counted (kid)', async () => {
    const ts = await startTokenServer({ users: { alice: 'secret' } });
    const reg = await startRegistry({ auth: ts.registryAuth(), name: 'registry-auth' });
    const ping = await fetch(`${reg.url}/v2/`);
    assert.equal(ping.status, 401);
    assert.equal(ping.headers.get('www-authenticate'), `Bearer realm="${ts.realm}",service="${ts.service}"`);

    const img = await makeImage({ layers: [10_000] });
    await pushImage(img, reg.host, 'team/app:v1', { creds: 'alice:secret' });
    assert.ok(ts.requests().some((r) => r.user === 'alice' && r.scopes.some((s) => s.includes('push'))));

    ts.reset();
    await pullImage(reg.host, 'team/app:v1', await tmpDir('pull-anon-'));
    assert.ok(ts.requests().length >= 1);
    assert.ok(ts.requests().every((r) => r.user === undefined && r.status === 200));
    assert.ok(ts.requests().some((r) => r.scopes.includes('repository:team/app:pull')));

    ts.reset();
    await pullImage(reg.host, 'team/app:v1', await tmpDir('pull-alice-'), { creds: 'alice:secret' });
    assert.ok(ts.requests().every((r) => r.user === 'alice'));

    const denied = await fetch(`${ts.realm}?service=${ts.service}&scope=repository:team/app:pull`, {
      headers: { Authorization: `Basic ${Buffer.from('alice:wrong').toString('base64')}` },
    });
    assert.equal(denied.status, 401);

    // Raw dance, and distribution's 60 s leeway on exp.
    const tokRes = await fetch(`${ts.realm}?service=${encodeURIComponent(ts.service)}&scope=repository:team/app:pull`);
    const tok = (await tokRes.json()) as { token: string; access_token: string; expires_in: number; issued_at: string };
    assert.equal(tok.token, tok.access_token);
    assert.equal(tok.expires_in, 300);
    const ok = await fetch(`${reg.url}/v2/team/app/manifests/v1`, {
      headers: { Authorization: `Bearer ${tok.token}`, Accept: MediaType.ociManifest },
    });
    assert.equal(ok.status, 200);
    await ok.arrayBuffer();
    const pullOnly = [{ type: 'repository', name: 'team/app', actions: ['pull'] }];
    const lenient = await fetch(`${reg.url}/v2/team/app/manifests/v1`, {
      method: 'HEAD',
      headers: { Authorization: `Bearer ${ts.issue('', pullOnly, -30)}`, Accept: MediaType.ociManifest },
    });
    assert.equal(lenient.status, 200, 'expired 30 s ago is still inside the 60 s leeway');
    const expired = await fetch(`${reg.url}/v2/team/app/manifests/v1`, {
      method: 'HEAD',
      headers: { Authorization: `Bearer ${ts.issue('', pullOnly, -90)}`, Accept: MediaType.ociManifest },
    });
    assert.equal(expired.status, 401);
  });

  test('credentials required (x5c header): anonymous refused, Basic works', async () => {
    const ts = await startTokenServer({ users: { bob: 'pw' }, requireCredentials: true, keyMode: 'x5c', expiresIn: 5 });
    const reg = await startRegistry({ auth: ts.registryAuth(), name: 'registry-auth-x5c' });
    const img = await makeImage({ layers: [5000] });
    await pushImage(img, reg.host, 'private/app:v1', { creds: 'bob:pw' });
    await assert.rejects(pullImage(reg.host, 'private/app:v1', await tmpDir('pull-x-')), /401|unauthorized|authentication required/i);
    assert.ok(ts.requests().some((r) => r.status === 401 && r.user === undefined));
    await pullImage(reg.host, 'private/app:v1', await tmpDir('pull-bob-'), { creds: 'bob:pw' });
    const tokRes = await fetch(`${ts.realm}?service=${ts.service}&scope=repository:private/app:pull`, {
      headers: { Authorization: `Basic ${Buffer.from('bob:pw').toString('base64')}` },
    });
    const tok = (await tokRes.json()) as { expires_in: number };
    assert.equal(tok.expires_in, 5);
  });
});

describe('redis', () => {
  test('PING over raw TCP, SET/GET, stop', async () => {
    const r = await startRedis();
    assert.match(r.url, /^redis:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(await redisCommand(r.url, 'PING'), 'PONG');
    assert.equal(await redisCommand(r.url, 'SET', 'k', 'v'), 'OK');
    assert.equal(await redisCommand(r.url, 'GET', 'k'), 'v');
    assert.equal(await redisCommand(r.url, 'CONFIG', 'GET', 'save').then((v) => JSON.stringify(v)), '["save",""]');
    await r.stop();
    await assert.rejects(redisCommand(r.url, 'PING'), /ECONNREFUSED/);
  });
});

describe('relay', () => {
  let reg: Registry;
  let img: GeneratedImage;

  before(async () => {
    reg = await startRegistry({ name: 'registry-relay' });
    img = await makeImage({ layers: [1536 * 1024] });
    await pushImage(img, reg.host, 'test/relay:v1');
  });

  test('counts, throttle, corrupt, truncate, fail, down', async () => {
    const relay = await startRelay({ target: reg.url });
    const layer = img.layers[0];
    assert.ok(layer);
    const blobUrl = `${relay.url}/v2/test/relay/blobs/${layer.digest}`;

    const full = Buffer.from(await (await fetch(blobUrl)).arrayBuffer());
    assert.equal(digestOf(full), layer.digest);
    let st = relay.stats();
    assert.equal(st.requests, 1);
    assert.equal(st.bytes, layer.size);
    assert.deepEqual(
      st.log.map((r) => [r.method, r.path, r.status, r.bytes]),
      [['GET', `/v2/test/relay/blobs/${layer.digest}`, 200, layer.size]],
    );

    // 5 MB/s: 1.5 MiB takes ~0.31 s.
    relay.reset();
    relay.setThrottle(5_000_000);
    const t0 = performance.now();
    const slow = Buffer.from(await (await fetch(blobUrl)).arrayBuffer());
    const elapsed = performance.now() - t0;
    assert.equal(slow.length, layer.size);
    assert.ok(elapsed > 250 && elapsed < 2000, `throttled transfer took ${elapsed.toFixed(0)} ms`);
    relay.setThrottle(undefined);

    relay.setMode('corrupt');
    const bad = Buffer.from(await (await fetch(blobUrl)).arrayBuffer());
    assert.equal(bad.length, layer.size);
    assert.notEqual(digestOf(bad), layer.digest);
    const manifestRes = await fetch(`${relay.url}/v2/test/relay/manifests/v1`, { headers: { Accept: MediaType.ociManifest } });
    assert.deepEqual(Buffer.from(await manifestRes.arrayBuffer()), img.manifest, 'manifests pass untouched');
    await assert.rejects(pullImage(relay.host, 'test/relay:v1', await tmpDir('pull-bad-')), /digest/i);

    relay.reset();
    relay.setMode('truncate', { afterBytes: 100_000 });
    await assert.rejects(fetch(blobUrl).then((r) => r.arrayBuffer()));
    st = relay.stats();
    assert.equal(st.bytes, 100_000);
    assert.equal(st.log[0]?.aborted, true);

    relay.setMode('fail', { times: 1 });
    const failed = await fetch(blobUrl);
    assert.equal(failed.status, 503);
    await failed.arrayBuffer();
    assert.equal(relay.mode(), 'pass');
    const again = await fetch(blobUrl, { method: 'HEAD' });
    assert.equal(again.status, 200);

    relay.setMode('down');
    await assert.rejects(freshGet(`${relay.url}/v2/`), /ECONNRESET|socket hang up/);
    assert.equal(relay.stats().refused, 1);
    relay.setMode('pass');
    assert.equal(await freshGet(`${relay.url}/v2/`), 200);
  });
});

describe('s3-backed upstream', () => {
  test('blob GET answers 307 to a presigned S3 URL; ranges; relay counts bytes', async () => {
    const fsReg = await startRegistry({ name: 'registry-fs-for-s3' });
    const img = await makeImage({ layers: [512 * 1024] });
    await pushImage(img, fsReg.host, 'test/s3:v1');
    const s3reg = await startS3Registry({ from: fsReg });
    assert.ok(s3reg.objects > 5);
    const { registry, s3 } = s3reg;
    const layer = img.layers[0];
    assert.ok(layer);

    const man = await fetch(`${registry.url}/v2/test/s3/manifests/v1`, { headers: { Accept: MediaType.ociManifest } });
    assert.equal(man.status, 200);
    assert.deepEqual(Buffer.from(await man.arrayBuffer()), img.manifest);

    s3.reset();
    const redir = await fetch(`${registry.url}/v2/test/s3/blobs/${layer.digest}`, { redirect: 'manual' });
    assert.equal(redir.status, 307);
    const location = redir.headers.get('location') ?? '';
    await redir.arrayBuffer();
    assert.ok(location.startsWith(`${s3.url}/`), location);
    assert.match(location, /X-Amz-Signature=/);

    const whole = await fetch(location);
    assert.equal(whole.status, 200);
    assert.equal(digestOf(Buffer.from(await whole.arrayBuffer())), layer.digest);
    assert.equal(s3.blobBytes(), layer.size);

    const single = await fetch(location, { headers: { Range: 'bytes=10-19' } });
    assert.equal(single.status, 206);
    assert.equal(single.headers.get('content-range'), `bytes 10-19/${layer.size}`);
    assert.equal((await single.arrayBuffer()).byteLength, 10);

    const multi = await fetch(location, { headers: { Range: 'bytes=0-9,100-199' } });
    assert.equal(multi.status, 200, 'multi-range answered with the whole object, like Amazon S3');
    assert.equal((await multi.arrayBuffer()).byteLength, layer.size);
    assert.equal(s3.blobBytes(), 2 * layer.size + 10);
    assert.equal(s3.requests().at(-1)?.range, 'bytes=0-9,100-199');

    // s3rver itself (unsigned GET, no relay): 206 with the whole object.
    const key = `${s3.directUrl}/${s3.bucket}/reg/docker/registry/v2/blobs/sha256/${layer.digest.slice(7, 9)}/${layer.digest.slice(7)}/data`;
    const raw = await fetch(key, { headers: { Range: 'bytes=0-9,100-199' } });
    assert.equal(raw.status, 206);
    assert.equal(raw.headers.get('content-range'), `bytes 0-${layer.size - 1}/${layer.size}`);
    assert.equal((await raw.arrayBuffer()).byteLength, layer.size);

    s3.reset();
    await pullImage(registry.host, 'test/s3:v1', await tmpDir('pull-s3-'));
    assert.equal(s3.blobBytes(), layer.size + img.config.length);
    const presigned = s3.presignedRequests();
    assert.equal(presigned.length, 2);
    assert.ok(presigned.every((r) => r.authorization === undefined), 'presigned GETs carry no Authorization');
    assert.ok(s3.bytesSent() > s3.blobBytes(), 'the registry itself reads manifests and links from S3');
    await registry.settle();
    assert.ok(countAccess(registry.accessLog(), { method: 'GET', kind: 'blob', status: 307 }) >= 2);
  });
});

describe('containerd', () => {
  test('ctr content fetch through a hosts.toml mirror host', async (t) => {
    const [reg, ctd] = await Promise.all([startRegistry({ name: 'registry-ctr' }), startContainerd()]);
    const img = await makeImage({ layers: [300_000, 4000] });
    await pushImage(img, reg.host, 'library/app:v1');
    const certs = await tmpDir('certs-');
    const file = writeHostsToml(certs, 'docker.io', 'https://registry-1.docker.io', reg.url);
    assert.match(await readFile(file, 'utf8'), /\[host\."http:\/\/127\.0\.0\.1:\d+"\]\n {2}capabilities = \["pull", "resolve"\]/);
    reg.resetLog();
    const res = await ctrFetch({ sock: ctd.sock, hostsDir: certs, ref: 'docker.io/library/app:v1' });
    await reg.settle();
    const log = reg.accessLog();
    t.diagnostic(`ctr content fetch took ${res.durationMs.toFixed(0)} ms; requests:`);
    for (const e of log) t.diagnostic(`  ${e.method} ${e.path} ${e.status} ${e.bytes}`);
    assert.ok(log.length > 0 && log.every((e) => e.path.endsWith('?ns=docker.io')), 'containerd sends ?ns=docker.io');
    assert.ok(log.every((e) => e.userAgent.startsWith('containerd/')));
    assert.deepEqual(
      log.map((e) => `${e.method} ${e.pathname}`).sort(),
      [
        `HEAD /v2/library/app/manifests/v1`,
        `GET /v2/library/app/manifests/${img.manifestDigest}`,
        `GET /v2/library/app/blobs/${img.configDigest}`,
        ...img.layers.map((l) => `GET /v2/library/app/blobs/${l.digest}`),
      ].sort(),
    );
    const content = (await ctrContentList(ctd.sock)).map((c) => c.digest).sort();
    assert.deepEqual(content, [img.manifestDigest, img.configDigest, ...img.layers.map((l) => l.digest)].sort());
  });
});
