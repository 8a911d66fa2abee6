// Issue 13 item 5: the token bucket behind upstream bandwidth limits (rate, burst, fair turns), the
// shaping of bodies in quanta, the per-upstream/overall composition, and the `maxBandwidth` settings.
// Time is node:test's mock clock, so nothing here depends on how loaded the machine is.
import { afterEach, beforeEach, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { Bandwidth, QUANTUM, TokenBucket, shapeChunks, type Shaper } from '../../src/upstream/bandwidth.js';
import { buildConfig, ConfigError } from '../../src/config/load.js';
import { parseRate } from '../../src/config/rate.js';

const flush = async () => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 }));
afterEach(() => mock.timers.reset());

const clock = { now: () => Date.now() };

test('a bucket starts empty and lets bytes through at its rate, not before', async () => {
  const b = new TokenBucket(1_000_000, { burst: 200_000, ...clock });
  let done = false;
  void b.take(100_000).then(() => (done = true));
  await flush();
  assert.equal(done, false, 'no tokens at the start');
  mock.timers.tick(99);
  await flush();
  assert.equal(done, false, '99 ms make 99 000 tokens: not enough');
  mock.timers.tick(2);
  await flush();
  assert.equal(done, true, 'granted once 100 000 tokens have accrued');
});

test('over a long run the bytes let through match rate × time (plus at most one burst)', async () => {
  const rate = 8_000_000;
  const b = new TokenBucket(rate, clock);
  let bytes = 0;
  let stop = false;
  const loop = (async () => {
    while (!stop) {
      await b.take(QUANTUM);
      bytes += QUANTUM;
    }
  })();
  for (let ms = 0; ms < 3000; ms += 7) {
    mock.timers.tick(7);
    await flush();
  }
  stop = true;
  mock.timers.tick(1000);
  await flush();
  await loop;
  const expected = rate * 3;
  assert.ok(bytes <= expected + b.burst + QUANTUM, `${bytes} ≤ ${expected} + burst`);
  assert.ok(bytes >= expected - 2 * QUANTUM, `${bytes} ≥ ${expected} − 2 quanta`);
});

test('concurrent transfers take turns: each gets its share, the first does not take all', async () => {
  const b = new TokenBucket(1_000_000, { burst: 4 * QUANTUM, ...clock });
  const order: string[] = [];
  const run = async (name: string, turns: number) => {
    for (let i = 0; i < turns; i++) {
      await b.take(QUANTUM);
      order.push(name);
    }
  };
  const all = Promise.all([run('a', 30), run('b', 30), run('c', 30)]);
  for (let i = 0; i < 2000 && order.length < 90; i++) {
    mock.timers.tick(10);
    await flush();
  }
  await all;
  assert.equal(order.length, 90);
  // In every window of 30 grants each transfer had about a third.
  for (let w = 0; w < 90; w += 30) {
    const win = order.slice(w, w + 30);
    for (const n of ['a', 'b', 'c']) {
      const k = win.filter((x) => x === n).length;
      assert.ok(k >= 9 && k <= 11, `window ${w}: ${n} had ${k} of 30 turns (${win.join('')})`);
    }
  }
});

test('a request larger than the burst is capped to it, so it cannot wait forever', async () => {
  const b = new TokenBucket(1000, { burst: 500, ...clock });
  let done = false;
  void b.take(10_000).then(() => (done = true));
  mock.timers.tick(501);
  await flush();
  assert.equal(done, true);
});

test('a bucket refuses a rate that is not positive', () => {
  assert.throws(() => new TokenBucket(0), RangeError);
  assert.throws(() => new TokenBucket(Number.NaN), RangeError);
});

test('shapeChunks splits chunks into quanta, takes each from the shaper, and keeps every byte in order', async () => {
  const taken: number[] = [];
  const shaper: Shaper = { take: async (n) => void taken.push(n) };
  const src = Buffer.alloc(3 * QUANTUM + 10);
  for (let i = 0; i < src.length; i++) src[i] = i & 0xff;
  async function* gen() {
    yield src.subarray(0, 5);
    yield src.subarray(5);
  }
  const out: Uint8Array[] = [];
  for await (const c of shapeChunks(gen(), shaper)) out.push(c);
  assert.deepEqual(taken, [5, QUANTUM, QUANTUM, QUANTUM, 5]);
  assert.ok(taken.every((n) => n <= QUANTUM));
  assert.ok(Buffer.concat(out).equals(src));
});

test('Bandwidth: unlimited upstreams get no shaper; an upstream cap and the overall cap both apply', async () => {
  assert.equal(new Bandwidth({ overall: 0, perUpstream: {} }).forUpstream('docker.io'), undefined);
  const bw = new Bandwidth({ overall: 2_000_000, perUpstream: { 'ghcr.io': 1_000_000 } }, { burst: QUANTUM, ...clock });
  assert.ok(bw.forUpstream('docker.io'));
  assert.equal(bw.forUpstream('docker.io'), bw.forUpstream('docker.io'), 'one shaper per upstream');
  // ghcr.io is held to its own 1 MB/s although the overall cap is 2 MB/s.
  const ghcr = bw.forUpstream('ghcr.io')!;
  let bytes = 0;
  let stop = false;
  const loop = (async () => {
    while (!stop) {
      await ghcr.take(QUANTUM);
      bytes += QUANTUM;
    }
  })();
  for (let i = 0; i < 200; i++) {
    mock.timers.tick(10);
    await flush();
  }
  stop = true;
  mock.timers.tick(1000);
  await flush();
  await loop;
  assert.ok(bytes >= 2_000_000 - 2 * QUANTUM && bytes <= 2_000_000 + 3 * QUANTUM, `ghcr.io moved ${bytes} bytes in 2 s at 1 MB/s`);
});

test('maxBandwidth and upstreamBandwidth: rates with units, unlimited by default, unknown upstreams refused', () => {
  assert.equal(parseRate('50MB/s'), 50_000_000);
  assert.equal(parseRate('8MiB/s'), 8 * 2 ** 20);
  assert.equal(parseRate('20MB'), 20_000_000);
  assert.equal(parseRate(1000), 1000);
  assert.equal(parseRate('unlimited'), 0);
  assert.throws(() => parseRate('fast'), /invalid rate/);
  assert.deepEqual(buildConfig({}).bandwidth, { overall: 0, perUpstream: {} });
  const c = buildConfig({ upstreams: ['docker.io=http://127.0.0.1:1', 'ghcr.io=http://127.0.0.1:2'], maxBandwidth: '50MB/s', upstreamBandwidth: { 'docker.io': '20MB/s' } });
  assert.deepEqual(c.bandwidth, { overall: 50_000_000, perUpstream: { 'docker.io': 20_000_000 } });
  assert.throws(() => buildConfig({ maxBandwidth: 'lots' }), (e: unknown) => e instanceof ConfigError && e.key === 'maxBandwidth');
  assert.throws(() => buildConfig({ upstreamBandwidth: { 'quay.io': '1MB/s' } }), (e: unknown) => e instanceof ConfigError && e.key === 'upstreamBandwidth.quay.io');
});
