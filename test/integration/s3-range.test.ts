/**
 * Multi-range requests behind an S3-backed upstream (distribution's s3 driver, 307 to presigned URLs on
 * an S3 server that answers multi-range GETs with the whole object, as Amazon S3 does). The mirror splits
 * them into single-range fetches: the S3 server sends no more than the requested bytes plus 64 KiB.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { cleanupAll, requireCommands, tmpDir } from '../harness/proc.js';
import { startRegistry } from '../harness/registry.js';
import { putBlob, randomBlobFile, type BlobFile } from '../harness/oci.js';
import { startS3Registry, type S3Registry } from '../harness/s3.js';
import { startMirror, type TestMirror } from '../helpers/mirror.js';
import { http, errorCode } from '../helpers/http.js';
import { parseByteranges } from '../unit/multipart-parser.js';

const MiB = 2 ** 20;
const SLACK = 64 * 1024;

function rangeHeader(ranges: Array<[number, number]>): string {
  return `bytes=${ranges.map(([s, e]) => `${s}-${e}`).join(',')}`;
}

function checkMultipart(r: { status: number; headers: Record<string, unknown>; body: Buffer }, blob: Buffer, ranges: Array<[number, number]>): void {
  assert.equal(r.status, 206);
  const parts = parseByteranges(String(r.headers['content-type']), r.body);
  assert.equal(parts.length, ranges.length);
  ranges.forEach(([s, e], i) => {
    assert.equal(parts[i]!.contentRange, `bytes ${s}-${e}/${blob.length}`);
    assert.ok(parts[i]!.body.equals(blob.subarray(s, e + 1)), `part ${i}`);
  });
}

/** Follows the registry's 307 by hand with a multi-range header: what a client talking to it directly costs. */
function directMultiRange(registryUrl: string, path: string, range: string): Promise<number> {
  return new Promise((resolve, reject) => {
    request(`${registryUrl}${path}`, { headers: { range } }, (res) => {
      res.resume();
      const loc = res.headers.location;
      if (res.statusCode !== 307 || !loc) return reject(new Error(`expected 307, got ${res.statusCode}`));
      request(loc, { headers: { range } }, (s3) => {
        let n = 0;
        s3.on('data', (c: Buffer) => (n += c.length));
        s3.on('end', () => resolve(n));
      })
        .on('error', reject)
        .end();
    })
      .on('error', reject)
      .end();
  });
}

describe('multi-range behind an S3-backed upstream', () => {
  let s3: S3Registry;
  let m: TestMirror;
  let blobs: BlobFile[];
  let bytes: Buffer[];

  before(async () => {
    requireCommands('docker-registry');
    const fsReg = await startRegistry();
    const dir = await tmpDir('s3-blobs-');
    blobs = [await randomBlobFile(dir, 64 * MiB), await randomBlobFile(dir, 64 * MiB), await randomBlobFile(dir, 8 * MiB)];
    for (const b of blobs) await putBlob(fsReg.url, 'acme/layers', b);
    bytes = await Promise.all(blobs.map((b) => readFile(b.path)));
    await fsReg.stop();
    s3 = await startS3Registry({ from: fsReg });
    m = await startMirror({ upstreams: [`docker.io=${s3.registry.url}`] });
  });
  after(cleanupAll);

  const url = (b: BlobFile) => `${m.url}/v2/acme/layers/blobs/${b.digest}`;

  test('the harness reproduces the problem: a multi-range GET straight to S3 costs the whole blob', async () => {
    s3.s3.reset();
    const got = await directMultiRange(s3.registry.url, `/v2/acme/layers/blobs/${blobs[0]!.digest}`, 'bytes=0-9,100-109');
    assert.equal(got, 64 * MiB);
    assert.ok(s3.s3.blobBytes() >= 64 * MiB);
  });

  test('uncached 64 MiB blob: multi-range answered correctly; S3 sends at most requested + 64 KiB', async () => {
    const b = blobs[0]!;
    const ranges: Array<[number, number]> = [[0, 4095], [20 * MiB, 20 * MiB + 4095], [40 * MiB + 7, 40 * MiB + 4102], [64 * MiB - 4096, 64 * MiB - 1], [10, 19]];
    s3.s3.reset();
    const r = await http(url(b), { headers: { range: rangeHeader(ranges) } });
    checkMultipart(r, bytes[0]!, ranges);
    const requested = ranges.reduce((s, [a, e]) => s + e - a + 1, 0);
    const sent = s3.s3.blobBytes();
    console.log(`# multi-range miss: ${ranges.length} ranges, ${requested} bytes requested, S3 sent ${sent} bytes for a ${b.size}-byte blob`);
    assert.ok(sent <= requested + SLACK, `S3 sent ${sent} for ${requested} requested`);
    for (const p of s3.s3.presignedRequests().filter((x) => x.method === 'GET')) assert.ok(p.range && !p.range.includes(','), `single range to S3: ${p.range}`);
    assert.equal(await m.metric('regmirror_fills_started_total'), 0);
  });

  test('single range on a miss: 206 from S3 via the redirect, only that range read', async () => {
    const b = blobs[1]!;
    s3.s3.reset();
    const r = await http(url(b), { headers: { range: `bytes=${33 * MiB}-${33 * MiB + 65535}` } });
    assert.equal(r.status, 206);
    assert.equal(r.headers['content-range'], `bytes ${33 * MiB}-${33 * MiB + 65535}/${b.size}`);
    assert.ok(r.body.equals(bytes[1]!.subarray(33 * MiB, 33 * MiB + 65536)));
    assert.ok(s3.s3.blobBytes() <= 65536 + SLACK);
  });

  test('1000 ranges in one header on a miss: exact parts, bounded S3 bytes', async () => {
    const b = blobs[1]!;
    const ranges: Array<[number, number]> = Array.from({ length: 1000 }, (_, i) => [i * 65_000 + (i % 7) * 13, i * 65_000 + (i % 7) * 13 + 199]);
    s3.s3.reset();
    const r = await http(url(b), { headers: { range: rangeHeader(ranges) } });
    checkMultipart(r, bytes[1]!, ranges);
    const requested = 1000 * 200;
    assert.ok(s3.s3.blobBytes() <= requested + SLACK, `S3 sent ${s3.s3.blobBytes()} for ${requested} requested`);
  });

  test('unsatisfiable on a miss → 416; If-Range mismatch → whole blob', async () => {
    const b = blobs[2]!;
    const r = await http(url(b), { headers: { range: `bytes=${b.size + 10}-${b.size + 20},${b.size + 30}-` } });
    assert.equal(r.status, 416);
    assert.equal(errorCode(r), undefined);
    assert.equal(r.body.length, 0, '416 has no body, only Content-Range');
    assert.equal(r.headers['content-type'], undefined);
    assert.equal(r.headers['content-range'], `bytes */${b.size}`);
    const ir = await http(url(b), { headers: { range: 'bytes=0-9', 'if-range': '"sha256:nope"' } });
    assert.equal(ir.status, 200);
    assert.ok(ir.body.equals(bytes[2]!));
  });

  test('the same multi-range on the cached blob costs S3 nothing', async () => {
    const b = blobs[2]!; // cached by the If-Range answer above (a whole-blob fill)
    const ranges: Array<[number, number]> = [[0, 99], [5 * MiB, 5 * MiB + 99], [1000, 1099]];
    s3.s3.reset();
    checkMultipart(await http(url(b), { headers: { range: rangeHeader(ranges) } }), bytes[2]!, ranges);
    assert.equal(s3.s3.requests().length, 0);
  });
});
