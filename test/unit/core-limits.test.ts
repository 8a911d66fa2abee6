// Issue 9 items 3, 4, 11: the transfer-buffer budget, the range amplification policy, the data-dir lock,
// and the body sources' contracts (pure units; the real-client behaviour is in test/integration/fault-*).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { BufferBudget, LARGE_BUFFER, SMALL_BUFFER } from '../../src/body/buffer-budget.js';
import { StreamSource } from '../../src/body/stream-source.js';
import { MemorySource } from '../../src/body/memory-source.js';
import { selectRanges } from '../../src/range/select.js';
import { DataDirLock } from '../../src/store/lock.js';

test('the buffer budget hands out large buffers, then small ones under pressure, then makes takers wait', async () => {
  const budget = new BufferBudget(4 * LARGE_BUFFER);
  const large = [budget.tryTake()!, budget.tryTake()!, budget.tryTake()!];
  assert.deepEqual(large.map((b) => b.length), [LARGE_BUFFER, LARGE_BUFFER, LARGE_BUFFER]);
  const small: Buffer[] = [];
  for (let b = budget.tryTake(); b; b = budget.tryTake()) small.push(b);
  assert.equal(small.length, LARGE_BUFFER / SMALL_BUFFER, 'the last quarter goes out in small buffers');
  assert.ok(small.every((b) => b.length === SMALL_BUFFER));
  assert.equal(budget.used, 4 * LARGE_BUFFER, 'never more than the budget');
  const state: { got?: Buffer } = {};
  const waiting = budget.take().then((b) => (state.got = b));
  await new Promise((r) => setImmediate(r));
  assert.equal(state.got, undefined, 'a spent budget makes the taker wait');
  budget.give(small.pop()!);
  await waiting;
  assert.equal((state.got as Buffer | undefined)?.length, SMALL_BUFFER);
  for (const b of [...large, ...small, state.got!]) budget.give(b);
  assert.equal(budget.used, 0);
});

test('range policy: parts adding up past the blob answer whole; request order and duplicates kept within it', () => {
  const etag = '"sha256:x"';
  const policy = { maxRanges: 4096, maxAmplification: 1 };
  const zeroes = `bytes=${Array.from({ length: 2048 }, () => '0-').join(',')}`;
  assert.deepEqual(selectRanges(zeroes, undefined, etag, 8 << 20, policy), { kind: 'whole' }, '2 048 overlapping 0- ranges');
  assert.deepEqual(selectRanges('bytes=10-19,0-9,10-19', undefined, etag, 100, policy), {
    kind: 'multi',
    ranges: [
      { start: 10, end: 19 },
      { start: 0, end: 9 },
      { start: 10, end: 19 },
    ],
  });
  assert.deepEqual(selectRanges('bytes=0-59,20-79', undefined, etag, 100, policy), { kind: 'whole' }, '120 bytes of parts for a 100-byte blob');
  assert.equal(selectRanges('bytes=0-59,20-79', undefined, etag, 100, { ...policy, maxAmplification: 2 }).kind, 'multi');
});

test('a stream source serves positions in order across selected parts, and ends short when its stream does', async () => {
  const blob = Buffer.from('0123456789abcdefghij');
  const src = new StreamSource(blob.length, (_i, start, end) => (start === 0 ? blob.subarray(start, end + 1) : Readable.from([blob.subarray(start, start + 3), blob.subarray(start + 3, end + 1)])));
  const buf = Buffer.alloc(8);
  await src.select(0, 0, 4);
  assert.equal(await src.available(0, 5), 5);
  assert.equal(await src.read(buf, 5, 0), 5);
  assert.equal(buf.subarray(0, 5).toString(), '01234');
  await src.select(1, 10, 17);
  assert.ok((await src.available(10, 8)) >= 8);
  assert.equal(await src.read(buf, 8, 10), 8);
  assert.equal(buf.toString(), 'abcdefgh');
  const short = StreamSource.of(Readable.from([Buffer.from('xy')]), 5, 100);
  assert.equal(await short.available(5, 4), 2, 'only what the stream had');
  await short.read(buf, 2, 5);
  assert.equal(await short.available(7, 1), 0, 'then nothing: the sender turns that into an aborted answer');
  src.release();
  short.release();
});

test('a memory source slices without copying and reads at offsets', async () => {
  const m = new MemorySource(Buffer.from('hello world'));
  assert.equal(Buffer.from(m.slice(6, 10)).toString(), 'world');
  const b = Buffer.alloc(5);
  assert.equal(await m.read(b, 5, 0), 5);
  assert.equal(await m.available(11), 0);
});

test('the data-dir lock: one holder at a time, a live process keeps it, a dead one loses it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'regmirror-lock-'));
  const lock = await DataDirLock.acquire(dir);
  await assert.rejects(DataDirLock.acquire(dir), /already in use by another mirror in this process/);
  await lock.release();
  const again = await DataDirLock.acquire(dir);
  await again.release();
  // Another live process holds it: refused, naming the pid.
  const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
  await writeFile(join(dir, 'regmirror.lock'), `${other.pid}\n`);
  await assert.rejects(DataDirLock.acquire(dir), new RegExp(`in use by another regmirror process \\(pid ${other.pid}\\)`));
  other.kill('SIGKILL');
  await new Promise((r) => other.on('exit', r));
  // The holder died (kill -9): the lock is taken over.
  const taken = await DataDirLock.acquire(dir);
  assert.equal((await readFile(join(dir, 'regmirror.lock'), 'utf8')).trim(), String(process.pid));
  await taken.release();
});
