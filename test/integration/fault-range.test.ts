// Issue 9, items 2 and 4: a range served from a fill in flight never ends cleanly with unverified bytes; overlapping ranges are merged or answered whole; upstream bytes per request are bounded; repeated range misses get one background whole fill.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { cleanupAll, delay, requireCommands, tmpDir } from '../harness/proc.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { putBlob, randomBlobFile } from '../harness/oci.js';
import { startRelay, type Relay } from '../harness/relay.js';
import { httpDigest } from '../helpers/http.js';
import { startChild, type ChildMirror } from './fault-child.js';

const MiB = 2 ** 20;

function blobFile(dataDir: string, digest: string): string {
  const hex = digest.split(':')[1]!;
  return join(dataDir, 'blobs', 'sha256', hex.slice(0, 2), hex);
}

/** A GET that reads at most `limit` body bytes, then hangs up; reports the headers and whether the body ended cleanly. */
function boundedGet(url: string, headers: Record<string, string>, limit: number): Promise<{ status: number; headers: IncomingHttpHeaders; bytes: number; complete: boolean; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers, agent: false }, (res) => {
      let bytes = 0;
      const keep: Buffer[] = [];
      let done = false;
      const finish = (complete: boolean) => {
        if (done) return;
        done = true;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, bytes, complete, body: Buffer.concat(keep) });
      };
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        if (bytes <= 64 * 1024) keep.push(c);
        if (bytes > limit) {
          res.destroy();
          finish(false);
        }
      });
      res.on('end', () => finish(res.complete));
      res.on('close', () => finish(res.complete));
      res.on('error', () => finish(false));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Upstream body bytes the relay sent for one blob. */
function upstreamBytes(relay: Relay, digest: string): number {
  return relay
    .stats()
    .log.filter((r) => r.path.includes(digest.slice(7)))
    .reduce((s, r) => s + r.bytes, 0);
}

const OVERLAPPING = `bytes=${Array.from({ length: 2048 }, () => '0-').join(',')}`;

describe('range policy', () => {
  let upstream: Registry;
  let relay: Relay;
  let child: ChildMirror;
  let files: string;

  before(async () => {
    requireCommands('docker-registry');
    upstream = await startRegistry();
    relay = await startRelay({ target: upstream.url });
    files = await tmpDir('range-blobs-');
    child = await startChild({ upstreams: [`docker.io=${relay.url}`], config: { rangeFillAfterMisses: 3, maxRangeAmplification: 1 } });
  });
  after(cleanupAll);

  test('a range served from a fill in flight whose fill fails verification does not end cleanly', { timeout: 60_000 }, async () => {
    const data = randomBytes(4 * MiB);
    const digest = await putBlob(upstream.url, 'library/r', data);
    relay.setThrottle(2 * MiB);
    // The fill's upstream body has its LAST byte flipped: only verification at the end can tell.
    relay.setMode('corrupt', { at: 'last', times: 1 });
    const whole = httpDigest(`${child.url}/v2/r/blobs/${digest}`);
    await delay(400);
    const ranged = await httpDigest(`${child.url}/v2/r/blobs/${digest}`, { range: 'bytes=1000-1999' });
    const w = await whole;
    relay.setThrottle(undefined);
    assert.equal(relay.stats().log.filter((r) => r.fault === 'corrupt').length, 1, 'the fault hit the fill');
    assert.ok(!(w.status === 200 && w.complete), 'the whole-body client is aborted');
    assert.ok(!((ranged.status === 206 || ranged.status === 200) && ranged.complete), `the ranged client must not get a clean ${ranged.status} from an unverified fill`);
    assert.equal(existsSync(blobFile(child.dataDir, digest)), false, 'nothing cached');
    assert.ok(child.proc.running);
  });

  test('2 048 overlapping 0- ranges on a cached 8 MiB blob: merged or 200 whole, never more than about the blob', { timeout: 60_000 }, async () => {
    const f = await randomBlobFile(files, 8 * MiB);
    const digest = await putBlob(upstream.url, 'library/r', f);
    const warm = await httpDigest(`${child.url}/v2/r/blobs/${digest}`);
    assert.equal(warm.digest, digest);
    const r = await boundedGet(`${child.url}/v2/r/blobs/${digest}`, { range: OVERLAPPING }, 16 * MiB);
    assert.ok(r.status === 200 || r.status === 206, `status ${r.status}`);
    const len = Number(r.headers['content-length']);
    assert.ok(len <= 8 * MiB + 64 * 1024, `Content-Length ${len} for an 8 MiB blob`);
    assert.ok(r.bytes <= 8 * MiB + 64 * 1024, `${r.bytes} body bytes`);
    if (r.status === 206) assert.doesNotMatch(String(r.headers['content-type']), /multipart/, 'one merged range is not multipart');
  });

  test('2 048 overlapping 0- ranges on an uncached 32 MiB blob cost the upstream about one blob', { timeout: 90_000 }, async () => {
    const f = await randomBlobFile(files, 32 * MiB);
    const digest = await putBlob(upstream.url, 'library/r', f);
    relay.reset();
    const r = await boundedGet(`${child.url}/v2/r/blobs/${digest}`, { range: OVERLAPPING }, 64 * MiB);
    await delay(3000); // upstream fetches still running after the client left would show here
    const sent = upstreamBytes(relay, digest);
    const note = `(answer ${r.status}, Content-Length ${String(r.headers['content-length'])})`;
    assert.ok(sent <= 1.1 * 32 * MiB, `upstream sent ${(sent / MiB).toFixed(1)} MiB for one request on a 32 MiB blob ${note}`);
    assert.ok(Number(r.headers['content-length'] ?? 0) <= 32 * MiB + 64 * 1024, `Content-Length bounded ${note}`);
  });

  test('N range misses on one blob start one background whole fill; later ranges come from the cache', { timeout: 60_000 }, async () => {
    const data = randomBytes(4 * MiB);
    const digest = await putBlob(upstream.url, 'library/r', data);
    relay.reset();
    for (let i = 0; i < 5; i++) {
      const start = i * 100_000;
      const r = await httpDigest(`${child.url}/v2/r/blobs/${digest}`, { range: `bytes=${start}-${start + 9999}` });
      assert.equal(r.status, 206);
      assert.equal(r.digest, `sha256:${createHash('sha256').update(data.subarray(start, start + 10_000)).digest('hex')}`);
    }
    let cached = false;
    for (let i = 0; i < 100 && !cached; i++) {
      cached = existsSync(blobFile(child.dataDir, digest));
      if (!cached) await delay(100);
    }
    assert.ok(cached, 'a background whole fill committed the blob after repeated range misses');
    assert.equal(`sha256:${createHash('sha256').update(readFileSync(blobFile(child.dataDir, digest))).digest('hex')}`, digest);
    const wholeGets = relay.stats().log.filter((r) => r.method === 'GET' && r.path.includes(digest.slice(7)) && r.range === undefined);
    assert.equal(wholeGets.length, 1, 'exactly one whole-blob upstream GET');
    const before = relay.stats().requests;
    const later = await httpDigest(`${child.url}/v2/r/blobs/${digest}`, { range: 'bytes=3000000-3000099' });
    assert.equal(later.status, 206);
    assert.equal(relay.stats().requests, before, 'served from the cache');
  });
});
