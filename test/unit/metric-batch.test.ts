import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Histogram, Registry } from 'prom-client';
import { CounterTally, FastHistogram } from '../../src/metric-batch.js';
import { Metrics, DURATION_BUCKETS } from '../../src/metrics.js';
import { prng } from '../helpers/prng.js';

test('FastHistogram renders exactly what a prom-client Histogram renders for the same observations', async () => {
  const ours = new Registry();
  const theirs = new Registry();
  const fast = new FastHistogram({ name: 'x_seconds', help: 'h', labelNames: ['kind', 'cache'], buckets: DURATION_BUCKETS, registry: ours });
  const ref = new Histogram({ name: 'x_seconds', help: 'h', labelNames: ['kind', 'cache'], buckets: DURATION_BUCKETS, registers: [theirs] });
  const rand = prng(7);
  const labels = [
    { kind: 'manifest', cache: 'hit' },
    { kind: 'blob', cache: 'miss' },
    { kind: 'blob', cache: 'joined' },
  ];
  for (let i = 0; i < 5000; i++) {
    const l = labels[Math.floor(rand() * labels.length)]!;
    // Values on bucket bounds too: `le` is inclusive.
    const v = rand() < 0.1 ? DURATION_BUCKETS[Math.floor(rand() * DURATION_BUCKETS.length)]! : rand() ** 4 * 400;
    fast.observe(`${l.kind} ${l.cache}`, () => ({ ...l }), v);
    ref.observe(l, v);
  }
  const norm = (text: string) => text.split('\n').filter(Boolean).sort();
  const a = norm(await ours.metrics());
  const b = norm(await theirs.metrics());
  assert.equal(a.length, b.length);
  // Sums may differ in the last float digits (other addition order); everything else is identical.
  for (let i = 0; i < a.length; i++) {
    if (a[i]!.includes('_sum{')) {
      const [ka, va] = a[i]!.split(' ');
      const [kb, vb] = b[i]!.split(' ');
      assert.equal(ka, kb);
      assert.ok(Math.abs(Number(va) - Number(vb)) < 1e-6 * Math.max(1, Number(vb)), `${a[i]} vs ${b[i]}`);
    } else assert.equal(a[i], b[i]);
  }
  assert.deepEqual((await ours.getMetricsAsJSON()).map((m) => m.name), ['x_seconds']);
});

test('CounterTally: increments reach the counter when it is read, each exactly once', async () => {
  const reg = new Registry();
  const tally = new CounterTally<'kind'>();
  const c = new Counter({ name: 'c_total', help: 'h', labelNames: ['kind'], registers: [reg], collect() { tally.flushInto(this); } });
  for (let i = 0; i < 10; i++) tally.add('a', () => ({ kind: 'a' }));
  tally.add('b', () => ({ kind: 'b' }), 5);
  const values = async () => Object.fromEntries((await c.get()).values.map((v) => [v.labels.kind, v.value]));
  assert.deepEqual(await values(), { a: 10, b: 5 });
  assert.deepEqual(await values(), { a: 10, b: 5 }, 'a second read adds nothing');
  tally.slot('a', () => ({ kind: 'a' })).n += 2;
  assert.match(await reg.metrics(), /c_total\{kind="a"\} 12/);
});

test('Metrics hot-path calls land in the named series: requests, duration, first byte, hits, bytes served', async () => {
  const m = new Metrics();
  m.requestDone('manifest', 'GET', 200, 'hit', 0.0002);
  m.requestDone('manifest', 'GET', 200, 'hit', 0.0003);
  m.requestDone('manifest', 'HEAD', 404, 'miss', 0.02);
  m.requestDone('manifest', 'GET', 200, 'hit', 0.0004);
  m.firstByte('blob', 'hit', 0.001);
  m.hit('manifest');
  m.served('cache', 478);
  m.served('cache', 2);
  const text = await m.registry.metrics();
  assert.match(text, /regmirror_requests_total\{kind="manifest",method="GET",status="200"\} 3/);
  assert.match(text, /regmirror_requests_total\{kind="manifest",method="HEAD",status="404"\} 1/);
  assert.match(text, /regmirror_request_duration_seconds_count\{kind="manifest",cache="hit"\} 3/);
  assert.match(text, /regmirror_request_duration_seconds_bucket\{le="0.00025",kind="manifest",cache="hit"\} 1/);
  assert.match(text, /regmirror_request_duration_seconds_count\{kind="manifest",cache="miss"\} 1/);
  assert.match(text, /regmirror_time_to_first_byte_seconds_count\{kind="blob",cache="hit"\} 1/);
  assert.match(text, /regmirror_cache_hits_total\{kind="manifest"\} 1/);
  assert.match(text, /regmirror_served_bytes_total\{source="cache"\} 480/);
});
