/**
 * Single-flight fills: many cold clients of one blob make one upstream GET, every client gets the right
 * bytes, joiners start streaming before the fill finishes, the first client leaving does not stop the
 * fill, an upstream dying mid-body fails every joiner and caches nothing, a slow reader never holds the
 * fast ones back, and the fill cap queues (bounded) instead of opening more upstream connections.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { cleanupAll, requireCommands, tmpDir, delay } from '../harness/proc.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { putBlob, randomBlobFile, type BlobFile } from '../harness/oci.js';
import { startRelay, type Relay } from '../harness/relay.js';
import { startMirror, type TestMirror } from '../helpers/mirror.js';
import { errorCode, http, httpDigest } from '../helpers/http.js';

const MiB = 2 ** 20;

function blobGets(relay: Relay, b: BlobFile) {
  return relay.stats().log.filter((r) => r.method === 'GET' && r.path.includes(b.digest));
}

/** Reads a response slowly: `bytesPerTick` every `tickMs`. Resolves when it ends or is aborted by `stop`. */
function slowReader(url: string, tickMs: number): { stop: () => void; done: Promise<{ bytes: number; complete: boolean }> } {
  let stopFn = () => {};
  const done = new Promise<{ bytes: number; complete: boolean }>((resolve, reject) => {
    const req = request(url, { agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        res.pause();
        setTimeout(() => res.resume(), tickMs);
      });
      res.on('close', () => resolve({ bytes, complete: res.complete }));
    });
    req.on('error', reject);
    stopFn = () => req.destroy();
    req.end();
  });
  return { stop: () => stopFn(), done };
}

describe('single-flight fills', () => {
  let upstream: Registry;
  let relay: Relay;
  let blobs: BlobFile[];

  before(async () => {
    requireCommands('docker-registry');
    upstream = await startRegistry();
    relay = await startRelay({ target: upstream.url });
    const dir = await tmpDir('fill-blobs-');
    blobs = [];
    for (let i = 0; i < 6; i++) blobs.push(await randomBlobFile(dir, 24 * MiB));
    for (const b of blobs) await putBlob(upstream.url, 'acme/big', b);
  });
  after(cleanupAll);

  async function mirror(input: Parameters<typeof startMirror>[0] = {}): Promise<TestMirror> {
    return startMirror({ upstreams: [`docker.io=${relay.url}`], ...input });
  }

  test('30 concurrent cold clients: one upstream GET, right bytes for all, first bytes before the fill ends', async () => {
    const m = await mirror();
    const b = blobs[0]!;
    relay.reset();
    relay.setThrottle(24 * MiB); // about one second for the fill
    const t0 = performance.now();
    const results = await Promise.all(Array.from({ length: 30 }, () => httpDigest(`${m.url}/v2/acme/big/blobs/${b.digest}`)));
    relay.setThrottle(undefined);
    assert.equal(blobGets(relay, b).length, 1, 'exactly one upstream GET');
    await upstream.settle();
    assert.equal(upstream.accessLog().filter((e) => e.method === 'GET' && e.reference === b.digest).length, 1, 'the upstream access log agrees');
    for (const r of results) {
      assert.equal(r.status, 200);
      assert.equal(r.digest, b.digest);
      assert.ok(r.complete);
    }
    // No client can finish before the fill is verified (the last byte is held back until then), so the
    // earliest end bounds the fill's end from above.
    const fillEnd = Math.min(...results.map((r) => r.endAt)) - t0;
    const lastFirstByte = Math.max(...results.map((r) => r.firstByteAt)) - t0;
    assert.ok(lastFirstByte < fillEnd / 2, `every joiner streamed early: last first byte at ${lastFirstByte.toFixed(0)} ms of a ${fillEnd.toFixed(0)} ms fill`);
    assert.equal(await m.metric('regmirror_fills_started_total'), 1);
    assert.equal(await m.metric('regmirror_fill_joiners_total'), 29);
    assert.ok((await m.metric('regmirror_fill_joiner_bytes_total')) >= 29 * (b.size - 1));
    assert.equal(await m.metric('regmirror_fill_duration_seconds'), 1, 'one fill observed in the histogram');
  });

  test('the first client leaving does not stop the fill: the others complete and the blob is cached', async () => {
    const m = await mirror();
    const b = blobs[1]!;
    relay.reset();
    relay.setThrottle(48 * MiB);
    const first = slowReader(`${m.url}/v2/acme/big/blobs/${b.digest}`, 1);
    await delay(100);
    const others = Promise.all(Array.from({ length: 3 }, () => httpDigest(`${m.url}/v2/acme/big/blobs/${b.digest}`)));
    await delay(50);
    first.stop();
    const firstResult = await first.done;
    assert.equal(firstResult.complete, false);
    for (const r of await others) assert.equal(r.digest, b.digest);
    relay.setThrottle(undefined);
    assert.equal(blobGets(relay, b).length, 1);
    const size = (await stat(join(m.dataDir, 'blobs', 'sha256', b.digest.slice(7, 9), b.digest.slice(7)))).size;
    assert.equal(size, b.size);
  });

  test('a sole client leaving also lets the fill finish by default (warm cache)', async () => {
    const m = await mirror();
    const b = blobs[2]!;
    relay.reset();
    const c = slowReader(`${m.url}/v2/acme/big/blobs/${b.digest}`, 50);
    await delay(100);
    c.stop();
    await c.done;
    for (let i = 0; i < 100 && (await m.metric('regmirror_fills_completed_total')) < 1; i++) await delay(50);
    assert.equal(await m.metric('regmirror_fills_completed_total'), 1);
    relay.reset();
    const again = await httpDigest(`${m.url}/v2/acme/big/blobs/${b.digest}`);
    assert.equal(again.digest, b.digest);
    assert.equal(relay.stats().requests, 0, 'served from the cache');
  });

  test('abortOrphanedFills: the fill stops when nobody is left, and nothing is cached', async () => {
    const m = await mirror({ abortOrphanedFills: true });
    const b = blobs[3]!;
    relay.reset();
    relay.setThrottle(8 * MiB);
    const c = slowReader(`${m.url}/v2/acme/big/blobs/${b.digest}`, 1);
    await delay(200);
    c.stop();
    await c.done;
    for (let i = 0; i < 100 && (await m.metric('regmirror_fills_failed_total', { reason: 'aborted' })) < 1; i++) await delay(50);
    relay.setThrottle(undefined);
    assert.equal(await m.metric('regmirror_fills_failed_total', { reason: 'aborted' }), 1);
    assert.ok(blobGets(relay, b)[0]!.aborted, 'the upstream transfer was cut');
  });

  test('the upstream dies mid-body: every joiner fails, the cache stays empty, the next request succeeds', async () => {
    const m = await mirror();
    const b = blobs[4]!;
    relay.reset();
    relay.setThrottle(24 * MiB);
    relay.setMode('truncate', { times: 1, afterBytes: 8 * MiB });
    const results = await Promise.all(Array.from({ length: 10 }, () => httpDigest(`${m.url}/v2/acme/big/blobs/${b.digest}`)));
    relay.setThrottle(undefined);
    for (const r of results) {
      assert.equal(r.complete, false, 'aborted, never a clean short body');
      assert.ok(r.bytes < b.size);
    }
    assert.equal(blobGets(relay, b).length, 1);
    await assert.rejects(stat(join(m.dataDir, 'blobs', 'sha256', b.digest.slice(7, 9), b.digest.slice(7))));
    const next = await httpDigest(`${m.url}/v2/acme/big/blobs/${b.digest}`);
    assert.equal(next.digest, b.digest, 'no negative caching');
  });

  test('a slow reader beside fast readers: the fast ones finish at upstream speed', async () => {
    const m = await mirror();
    const b = blobs[5]!;
    relay.reset();
    relay.setThrottle(32 * MiB);
    const t0 = performance.now();
    const slow = slowReader(`${m.url}/v2/acme/big/blobs/${b.digest}`, 100);
    const fast = await Promise.all(Array.from({ length: 3 }, () => httpDigest(`${m.url}/v2/acme/big/blobs/${b.digest}`)));
    relay.setThrottle(undefined);
    const fill = blobGets(relay, b)[0]!;
    for (const f of fast) {
      assert.equal(f.digest, b.digest);
      assert.ok(f.endAt - t0 < fill.durationMs * 1.5 + 200, `fast reader took ${(f.endAt - t0).toFixed(0)} ms for a ${fill.durationMs.toFixed(0)} ms upstream transfer`);
    }
    slow.stop();
    const s = await slow.done;
    assert.ok(s.bytes < b.size, 'the slow reader was still far behind');
  });

  test('the fill cap queues requests, bounded: beyond the wait they get 503 UNAVAILABLE with Retry-After', async () => {
    const m = await mirror({ maxConcurrentFills: 1, fillQueueTimeout: '150ms' });
    const [a, b] = [blobs[0]!, blobs[1]!];
    relay.reset();
    relay.setThrottle(16 * MiB);
    const first = httpDigest(`${m.url}/v2/acme/big/blobs/${a.digest}`);
    await delay(100);
    const second = await http(`${m.url}/v2/acme/big/blobs/${b.digest}`);
    assert.equal(second.status, 503);
    assert.equal(errorCode(second), 'UNAVAILABLE');
    assert.ok(second.headers['retry-after']);
    assert.equal(blobGets(relay, b).length, 0, 'no upstream connection beyond the cap');
    relay.setThrottle(undefined);
    assert.equal((await first).digest, a.digest);
    assert.equal((await httpDigest(`${m.url}/v2/acme/big/blobs/${b.digest}`)).digest, b.digest);
  });
});
