/**
 * Cluster mode (issue 11) with real parts: three mirror processes (`regmirror serve --redis --advertise`,
 * each with its own data dir and port) and a real redis-server; the upstream is a distribution registry
 * behind the throttling relay, so a 64 MiB fill takes several seconds and everything below happens while
 * it is in flight.
 *
 * - 30 clients spread over the three mirrors on one cold 64 MiB blob → one upstream GET, every body right;
 *   the Redis commands of that cold pull are counted (INFO commandstats before and after).
 * - kill -9 the lease holder mid-fill → the clients of the other mirrors all complete with the right bytes,
 *   at most one more upstream GET (a Range resume), nothing corrupt cached anywhere.
 * - the peer endpoint: token required (403), a clear miss (404) that costs the upstream nothing, ranges.
 * - Redis killed mid-run → the mirrors carry on alone.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanupAll, freePort, requireCommands, spawnProc, tmpDir, type Proc } from '../harness/proc.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { makeImage, MediaType, pushImageHttp, putBlob, randomBlobFile, type BlobFile } from '../harness/oci.js';
import { redisCommand, startRedis, type RedisServer } from '../harness/redis.js';
import { startRelay, type Relay, type RelayRecord } from '../harness/relay.js';
import { http, httpDigest } from '../helpers/http.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const TOKEN = 'cluster-test-secret';
const MiB = 2 ** 20;
/** The relay's link: a 64 MiB fill takes about 8 s. */
const LINK_BYTES_PER_SECOND = 8 * MiB;

interface ClusterMirror {
  url: string;
  dataDir: string;
  proc: Proc;
}

/** Blob GETs the relay passed to the upstream for `digest` (ranges included). */
const blobGets = (log: RelayRecord[], digest: string) => log.filter((r) => r.method === 'GET' && r.path.includes(`/blobs/${digest}`));
const describeLog = (log: RelayRecord[]) => log.map((r) => `${r.method} ${r.path} ${r.status} range=${r.range ?? '-'} bytes=${r.bytes}`).join('\n');

/** Sum of `calls` over INFO commandstats, without the INFO calls themselves. */
async function redisCalls(url: string): Promise<{ total: number; byCommand: Map<string, number> }> {
  const info = await redisCommand(url, 'INFO', 'commandstats');
  assert.equal(typeof info, 'string');
  const byCommand = new Map<string, number>();
  for (const m of String(info).matchAll(/^cmdstat_([a-z|_-]+):calls=(\d+)/gm)) {
    if (m[1] === 'info') continue;
    byCommand.set(m[1]!, Number(m[2]));
  }
  return { total: [...byCommand.values()].reduce((a, b) => a + b, 0), byCommand };
}

function diffCalls(a: Map<string, number>, b: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of b) if (v - (a.get(k) ?? 0) > 0) out[k] = v - (a.get(k) ?? 0);
  return out;
}

/** One client pull: status, digest of the body, whether it completed; a refused connection is a failure too. */
async function pull(url: string): Promise<{ ok: boolean; status: number; digest: string; bytes: number; error?: string }> {
  try {
    const r = await httpDigest(url);
    return { ok: r.status === 200 && r.complete, status: r.status, digest: r.digest, bytes: r.bytes };
  } catch (err) {
    return { ok: false, status: 0, digest: '', bytes: 0, error: (err as Error).message };
  }
}

async function fileDigest(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return `sha256:${h.digest('hex')}`;
}

/** Every committed blob of a data dir whose bytes do not hash to its name (should be none). */
async function corruptBlobs(dataDir: string): Promise<string[]> {
  const root = join(dataDir, 'blobs', 'sha256');
  const bad: string[] = [];
  let dirs: string[];
  try {
    dirs = await readdir(root);
  } catch {
    return bad;
  }
  for (const d of dirs) {
    for (const hex of await readdir(join(root, d))) {
      const got = await fileDigest(join(root, d, hex));
      if (got !== `sha256:${hex}`) bad.push(`${join(root, d, hex)} hashes to ${got}`);
    }
  }
  return bad;
}

/** A counter's value from a mirror's /metrics (0 when absent). */
async function metricValue(m: ClusterMirror, name: string, labels: string): Promise<number> {
  const text = (await http(`${m.url}/metrics`)).body.toString();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

async function waitUntil(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`${what}: not reached within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('a cluster of three mirror processes coordinated by Redis', () => {
  let reg: Registry;
  let relay: Relay;
  let redis: RedisServer;
  let work: string;
  const mirrors: ClusterMirror[] = [];
  const blobUrl = (m: ClusterMirror, b: BlobFile) => `${m.url}/v2/library/big/blobs/${b.digest}`;

  async function startClusterMirror(port: number, dataDir: string): Promise<ClusterMirror> {
    const url = `http://127.0.0.1:${port}`;
    const proc = await spawnProc(
      process.execPath,
      [CLI, 'serve', '--listen', `127.0.0.1:${port}`, '--upstream', `docker.io=${relay.url}`, '--redis', redis.url, '--advertise', url, '--tag-ttl', '3s', '--data-dir', dataDir, '--log-level', 'info'],
      { name: `mirror-${port}`, env: { ...process.env, REGMIRROR_CLUSTER_TOKEN: TOKEN }, ready: /regmirror listening/, readyTimeoutMs: 30_000 },
    );
    return { url, dataDir, proc };
  }

  before(async () => {
    requireCommands('docker-registry', 'redis-server');
    work = await tmpDir('cluster-');
    reg = await startRegistry({ name: 'registry-cluster' });
    relay = await startRelay({ target: reg.url, name: 'cluster-upstream', bytesPerSecond: LINK_BYTES_PER_SECOND });
    redis = await startRedis();
    for (let i = 0; i < 3; i++) mirrors.push(await startClusterMirror(await freePort(), join(work, `data-${i}`)));
  });
  after(cleanupAll);

  async function pushBig(size: number): Promise<BlobFile> {
    const b = await randomBlobFile(work, size);
    await putBlob(reg.url, 'library/big', b);
    return b;
  }

  test('30 clients over three mirrors on one cold 64 MiB blob: one upstream GET, every body right', { timeout: 300_000 }, async () => {
    const blob = await pushBig(64 * MiB);
    relay.reset();
    const before = await redisCalls(redis.url);
    const pulls = await Promise.all(Array.from({ length: 30 }, (_, i) => pull(blobUrl(mirrors[i % 3]!, blob))));
    const after = await redisCalls(redis.url);
    for (const [i, p] of pulls.entries()) {
      assert.ok(p.ok, `client ${i}: ${JSON.stringify(p)}`);
      assert.equal(p.digest, blob.digest, `client ${i}: body digest`);
    }
    const gets = blobGets(relay.stats().log, blob.digest);
    assert.equal(gets.length, 1, `one upstream GET for the cluster:\n${describeLog(relay.stats().log)}`);
    assert.equal(gets[0]!.range, undefined, 'a whole-blob GET');
    // Every mirror now holds it committed, and a second round costs the upstream nothing.
    for (const m of mirrors) {
      const again = await pull(blobUrl(m, blob));
      assert.equal(again.digest, blob.digest);
      assert.equal((await stat(join(m.dataDir, 'blobs', 'sha256', blob.digest.slice(7, 9), blob.digest.slice(7)))).size, blob.size);
    }
    assert.equal(blobGets(relay.stats().log, blob.digest).length, 1);
    const holders = await redisCommand(redis.url, 'SMEMBERS', `regmirror:cluster:has:${blob.digest}`);
    assert.deepEqual((holders as string[]).sort(), mirrors.map((m) => m.url).sort(), 'the directory lists the three mirrors');
    assert.equal(await redisCommand(redis.url, 'GET', `regmirror:cluster:lease:${blob.digest}`), null, 'the lease was released');
    const used = diffCalls(before.byCommand, after.byCommand);
    // Lease takes are SETs (NX PX GET); heartbeats (PSETEX) and lease renewals (EVAL) run meanwhile, by time.
    const heartbeats = used.psetex ?? 0;
    process.stdout.write(`# redis commands during the cold pull (3 mirrors, 30 clients): ${after.total - before.total} in all, ${after.total - before.total - heartbeats} without heartbeats: ${JSON.stringify(used)}\n`);
    assert.equal(used.set, 3, 'one lease take per mirror');
    assert.equal(used.smembers, 1, 'one directory lookup, by the lease winner');
    assert.equal(used.sadd, 3, 'each mirror records its commit');
  });

  test('the peer endpoint: token required, a clear miss that never goes upstream, ranges for resume', { timeout: 120_000 }, async () => {
    const absent = `sha256:${'ab'.repeat(32)}`;
    const m = mirrors[0]!;
    relay.reset();
    const noToken = await http(`${m.url}/_regmirror/peer/blobs/${absent}`);
    assert.equal(noToken.status, 403);
    const wrong = await http(`${m.url}/_regmirror/peer/blobs/${absent}`, { headers: { authorization: 'Bearer nope' } });
    assert.equal(wrong.status, 403);
    const miss = await http(`${m.url}/_regmirror/peer/blobs/${absent}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(miss.status, 404);
    assert.equal(miss.headers['x-regmirror-peer'], 'miss');
    assert.match(miss.body.toString(), /BLOB_UNKNOWN/);
    // A blob the upstream has but this mirror does not: still a miss, and the upstream is not asked.
    const small = await pushBig(MiB);
    relay.reset();
    const notHere = await http(`${m.url}/_regmirror/peer/blobs/${small.digest}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(notHere.status, 404);
    assert.equal(relay.stats().requests, 0, `the peer endpoint never goes upstream:\n${describeLog(relay.stats().log)}`);
    // Once cached: the blob, and its tail for a resume.
    assert.equal((await pull(blobUrl(m, small))).digest, small.digest);
    const whole = await http(`${m.url}/_regmirror/peer/blobs/${small.digest}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(whole.status, 200);
    assert.equal(whole.body.length, small.size);
    const tail = await http(`${m.url}/_regmirror/peer/blobs/${small.digest}`, { headers: { authorization: `Bearer ${TOKEN}`, range: 'bytes=1000-' } });
    assert.equal(tail.status, 206);
    assert.equal(tail.headers['content-range'], `bytes 1000-${small.size - 1}/${small.size}`);
    assert.deepEqual(tail.body, whole.body.subarray(1000));
  });

  test('tags across the fleet: one revalidation HEAD per tag per TTL per cluster', { timeout: 120_000 }, async () => {
    const img = await makeImage({ layers: [1000], format: 'docker' });
    const digest = await pushImageHttp(reg.url, 'library/app', 'v1', img);
    const accept = { accept: `${MediaType.dockerManifest}, ${MediaType.ociManifest}` };
    const heads = () => relay.stats().log.filter((r) => r.method === 'HEAD' && r.path.includes('/manifests/v1')).length;
    const round = async () => {
      const got = await Promise.all(Array.from({ length: 12 }, (_, i) => http(`${mirrors[i % 3]!.url}/v2/library/app/manifests/v1`, { headers: accept })));
      for (const r of got) {
        assert.equal(r.status, 200);
        assert.equal(r.headers['docker-content-digest'], digest);
      }
    };
    relay.reset();
    await round(); // cold: nobody knows the tag
    assert.equal(heads(), 1, `one HEAD for 12 clients over three mirrors:\n${describeLog(relay.stats().log)}`);
    await round(); // within the TTL: no upstream request at all
    assert.equal(heads(), 1);
    await new Promise((r) => setTimeout(r, 3500)); // past the 3 s TTL
    await round();
    assert.equal(heads(), 2, `one more HEAD after the TTL:\n${describeLog(relay.stats().log)}`);
  });

  test('kill -9 the lease holder mid-fill: the other mirrors\' clients all complete, at most one more upstream GET, nothing corrupt cached', { timeout: 300_000 }, async () => {
    const blob = await pushBig(64 * MiB);
    relay.reset();
    const clients = Array.from({ length: 30 }, (_, i) => ({ mirror: mirrors[i % 3]!, result: pull(blobUrl(mirrors[i % 3]!, blob)) }));
    // Mid-fill: the upstream GET has moved a quarter of the blob.
    await waitUntil('a quarter of the blob upstream', () => blobGets(relay.stats().log, blob.digest).some((r) => r.bytes >= 16 * MiB));
    const lease = await redisCommand(redis.url, 'GET', `regmirror:cluster:lease:${blob.digest}`);
    assert.equal(typeof lease, 'string', 'a mirror holds the lease mid-fill');
    const holderUrl = String(lease).split(' ')[0];
    const holder = mirrors.find((m) => m.url === holderUrl);
    assert.ok(holder, `the lease names a mirror: ${String(lease)}`);
    await holder.proc.stop({ signal: 'SIGKILL' });
    const idx = mirrors.indexOf(holder);
    let restarted = false;
    const restart = async () => {
      restarted = true;
      mirrors[idx] = await startClusterMirror(Number(new URL(holder.url).port), holder.dataDir);
    };
    try {
      const results = await Promise.all(clients.map(async (c) => ({ mirror: c.mirror, r: await c.result })));
      let survivorsChecked = 0;
      for (const [i, { mirror, r }] of results.entries()) {
        if (mirror === holder) continue; // connected to the killed process: allowed to fail
        survivorsChecked++;
        assert.ok(r.ok, `client ${i} of ${mirror.url}: ${JSON.stringify(r)}`);
        assert.equal(r.digest, blob.digest, `client ${i} of ${mirror.url}`);
      }
      assert.equal(survivorsChecked, 20);
      const gets = blobGets(relay.stats().log, blob.digest);
      const clusterLog = mirrors.map((m) => `${m.url}:\n${m.proc.output().split('\n').filter((l) => /peer|lease|continuing/.test(l)).slice(-20).join('\n')}`).join('\n');
      assert.ok(gets.length >= 1 && gets.length <= 2, `at most one more upstream GET:\n${describeLog(relay.stats().log)}\n${clusterLog}`);
      if (gets.length === 2) assert.match(gets[1]!.range ?? '', /^bytes=\d+-$/, 'the second GET resumes with a Range');
      process.stdout.write(`# kill -9 of the lease holder: upstream blob GETs ${gets.length} (${gets.map((g) => `${g.range ?? 'whole'}:${g.bytes}`).join(', ')})\n`);
      for (const m of mirrors) assert.deepEqual(await corruptBlobs(m.dataDir), [], `nothing corrupt cached in ${m.dataDir}`);
      // The survivors serve it from their caches now.
      for (const m of mirrors.filter((x) => x !== holder)) assert.equal((await pull(blobUrl(m, blob))).digest, blob.digest);
      assert.equal(blobGets(relay.stats().log, blob.digest).length, gets.length);
      const killedClients = results.filter((x) => x.mirror === holder);
      process.stdout.write(`# clients of the killed mirror: ${killedClients.filter((x) => !x.r.ok).length} of ${killedClients.length} failed; clients of the survivors: ${survivorsChecked} of ${survivorsChecked} complete\n`);
      // The killed mirror comes back on its data dir (its temp files are swept) and rejoins.
      await restart();
      assert.equal((await pull(blobUrl(mirrors[idx]!, blob))).digest, blob.digest);
      assert.equal(blobGets(relay.stats().log, blob.digest).length, gets.length, 'the restarted mirror got it from a peer');
    } finally {
      // Later tests need three mirrors whatever happened here.
      if (!restarted) await restart();
    }
  });

  test('a peer that serves corrupt bytes: rejected, counted, avoided; the retry is fetched elsewhere (after the kill test: m1 avoids m0 from here on)', { timeout: 120_000 }, async () => {
    const blob = await pushBig(4 * MiB);
    const [m0, m1] = [mirrors[0]!, mirrors[1]!];
    relay.reset();
    assert.equal((await pull(blobUrl(m0, blob))).digest, blob.digest);
    // m0's committed copy goes bad on disk (same size, one byte flipped): m0 now serves wrong bytes as a peer.
    const path = join(m0.dataDir, 'blobs', 'sha256', blob.digest.slice(7, 9), blob.digest.slice(7));
    const fh = await open(path, 'r+');
    const one = Buffer.alloc(1);
    await fh.read(one, 0, 1, 12345);
    one[0] = one[0]! ^ 0xff;
    await fh.write(one, 0, 1, 12345);
    await fh.close();
    const failuresBefore = await metricValue(m1, 'regmirror_cluster_peer_failures_total', 'reason="digest-mismatch"');
    // m1 misses it, finds m0 in the directory, reads it from m0, and its own verification rejects the bytes.
    const first = await pull(blobUrl(m1, blob));
    assert.ok(!first.ok || first.digest !== blob.digest, 'the corrupt answer was not delivered as a good one');
    assert.equal(first.ok, false, `the client saw an aborted transfer: ${JSON.stringify(first)}`);
    assert.equal(await metricValue(m1, 'regmirror_cluster_peer_failures_total', 'reason="digest-mismatch"'), failuresBefore + 1, 'counted');
    assert.equal(blobGets(relay.stats().log, blob.digest).length, 1, 'the corrupt transfer came from the peer, not the upstream');
    // The retry avoids m0 and fetches from the upstream; nothing corrupt is cached at m1.
    const retry = await pull(blobUrl(m1, blob));
    assert.ok(retry.ok);
    assert.equal(retry.digest, blob.digest);
    assert.equal(blobGets(relay.stats().log, blob.digest).length, 2);
    assert.deepEqual(await corruptBlobs(m1.dataDir), []);
    // Put m0's copy right again for the tests that follow (they check every data dir).
    await rm(path);
  });

  test('membership: every mirror has a heartbeat key; a mirror that stops (SIGTERM) leaves at once, and rejoins on restart', { timeout: 120_000 }, async () => {
    for (const m of mirrors) assert.equal(await redisCommand(redis.url, 'EXISTS', `regmirror:cluster:member:${m.url}`), 1, m.url);
    const m = mirrors[2]!;
    const exit = await m.proc.stop({ signal: 'SIGTERM', graceMs: 20_000 });
    assert.equal(exit.signal === 'SIGKILL', false, 'it drained and exited on its own');
    assert.equal(await redisCommand(redis.url, 'EXISTS', `regmirror:cluster:member:${m.url}`), 0, 'left the cluster');
    mirrors[2] = await startClusterMirror(Number(new URL(m.url).port), m.dataDir);
    await waitUntil('heartbeat after restart', async () => (await redisCommand(redis.url, 'EXISTS', `regmirror:cluster:member:${m.url}`)) === 1);
  });

  test('Redis killed mid-run: the mirrors carry on alone', { timeout: 300_000 }, async () => {
    const blob = await pushBig(32 * MiB);
    relay.reset();
    const results = Array.from({ length: 9 }, (_, i) => pull(blobUrl(mirrors[i % 3]!, blob)));
    await waitUntil('the fill under way', () => blobGets(relay.stats().log, blob.digest).some((r) => r.bytes >= 4 * MiB));
    await redis.proc.stop({ signal: 'SIGKILL' });
    for (const [i, r] of (await Promise.all(results)).entries()) {
      assert.ok(r.ok, `client ${i}: ${JSON.stringify(r)}`);
      assert.equal(r.digest, blob.digest);
    }
    // A new cold blob with Redis gone: every mirror fetches it on its own, nobody stalls or fails.
    const alone = await pushBig(4 * MiB);
    relay.reset();
    const pulls = await Promise.all(mirrors.map((m) => pull(blobUrl(m, alone))));
    for (const p of pulls) assert.equal(p.digest, alone.digest);
    assert.equal(blobGets(relay.stats().log, alone.digest).length, 3, 'alone: one upstream GET per mirror');
    for (const m of mirrors) {
      assert.ok(m.proc.running, `${m.url} still running`);
      assert.deepEqual(await corruptBlobs(m.dataDir), []);
    }
  });
});
