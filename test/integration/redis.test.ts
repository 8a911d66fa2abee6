/**
 * Tag metadata shared through Redis: two mirrors (separate data dirs, one upstream behind a counting
 * relay) resolve a tag once between them; the tag hash is visible in Redis; without Redis (stopped,
 * or unreachable at start) requests still succeed because tag lookups fall back to the upstream, and
 * the process keeps running; when Redis comes back the mirror uses it again.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanupAll, freePort, requireCommands, spawnProc, tmpDir, type Proc } from '../harness/proc.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { makeImage, MediaType, pullImage, pushImage, type GeneratedImage } from '../harness/oci.js';
import { redisCommand, startRedis, type RedisServer, type RespValue } from '../harness/redis.js';
import { startRelay, type Relay, type RelayRecord } from '../harness/relay.js';
import { startMirror, type TestMirror } from '../helpers/mirror.js';
import { http } from '../helpers/http.js';

const ACCEPT = { accept: `${MediaType.ociManifest}, ${MediaType.dockerManifest}` };
const TAG_KEY = 'regmirror:tag:docker.io/library/app:v1';
/** The compiled CLI (build/src/cli/main.js), next to this compiled test (build/test/integration/). */
const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

const manifestHeads = (log: RelayRecord[]) => log.filter((r) => r.method === 'HEAD' && r.path.includes('/manifests/'));
const describeLog = (log: RelayRecord[]) => log.map((r) => `${r.method} ${r.path} ${r.status}`).join('\n');

/** Parses an HGETALL reply (flat field/value list) into a map. */
function hash(reply: RespValue): Map<string, string> {
  assert.ok(Array.isArray(reply), `HGETALL reply: ${String(reply)}`);
  const out = new Map<string, string>();
  for (let i = 0; i + 1 < reply.length; i += 2) out.set(String(reply[i]), String(reply[i + 1]));
  return out;
}

/** Polls `check` until it returns true (for events the test cannot subscribe to); fails after 20 s. */
async function waitUntil(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = performance.now() + 20_000;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`${what}: not reached within 20 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('tag metadata in Redis', () => {
  let reg: Registry;
  let relay: Relay;
  let redis: RedisServer;
  let img: GeneratedImage;
  let m1: TestMirror;
  let m2: TestMirror;

  const config = () => ({ upstreams: [`docker.io=${relay.url}`], redis: redis.url, tagTtl: '1h' });

  before(async () => {
    requireCommands('docker-registry', 'skopeo', 'redis-server');
    reg = await startRegistry({ name: 'registry-redis' });
    img = await makeImage({ layers: [150_000, 2000], tag: 'v1' });
    await pushImage(img, reg.host, 'library/app:v1');
    relay = await startRelay({ target: reg.url, name: 'redis-upstream' });
    redis = await startRedis();
    m1 = await startMirror(config());
    m2 = await startMirror(config());
    assert.notEqual(m1.dataDir, m2.dataDir);
  });
  after(cleanupAll);

  test('mirror 2 uses the tag mirror 1 resolved: no upstream HEAD, only the manifest GET by digest its cold disk needs', async () => {
    relay.reset();
    const a = await http(`${m1.url}/v2/library/app/manifests/v1`, { headers: ACCEPT });
    assert.equal(a.status, 200);
    assert.equal(a.headers['docker-content-digest'], img.manifestDigest);
    const log1 = relay.stats().log;
    assert.equal(manifestHeads(log1).length, 1, `mirror 1 resolved the tag with one HEAD:\n${describeLog(log1)}`);
    assert.equal(manifestHeads(log1)[0]!.path, '/v2/library/app/manifests/v1');

    assert.equal(await redisCommand(redis.url, 'EXISTS', TAG_KEY), 1, `${TAG_KEY} exists`);
    const fields = hash(await redisCommand(redis.url, 'HGETALL', TAG_KEY));
    assert.equal(fields.size, 1, 'one field: the Accept set of this client');
    const entry = JSON.parse([...fields.values()][0]!) as { digest: string; mediaType: string; size: number; checkedAt: number };
    assert.equal(entry.digest, img.manifestDigest);
    assert.equal(entry.mediaType, img.manifestMediaType);
    assert.equal(entry.size, img.manifest.length);
    const ttl = await redisCommand(redis.url, 'TTL', TAG_KEY);
    assert.ok(typeof ttl === 'number' && ttl > 0, `the hash expires when unused (TTL ${String(ttl)})`);

    relay.reset();
    const b = await http(`${m2.url}/v2/library/app/manifests/v1`, { headers: ACCEPT });
    assert.equal(b.status, 200);
    assert.equal(b.headers['docker-content-digest'], img.manifestDigest);
    assert.ok(b.body.equals(img.manifest));
    assert.deepEqual(
      relay.stats().log.map((r) => `${r.method} ${r.path} ${r.status}`),
      [`GET /v2/library/app/manifests/${img.manifestDigest} 200`],
      'exactly one upstream request: the manifest by digest (no HEAD)',
    );

    relay.reset();
    const c = await http(`${m2.url}/v2/app/manifests/v1`, { headers: ACCEPT });
    assert.equal(c.headers['docker-content-digest'], img.manifestDigest);
    assert.equal(relay.stats().requests, 0, 'now warm: nothing upstream (library/ mapping names the same key)');

    // Control: a mirror without Redis has to ask the upstream.
    const alone = await startMirror({ upstreams: [`docker.io=${relay.url}`], tagTtl: '1h' });
    relay.reset();
    const d = await http(`${alone.url}/v2/library/app/manifests/v1`, { headers: ACCEPT });
    assert.equal(d.status, 200);
    assert.equal(manifestHeads(relay.stats().log).length, 1, 'without Redis the tag costs a HEAD');
    await alone.close();
  });

  test('skopeo pulls through mirror 2 with the shared tag', async () => {
    const r = await pullImage(m2.host, 'app:v1', await tmpDir('redis-pull-'));
    assert.equal(r.code, 0, r.stderr);
  });

  test('Redis hanging (SIGSTOP): requests still complete, answered from what the mirror knew', async () => {
    await http(`${m1.url}/v2/library/app/manifests/v1`, { headers: ACCEPT });
    process.kill(redis.proc.pid, 'SIGSTOP');
    try {
      relay.reset();
      const r = await http(`${m1.url}/v2/library/app/manifests/v1`, { headers: ACCEPT });
      assert.equal(r.status, 200);
      assert.equal(r.headers['docker-content-digest'], img.manifestDigest);
      // Issue 9 item 9: the tag answers this process knew are kept locally too, so a Redis outage serves them (TTL 1 h).
      assert.equal(manifestHeads(relay.stats().log).length, 0, 'the tag was answered from the local copy while Redis did not answer');
    } finally {
      process.kill(redis.proc.pid, 'SIGCONT');
    }
    assert.equal(await redisCommand(redis.url, 'PING'), 'PONG');
    // Once Redis answers again, mirror 2 gets the tag from it without asking the upstream.
    await waitUntil('mirror 2 answers the tag from Redis again', async () => {
      relay.reset();
      const r = await http(`${m2.url}/v2/library/app/manifests/v1`, { headers: ACCEPT });
      assert.equal(r.status, 200);
      return manifestHeads(relay.stats().log).length === 0;
    });
  });

  test('Redis stopped: requests still succeed, tags are answered from what each mirror knew, the mirrors keep running', async () => {
    // Both mirrors know the tag through Redis (the tests above may not have run).
    await http(`${m1.url}/v2/library/app/manifests/v1`, { headers: ACCEPT });
    await http(`${m2.url}/v2/library/app/manifests/v1`, { headers: ACCEPT });
    await redis.stop();
    await assert.rejects(redisCommand(redis.url, 'PING'), /ECONNREFUSED/);

    for (const m of [m1, m2]) {
      relay.reset();
      const r = await http(`${m.url}/v2/library/app/manifests/v1`, { headers: ACCEPT });
      assert.equal(r.status, 200);
      assert.equal(r.headers['docker-content-digest'], img.manifestDigest);
      assert.ok(r.body.equals(img.manifest));
      assert.equal(manifestHeads(relay.stats().log).length, 0, `the tag was answered from the local copy (mirror 2 read it from Redis):\n${describeLog(relay.stats().log)}`);
      const again = await http(`${m.url}/v2/library/app/manifests/v1`, { method: 'HEAD', headers: ACCEPT });
      assert.equal(again.status, 200);
      const blob = await http(`${m.url}/v2/library/app/blobs/${img.layers[0]!.digest}`);
      assert.equal(blob.status, 200);
      assert.equal(blob.body.length, img.layers[0]!.size);
      assert.equal((await http(`${m.url}/healthz`)).status, 200);
    }
    const r = await pullImage(m1.host, 'library/app:v1', await tmpDir('redis-down-pull-'));
    assert.equal(r.code, 0, r.stderr);
  });

  test('a mirror process started while Redis is unreachable serves, survives, and uses Redis once it is up', async () => {
    const port = await freePort(); // nothing listens here (yet)
    const redisUrl = `redis://127.0.0.1:${port}`;
    const listenPort = await freePort();
    const dir = await tmpDir('redis-cli-');
    const proc: Proc = await spawnProc(
      process.execPath,
      [
        CLI, 'serve',
        '--listen', `127.0.0.1:${listenPort}`,
        '--upstream', `docker.io=${relay.url}`,
        '--redis', redisUrl,
        '--tag-ttl', '1h',
        '--data-dir', join(dir, 'data'),
        '--log-level', 'info',
      ],
      { name: 'regmirror-cli', ready: /regmirror listening/, readyTimeoutMs: 30_000 },
    );
    const url = `http://127.0.0.1:${listenPort}`;
    assert.match(proc.output(), /redis not reachable/, 'it said Redis was not reachable, and listened anyway');

    relay.reset();
    const r = await http(`${url}/v2/library/app/manifests/v1`, { headers: ACCEPT });
    assert.equal(r.status, 200);
    assert.equal(r.headers['docker-content-digest'], img.manifestDigest);
    assert.equal(manifestHeads(relay.stats().log).length, 1, 'the tag was resolved upstream');
    const pulled = await pullImage(`127.0.0.1:${listenPort}`, 'app:v1', await tmpDir('redis-cli-pull-'));
    assert.equal(pulled.code, 0, pulled.stderr);

    // It keeps trying to reach Redis (several failed attempts logged) without dying.
    const from = proc.lineCount;
    await proc.waitFor(/redis error/, { fromLine: from, timeoutMs: 20_000 });
    assert.ok(proc.running, `still running:\n${proc.tail()}`);
    assert.equal((await http(`${url}/v2/library/app/manifests/v1`, { headers: ACCEPT })).status, 200);

    // Redis appears on that port: tag answers are stored there again.
    const late = await startRedis({ extraArgs: ['--port', String(port)] });
    assert.equal(await redisCommand(redisUrl, 'PING'), 'PONG');
    await waitUntil('the mirror writes the tag to Redis', async () => {
      const res = await http(`${url}/v2/library/app/manifests/v1`, { headers: ACCEPT });
      assert.equal(res.status, 200);
      return (await redisCommand(redisUrl, 'EXISTS', TAG_KEY)) === 1;
    });
    assert.ok(proc.running);
    await proc.stop();
    assert.equal(proc.exitInfo?.code, 0, `clean exit on SIGTERM:\n${proc.tail()}`);
    await late.stop();
  });
});
