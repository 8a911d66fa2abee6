import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { upstreamParts } from '../../src/range/upstream-parts.js';
import type { ByteRange } from '../../src/range/parse.js';

async function collect(src: Readable | Uint8Array): Promise<Buffer> {
  if (src instanceof Uint8Array) return Buffer.from(src);
  const chunks: Buffer[] = [];
  for await (const c of src) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function fakeUpstream(blob: Buffer) {
  const fetched: ByteRange[] = [];
  let inflight = 0;
  let maxInflight = 0;
  const fetch = async (start: number, end: number) => {
    fetched.push({ start, end });
    inflight++;
    maxInflight = Math.max(maxInflight, inflight);
    await new Promise((r) => setTimeout(r, 1));
    inflight--;
    return Readable.from([blob.subarray(start, end + 1)]);
  };
  return { fetch, fetched, maxInflight: () => maxInflight };
}

test('many nearly adjacent small ranges over a long span are fetched in few bounded pieces, parts exact and in order', async () => {
  const blob = randomBytes(8 * 2 ** 20);
  // 200 ranges of ~4 KiB, 16 KiB apart: one coalesced span of ~3.2 MiB... times 2.5 → beyond maxSegment 1 MiB.
  const ranges: ByteRange[] = Array.from({ length: 200 }, (_, i) => ({ start: i * 20_000, end: i * 20_000 + 4095 }));
  ranges.reverse();
  const up = fakeUpstream(blob);
  const parts = upstreamParts(ranges, up.fetch, { parallelism: 3, maxGap: 16_384, maxWaste: Infinity, maxSegment: 2 ** 20 });
  for (let i = 0; i < ranges.length; i++) {
    const r = ranges[i]!;
    const got = await collect(await parts.provider(i, r));
    assert.ok(got.equals(blob.subarray(r.start, r.end + 1)), `part ${i}`);
  }
  assert.ok(up.fetched.length <= 5, `${up.fetched.length} fetches`);
  for (const f of up.fetched) assert.ok(f.end - f.start + 1 <= 2 ** 20, 'each piece within maxSegment');
  assert.ok(up.maxInflight() <= 3);
});

test('duplicates, overlaps and large parts: each part gets its own bytes', async () => {
  const blob = randomBytes(3 * 2 ** 20);
  const ranges: ByteRange[] = [
    { start: 100, end: 199 },
    { start: 0, end: 2 ** 20 },
    { start: 150, end: 170 },
    { start: 100, end: 199 },
    { start: 3 * 2 ** 20 - 10, end: 3 * 2 ** 20 - 1 },
  ];
  const up = fakeUpstream(blob);
  const parts = upstreamParts(ranges, up.fetch, { parallelism: 2, window: 1024 });
  for (let i = 0; i < ranges.length; i++) {
    const r = ranges[i]!;
    assert.ok((await collect(await parts.provider(i, r))).equals(blob.subarray(r.start, r.end + 1)), `part ${i}`);
  }
  assert.ok(up.fetched.some((f) => f.start === 0 && f.end === 2 ** 20), 'the large part streamed from its own fetch');
});
