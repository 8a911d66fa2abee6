/**
 * Issue 13 item 5: upstream bandwidth limits, measured against an unthrottled upstream (a real registry on
 * loopback). One 24 MiB fill runs at the cap (±10 %); two concurrent fills share it about evenly; a range
 * miss is shaped too; and a cached blob is served far above the cap meanwhile (clients of cached content
 * never wait on the bucket).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanupAll, requireCommands, tmpDir } from '../harness/proc.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { putBlob, randomBlobFile, type BlobFile } from '../harness/oci.js';
import { startMirror, type TestMirror } from '../helpers/mirror.js';
import { http, httpDigest } from '../helpers/http.js';

const MiB = 2 ** 20;
const CAP = 8_000_000; // bytes per second: `maxBandwidth: 8MB/s`

/** Fetches a blob through the mirror; resolves with its digest, bytes and achieved rate (bytes/s). */
async function timedGet(url: string, headers: Record<string, string> = {}): Promise<{ status: number; digest: string; bytes: number; rate: number; seconds: number }> {
  const t0 = performance.now();
  const r = await httpDigest(url, headers);
  const seconds = (r.endAt - t0) / 1000;
  return { status: r.status, digest: r.digest, bytes: r.bytes, seconds, rate: r.bytes / seconds };
}

const fmt = (rate: number) => `${(rate / 1e6).toFixed(2)} MB/s`;

describe('upstream bandwidth limits', () => {
  let upstream: Registry;
  let m: TestMirror;
  let blobs: BlobFile[];

  before(async () => {
    requireCommands('docker-registry');
    upstream = await startRegistry();
    const dir = await tmpDir('bw-blobs-');
    blobs = [];
    for (let i = 0; i < 4; i++) blobs.push(await randomBlobFile(dir, 24 * MiB));
    blobs.push(await randomBlobFile(dir, 8 * MiB));
    for (const b of blobs) await putBlob(upstream.url, 'acme/big', b);
    m = await startMirror({ upstreams: [`docker.io=${upstream.url}`], maxBandwidth: '8MB/s' });
  });
  after(cleanupAll);

  const url = (b: BlobFile) => `${m.url}/v2/acme/big/blobs/${b.digest}`;

  test('unthrottled, the upstream is far faster than the cap (the limit is what the next tests measure)', async () => {
    const direct = await timedGet(`${upstream.url}/v2/acme/big/blobs/${blobs[3]!.digest}`);
    console.log(`direct from the upstream: ${fmt(direct.rate)}`);
    assert.equal(direct.digest, blobs[3]!.digest);
    assert.ok(direct.rate > 4 * CAP, `the upstream alone moves ${fmt(direct.rate)}`);
  });

  test('one 24 MiB fill runs at the cap, within ±10 %', async () => {
    const b = blobs[0]!;
    const r = await timedGet(url(b));
    console.log(`one fill: ${r.bytes} bytes in ${r.seconds.toFixed(2)} s = ${fmt(r.rate)} (cap ${fmt(CAP)})`);
    assert.equal(r.status, 200);
    assert.equal(r.digest, b.digest);
    assert.ok(Math.abs(r.rate - CAP) <= 0.1 * CAP, `achieved ${fmt(r.rate)} against a cap of ${fmt(CAP)}`);
    assert.equal(await m.metric('regmirror_fills_completed_total'), 1);
  });

  test('two concurrent fills share the cap about evenly, and a cached blob is served far above it meanwhile', async () => {
    const [a, b] = [blobs[1]!, blobs[2]!];
    const t0 = performance.now();
    const both = Promise.all([timedGet(url(a)), timedGet(url(b))]);
    // Wait until both fills are under way, then read the blob cached by the previous test.
    for (let i = 0; i < 200 && m.mirror.parts.fills.snapshot().filter((f) => f.written > 0).length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(m.mirror.parts.fills.snapshot().length, 2, 'both fills in flight');
    const cached = await timedGet(url(blobs[0]!));
    const stillFilling = m.mirror.parts.fills.snapshot().length;
    const [ra, rb] = await both;
    const total = (ra.bytes + rb.bytes) / ((performance.now() - t0) / 1000);
    console.log(`two fills: ${fmt(ra.rate)} + ${fmt(rb.rate)}, together ${fmt(total)}; cached blob meanwhile: ${fmt(cached.rate)}`);
    assert.equal(ra.digest, a.digest);
    assert.equal(rb.digest, b.digest);
    assert.equal(cached.digest, blobs[0]!.digest);
    assert.equal(stillFilling, 2, 'the cached read finished while both fills were still running');
    assert.ok(Math.abs(total - CAP) <= 0.1 * CAP, `together ${fmt(total)} against a cap of ${fmt(CAP)}`);
    for (const r of [ra, rb]) assert.ok(r.rate >= 0.4 * CAP && r.rate <= 0.6 * CAP, `each about half the cap: ${fmt(r.rate)}`);
    assert.ok(cached.rate > 4 * CAP, `the cached blob is not shaped: ${fmt(cached.rate)}`);
  });

  test('a range miss is shaped as well', async () => {
    const b = blobs[4]!;
    const t0 = performance.now();
    const r = await http(url(b), { headers: { range: `bytes=0-${8 * MiB - 1}` } });
    const seconds = (performance.now() - t0) / 1000;
    const rate = r.body.length / seconds;
    console.log(`range miss: ${r.body.length} bytes in ${seconds.toFixed(2)} s = ${fmt(rate)}`);
    assert.equal(r.status, 206);
    assert.equal(r.body.length, 8 * MiB);
    assert.ok(Math.abs(rate - CAP) <= 0.1 * CAP, `range miss at ${fmt(rate)} against a cap of ${fmt(CAP)}`);
  });
});
