// Issue 9, item 7: graceful drain — SIGTERM → /readyz 503, listener closed, transfers in flight finish in full within shutdownTimeout, idle keep-alive connections closed, exit 0.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { cleanupAll, delay, requireCommands, tmpDir } from '../harness/proc.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { putBlob, randomBlobFile } from '../harness/oci.js';
import { httpDigest } from '../helpers/http.js';
import { startChild, type ChildMirror } from './fault-child.js';

const MiB = 2 ** 20;

/** A client that reads at about `bytesPerSecond`: a slow-ish reader whose transfer outlives the signal. */
function slowGet(url: string, bytesPerSecond: number): Promise<{ status: number; digest: string; bytes: number; complete: boolean }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = httpRequest(url, { agent: false }, (res) => {
      const h = createHash('sha256');
      let bytes = 0;
      let settled = false;
      const done = (complete: boolean) => {
        if (settled) return;
        settled = true;
        resolve({ status: res.statusCode ?? 0, digest: `sha256:${h.digest('hex')}`, bytes, complete });
      };
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        h.update(c);
        const due = (bytes / bytesPerSecond) * 1000 - (performance.now() - started);
        if (due > 5) {
          res.pause();
          setTimeout(() => res.resume(), due);
        }
      });
      res.on('end', () => done(res.complete));
      res.on('close', () => done(res.complete));
      res.on('error', () => done(false));
    });
    req.on('error', reject);
    req.end();
  });
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

/** Sends one request on an open keep-alive socket and resolves with the status line ('' if the socket closed). */
function ask(s: Socket, path: string): Promise<string> {
  return new Promise((resolve) => {
    const onData = (c: Buffer) => {
      cleanup();
      resolve(c.toString('latin1').split('\r\n')[0] ?? '');
    };
    const onClose = () => {
      cleanup();
      resolve('');
    };
    const cleanup = () => {
      s.off('data', onData);
      s.off('close', onClose);
    };
    s.on('data', onData);
    s.once('close', onClose);
    if (s.writable) s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
    else onClose();
  });
}

describe('graceful drain', () => {
  let upstream: Registry;
  let child: ChildMirror;
  let big: string;

  before(async () => {
    requireCommands('docker-registry');
    upstream = await startRegistry();
    big = await putBlob(upstream.url, 'library/drain', await randomBlobFile(await tmpDir('drain-'), 64 * MiB));
    child = await startChild({ upstreams: [`docker.io=${upstream.url}`], config: { limits: { shutdownTimeout: '20s' } } });
    const warm = await httpDigest(`${child.url}/v2/drain/blobs/${big}`);
    assert.equal(warm.digest, big, 'cached before the drain');
  });
  after(cleanupAll);

  test('SIGTERM during 3 cached transfers to slow clients: readyz 503, listener closed, transfers complete, idle closed, exit 0', { timeout: 90_000 }, async () => {
    const probe = await open(child.port);
    probe.on('error', () => undefined);
    const readyBefore = await ask(probe, '/readyz');
    const idle = await Promise.all(Array.from({ length: 5 }, () => open(child.port)));
    for (const s of idle) {
      s.on('error', () => undefined);
      assert.match(await ask(s, '/v2/'), /^HTTP\/1\.1 200/);
    }
    let idleClosed = 0;
    for (const s of idle) s.once('close', () => (idleClosed += 1));

    // 64 MiB at 8 MiB/s: about 8 s per transfer, far past the signal.
    const transfers = [0, 1, 2].map(() => slowGet(`${child.url}/v2/drain/blobs/${big}`, 8 * MiB));
    await delay(1000);
    const signalledAt = performance.now();
    process.kill(child.proc.pid, 'SIGTERM');
    await delay(150);

    const readyDuring = await ask(probe, '/readyz');
    await delay(1000);
    const refused = await open(child.port).then(
      (s) => {
        s.destroy();
        return false;
      },
      (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED',
    );
    await delay(2000);
    const idleClosedSoon = idleClosed;

    const results = await Promise.all(transfers);
    const exit = await child.proc.exited;
    const exitAfterMs = performance.now() - signalledAt;
    for (const s of idle) s.destroy();
    probe.destroy();

    // Every property is checked and all failures are reported together: each is its own item of the issue.
    const problems: string[] = [];
    if (!/^HTTP\/1\.1 200/.test(readyBefore)) problems.push(`/readyz before the drain answered ${JSON.stringify(readyBefore)}`);
    if (!/^HTTP\/1\.1 503/.test(readyDuring)) problems.push(`/readyz while draining answered ${JSON.stringify(readyDuring)}`);
    if (!refused) problems.push('a new connection was accepted while draining');
    if (idleClosedSoon !== idle.length) problems.push(`idle keep-alive connections closed within 3 s of SIGTERM: ${idleClosedSoon}/${idle.length}`);
    for (const [i, r] of results.entries()) {
      if (r.status !== 200 || !r.complete || r.digest !== big) problems.push(`transfer ${i}: status ${r.status}, ${(r.bytes / MiB).toFixed(1)} of 64 MiB, complete=${r.complete}, digest ${r.digest === big ? 'ok' : 'wrong'}`);
    }
    if (exit.signal !== null || exit.code !== 0) problems.push(`exit ${exit.signal ?? exit.code}, not 0`);
    if (exitAfterMs >= 25_000) problems.push(`exited ${Math.round(exitAfterMs)} ms after SIGTERM (shutdownTimeout 20 s)`);
    assert.deepEqual(problems, []);
  });
});
