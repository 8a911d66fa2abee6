/**
 * Found by the soak (issue 9): an uncached fill (no room within the cap, or a failing disk) keeps a window of
 * bytes in memory that moves with its slowest reader. A range request that joined the fill and waits for
 * bytes far ahead used to count as a reader at byte 0: the window never moved, the fill waited for it to
 * drain, and every reader stalled until a client gave up (a paused upstream body does not time out: the
 * test hung for minutes). A reader waiting
 * at `position` needs nothing before it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { cleanupAll, delay, requireCommands, tmpDir } from '../harness/proc.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { startRelay, type Relay } from '../harness/relay.js';
import { putBlob, randomBlobFile, type BlobFile } from '../harness/oci.js';
import { startMirror } from '../helpers/mirror.js';
import { http, httpDigest } from '../helpers/http.js';

const MiB = 2 ** 20;

describe('uncached fill with a range joiner far ahead', () => {
  let upstream: Registry;
  let relay: Relay;
  let blob: BlobFile;

  before(async () => {
    requireCommands('docker-registry');
    upstream = await startRegistry();
    relay = await startRelay({ target: upstream.url });
    blob = await randomBlobFile(await tmpDir('uncached-range-'), 12 * MiB);
    await putBlob(upstream.url, 'acme/big', blob);
  });
  after(cleanupAll);

  test('a whole reader and a range joiner at 11 MB both get their bytes from a fill streamed uncached (blob larger than the cap)', { timeout: 60_000 }, async () => {
    // The cap is below the blob: the fill streams uncached. A short body idle timeout makes a stall fail fast.
    const m = await startMirror({ upstreams: [`docker.io=${relay.url}`], maxSize: '4MiB', blobMemory: 0, bodyIdleTimeout: '3s' });
    // The upstream answers the blob GET late, so the range request joins the fill while it is pending.
    relay.setMode('delay', { delayMs: 1000, times: 1, match: (r) => r.method === 'GET' && r.path.includes('/blobs/') });
    const url = `${m.url}/v2/acme/big/blobs/${blob.digest}`;
    const whole = httpDigest(url);
    await delay(300);
    const from = 11_000_000;
    const range = http(url, { headers: { range: `bytes=${from}-` } });
    // Without the fix both stall for good (the paused upstream body never times out): fail in bounded time.
    let timer: NodeJS.Timeout | undefined;
    const stalled = new Promise<never>((_r, reject) => (timer = setTimeout(() => reject(new Error('the readers of the uncached fill stalled')), 20_000)));
    const [w, r] = await Promise.race([Promise.all([whole, range]), stalled]);
    clearTimeout(timer);
    assert.equal(await m.metric('regmirror_uncached_pulls_total'), 1, 'the fill was streamed uncached');
    assert.equal(relay.stats().log.filter((x) => x.path.includes('/blobs/') && x.method === 'GET').length, 1, 'the range joined the fill (one upstream GET)');
    assert.ok(w.complete, 'the whole reader got every byte');
    assert.equal(w.digest, blob.digest);
    assert.equal(r.status, 206);
    assert.ok(r.complete, 'the range joiner got every byte');
    assert.deepEqual(r.body, (await readFile(blob.path)).subarray(from));
    await m.close();
  });
});
