/**
 * The sender's read-ahead (src/body/sender.ts): a body streamed alone holds two transfer buffers, bodies
 * streamed together one each; every body still arrives whole. Real node:http server and clients on
 * loopback; the clients stop reading, so each transfer sits on its buffers while the test counts them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import { BufferBudget, LARGE_BUFFER } from '../../src/body/buffer-budget.js';
import { READ_AHEAD_BELOW, Sender } from '../../src/body/sender.js';
import type { BodySource } from '../../src/body/source.js';

const SIZE = 32 * LARGE_BUFFER;
const bytes = randomBytes(SIZE);
const digest = createHash('sha256').update(bytes).digest('hex');

/** A verified source without `slice`, so the sender pumps it through its buffers. */
function source(): BodySource {
  return {
    size: SIZE,
    trust: 'verified',
    available: async (pos) => SIZE - pos,
    read: async (buf, length, pos) => bytes.copy(buf, 0, pos, pos + length),
    release: () => undefined,
  };
}

const until = async (what: string, cond: () => boolean): Promise<void> => {
  for (let i = 0; i < 400 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), what);
};

test('a body streamed alone reads ahead into a second buffer; bodies streamed together take one buffer each', async () => {
  assert.equal(READ_AHEAD_BELOW, 1);
  const budget = new BufferBudget(256 * LARGE_BUFFER);
  const sender = new Sender({ budget, writeIdleMs: 30_000 });
  const server = http.createServer((req, res) => {
    void sender.send(res, source(), { kind: 'whole' }, { headers: {}, contentType: 'application/octet-stream', head: false, onBytes: () => undefined });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  // Each client takes its headers and then stops reading: its transfer stalls on backpressure, holding its buffers.
  const open = (): Promise<{ res: http.IncomingMessage; socket: Socket }> =>
    new Promise((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
        res.pause();
        resolve({ res, socket: req.socket! });
      });
      req.on('error', reject);
    });
  const whole = (res: http.IncomingMessage): Promise<string> =>
    new Promise((resolve, reject) => {
      const h = createHash('sha256');
      res.on('data', (c: Buffer) => h.update(c)).on('end', () => resolve(h.digest('hex'))).on('error', reject);
      res.resume();
    });
  try {
    const first = await open();
    await until('one transfer', () => sender.streaming === 1);
    assert.equal(budget.used, 2 * LARGE_BUFFER, 'alone: a buffer being written and one read ahead');
    const more = [await open(), await open(), await open()];
    await until('four transfers', () => sender.streaming === 4);
    assert.equal(budget.used, (2 + 3) * LARGE_BUFFER, 'the three that joined took one buffer each');
    const digests = await Promise.all([first, ...more].map((c) => whole(c.res)));
    assert.deepEqual(digests, [digest, digest, digest, digest], 'every body arrives whole');
    await until('transfers over', () => sender.streaming === 0);
    assert.equal(budget.used, 0, 'every buffer given back');
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});
