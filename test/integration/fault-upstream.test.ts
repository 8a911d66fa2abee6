// Issue 9, items 2, 10 (and the hostile-relay list under "Tests"): a hostile upstream never gets wrong bytes past the mirror, nothing bad is cached, credentials never follow a redirect elsewhere.
/**
 * A hostile relay between a real registry and a mirror CHILD: flipped byte, truncation, reset, stall,
 * Content-Length too large, manifest bytes that do not match their digest, a 50 MiB manifest, a redirect
 * loop, a redirect to another origin with credentials configured, and a redirect to a link-local address
 * (inside a private network namespace, so nothing can leave the machine even if the mirror followed it).
 * For each: the client never sees a clean 200/206 with wrong bytes, nothing is cached (no blob or manifest
 * file, no temp leftovers), and the mirror keeps serving.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupAll, delay, freePort, registerCleanup, requireCommands, run, spawnProc, tmpDir } from '../harness/proc.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { makeImage, pushImageHttp, putBlob, sha256, type GeneratedImage } from '../harness/oci.js';
import { startRelay, type Relay } from '../harness/relay.js';
import { http, httpDigest } from '../helpers/http.js';
import { MAIN_JS, startChild, type ChildMirror } from './fault-child.js';

const BLOB_SIZE = 1 << 20;

function blobFile(dataDir: string, digest: string): string {
  const hex = digest.split(':')[1]!;
  return join(dataDir, 'blobs', 'sha256', hex.slice(0, 2), hex);
}

function manifestFile(dataDir: string, digest: string): string {
  const hex = digest.split(':')[1]!;
  return join(dataDir, 'manifests', 'sha256', hex.slice(0, 2), hex);
}

/** Temp files of fills, once every fill has ended (polled: a failed fill removes its file just after the answer). */
async function tmpLeftovers(dataDir: string): Promise<string[]> {
  const dir = join(dataDir, 'tmp');
  let left: string[] = [];
  for (let i = 0; i < 50; i++) {
    left = existsSync(dir) ? readdirSync(dir) : [];
    if (left.length === 0) return left;
    await delay(100);
  }
  return left;
}

describe('hostile upstream', () => {
  let upstream: Registry;
  let relay: Relay;
  let other: Relay;
  let child: ChildMirror;
  let img: GeneratedImage;
  const blobs = new Map<string, string>();

  before(async () => {
    requireCommands('docker-registry', 'ip', 'curl');
    upstream = await startRegistry();
    // Credentials are configured for docker.io and the relay challenges for them, so every case runs with them in play.
    relay = await startRelay({ target: upstream.url, requireBasic: { realm: 'hostile' }, name: 'hostile' });
    other = await startRelay({ target: upstream.url, name: 'other-origin' });
    img = await makeImage({ layers: [2000] });
    await pushImageHttp(upstream.url, 'library/app', '1', img);
    for (const label of ['flip', 'truncate', 'reset', 'stall', 'overlength', 'loop', 'cross', 'healthy']) {
      blobs.set(label, await putBlob(upstream.url, 'library/app', randomBytes(BLOB_SIZE)));
    }
    child = await startChild({
      upstreams: [`docker.io=${relay.url}`],
      config: { bodyIdleTimeout: '2s', credentials: { 'docker.io': { username: 'mirror', password: 'secret' } } },
    });
  });
  after(cleanupAll);

  /** The client never gets a clean 200/206 with wrong bytes; returns what it got. */
  async function fetchBlob(digest: string): Promise<{ status: number; complete: boolean; digest: string }> {
    const r = await httpDigest(`${child.url}/v2/app/blobs/${digest}`);
    if ((r.status === 200 || r.status === 206) && r.complete) assert.equal(r.digest, digest, `a clean ${r.status} must carry the right bytes`);
    return r;
  }

  async function assertNothingCached(digest: string): Promise<void> {
    assert.equal(existsSync(blobFile(child.dataDir, digest)), false, 'no blob file for bytes that failed verification');
    assert.deepEqual(await tmpLeftovers(child.dataDir), [], 'no temp files left');
  }

  async function assertStillServing(): Promise<void> {
    relay.setMode('pass');
    assert.ok(child.proc.running, 'the mirror process is alive');
    const m = await http(`${child.url}/v2/app/manifests/1`, { headers: { accept: img.manifestMediaType } });
    assert.equal(m.status, 200);
    assert.ok(m.body.equals(img.manifest));
  }

  const bodyFaults: Array<[string, Parameters<Relay['setMode']>[0], Parameters<Relay['setMode']>[1]]> = [
    ['flip', 'corrupt', { at: BLOB_SIZE >> 1 }],
    ['truncate', 'truncate', { afterBytes: 300_000 }],
    ['reset', 'reset', { afterBytes: 300_000 }],
    ['stall', 'stall', { afterBytes: 300_000 }],
    ['overlength', 'overlength', { extraLength: 4096 }],
  ];
  for (const [label, mode, opts] of bodyFaults) {
    test(`${label}: no clean answer with wrong bytes, nothing cached, mirror keeps serving`, { timeout: 60_000 }, async () => {
      const digest = blobs.get(label)!;
      relay.setMode(mode, { ...opts, times: 1 });
      const r = await fetchBlob(digest);
      assert.ok(!(r.complete && (r.status === 200 || r.status === 206)), `the client must see an error or an aborted body, got ${r.status} complete=${r.complete}`);
      await assertNothingCached(digest);
      await assertStillServing();
      // Once the upstream behaves, the same blob is served whole and right.
      const again = await fetchBlob(digest);
      assert.equal(again.status, 200);
      assert.ok(again.complete);
    });
  }

  test('manifest bytes that do not match their digest are refused, by digest and by tag', { timeout: 60_000 }, async () => {
    // A manifest the mirror has not cached yet (the other tests cache img's).
    const fresh = await makeImage({ layers: [100], annotations: { case: 'tampered' } });
    await pushImageHttp(upstream.url, 'library/app', 'tampered', fresh);
    const tampered = (b: Buffer) => Buffer.concat([b, Buffer.from(' ')]);
    relay.setMode('rewrite', { match: (r) => r.method === 'GET' && r.path.includes('/manifests/'), rewrite: tampered });
    const byDigest = await http(`${child.url}/v2/app/manifests/${fresh.manifestDigest}`, { headers: { accept: fresh.manifestMediaType } });
    assert.notEqual(byDigest.status, 200, 'bytes that do not hash to the requested digest are never a 200');
    const byTag = await http(`${child.url}/v2/app/manifests/tampered`, { headers: { accept: fresh.manifestMediaType } });
    if (byTag.status === 200) {
      const claimed = byTag.headers['docker-content-digest'];
      assert.equal(claimed, sha256(byTag.body), 'a 200 carries bytes that match its Docker-Content-Digest');
      assert.ok(!byTag.body.equals(tampered(fresh.manifest)), 'the tampered bytes (which do not match the upstream digest) are not served');
    }
    assert.equal(existsSync(manifestFile(child.dataDir, fresh.manifestDigest)), false, 'nothing cached under the real digest');
    assert.equal(existsSync(manifestFile(child.dataDir, sha256(tampered(fresh.manifest)))), false, 'nothing cached under the tampered digest');
    await assertStillServing();
  });

  test('a 50 MiB manifest is refused without holding it in memory, nothing cached', { timeout: 60_000 }, async () => {
    const huge = Buffer.alloc(50 * 2 ** 20, 0x20);
    Buffer.from('{"schemaVersion":2,"pad":"').copy(huge);
    huge.write('"}', huge.length - 2);
    const fresh = await makeImage({ layers: [100], annotations: { case: 'huge' } });
    await pushImageHttp(upstream.url, 'library/app', 'huge', fresh);
    relay.setMode('rewrite', { match: (r) => r.method === 'GET' && (r.path.includes('/manifests/huge') || r.path.includes(fresh.manifestDigest)), rewrite: () => huge });
    const rssBefore = child.rssKiB();
    const r = await http(`${child.url}/v2/app/manifests/huge`, { headers: { accept: fresh.manifestMediaType } });
    assert.notEqual(r.status, 200, 'a manifest over maxManifestSize is not served');
    assert.ok(r.status >= 400, `an error status, got ${r.status}`);
    assert.equal(existsSync(manifestFile(child.dataDir, sha256(huge))), false);
    assert.ok(child.rssKiB() - rssBefore < 40 * 1024, `RSS grew by ${child.rssKiB() - rssBefore} KiB for a refused 50 MiB manifest`);
    await assertStillServing();
  });

  test('a redirect loop ends in an error after a bounded number of hops', { timeout: 60_000 }, async () => {
    const digest = blobs.get('loop')!;
    relay.reset();
    relay.setMode('redirect', { match: (r) => r.path.includes(digest.slice(7)), location: (r) => r.path });
    const r = await fetchBlob(digest);
    assert.ok(r.status >= 400, `an error, got ${r.status}`);
    const hops = relay.stats().log.filter((x) => x.path.includes(digest.slice(7))).length;
    assert.ok(hops <= 24, `hops bounded (saw ${hops})`);
    await assertNothingCached(digest);
    await assertStillServing();
  });

  test('a redirect to another origin does not carry the upstream credentials', { timeout: 60_000 }, async () => {
    const digest = blobs.get('cross')!;
    relay.reset();
    other.reset();
    relay.setMode('redirect', { match: (r) => r.method === 'GET' && r.path.includes(digest.slice(7)), location: (r) => `${other.url}${r.path}` });
    const r = await fetchBlob(digest);
    const atOther = other.stats().log.filter((x) => x.path.includes(digest.slice(7)));
    assert.ok(atOther.length >= 1, 'the mirror followed the redirect');
    assert.ok(relay.stats().log.some((x) => x.authorization?.startsWith('Basic ')), 'credentials were sent to the upstream itself');
    assert.deepEqual(atOther.map((x) => x.authorization), atOther.map(() => undefined), 'no Authorization at the other origin');
    assert.equal(r.status, 200);
    assert.equal(r.digest, digest);
    await assertStillServing();
  });

  test('a redirect to a link-local address is refused when credentials are configured (private netns)', { timeout: 90_000 }, async () => {
    const ns = `rmfault${process.pid}`;
    await run('ip', ['netns', 'add', ns]);
    registerCleanup(`netns ${ns}`, async () => {
      await run('ip', ['netns', 'del', ns], { allowFailure: true });
    });
    await run('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
    await run('ip', ['netns', 'exec', ns, 'ip', 'addr', 'add', '169.254.77.1/32', 'dev', 'lo']);
    const dir = await tmpDir('netns-');
    const upPort = await freePort();
    const mirrorPort = await freePort();
    const digest = `sha256:${'c'.repeat(64)}`;
    // A hostile upstream inside the namespace: Basic challenge, then every blob GET redirects to the link-local address.
    const script = join(dir, 'hostile.mjs');
    writeFileSync(
      script,
      `import { createServer } from 'node:http';
createServer((req, res) => {
  if (!req.headers.authorization) { res.writeHead(401, { 'www-authenticate': 'Basic realm="x"', 'content-length': '0' }); return res.end(); }
  if (req.url.includes('/blobs/')) { res.writeHead(307, { location: 'http://169.254.77.1:${upPort}/steal' + req.url, 'content-length': '0' }); return res.end(); }
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': '2' }); res.end('{}');
}).listen(${upPort}, '127.0.0.1', () => console.log('hostile ready'));
createServer((req, res) => { console.log('HIT ' + req.url + ' auth=' + (req.headers.authorization ?? '-')); res.writeHead(200, { 'content-length': '3' }); res.end('bad'); })
  .listen(${upPort}, '169.254.77.1');
`,
    );
    const hostile = await spawnProc('ip', ['netns', 'exec', ns, process.execPath, script], { name: 'hostile', ready: /hostile ready/ });
    const cfg = join(dir, 'config.yml');
    writeFileSync(cfg, JSON.stringify({ credentials: { 'docker.io': { username: 'mirror', password: 'secret' } } }));
    const data = await tmpDir('netns-data-');
    await spawnProc(
      'ip',
      ['netns', 'exec', ns, process.execPath, MAIN_JS, 'serve', '--config', cfg, '--listen', `127.0.0.1:${mirrorPort}`, '--data-dir', data, '--upstream', `docker.io=http://127.0.0.1:${upPort}`],
      { name: 'mirror-netns', ready: /regmirror listening/, readyTimeoutMs: 20_000 },
    );
    const out = await run('ip', ['netns', 'exec', ns, 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '20', `http://127.0.0.1:${mirrorPort}/v2/app/blobs/${digest}`], { allowFailure: true });
    await delay(300);
    const hits = hostile.output().split('\n').filter((l) => l.startsWith('HIT '));
    assert.deepEqual(hits, [], 'the mirror never connected to the link-local redirect target (with or without credentials)');
    assert.notEqual(out.stdout.trim(), '200', 'the client does not get a 200 from the link-local target');
    assert.equal(existsSync(blobFile(data, digest)), false);
  });
});
