/**
 * Range requests against a filesystem upstream: cached blobs (single, multi, suffix, clamp, 416,
 * If-Range, 1000 ranges, too many), a blob with a fill in flight, and misses (single forwarded, multi
 * split into single-range upstream requests; no fill by default).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cleanupAll, delay, requireCommands, tmpDir } from '../harness/proc.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { putBlob, randomBlobFile, type BlobFile } from '../harness/oci.js';
import { startRelay, type Relay } from '../harness/relay.js';
import { startMirror, type TestMirror } from '../helpers/mirror.js';
import { http, errorCode } from '../helpers/http.js';
import { parseByteranges } from '../unit/multipart-parser.js';

const MiB = 2 ** 20;

function expectParts(res: { status: number; headers: Record<string, unknown>; body: Buffer }, blob: Buffer, ranges: Array<[number, number]>): void {
  assert.equal(res.status, 206);
  const ct = String(res.headers['content-type']);
  assert.match(ct, /^multipart\/byteranges; boundary=/);
  assert.equal(res.headers['content-range'], undefined, 'no top-level Content-Range on multipart');
  assert.equal(Number(res.headers['content-length']), res.body.length);
  const parts = parseByteranges(ct, res.body);
  assert.equal(parts.length, ranges.length, 'one part per requested range');
  ranges.forEach(([s, e], i) => {
    const end = Math.min(e, blob.length - 1);
    assert.equal(parts[i]!.contentRange, `bytes ${s}-${end}/${blob.length}`, `part ${i}`);
    assert.equal(parts[i]!.contentType, 'application/octet-stream');
    assert.ok(parts[i]!.body.equals(blob.subarray(s, end + 1)), `part ${i} bytes`);
  });
}

describe('range requests', () => {
  let upstream: Registry;
  let relay: Relay;
  let m: TestMirror;
  let small: BlobFile;
  let smallBytes: Buffer;
  let big: BlobFile;
  let bigBytes: Buffer;
  let third: BlobFile;
  let thirdBytes: Buffer;

  before(async () => {
    requireCommands('docker-registry');
    upstream = await startRegistry();
    relay = await startRelay({ target: upstream.url });
    const dir = await tmpDir('range-blobs-');
    small = await randomBlobFile(dir, 1 * MiB + 123);
    big = await randomBlobFile(dir, 16 * MiB);
    third = await randomBlobFile(dir, 8 * MiB);
    for (const b of [small, big, third]) await putBlob(upstream.url, 'acme/data', b);
    [smallBytes, bigBytes, thirdBytes] = (await Promise.all([small, big, third].map((b) => readFile(b.path)))) as [Buffer, Buffer, Buffer];
    m = await startMirror({ upstreams: [`docker.io=${relay.url}`] });
  });
  after(cleanupAll);

  const url = (b: BlobFile) => `${m.url}/v2/acme/data/blobs/${b.digest}`;

  test('a single range on a miss is forwarded upstream, streamed back as 206, and starts no fill', async () => {
    relay.reset();
    const r = await http(url(small), { headers: { range: 'bytes=1000-1999' } });
    assert.equal(r.status, 206);
    assert.equal(r.headers['content-range'], `bytes 1000-1999/${small.size}`);
    assert.ok(r.body.equals(smallBytes.subarray(1000, 2000)));
    const sent = relay.stats().log.filter((x) => x.method === 'GET');
    assert.equal(sent.length, 1);
    assert.equal(sent[0]!.range, 'bytes=1000-1999');
    assert.ok(relay.stats().bytes < 2000 + 1024, `upstream sent ${relay.stats().bytes} bytes`);
    const head = await http(url(small), { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await m.metric('regmirror_fills_started_total'), 0, 'no whole-blob fill for a range');
    const suffix = await http(url(small), { headers: { range: 'bytes=-100' } });
    assert.equal(suffix.headers['content-range'], `bytes ${small.size - 100}-${small.size - 1}/${small.size}`);
    assert.ok(suffix.body.equals(smallBytes.subarray(small.size - 100)));
  });

  test('several ranges on a miss: single-range upstream requests, a correct multipart answer', async () => {
    relay.reset();
    const ranges: Array<[number, number]> = [[5 * MiB, 5 * MiB + 9], [10, 19], [12 * MiB, 12 * MiB + 300_000], [15, 40], [16 * MiB - 50, 16 * MiB + 1000]];
    const r = await http(url(big), { headers: { range: `bytes=${ranges.map(([s, e]) => `${s}-${e}`).join(',')}` } });
    expectParts(r, bigBytes, ranges);
    const gets = relay.stats().log.filter((x) => x.method === 'GET');
    for (const g of gets) assert.ok(g.range && !g.range.includes(','), `single range upstream: ${g.range}`);
    const requested = 10 + 300_001 + 50 + 31;
    assert.ok(relay.stats().bytes <= requested + 64 * 1024, `upstream sent ${relay.stats().bytes} for ${requested} requested`);
    assert.equal(await m.metric('regmirror_fills_started_total'), 0);
  });

  test('bytes=0- on a miss is a whole-blob request: it fills the cache', async () => {
    const r = await http(url(small), { headers: { range: 'bytes=0-' } });
    assert.equal(r.status, 206);
    assert.equal(r.headers['content-range'], `bytes 0-${small.size - 1}/${small.size}`);
    assert.ok(r.body.equals(smallBytes));
    assert.equal(await m.metric('regmirror_fills_completed_total'), 1);
  });

  test('cached blob: single, suffix, open, clamped and multi ranges; same ETag on 206 and 200', async () => {
    relay.reset();
    const whole = await http(url(small));
    assert.equal(whole.status, 200);
    const single = await http(url(small), { headers: { range: 'bytes=0-0' } });
    assert.equal(single.status, 206);
    assert.equal(single.headers.etag, whole.headers.etag);
    assert.equal(single.headers['content-range'], `bytes 0-0/${small.size}`);
    assert.equal(single.body.length, 1);
    const clamped = await http(url(small), { headers: { range: `bytes=${small.size - 10}-${small.size + 1000}` } });
    assert.equal(clamped.headers['content-range'], `bytes ${small.size - 10}-${small.size - 1}/${small.size}`);
    const open = await http(url(small), { headers: { range: `bytes=${MiB}-` } });
    assert.ok(open.body.equals(smallBytes.subarray(MiB)));
    expectParts(await http(url(small), { headers: { range: 'bytes=0-99, 200-299,50-150,-10' } }), smallBytes, [[0, 99], [200, 299], [50, 150], [small.size - 10, small.size - 1]]);
    assert.equal(relay.stats().requests, 0, 'a cached blob needs no upstream');
  });

  test('unsatisfiable → 416 with Content-Range bytes */size; malformed → whole body', async () => {
    const r = await http(url(small), { headers: { range: `bytes=${small.size}-` } });
    assert.equal(r.status, 416);
    assert.equal(r.headers['content-range'], `bytes */${small.size}`);
    assert.equal(errorCode(r), undefined);
    assert.equal(r.body.length, 0, '416 has no body, only Content-Range');
    assert.equal(r.headers['content-type'], undefined);
    const bad = await http(url(small), { headers: { range: 'bytes=9-2' } });
    assert.equal(bad.status, 200);
    assert.equal(bad.body.length, small.size);
  });

  test('If-Range: the strong ETag matches, anything else gets the whole blob', async () => {
    const etag = `"${small.digest}"`;
    const yes = await http(url(small), { headers: { range: 'bytes=0-9', 'if-range': etag } });
    assert.equal(yes.status, 206);
    const no = await http(url(small), { headers: { range: 'bytes=0-9', 'if-range': '"sha256:other"' } });
    assert.equal(no.status, 200);
    assert.equal(no.body.length, small.size);
    const date = await http(url(small), { headers: { range: 'bytes=0-9', 'if-range': 'Sun, 22 Nov 2026 00:00:00 GMT' } });
    assert.equal(date.status, 200);
  });

  test('1000 ranges in one header (containers/image style) → 1000 parts; over the limit → 200 whole', async () => {
    const ranges: Array<[number, number]> = Array.from({ length: 1000 }, (_, i) => [i * 1000, i * 1000 + 99]);
    const header = `bytes=${ranges.map(([s, e]) => `${s}-${e}`).join(',    ')}`;
    assert.ok(header.length > 16 * 1024, 'more than Node\'s default header limit');
    expectParts(await http(url(small), { headers: { range: header } }), smallBytes, ranges);
    const tooMany = `bytes=${Array.from({ length: 2049 }, (_, i) => `${i}-${i}`).join(',')}`;
    const r = await http(url(small), { headers: { range: tooMany } });
    assert.equal(r.status, 200);
    assert.equal(r.body.length, small.size);
  });

  test('1000 ranges on a miss: coalesced into few upstream requests, exact parts', async () => {
    relay.reset();
    const ranges: Array<[number, number]> = Array.from({ length: 1000 }, (_, i) => [(i * 7919) % (8 * MiB - 200), 0]).map(([s]) => [s!, s! + 99]);
    const r = await http(url(third), { headers: { range: `bytes=${ranges.map(([s, e]) => `${s}-${e}`).join(',')}` } });
    expectParts(r, thirdBytes, ranges);
    const gets = relay.stats().log.filter((x) => x.method === 'GET').length;
    assert.ok(gets < 1000, `${gets} upstream GETs for 1000 ranges`);
    assert.ok(relay.stats().bytes <= 100_000 + 64 * 1024, `upstream sent ${relay.stats().bytes}`);
  });

  test('a small hot blob is served from memory after its first hit, ranges included, with no file I/O', async () => {
    const dir = await tmpDir('range-hot-');
    const hot = await randomBlobFile(dir, 300_000);
    const hotBytes = await readFile(hot.path);
    await putBlob(upstream.url, 'acme/data', hot);
    const u = `${m.url}/v2/acme/data/blobs/${hot.digest}`;
    assert.ok((await http(u)).body.equals(hotBytes), 'cold: filled');
    assert.ok((await http(u)).body.equals(hotBytes), 'first hit: read from disk into memory');
    const { rm } = await import('node:fs/promises');
    await rm(join(m.dataDir, 'blobs', 'sha256', hot.digest.slice(7, 9), hot.digest.slice(7)));
    relay.reset();
    const whole = await http(u);
    assert.equal(whole.status, 200);
    assert.ok(whole.body.equals(hotBytes), 'served from memory although the file is gone');
    const single = await http(u, { headers: { range: 'bytes=100-199' } });
    assert.equal(single.headers['content-range'], `bytes 100-199/${hot.size}`);
    assert.ok(single.body.equals(hotBytes.subarray(100, 200)));
    expectParts(await http(u, { headers: { range: 'bytes=0-9,-5' } }), hotBytes, [[0, 9], [hot.size - 5, hot.size - 1]]);
    assert.equal(relay.stats().requests, 0);
  });

  test('a range on a blob with a fill in flight is served from the fill', async () => {
    relay.setThrottle(8 * MiB);
    const whole = http(url(big));
    await delay(300);
    const r = await http(url(big), { headers: { range: 'bytes=100-199,8388608-8388707' } });
    expectParts(r, bigBytes, [[100, 199], [8388608, 8388707]]);
    assert.ok((await m.metric('regmirror_range_requests_total', { source: 'fill' })) >= 1);
    const w = await whole;
    assert.ok(w.body.equals(bigBytes));
    relay.setThrottle(undefined);
  });
});
