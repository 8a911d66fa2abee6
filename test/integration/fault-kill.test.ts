// Issue 9, "Tests": kill -9 at random moments of a fill, restart on the same data dir — no corrupt body is ever served after a restart, no temp files are left after start.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupAll, delay, requireCommands, tmpDir } from '../harness/proc.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { putBlob, randomBlobFile } from '../harness/oci.js';
import { startRelay, type Relay } from '../harness/relay.js';
import { httpDigest } from '../helpers/http.js';
import { startChild, type ChildMirror } from './fault-child.js';

const MiB = 2 ** 20;
const RUNS = 8;

/** Committed blob files whose bytes do not hash to their name. */
function corruptBlobs(dataDir: string): string[] {
  const root = join(dataDir, 'blobs', 'sha256');
  if (!existsSync(root)) return [];
  const bad: string[] = [];
  for (const prefix of readdirSync(root)) {
    for (const hex of readdirSync(join(root, prefix))) {
      const got = createHash('sha256').update(readFileSync(join(root, prefix, hex))).digest('hex');
      if (got !== hex) bad.push(hex);
    }
  }
  return bad;
}

function tmpFiles(dataDir: string): string[] {
  const dir = join(dataDir, 'tmp');
  return existsSync(dir) ? readdirSync(dir) : [];
}

describe('kill -9 during fills', () => {
  let upstream: Registry;
  let relay: Relay;
  let dataDir: string;
  let child: ChildMirror | undefined;
  const blobs: string[] = [];

  before(async () => {
    requireCommands('docker-registry');
    upstream = await startRegistry();
    relay = await startRelay({ target: upstream.url });
    const src = await tmpDir('kill-src-');
    for (let i = 0; i < RUNS; i++) blobs.push(await putBlob(upstream.url, 'library/k', await randomBlobFile(src, 8 * MiB)));
    dataDir = await tmpDir('kill-data-');
  });
  after(cleanupAll);

  test(`${RUNS} runs: kill -9 mid-fill, restart, no temp files after start, every body right`, { timeout: 120_000 }, async () => {
    const seed = Number(process.env.KILL_SEED ?? Math.floor(Math.random() * 1e9));
    let x = seed;
    const rand = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    process.stdout.write(`# kill seed ${seed} (replay: KILL_SEED=${seed})\n`);
    const problems: string[] = [];
    let midFill = 0;
    for (let run = 0; run < RUNS; run++) {
      const digest = blobs[run]!;
      relay.setThrottle(8 * MiB); // about 1 s per fill, so the kill lands inside it
      child = await startChild({ upstreams: [`docker.io=${relay.url}`], dataDir });
      const fetching = httpDigest(`${child.url}/v2/k/blobs/${digest}`).catch(() => undefined);
      // Also a fill that is only just starting and one joined by a second reader, at random.
      if (rand() < 0.5) void httpDigest(`${child.url}/v2/k/blobs/${digest}`, { range: 'bytes=100-199' }).catch(() => undefined);
      const killAfter = 150 + Math.floor(rand() * 750);
      await delay(killAfter);
      await child.proc.stop({ signal: 'SIGKILL' });
      const got = await fetching;
      if (!got || !got.complete) midFill += 1;
      relay.setThrottle(undefined);

      child = await startChild({ upstreams: [`docker.io=${relay.url}`], dataDir });
      const left = tmpFiles(dataDir);
      if (left.length > 0) problems.push(`run ${run} (kill at ${killAfter} ms): temp files after start: ${left.join(', ')}`);
      for (const d of blobs.slice(0, run + 1)) {
        const r = await httpDigest(`${child.url}/v2/k/blobs/${d}`);
        if (r.status !== 200 || !r.complete || r.digest !== d) problems.push(`run ${run} (kill at ${killAfter} ms): ${d.slice(7, 19)} served ${r.status} complete=${r.complete} digest ${r.digest === d ? 'ok' : 'WRONG'}`);
      }
      const bad = corruptBlobs(dataDir);
      if (bad.length > 0) problems.push(`run ${run} (kill at ${killAfter} ms): corrupt committed blobs ${bad.join(', ')}`);
      await child.proc.stop({ signal: 'SIGKILL' });
    }
    assert.ok(midFill >= RUNS / 2, `the kill landed inside a fill in ${midFill} of ${RUNS} runs`);
    assert.deepEqual(problems, []);
  });
});
