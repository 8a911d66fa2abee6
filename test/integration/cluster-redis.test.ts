/**
 * The cluster's Redis parts against a real redis-server: lease take / takeover / renew / release
 * semantics, the directory, a nil read as a miss and an error never as one, and the deadline on every
 * call (a Redis that stops answering, SIGSTOPped, costs one deadline, not a stall).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { cleanupAll, freePort, requireCommands } from '../harness/proc.js';
import { startRedis, type RedisServer } from '../harness/redis.js';
import { Registry } from 'prom-client';
import { ClusterMetrics } from '../../src/cluster/metrics.js';
import { ClusterRedis } from '../../src/cluster/redis.js';
import { Leases } from '../../src/cluster/lease.js';
import { Directory } from '../../src/cluster/directory.js';
import { Membership } from '../../src/cluster/membership.js';

const log = pino({ level: 'silent' });
const D = `sha256:${'cd'.repeat(32)}`;

describe('cluster Redis parts on a real redis-server', () => {
  let redis: RedisServer;
  const clients: ClusterRedis[] = [];
  const metrics = new ClusterMetrics(new Registry());
  const connect = async (url: string, timeoutMs = 250) => {
    const c = new ClusterRedis({ url, timeoutMs, metrics, log });
    clients.push(c);
    await c.ready(5000);
    return c;
  };

  before(async () => {
    requireCommands('redis-server');
    redis = await startRedis();
  });
  after(async () => {
    for (const c of clients) c.close();
    await cleanupAll();
  });

  test('leases: one taker, holders named, takeover from exactly the dead holder, renew and release only by the owner', async () => {
    const r = await connect(redis.url);
    const a = new Leases(r, metrics, 'http://a:1 i1', 5000);
    const b = new Leases(r, metrics, 'http://b:1 i2', 5000);
    const c = new Leases(r, metrics, 'http://c:1 i3', 5000);
    assert.deepEqual(await a.take(D), { kind: 'taken' });
    assert.deepEqual(await b.take(D), { kind: 'held', holder: { url: 'http://a:1', value: 'http://a:1 i1' } });
    const dead = { url: 'http://a:1', value: 'http://a:1 i1' };
    assert.deepEqual(await b.takeOver(D, dead), { kind: 'taken' }, 'b takes over from the dead a');
    assert.deepEqual(await c.takeOver(D, dead), { kind: 'held', holder: { url: 'http://b:1', value: 'http://b:1 i2' } }, 'c, late, joins b');
    assert.equal(await a.renew(D), false, 'a no longer owns it');
    assert.equal(await b.renew(D), true);
    await a.release(D);
    assert.equal((await c.take(D)).kind, 'held', "a's release did not drop b's lease");
    await b.release(D);
    assert.deepEqual(await c.take(D), { kind: 'taken' });
    await c.release(D);
  });

  test('directory: holders added and removed; an unknown digest is an empty answer (a miss), not an error', async () => {
    const r = await connect(redis.url);
    const dir = new Directory(r, metrics);
    assert.deepEqual(await dir.holders(D), []);
    await dir.add(D, 'http://a:1');
    await dir.add(D, 'http://b:1');
    assert.deepEqual((await dir.holders(D))?.sort(), ['http://a:1', 'http://b:1']);
    await dir.remove(D, 'http://a:1');
    assert.deepEqual(await dir.holders(D), ['http://b:1']);
  });

  test('membership: a heartbeat key while running, gone when stopped', async () => {
    const r = await connect(redis.url);
    const m = new Membership(r, 'http://m:1', 'i9', { ttlMs: 2000 });
    m.start();
    await new Promise((res) => setTimeout(res, 200));
    assert.equal(await m.alive('http://m:1'), true);
    await m.stop();
    assert.equal(await m.alive('http://m:1'), false);
  });

  test('Redis not answering (SIGSTOP): each call fails within its deadline and reads as an error, never a miss', async () => {
    const r = await connect(redis.url, 250);
    const leases = new Leases(r, metrics, 'http://a:1 i1', 5000);
    const dir = new Directory(r, metrics);
    process.kill(redis.proc.pid, 'SIGSTOP');
    try {
      const t0 = performance.now();
      assert.deepEqual(await leases.take(`sha256:${'ef'.repeat(32)}`), { kind: 'error' });
      assert.equal(await dir.holders(D), undefined, 'unknown, not empty');
      // Generous bound (the deadline is 250 ms per call): the point is that it does not hang.
      assert.ok(performance.now() - t0 < 10_000);
    } finally {
      process.kill(redis.proc.pid, 'SIGCONT');
    }
  });

  test('Redis unreachable: calls fail at once with an error', async () => {
    const r = new ClusterRedis({ url: `redis://127.0.0.1:${await freePort()}`, timeoutMs: 250, metrics, log });
    clients.push(r);
    assert.deepEqual(await new Leases(r, metrics, 'x y', 5000).take(D), { kind: 'error' });
    assert.equal(await new Directory(r, metrics).holders(D), undefined);
  });
});
