// Issue 9, item 9: Redis with a deadline and a breaker — a stalled (SIGSTOP) or dead (SIGKILL) Redis neither slows tag requests to its timeouts nor floods the log; its state is a metric.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanupAll, delay, requireCommands } from '../harness/proc.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { makeImage, pushImageHttp, type GeneratedImage } from '../harness/oci.js';
import { redisCommand, startRedis, type RedisServer, type RespValue } from '../harness/redis.js';
import { http } from '../helpers/http.js';
import { metricValue, startChild, type ChildMirror } from './fault-child.js';

/** Mirror log lines since `from` that mention Redis. */
function redisLines(child: ChildMirror, from: number): string[] {
  return child.proc
    .output()
    .split('\n')
    .slice(Math.max(0, from))
    .filter((l) => /redis/i.test(l));
}

/** True when the metrics report Redis as not healthy, in any of the obvious shapes. */
function reportsRedisDown(metrics: string): boolean {
  return (
    /^regmirror_redis_(up|connected|healthy|available) 0$/m.test(metrics) ||
    /^regmirror_redis_(breaker_)?state\{[^}]*state="(open|down|degraded|failing|half_open)"[^}]*\} 1$/m.test(metrics)
  );
}

describe('redis faults', () => {
  let upstream: Registry;
  let redis: RedisServer;
  let child: ChildMirror;
  let img: GeneratedImage;

  before(async () => {
    requireCommands('docker-registry', 'redis-server');
    upstream = await startRegistry();
    img = await makeImage({ layers: [1000] });
    for (let i = 0; i < 40; i++) await pushImageHttp(upstream.url, 'library/rt', `t${i}`, img);
    redis = await startRedis();
    // A short tag TTL so requests revalidate, and the Redis deadline and breaker of the config.
    child = await startChild({ upstreams: [`docker.io=${upstream.url}`], config: { tagTtl: '1s', redis: { url: redis.url, timeout: '250ms', breaker: { failures: 3, cooldown: '5s' } } } });
    for (let i = 0; i < 40; i++) assert.equal((await http(`${child.url}/v2/rt/manifests/t${i}`, { headers: { accept: img.manifestMediaType } })).status, 200);
  });
  after(async () => {
    try {
      process.kill(redis.proc.pid, 'SIGCONT');
    } catch {
      /* gone */
    }
    await cleanupAll();
  });

  /**
   * Times up to `n` tag requests (all must succeed with the right bytes), stopping after `budgetMs` so a
   * mirror that waits seconds per request still finishes in time; returns the sorted durations in ms.
   */
  async function timedTags(n: number, budgetMs = 25_000): Promise<number[]> {
    const ms: number[] = [];
    const end = performance.now() + budgetMs;
    for (let i = 0; i < n && performance.now() < end; i++) {
      const t = performance.now();
      const r = await http(`${child.url}/v2/rt/manifests/t${i % 40}`, { headers: { accept: img.manifestMediaType } });
      ms.push(performance.now() - t);
      assert.equal(r.status, 200, `tag t${i % 40}: ${r.status} ${r.body.toString().slice(0, 120)}`);
      assert.ok(r.body.equals(img.manifest));
    }
    return ms.sort((a, b) => a - b);
  }

  /** The Redis tag hashes of t0..t39, as raw replies (to see whether anything was written). */
  async function tagHashes(): Promise<string> {
    const replies: RespValue[] = [];
    for (let i = 0; i < 40; i++) replies.push(await redisCommand(redis.url, 'HGETALL', `regmirror:tag:docker.io/library/rt:t${i}`));
    return JSON.stringify(replies);
  }

  test('SIGSTOP: tag requests do not wait on Redis each time, a handful of log lines, the state is a metric', { timeout: 120_000 }, async () => {
    const from = child.proc.lineCount;
    const hashesBefore = await tagHashes();
    assert.match(hashesBefore, /checkedAt/, 'the warm-up wrote the tags to Redis');
    process.kill(redis.proc.pid, 'SIGSTOP');
    await delay(1200); // every tag is past its TTL
    const ms = await timedTags(60);
    const requests = ms.length;
    const p50 = ms[Math.floor(ms.length / 2)]!;
    const lines = redisLines(child, from);
    const metrics = await child.metrics();
    process.kill(redis.proc.pid, 'SIGCONT');
    // Every request revalidated (TTL 1 s) while Redis failed; none of them may have written to Redis.
    assert.equal(await tagHashes(), hashesBefore, 'a failed Redis read never leads to a Redis write');
    assert.ok(requests >= 10, `only ${requests} tag requests finished in 25 s with Redis stopped`);
    process.stdout.write(`# redis stopped: ${requests} requests, p50 ${p50.toFixed(0)} ms, p90 ${ms[Math.floor(ms.length * 0.9)]!.toFixed(0)} ms, ${lines.length} log lines about redis\n`);
    assert.ok(p50 < 750, `p50 ${p50.toFixed(0)} ms with Redis stopped (command deadline 250 ms, breaker after 3 failures)`);
    assert.ok(lines.length <= 10, `${lines.length} log lines about Redis for ${requests} requests (one per state change expected):\n${lines.slice(0, 5).join('\n')}`);
    assert.ok(reportsRedisDown(metrics), `a metric reports Redis down:\n${metrics.split('\n').filter((l) => /redis/.test(l)).join('\n') || '(no redis metrics)'}`);
    assert.ok(metricValue(metrics, 'regmirror_redis_errors_total') >= 1, 'Redis errors are counted');
  });

  test('SIGKILL: the mirror carries on', { timeout: 120_000 }, async () => {
    const from = child.proc.lineCount;
    process.kill(redis.proc.pid, 'SIGKILL');
    await delay(1200);
    const ms = await timedTags(40);
    const lines = redisLines(child, from);
    assert.ok(child.proc.running, 'the mirror is alive');
    assert.ok(ms[Math.floor(ms.length / 2)]! < 750, `p50 ${ms[Math.floor(ms.length / 2)]!.toFixed(0)} ms with Redis dead`);
    assert.ok(lines.length <= 10, `${lines.length} log lines about Redis for ${ms.length} requests`);
    const metrics = await child.metrics();
    assert.equal(metricValue(metrics, 'regmirror_redis_up'), 0, 'regmirror_redis_up is 0 with Redis dead');
  });

  test('SIGKILL and the upstream down: tags this process knew are still served, from its local copy', { timeout: 120_000 }, async () => {
    await upstream.stop();
    await delay(1200); // every tag is past its TTL, so each answer needs the upstream or the local copy
    const from = child.proc.lineCount;
    let stale = 0;
    for (let i = 0; i < 40; i++) {
      const r = await http(`${child.url}/v2/rt/manifests/t${i}`, { headers: { accept: img.manifestMediaType } });
      assert.equal(r.status, 200, `tag t${i} with Redis and the upstream down: ${r.status}`);
      assert.ok(r.body.equals(img.manifest));
      if (String(r.headers.warning ?? '').startsWith('299')) stale++;
    }
    assert.equal(stale, 40, 'every answer is a stale answer (Warning: 299) from what the mirror knew');
    const lines = redisLines(child, from);
    process.stdout.write(`# redis and upstream down: 40 of 40 tags served stale, ${lines.length} log lines about redis\n`);
    assert.ok(lines.length <= 10, `${lines.length} log lines about Redis`);
    assert.ok(child.proc.running, 'the mirror is alive');
  });
});
