import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Readable, Writable, PassThrough } from 'node:stream';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  parseRange,
  parseRangeSpecs,
  resolveRanges,
  formatRangeHeader,
  formatContentRange,
  unsatisfiedContentRange,
  parseContentRange,
  ifRangeMatches,
  coalesce,
  rangeLength,
  DEFAULT_MAX_RANGES,
  DEFAULT_MAX_WASTE,
  type ByteRange,
  type RangeResult,
  type RangeSpec,
  type Segment,
} from '../../src/range/parse.js';
import {
  newBoundary,
  multipartPlan,
  writeMultipart,
  type MultipartPlan,
  type PartSource,
} from '../../src/body/multipart.js';
import { parseByteranges, boundaryFromContentType } from './multipart-parser.js';
import { prng } from '../helpers/prng.js';

// ---------------------------------------------------------------------------------------------
// helpers

/** Per-test timeout for anything that could hang. */
const ERR_TIMEOUT = { timeout: 10_000 };


const BASE_SEED = process.env.RANGE_TEST_SEED !== undefined ? Number(process.env.RANGE_TEST_SEED) : (Date.now() % 2 ** 31);

/** Runs `body` with a seeded PRNG; on failure the error names the seed to reproduce it. */
async function withSeed(name: string, body: (rnd: () => number, seed: number) => void | Promise<void>): Promise<void> {
  const seed = (BASE_SEED ^ hash(name)) >>> 0;
  try {
    await body(prng(seed), seed);
  } catch (err) {
    const msg = `[${name}] failed with seed ${seed} (rerun with RANGE_TEST_SEED=${BASE_SEED})`;
    console.error(msg);
    if (err instanceof Error) err.message = `${msg}: ${err.message}`;
    throw err;
  }
}

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

function int(rnd: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rnd() * (hi - lo + 1));
}

function pick<T>(rnd: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rnd() * xs.length)]!;
}

function randomBlob(rnd: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rnd() * 256);
  return b;
}

/** A Writable that collects everything, with configurable buffering and callback timing. */
class Collector extends Writable {
  chunks: Buffer[] = [];
  calls = 0;
  constructor(
    private readonly mode: 'sync' | 'immediate' | 'timeout' = 'sync',
    highWaterMark = 16 * 1024,
    withWritev = true,
  ) {
    super({ highWaterMark, decodeStrings: true });
    if (!withWritev) this._writev = undefined as never;
  }
  private done(cb: (err?: Error | null) => void): void {
    if (this.mode === 'sync') cb();
    else if (this.mode === 'immediate') setImmediate(cb);
    else setTimeout(cb, 1);
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.calls++;
    this.chunks.push(Buffer.from(chunk));
    this.done(cb);
  }
  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    this.calls++;
    for (const c of chunks) this.chunks.push(Buffer.from(c.chunk));
    this.done(cb);
  }
  get data(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** Splits `buf` into random-size chunks (for Readable.from). */
function randomChunks(rnd: () => number, buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let p = 0;
  while (p < buf.length) {
    const n = int(rnd, 1, Math.max(1, Math.min(buf.length - p, pick(rnd, [1, 7, 64, 1000, 100000]))));
    out.push(buf.subarray(p, p + n));
    p += n;
  }
  return out;
}

/** A Readable that pushes its chunks asynchronously (setImmediate) one by one. */
function slowReadable(chunks: Buffer[], failAfter?: { index: number; error: Error }): Readable {
  let i = 0;
  return new Readable({
    read() {
      setImmediate(() => {
        if (failAfter !== undefined && i === failAfter.index) {
          this.destroy(failAfter.error);
          return;
        }
        if (i < chunks.length) this.push(chunks[i++]);
        else this.push(null);
      });
    },
  });
}

function expectRanges(res: RangeResult, ranges: [number, number][], dropped = 0): void {
  assert.deepEqual(res, { kind: 'ranges', ranges: ranges.map(([start, end]) => ({ start, end })), dropped });
}

function expectInvalid(res: RangeResult | ReturnType<typeof parseRangeSpecs>): void {
  assert.equal(res.kind, 'invalid', `expected invalid, got ${JSON.stringify(res)}`);
}

// ---------------------------------------------------------------------------------------------
// parseRange: fixed cases

describe('parseRange: RFC 9110 examples and edge cases', () => {
  const size = 10000;

  test('RFC 9110 §14.1.2 byte-range examples', () => {
    expectRanges(parseRange('bytes=0-499', size), [[0, 499]]); // first 500 bytes
    expectRanges(parseRange('bytes=500-999', size), [[500, 999]]); // second 500 bytes
    expectRanges(parseRange('bytes=-500', size), [[9500, 9999]]); // final 500 bytes
    expectRanges(parseRange('bytes=9500-', size), [[9500, 9999]]); // final 500 bytes
    expectRanges(parseRange('bytes=0-0,-1', size), [[0, 0], [9999, 9999]]); // first and last bytes
    expectRanges(parseRange('bytes=0-999,4500-5499,-1000', size), [[0, 999], [4500, 5499], [9000, 9999]]);
    expectRanges(parseRange('bytes=500-600,601-999', size), [[500, 600], [601, 999]]); // not merged
    expectRanges(parseRange('bytes=500-700,601-999', size), [[500, 700], [601, 999]]); // overlapping
  });

  test('order kept, duplicates kept, nothing merged', () => {
    expectRanges(parseRange('bytes=900-999,0-9', size), [[900, 999], [0, 9]]);
    expectRanges(parseRange('bytes=0-9,0-9,0-9', size), [[0, 9], [0, 9], [0, 9]]);
    expectRanges(parseRange('bytes=0-,0-', size), [[0, 9999], [0, 9999]]);
  });

  test('end clamped to size-1; long suffix means whole', () => {
    expectRanges(parseRange('bytes=9000-20000', size), [[9000, 9999]]);
    expectRanges(parseRange('bytes=0-9999', size), [[0, 9999]]);
    expectRanges(parseRange('bytes=0-10000', size), [[0, 9999]]);
    expectRanges(parseRange('bytes=-20000', size), [[0, 9999]]);
    expectRanges(parseRange('bytes=-10000', size), [[0, 9999]]);
    expectRanges(parseRange('bytes=-9999', size), [[1, 9999]]);
    expectRanges(parseRange('bytes=9999-9999', size), [[9999, 9999]]);
  });

  test('unsatisfiable members dropped; none left → unsatisfiable', () => {
    assert.deepEqual(parseRange('bytes=10000-', size), { kind: 'unsatisfiable' });
    assert.deepEqual(parseRange('bytes=10000-10005', size), { kind: 'unsatisfiable' });
    assert.deepEqual(parseRange('bytes=-0', size), { kind: 'unsatisfiable' });
    assert.deepEqual(parseRange('bytes=20000-30000,-0,10000-', size), { kind: 'unsatisfiable' });
    expectRanges(parseRange('bytes=10000-,0-1', size), [[0, 1]], 1);
    expectRanges(parseRange('bytes=-0,5-5,99999-', size), [[5, 5]], 2);
  });

  test('size 0: every range is unsatisfiable', () => {
    for (const h of ['bytes=0-', 'bytes=0-0', 'bytes=-1', 'bytes=-0', 'bytes=0-100,-5']) {
      assert.deepEqual(parseRange(h, 0), { kind: 'unsatisfiable' }, h);
    }
    assert.deepEqual(parseRange(undefined, 0), { kind: 'none' });
    expectInvalid(parseRange('bytes=5-2', 0));
  });

  test('size 1', () => {
    expectRanges(parseRange('bytes=0-0', 1), [[0, 0]]);
    expectRanges(parseRange('bytes=-1', 1), [[0, 0]]);
    expectRanges(parseRange('bytes=-5', 1), [[0, 0]]);
    expectRanges(parseRange('bytes=0-5', 1), [[0, 0]]);
    assert.deepEqual(parseRange('bytes=1-', 1), { kind: 'unsatisfiable' });
  });

  test('absent header, empty value, unknown unit → none', () => {
    assert.deepEqual(parseRange(undefined, size), { kind: 'none' });
    assert.deepEqual(parseRange('', size), { kind: 'none' });
    assert.deepEqual(parseRange('  \t', size), { kind: 'none' });
    assert.deepEqual(parseRange('items=0-5', size), { kind: 'none' });
    assert.deepEqual(parseRange('bytesx=0-5', size), { kind: 'none' });
    assert.deepEqual(parseRange('pages=whatever;really', size), { kind: 'none' });
  });

  test('unit is case-insensitive', () => {
    expectRanges(parseRange('BYTES=0-1', size), [[0, 1]]);
    expectRanges(parseRange('Bytes=-1', size), [[9999, 9999]]);
  });

  test('optional whitespace around commas and empty list elements', () => {
    expectRanges(parseRange('bytes=0-1 , 3-4,\t5-6', size), [[0, 1], [3, 4], [5, 6]]);
    expectRanges(parseRange('bytes=0-1,,3-4', size), [[0, 1], [3, 4]]);
    expectRanges(parseRange('bytes=,0-1', size), [[0, 1]]);
    expectRanges(parseRange('bytes=0-1,', size), [[0, 1]]);
    expectRanges(parseRange('  bytes=0-1  ', size), [[0, 1]]);
    expectRanges(parseRange('bytes= 0-1', size), [[0, 1]]);
    // "a reasonable number" of empty elements: 64 (or maxRanges if larger) are ignored, more is invalid
    expectRanges(parseRange('bytes=0-1' + ','.repeat(64), size, { maxRanges: 10 }), [[0, 1]]);
    expectInvalid(parseRange('bytes=0-1' + ','.repeat(65), size, { maxRanges: 10 }));
    expectRanges(parseRange('bytes=0-1' + ','.repeat(100), size, { maxRanges: 100 }), [[0, 1]]);
    expectInvalid(parseRange('bytes=0-1' + ','.repeat(101), size, { maxRanges: 100 }));
  });

  test('malformed → invalid', () => {
    for (const h of [
      'bytes=',
      'bytes=,',
      'bytes= , ,',
      'bytes=5-2',
      'bytes=0-1,5-2',
      'bytes=abc',
      'bytes=-',
      'bytes=1-2-3',
      'bytes=--5',
      'bytes=+5-6',
      'bytes=0x10-20',
      'bytes=1.5-2',
      'bytes=1e3-2e3',
      'bytes=0 - 5',
      'bytes=0- 5',
      'bytes=0-1;2-3',
      'bytes=0-1 2-3',
      'bytes=-5-',
      'bytes=٣-٤', // non-ASCII digits
      'bytes',
      'bytes 0-1',
      '=0-1',
      'bytes =0-1',
      'by tes=0-1',
      'bytes=0-1\r\n',
    ]) {
      const r = parseRange(h, size);
      assert.equal(r.kind, 'invalid', `${JSON.stringify(h)} gave ${JSON.stringify(r)}`);
      if (r.kind === 'invalid') assert.ok(r.reason.length > 0);
    }
  });

  test('numbers beyond Number.MAX_SAFE_INTEGER are invalid; leading zeros fine', () => {
    const max = Number.MAX_SAFE_INTEGER; // 9007199254740991
    expectRanges(parseRange(`bytes=0-${max}`, size), [[0, 9999]]);
    expectRanges(parseRange(`bytes=-${max}`, size), [[0, 9999]]);
    assert.deepEqual(parseRange(`bytes=${max}-`, size), { kind: 'unsatisfiable' });
    expectInvalid(parseRange('bytes=0-9007199254740992', size));
    expectInvalid(parseRange('bytes=9007199254740992-', size));
    expectInvalid(parseRange('bytes=-9007199254740992', size));
    expectInvalid(parseRange('bytes=0-99999999999999999999999999999', size));
    expectInvalid(parseRange(`bytes=0-1${'0'.repeat(400)}`, size));
    expectRanges(parseRange('bytes=000000000000000000000000001-0000000000000000000000002', size), [[1, 2]]);
    expectRanges(parseRange('bytes=-0000000000000000000000000000000000005', size), [[9995, 9999]]);
    // large size near the limit
    expectRanges(parseRange(`bytes=-1`, max), [[max - 1, max - 1]]);
    expectRanges(parseRange(`bytes=${max - 1}-`, max), [[max - 1, max - 1]]);
  });

  test('maxRanges', () => {
    assert.deepEqual(parseRange('bytes=0-1,2-3,4-5', size, { maxRanges: 2 }), { kind: 'too-many', count: 3 });
    expectRanges(parseRange('bytes=0-1,2-3', size, { maxRanges: 2 }), [[0, 1], [2, 3]]);
    // unsatisfiable members count too; empty list elements do not
    assert.deepEqual(parseRange('bytes=0-1,20000-,30000-', size, { maxRanges: 2 }), { kind: 'too-many', count: 3 });
    expectRanges(parseRange('bytes=0-1,,,2-3', size, { maxRanges: 2 }), [[0, 1], [2, 3]]);
    // default cap
    const many = (n: number): string => 'bytes=' + Array.from({ length: n }, (_, i) => `${i}-${i}`).join(',');
    const ok = parseRange(many(DEFAULT_MAX_RANGES), size * 10);
    assert.equal(ok.kind, 'ranges');
    if (ok.kind === 'ranges') assert.equal(ok.ranges.length, DEFAULT_MAX_RANGES);
    assert.deepEqual(parseRange(many(DEFAULT_MAX_RANGES + 1), size * 10), {
      kind: 'too-many',
      count: DEFAULT_MAX_RANGES + 1,
    });
    // a containers/image sized request: 1024 ranges
    const r = parseRange(many(1024), size);
    assert.equal(r.kind === 'ranges' && r.ranges.length, 1024);
    assert.throws(() => parseRange('bytes=0-1', size, { maxRanges: 0 }), RangeError);
  });

  test('bad size throws', () => {
    for (const s of [-1, 1.5, NaN, Infinity, 2 ** 53]) assert.throws(() => parseRange('bytes=0-1', s), RangeError, String(s));
  });
});

describe('parseRangeSpecs / resolveRanges / formatRangeHeader', () => {
  test('unresolved specs in request order', () => {
    assert.deepEqual(parseRangeSpecs('bytes=0-,5-9,-3'), {
      kind: 'specs',
      specs: [{ first: 0, last: undefined }, { first: 5, last: 9 }, { suffix: 3 }],
    });
    assert.deepEqual(parseRangeSpecs('bytes=-0'), { kind: 'specs', specs: [{ suffix: 0 }] });
    assert.deepEqual(parseRangeSpecs(undefined), { kind: 'none' });
    assert.deepEqual(parseRangeSpecs('items=1-2'), { kind: 'none' });
    expectInvalid(parseRangeSpecs('bytes=3-1'));
    assert.deepEqual(parseRangeSpecs('bytes=1-1,2-2', { maxRanges: 1 }), { kind: 'too-many', count: 2 });
  });

  test('resolveRanges', () => {
    assert.deepEqual(resolveRanges([{ suffix: 3 }, { first: 8, last: undefined }, { first: 20, last: 30 }], 10), {
      kind: 'ranges',
      ranges: [
        { start: 7, end: 9 },
        { start: 8, end: 9 },
      ],
      dropped: 1,
    });
    assert.deepEqual(resolveRanges([{ first: 10, last: undefined }], 10), { kind: 'unsatisfiable' });
  });

  test('formatRangeHeader', () => {
    assert.equal(formatRangeHeader([{ start: 0, end: 499 }]), 'bytes=0-499');
    assert.equal(
      formatRangeHeader([{ start: 5, end: 5 }, { first: 7, last: undefined }, { suffix: 9 }, { first: 1, last: 2 }]),
      'bytes=5-5,7-,-9,1-2',
    );
    assert.throws(() => formatRangeHeader([]), RangeError);
    assert.throws(() => formatRangeHeader([{ start: 5, end: 4 }]), RangeError);
    assert.throws(() => formatRangeHeader([{ first: 5, last: 4 }]), RangeError);
    assert.throws(() => formatRangeHeader([{ suffix: -1 }]), RangeError);
  });
});

describe('Content-Range and If-Range', () => {
  test('formatContentRange / unsatisfiedContentRange', () => {
    assert.equal(formatContentRange({ start: 0, end: 499 }, 1234), 'bytes 0-499/1234');
    assert.equal(formatContentRange({ start: 1233, end: 1233 }, 1234), 'bytes 1233-1233/1234');
    assert.equal(unsatisfiedContentRange(1234), 'bytes */1234');
    assert.equal(unsatisfiedContentRange(0), 'bytes */0');
    assert.throws(() => formatContentRange({ start: 0, end: 1234 }, 1234), RangeError);
    assert.throws(() => formatContentRange({ start: 5, end: 4 }, 1234), RangeError);
    assert.throws(() => formatContentRange({ start: -1, end: 4 }, 1234), RangeError);
    assert.throws(() => unsatisfiedContentRange(-1), RangeError);
  });

  test('parseContentRange', () => {
    assert.deepEqual(parseContentRange('bytes 0-499/1234'), { start: 0, end: 499, size: 1234 });
    assert.deepEqual(parseContentRange('bytes 42-42/*'), { start: 42, end: 42, size: undefined });
    assert.deepEqual(parseContentRange('BYTES 1-1/2'), { start: 1, end: 1, size: 2 });
    assert.deepEqual(parseContentRange(' bytes 0-0/1 '), { start: 0, end: 0, size: 1 });
    for (const v of [
      undefined,
      '',
      'bytes */1234',
      'bytes 5-4/10',
      'bytes 0-10/10',
      'bytes 0-9',
      'bytes 0-9/',
      'bytes=0-9/10',
      'bytes0-9/10',
      'items 0-9/10',
      'bytes -1-9/10',
      'bytes 0-9/10,',
      'bytes 0-9007199254740992/*',
      'bytes 0-1/9007199254740992',
      'bytes a-b/c',
    ]) {
      assert.equal(parseContentRange(v), undefined, String(v));
    }
  });

  test('ifRangeMatches: strong comparison only', () => {
    const etag = '"sha256:abc123"';
    assert.equal(ifRangeMatches(undefined, etag), true);
    assert.equal(ifRangeMatches('"sha256:abc123"', etag), true);
    assert.equal(ifRangeMatches(' "sha256:abc123"\t', etag), true);
    assert.equal(ifRangeMatches('"sha256:abc124"', etag), false);
    assert.equal(ifRangeMatches('W/"sha256:abc123"', etag), false);
    assert.equal(ifRangeMatches('sha256:abc123', etag), false);
    assert.equal(ifRangeMatches('"sha256:abc123', etag), false);
    assert.equal(ifRangeMatches('"sha256:abc123", "x"', etag), false);
    assert.equal(ifRangeMatches('', etag), false);
    assert.equal(ifRangeMatches('Sat, 29 Oct 1994 19:43:31 GMT', etag), false);
    assert.equal(ifRangeMatches('W/"x"', 'W/"x"'), false); // weak never matches
    assert.equal(ifRangeMatches('"sha256:ABC123"', etag), false); // case-sensitive
  });
});

// ---------------------------------------------------------------------------------------------
// parseRange: randomized against a model

type GenSpec = { t: 'int'; first: number; last: number | undefined } | { t: 'suffix'; n: number };

/** The model: RFC 9110 §14.1.1-14.1.2 written out directly over generated specs. */
function modelResolve(specs: GenSpec[], size: number): RangeResult {
  const out: ByteRange[] = [];
  for (const s of specs) {
    if (s.t === 'suffix') {
      if (s.n > 0 && size > 0) out.push({ start: Math.max(0, size - s.n), end: size - 1 });
    } else if (s.first < size) {
      out.push({ start: s.first, end: Math.min(s.last ?? Infinity, size - 1) });
    }
  }
  return out.length === 0 ? { kind: 'unsatisfiable' } : { kind: 'ranges', ranges: out, dropped: specs.length - out.length };
}

function genNumber(rnd: () => number, size: number): number {
  switch (int(rnd, 0, 6)) {
    case 0:
      return 0;
    case 1:
      return Math.max(0, size - int(rnd, 0, 2));
    case 2:
      return size + int(rnd, 0, 3);
    case 3:
      return Number.MAX_SAFE_INTEGER - int(rnd, 0, 1);
    default:
      return int(rnd, 0, Math.max(0, Math.min(size * 2, Number.MAX_SAFE_INTEGER)));
  }
}

function fmtNum(rnd: () => number, n: number): string {
  return (rnd() < 0.05 ? '0'.repeat(int(rnd, 1, 20)) : '') + String(n);
}

function ows(rnd: () => number): string {
  return rnd() < 0.7 ? '' : pick(rnd, [' ', '\t', '  ', ' \t ']);
}

test('parseRange matches the model on random headers', () =>
  withSeed('parseRange-model', (rnd) => {
    for (let iter = 0; iter < 5000; iter++) {
      const size = rnd() < 0.05 ? 0 : rnd() < 0.05 ? int(rnd, 1, Number.MAX_SAFE_INTEGER) : int(rnd, 1, 20000);
      const n = int(rnd, 1, rnd() < 0.1 ? 60 : 8);
      const specs: GenSpec[] = [];
      const texts: string[] = [];
      for (let k = 0; k < n; k++) {
        if (rnd() < 0.3) {
          const m = genNumber(rnd, size);
          specs.push({ t: 'suffix', n: m });
          texts.push(`-${fmtNum(rnd, m)}`);
        } else {
          const first = genNumber(rnd, size);
          if (rnd() < 0.3) {
            specs.push({ t: 'int', first, last: undefined });
            texts.push(`${fmtNum(rnd, first)}-`);
          } else {
            const last = Math.min(Number.MAX_SAFE_INTEGER, first + (rnd() < 0.2 ? 0 : genNumber(rnd, size)));
            specs.push({ t: 'int', first, last });
            texts.push(`${fmtNum(rnd, first)}-${fmtNum(rnd, last)}`);
          }
        }
        if (rnd() < 0.03) texts.push(''); // empty list element
      }
      // a malformed member, a bad unit, or too many members?
      let expected: RangeResult['kind'] | undefined;
      const mutation = rnd();
      if (mutation < 0.08) {
        const bad = pick(rnd, ['5-2', 'x', '1-2-3', '-', '--1', '1 -2', '0x1-2', '99999999999999999999-', '-9007199254740992', '1-+2']);
        texts.splice(int(rnd, 0, texts.length), 0, bad);
        expected = 'invalid';
      }
      let unit = pick(rnd, ['bytes', 'bytes', 'bytes', 'BYTES', 'Bytes']);
      if (rnd() < 0.03) {
        unit = pick(rnd, ['items', 'byte', 'bytess', 'x-bytes']);
        expected = 'none';
      }
      const maxRanges = rnd() < 0.1 ? int(rnd, 1, 10) : undefined;
      const header = `${ows(rnd)}${unit}=${texts.map((t) => ows(rnd) + t + ows(rnd)).join(',')}${ows(rnd)}`;
      const got = parseRange(header, size, maxRanges === undefined ? undefined : { maxRanges });
      const ctx = `header=${JSON.stringify(header.length > 300 ? header.slice(0, 300) + '…' : header)} size=${size} maxRanges=${maxRanges}`;
      if (expected === 'none') {
        assert.deepEqual(got, { kind: 'none' }, ctx);
      } else if (expected === 'invalid') {
        assert.equal(got.kind, 'invalid', ctx);
      } else if (maxRanges !== undefined && specs.length > maxRanges) {
        assert.deepEqual(got, { kind: 'too-many', count: specs.length }, ctx);
      } else {
        assert.deepEqual(got, modelResolve(specs, size), ctx);
        // the resolved ranges are all within the representation
        if (got.kind === 'ranges') for (const r of got.ranges) assert.ok(r.start <= r.end && r.end < size, ctx);
        // specs round-trip through formatRangeHeader
        const parsed = parseRangeSpecs(header);
        assert.equal(parsed.kind, 'specs', ctx);
        if (parsed.kind === 'specs') {
          const again = parseRangeSpecs(formatRangeHeader(parsed.specs));
          assert.deepEqual(again, parsed, ctx);
          assert.deepEqual(
            parsed.specs,
            specs.map((s): RangeSpec => (s.t === 'suffix' ? { suffix: s.n } : { first: s.first, last: s.last })),
            ctx,
          );
        }
      }
    }
  }));

test('parseContentRange round-trips formatContentRange', () =>
  withSeed('content-range', (rnd) => {
    for (let i = 0; i < 2000; i++) {
      const size = rnd() < 0.1 ? int(rnd, 1, Number.MAX_SAFE_INTEGER) : int(rnd, 1, 100000);
      const start = int(rnd, 0, size - 1);
      const end = int(rnd, start, size - 1);
      const v = formatContentRange({ start, end }, size);
      assert.equal(v, `bytes ${start}-${end}/${size}`);
      assert.deepEqual(parseContentRange(v), { start, end, size });
    }
  }));

// ---------------------------------------------------------------------------------------------
// coalesce

describe('coalesce', () => {
  test('fixed cases', () => {
    assert.deepEqual(coalesce([], { maxGap: 10 }), []);
    // gap of 10 bytes (10..19) with maxGap 10 → one segment
    assert.deepEqual(coalesce([{ start: 0, end: 9 }, { start: 20, end: 29 }], { maxGap: 10 }), [
      { start: 0, end: 29, indices: [0, 1] },
    ]);
    // gap of 11 → two
    assert.deepEqual(coalesce([{ start: 0, end: 9 }, { start: 21, end: 29 }], { maxGap: 10 }), [
      { start: 0, end: 9, indices: [0] },
      { start: 21, end: 29, indices: [1] },
    ]);
    // adjacent and overlapping merge even with maxGap 0 and no waste budget
    assert.deepEqual(
      coalesce([{ start: 10, end: 19 }, { start: 0, end: 9 }, { start: 5, end: 12 }, { start: 30, end: 30 }], {
        maxGap: 0,
        maxWaste: 0,
      }),
      [
        { start: 0, end: 19, indices: [0, 1, 2] },
        { start: 30, end: 30, indices: [3] },
      ],
    );
    // duplicates keep their own indices; a contained range does not extend the segment
    assert.deepEqual(coalesce([{ start: 0, end: 99 }, { start: 10, end: 20 }, { start: 0, end: 99 }], { maxGap: 0 }), [
      { start: 0, end: 99, indices: [0, 1, 2] },
    ]);
    // waste budget: gaps of 10 each, budget 15 → only the first gap is bridged
    assert.deepEqual(
      coalesce([{ start: 0, end: 9 }, { start: 20, end: 29 }, { start: 40, end: 49 }], { maxGap: 10, maxWaste: 15 }),
      [
        { start: 0, end: 29, indices: [0, 1] },
        { start: 40, end: 49, indices: [2] },
      ],
    );
    // default budget is 64 KiB
    const g = DEFAULT_MAX_WASTE;
    assert.equal(coalesce([{ start: 0, end: 0 }, { start: g + 1, end: g + 1 }], { maxGap: Infinity }).length, 1);
    assert.equal(coalesce([{ start: 0, end: 0 }, { start: g + 2, end: g + 2 }], { maxGap: Infinity }).length, 2);
    assert.throws(() => coalesce([{ start: 3, end: 2 }], { maxGap: 0 }), RangeError);
    assert.throws(() => coalesce([{ start: 0, end: 2 }], { maxGap: -1 }), RangeError);
  });

  test('random range sets: invariants', () =>
    withSeed('coalesce', (rnd) => {
      for (let iter = 0; iter < 3000; iter++) {
        const size = int(rnd, 1, rnd() < 0.5 ? 2000 : 200000);
        const n = int(rnd, 0, 60);
        const ranges: ByteRange[] = [];
        for (let k = 0; k < n; k++) {
          if (k > 0 && rnd() < 0.1) {
            ranges.push({ ...ranges[int(rnd, 0, k - 1)]! }); // duplicate
            continue;
          }
          const start = int(rnd, 0, size - 1);
          const end = Math.min(size - 1, start + int(rnd, 0, pick(rnd, [0, 10, 1000, size])));
          ranges.push({ start, end });
        }
        const maxGap = pick(rnd, [0, 1, 16, 500, 5000, Infinity]);
        const maxWaste = rnd() < 0.3 ? undefined : pick(rnd, [0, 10, 1000, 100000]);
        const segs = coalesce(ranges, maxWaste === undefined ? { maxGap } : { maxGap, maxWaste });
        const budget = maxWaste ?? DEFAULT_MAX_WASTE;
        checkSegments(ranges, segs, maxGap, budget, `case ${iter}: ${JSON.stringify({ ranges, maxGap, maxWaste })}`);
      }
    }));
});

function checkSegments(ranges: ByteRange[], segs: Segment[], maxGap: number, maxWaste: number, ctx: string): void {
  // every index exactly once, inside its segment
  const seen = new Array<number>(ranges.length).fill(0);
  for (const s of segs) {
    assert.ok(s.indices.length > 0, ctx);
    for (let j = 1; j < s.indices.length; j++) assert.ok(s.indices[j - 1]! < s.indices[j]!, `indices ascending: ${ctx}`);
    for (const i of s.indices) {
      seen[i]!++;
      const r = ranges[i]!;
      assert.ok(s.start <= r.start && r.end <= s.end, `range ${i} inside segment: ${ctx}`);
      // the cut-out offsets are within the segment's byte count
      assert.ok(r.end - s.start < s.end - s.start + 1, ctx);
    }
    // segment is tight: starts/ends at a member's bounds
    assert.equal(s.start, Math.min(...s.indices.map((i) => ranges[i]!.start)), ctx);
    assert.equal(s.end, Math.max(...s.indices.map((i) => ranges[i]!.end)), ctx);
  }
  assert.deepEqual(seen, new Array<number>(ranges.length).fill(1), `each range in exactly one segment: ${ctx}`);
  // sorted, disjoint, not adjacent
  for (let j = 1; j < segs.length; j++) assert.ok(segs[j]!.start > segs[j - 1]!.end + 1, `segments sorted/disjoint: ${ctx}`);
  // waste: per segment, holes not covered by any member; each hole ≤ maxGap; total ≤ maxWaste
  let total = 0;
  const wasteUpTo: number[] = [];
  for (const s of segs) {
    const members = s.indices.map((i) => ranges[i]!).sort((a, b) => a.start - b.start);
    let covered = s.start - 1;
    let segWaste = 0;
    for (const m of members) {
      if (m.start > covered + 1) {
        const hole = m.start - covered - 1;
        assert.ok(hole <= maxGap, `hole ${hole} > maxGap: ${ctx}`);
        segWaste += hole;
      }
      covered = Math.max(covered, m.end);
    }
    total += segWaste;
    wasteUpTo.push(total);
  }
  assert.ok(total <= maxWaste, `waste ${total} > ${maxWaste}: ${ctx}`);
  // greedy is not lazy: two neighbouring segments stay apart only if bridging them was not allowed
  for (let j = 1; j < segs.length; j++) {
    const gap = segs[j]!.start - segs[j - 1]!.end - 1;
    assert.ok(gap > maxGap || wasteUpTo[j - 1]! + gap > maxWaste, `segments ${j - 1},${j} should have merged: ${ctx}`);
  }
}

// ---------------------------------------------------------------------------------------------
// multipart

describe('multipart framing', () => {
  test('newBoundary', () => {
    const a = newBoundary();
    const b = newBoundary();
    assert.match(a, /^[0-9a-f]{32}$/);
    assert.notEqual(a, b);
  });

  test('exact bytes of a two-part body (RFC 9110 §14.6 example shape)', async () => {
    const blob = randomBlob(prng(1), 8000);
    const plan = multipartPlan(
      [
        { start: 500, end: 999 },
        { start: 7000, end: 7999 },
      ],
      8000,
      'application/pdf',
      'THIS_STRING_SEPARATES',
    );
    assert.equal(plan.contentType, 'multipart/byteranges; boundary=THIS_STRING_SEPARATES');
    const expected = Buffer.concat([
      Buffer.from('--THIS_STRING_SEPARATES\r\nContent-Type: application/pdf\r\nContent-Range: bytes 500-999/8000\r\n\r\n'),
      blob.subarray(500, 1000),
      Buffer.from(
        '\r\n--THIS_STRING_SEPARATES\r\nContent-Type: application/pdf\r\nContent-Range: bytes 7000-7999/8000\r\n\r\n',
      ),
      blob.subarray(7000, 8000),
      Buffer.from('\r\n--THIS_STRING_SEPARATES--\r\n'),
    ]);
    assert.equal(plan.contentLength, expected.length);
    const out = new Collector();
    await writeMultipart(plan, (_i, r) => blob.subarray(r.start, r.end + 1), out);
    assert.ok(out.data.equals(expected));
    assert.ok(out.writableFinished);
  });

  test('overlapping and duplicate ranges each get their own part, in request order', async () => {
    const blob = randomBlob(prng(2), 100);
    const ranges = [
      { start: 50, end: 59 },
      { start: 0, end: 9 },
      { start: 50, end: 59 },
      { start: 55, end: 64 },
      { start: 99, end: 99 },
    ];
    const plan = multipartPlan(ranges, 100, 'application/octet-stream', newBoundary());
    const out = new Collector();
    await writeMultipart(plan, (i) => Readable.from([blob.subarray(ranges[i]!.start, ranges[i]!.end + 1)]), out);
    const parts = parseByteranges(plan.contentType, out.data);
    assert.deepEqual(
      parts.map((p) => p.contentRange),
      ['bytes 50-59/100', 'bytes 0-9/100', 'bytes 50-59/100', 'bytes 55-64/100', 'bytes 99-99/100'],
    );
    parts.forEach((p, i) => assert.ok(p.body.equals(blob.subarray(ranges[i]!.start, ranges[i]!.end + 1))));
  });

  test('multipartPlan rejects bad input', () => {
    const b = newBoundary();
    assert.throws(() => multipartPlan([], 10, 'a/b', b), RangeError);
    assert.throws(() => multipartPlan([{ start: 0, end: 10 }], 10, 'a/b', b), RangeError);
    assert.throws(() => multipartPlan([{ start: 3, end: 2 }], 10, 'a/b', b), RangeError);
    assert.throws(() => multipartPlan([{ start: 0, end: 1 }], 10, 'a/b\r\nX-Evil: 1', b), RangeError);
    assert.throws(() => multipartPlan([{ start: 0, end: 1 }], 10, '', b), RangeError);
    assert.throws(() => multipartPlan([{ start: 0, end: 1 }], 10, 'a/b', ''), RangeError);
    assert.throws(() => multipartPlan([{ start: 0, end: 1 }], 10, 'a/b', 'x'.repeat(71)), RangeError);
    assert.throws(() => multipartPlan([{ start: 0, end: 1 }], 10, 'a/b', 'has space'), RangeError);
    assert.throws(() => multipartPlan([{ start: 0, end: 1 }], 10, 'a/b', 'a"b'), RangeError);
    assert.doesNotThrow(() => multipartPlan([{ start: 0, end: 1 }], 10, 'a/b', "0-9A_z'+.x"));
  });

  test('the test parser is strict (it would catch framing bugs)', () => {
    const ct = 'multipart/byteranges; boundary=B';
    const good = '--B\r\nContent-Range: bytes 0-1/5\r\n\r\nab\r\n--B--\r\n';
    assert.equal(parseByteranges(ct, Buffer.from(good)).length, 1);
    assert.equal(boundaryFromContentType('multipart/byteranges; boundary="q\\"x"'), 'q"x');
    for (const bad of [
      'preamble\r\n' + good,
      good.replace('--B--', '--B'),
      good.replace('\r\n\r\nab', '\r\nab'),
      good + 'junk',
      '--B\r\nContent-Range: bytes 0-1/5\r\n\r\nab--B--\r\n',
      '--B--\r\n',
    ]) {
      assert.throws(() => parseByteranges(ct, Buffer.from(bad)), JSON.stringify(bad));
    }
    assert.throws(() => parseByteranges('multipart/mixed; boundary=B', Buffer.from(good)));
  });
});

/** Returns a source for part i, of a randomly chosen kind. */
function randomSource(rnd: () => number, data: Buffer): PartSource | Promise<PartSource> {
  switch (int(rnd, 0, 5)) {
    case 0:
      return data;
    case 1:
      return new Uint8Array(data); // plain Uint8Array, a copy
    case 2:
      return Readable.from(randomChunks(rnd, data));
    case 3:
      return Promise.resolve(Readable.from(randomChunks(rnd, data)));
    case 4:
      return new Promise((resolve) => setImmediate(() => resolve(data)));
    default:
      return slowReadable(randomChunks(rnd, data));
  }
}

test('writeMultipart output parses back to the requested parts (random)', { timeout: 120_000 }, () =>
  withSeed('multipart-roundtrip', async (rnd) => {
    for (let iter = 0; iter < 400; iter++) {
      const size = int(rnd, 1, rnd() < 0.2 ? 200_000 : 4000);
      const blob = randomBlob(rnd, size);
      // random range set through the real parser (overlaps, duplicates, suffixes, out-of-bounds)
      const n = int(rnd, 1, rnd() < 0.1 ? 200 : 12);
      const texts: string[] = [];
      for (let k = 0; k < n; k++) {
        const kind = rnd();
        if (kind < 0.15 && k > 0) texts.push(texts[int(rnd, 0, k - 1)]!);
        else if (kind < 0.3) texts.push(`-${int(rnd, 1, size + 10)}`);
        else if (kind < 0.35) texts.push(`${int(rnd, 0, size - 1)}-`);
        else if (kind < 0.4) texts.push(`${size + int(rnd, 0, 10)}-${size + 20}`); // unsatisfiable
        else {
          const s = int(rnd, 0, size - 1);
          texts.push(`${s}-${s + int(rnd, 0, pick(rnd, [0, 5, 100, size]))}`);
        }
      }
      const header = 'bytes=' + texts.join(', ');
      const parsed = parseRange(header, size);
      if (parsed.kind !== 'ranges') {
        assert.equal(parsed.kind, 'unsatisfiable', header);
        continue;
      }
      const ranges = parsed.ranges;
      const contentType = pick(rnd, ['application/octet-stream', 'application/vnd.oci.image.layer.v1.tar+zstd']);
      const plan = multipartPlan(ranges, size, contentType, newBoundary());
      const out = new Collector(
        pick(rnd, ['sync', 'immediate', 'sync'] as const),
        pick(rnd, [1, 64, 1024, 16384, 65536]),
        rnd() < 0.7,
      );
      const calls: number[] = [];
      await writeMultipart(
        plan,
        (i, r) => {
          calls.push(i);
          assert.deepEqual(r, ranges[i]);
          return randomSource(rnd, blob.subarray(r.start, r.end + 1));
        },
        out,
      );
      const body = out.data;
      const ctx = `iter ${iter} header=${header.slice(0, 200)} size=${size}`;
      assert.deepEqual(calls, ranges.map((_, i) => i), ctx);
      assert.equal(body.length, plan.contentLength, ctx);
      assert.equal(boundaryFromContentType(plan.contentType), plan.boundary);
      const parts = parseByteranges(plan.contentType, body);
      assert.equal(parts.length, ranges.length, ctx);
      parts.forEach((p, i) => {
        const r = ranges[i]!;
        assert.equal(p.contentType, contentType, ctx);
        assert.equal(p.contentRange, `bytes ${r.start}-${r.end}/${size}`, ctx);
        assert.equal(p.headers.length, 2, ctx);
        assert.ok(p.body.equals(blob.subarray(r.start, r.end + 1)), `${ctx} part ${i}`);
      });
    }
  }));

test('coalesced segments cut back into the requested parts (random)', { timeout: 60_000 }, () =>
  withSeed('coalesce-cut', async (rnd) => {
    for (let iter = 0; iter < 200; iter++) {
      const size = int(rnd, 1, 50_000);
      const blob = randomBlob(rnd, size);
      const ranges: ByteRange[] = [];
      for (let k = int(rnd, 2, 40); k > 0; k--) {
        const s = int(rnd, 0, size - 1);
        ranges.push({ start: s, end: Math.min(size - 1, s + int(rnd, 0, 300)) });
      }
      const segs = coalesce(ranges, { maxGap: pick(rnd, [0, 100, 4096]), maxWaste: pick(rnd, [0, 1000, 65536]) });
      // "fetch" each segment once, then cut parts out of it
      const fetched = new Map<number, Buffer>();
      const where = new Map<number, Segment>();
      for (const s of segs) {
        fetched.set(s.start, Buffer.from(blob.subarray(s.start, s.end + 1)));
        for (const i of s.indices) where.set(i, s);
      }
      const plan = multipartPlan(ranges, size, 'application/octet-stream', newBoundary());
      const out = new Collector('immediate', 4096);
      await writeMultipart(
        plan,
        (i, r) => {
          const s = where.get(i)!;
          return fetched.get(s.start)!.subarray(r.start - s.start, r.end - s.start + 1);
        },
        out,
      );
      const parts = parseByteranges(plan.contentType, out.data);
      assert.equal(parts.length, ranges.length);
      parts.forEach((p, i) => assert.ok(p.body.equals(blob.subarray(ranges[i]!.start, ranges[i]!.end + 1)), `part ${i}`));
    }
  }));

describe('writeMultipart efficiency and backpressure', () => {
  test('1000 tiny Buffer parts are batched (corked), not one write per chunk', async () => {
    const size = 5000;
    const blob = randomBlob(prng(3), size);
    const ranges = Array.from({ length: 1000 }, (_, i) => ({ start: i * 5, end: i * 5 + (i % 5) }));
    const plan = multipartPlan(ranges, size, 'application/octet-stream', newBoundary());
    const out = new Collector('sync');
    await writeMultipart(plan, (_i, r) => blob.subarray(r.start, r.end + 1), out);
    assert.equal(out.data.length, plan.contentLength);
    assert.equal(parseByteranges(plan.contentType, out.data).length, 1000);
    // ~2001 chunks; corking lets them go out in a few writev calls of ~16 KiB each
    assert.ok(out.calls < 50, `underlying writes: ${out.calls}`);
  });

  test('1000 tiny Readable parts', async () => {
    const size = 5000;
    const blob = randomBlob(prng(4), size);
    const ranges = Array.from({ length: 1000 }, (_, i) => ({ start: (i * 37) % 4990, end: ((i * 37) % 4990) + (i % 9) }));
    const plan = multipartPlan(ranges, size, 'application/octet-stream', newBoundary());
    const out = new Collector('sync');
    const t0 = performance.now();
    await writeMultipart(plan, (_i, r) => Readable.from([blob.subarray(r.start, r.end + 1)]), out);
    const ms = performance.now() - t0;
    const parts = parseByteranges(plan.contentType, out.data);
    assert.equal(parts.length, 1000);
    parts.forEach((p, i) => assert.ok(p.body.equals(blob.subarray(ranges[i]!.start, ranges[i]!.end + 1))));
    assert.ok(ms < 5000, `took ${ms} ms`);
  });

  test('a large part is streamed with backpressure, not buffered', async () => {
    const partSize = 8 * 1024 * 1024;
    const chunk = 64 * 1024;
    let produced = 0;
    let consumed = 0;
    let maxAhead = 0;
    const src = new Readable({
      highWaterMark: chunk,
      read() {
        if (produced >= partSize) {
          this.push(null);
          return;
        }
        const n = Math.min(chunk, partSize - produced);
        produced += n;
        this.push(Buffer.alloc(n, 7));
      },
    });
    const out = new Writable({
      highWaterMark: 16 * 1024,
      write(c: Buffer, _e, cb) {
        consumed += c.length;
        maxAhead = Math.max(maxAhead, produced - consumed);
        setImmediate(cb);
      },
    });
    const plan = multipartPlan([{ start: 0, end: partSize - 1 }, { start: 0, end: 0 }], partSize, 'a/b', newBoundary());
    await writeMultipart(plan, (i) => (i === 0 ? src : Buffer.alloc(1, 7)), out);
    assert.equal(produced, partSize);
    // without honouring 'drain' the whole 8 MiB would be read ahead of the consumer
    assert.ok(maxAhead <= 512 * 1024, `read ahead of the consumer by ${maxAhead} bytes`);
  });

  test('Buffer parts also wait for drain (the destination does not pile up whole parts)', async () => {
    const partSize = 256 * 1024;
    const n = 32;
    const blob = Buffer.alloc(partSize, 1);
    const ranges = Array.from({ length: n }, () => ({ start: 0, end: partSize - 1 }));
    const plan = multipartPlan(ranges, partSize, 'a/b', newBoundary());
    const out = new Collector('immediate', 16 * 1024);
    let maxBuffered = 0;
    await writeMultipart(
      plan,
      () => {
        maxBuffered = Math.max(maxBuffered, out.writableLength);
        return blob;
      },
      out,
    );
    assert.equal(out.data.length, plan.contentLength);
    // the next part is only asked for once the previous one has drained (not one or all 32 parts queued)
    assert.ok(maxBuffered <= 16 * 1024, `destination had ${maxBuffered} bytes queued`);
  });

  test('bytes already written are flushed while the part source waits for data', ERR_TIMEOUT, async () => {
    const blob = randomBlob(prng(8), 100);
    const plan = multipartPlan([{ start: 0, end: 9 }, { start: 10, end: 99 }], 100, 'a/b', newBoundary());
    const out = new Collector('sync');
    const src = new PassThrough();
    const first = blob.subarray(10, 20);
    src.write(first);
    const p = writeMultipart(plan, (i, r) => (i === 0 ? blob.subarray(r.start, r.end + 1) : src), out);
    // the source sends the rest only once the destination has seen its first chunk (as a client
    // waiting for data before the upstream continues would): corked bytes would deadlock here
    const deadline = Date.now() + 3000;
    while (!out.data.includes(first)) {
      if (Date.now() > deadline) {
        src.destroy();
        assert.fail('part data stayed corked while the source was waiting');
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    src.end(blob.subarray(20, 100));
    await p;
    const parts = parseByteranges(plan.contentType, out.data);
    assert.ok(parts[1]!.body.equals(blob.subarray(10, 100)));
  });

  test('works against a real http.ServerResponse (Content-Length honoured)', async () => {
    const size = 310_000;
    const blob = randomBlob(prng(5), size);
    const ranges = Array.from({ length: 300 }, (_, i) => ({ start: i * 997, end: i * 997 + (i % 3 === 0 ? 5000 : 10) }));
    const plan = multipartPlan(ranges, size, 'application/octet-stream', newBoundary());
    const server = http.createServer((_req, res) => {
      res.writeHead(206, { 'content-type': plan.contentType, 'content-length': plan.contentLength });
      writeMultipart(plan, (i, r) => (i % 2 ? Readable.from(randomChunks(prng(i), blob.subarray(r.start, r.end + 1))) : blob.subarray(r.start, r.end + 1)), res).catch(
        (err: unknown) => res.destroy(err as Error),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const { headers, body } = await new Promise<{ headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port, path: '/' }, (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
            res.on('error', reject);
          })
          .on('error', reject);
      });
      assert.equal(headers['content-type'], plan.contentType);
      assert.equal(Number(headers['content-length']), body.length);
      const parts = parseByteranges(headers['content-type']!, body);
      assert.equal(parts.length, ranges.length);
      parts.forEach((p, i) => assert.ok(p.body.equals(blob.subarray(ranges[i]!.start, ranges[i]!.end + 1))));
    } finally {
      server.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// error paths

function twoPartPlan(size = 1000): MultipartPlan {
  return multipartPlan(
    [
      { start: 0, end: 99 },
      { start: 200, end: 499 },
    ],
    size,
    'application/octet-stream',
    newBoundary(),
  );
}

describe('writeMultipart error paths', () => {
  const blob = randomBlob(prng(6), 1000);
  const part = (r: ByteRange): Buffer => blob.subarray(r.start, r.end + 1);

  test('part source errors midway → rejects with that error, source destroyed', ERR_TIMEOUT, async () => {
    const boom = new Error('upstream reset');
    const data = part({ start: 200, end: 499 });
    const src = slowReadable([data.subarray(0, 100), data.subarray(100, 200), data.subarray(200)], { index: 2, error: boom });
    const out = new Collector('immediate');
    await assert.rejects(writeMultipart(twoPartPlan(), (i, r) => (i === 0 ? part(r) : src), out), (e) => e === boom);
    assert.ok(src.destroyed);
    // nothing after the failing part: no close delimiter
    assert.ok(!out.data.toString('latin1').includes('--\r\n'), 'close delimiter must not be written');
  });

  test('Readable yields too few bytes → rejects', ERR_TIMEOUT, async () => {
    const out = new Collector();
    await assert.rejects(
      writeMultipart(twoPartPlan(), (i, r) => Readable.from([part(r).subarray(0, i === 1 ? 299 : 100)]), out),
      /yielded 299 bytes, expected 300/,
    );
    assert.ok(!out.writableFinished);
  });

  test('Readable ends immediately (0 bytes) → rejects', ERR_TIMEOUT, async () => {
    await assert.rejects(writeMultipart(twoPartPlan(), () => Readable.from([]), new Collector()), /yielded 0 bytes, expected 100/);
  });

  test('Readable yields too many bytes → rejects, excess not written', ERR_TIMEOUT, async () => {
    const out = new Collector();
    const extra = Buffer.from('EXTRA-BYTES');
    const src = Readable.from([part({ start: 0, end: 99 }), extra]);
    await assert.rejects(writeMultipart(twoPartPlan(), () => src, out), /more than 100 bytes/);
    assert.ok(!out.data.includes(extra));
    assert.ok(src.destroyed);
  });

  test('Buffer of the wrong length → rejects before writing it', ERR_TIMEOUT, async () => {
    for (const len of [99, 101, 0]) {
      const out = new Collector();
      await assert.rejects(writeMultipart(twoPartPlan(), () => Buffer.alloc(len), out), /has \d+ bytes, expected 100/);
      assert.equal(out.data.length, 0);
    }
  });

  test('getPart throws / rejects / returns garbage → rejects', ERR_TIMEOUT, async () => {
    const e1 = new Error('sync');
    await assert.rejects(
      writeMultipart(twoPartPlan(), (i, r) => {
        if (i === 1) throw e1;
        return part(r);
      }, new Collector()),
      (e) => e === e1,
    );
    const e2 = new Error('async');
    await assert.rejects(writeMultipart(twoPartPlan(), () => Promise.reject(e2), new Collector()), (e) => e === e2);
    await assert.rejects(writeMultipart(twoPartPlan(), () => 'nope' as unknown as Buffer, new Collector()), /neither/);
    const s = Readable.from([part({ start: 0, end: 99 })]);
    s.setEncoding('latin1');
    await assert.rejects(writeMultipart(twoPartPlan(), () => s, new Collector()), /non-binary/);
  });

  test('destination destroyed while writing → rejects, source destroyed', ERR_TIMEOUT, async () => {
    let written = 0;
    const out = new Writable({
      highWaterMark: 64,
      write(c: Buffer, _e, cb) {
        written += c.length;
        if (written > 350) {
          this.destroy(); // dies inside the second part's data (framing + part 0 ≈ 290 bytes)
          return;
        }
        setImmediate(cb);
      },
    });
    const data = part({ start: 200, end: 499 });
    const src = slowReadable(Array.from({ length: 30 }, (_, k) => data.subarray(k * 10, k * 10 + 10)));
    await assert.rejects(writeMultipart(twoPartPlan(), (i, r) => (i === 0 ? part(r) : src), out), /destroyed|closed/);
    assert.ok(written > 350 && written < 450, `written ${written}`);
    assert.ok(src.destroyed);
  });

  test('destination destroyed while waiting for drain (stuck consumer) → rejects, no hang', ERR_TIMEOUT, async () => {
    const out = new Writable({
      highWaterMark: 16,
      write(_c, _e, _cb) {
        /* never calls back */
      },
    });
    const src = new Readable({
      read() {
        this.push(Buffer.alloc(10));
      },
    });
    const plan = multipartPlan([{ start: 0, end: 99_999 }, { start: 0, end: 0 }], 100_000, 'a/b', newBoundary());
    setTimeout(() => out.destroy(), 50);
    await assert.rejects(writeMultipart(plan, () => src, out), /destroyed|closed/);
    assert.ok(src.destroyed);
  });

  test('destination destroyed while waiting for source data → rejects, source destroyed', ERR_TIMEOUT, async () => {
    const out = new Collector('sync');
    const src = new PassThrough(); // never gets data
    setTimeout(() => out.destroy(), 50);
    await assert.rejects(writeMultipart(twoPartPlan(), () => src, out), /destroyed|closed/);
    assert.ok(src.destroyed);
  });

  test('destination errors → rejects with its error', ERR_TIMEOUT, async () => {
    const boom = new Error('EPIPE-ish');
    const out = new Writable({
      write(_c, _e, cb) {
        setImmediate(() => cb(boom));
      },
    });
    out.on('error', () => {}); // the caller's own handler
    await assert.rejects(
      writeMultipart(twoPartPlan(), (_i, r) => slowReadable([part(r)]), out),
      (e) => e === boom,
    );
  });

  test('part promise resolves after the destination closed → rejects, the late source is destroyed', ERR_TIMEOUT, async () => {
    const out = new Collector('sync');
    const late = Readable.from([part({ start: 200, end: 499 })]);
    const p = writeMultipart(
      twoPartPlan(),
      (i, r) =>
        i === 0
          ? part(r)
          : new Promise<PartSource>((resolve) => {
              out.destroy();
              setTimeout(() => resolve(late), 20);
            }),
      out,
    );
    await assert.rejects(p, /destroyed|closed/);
    assert.ok(late.destroyed);
  });

  test('already closed destination → rejects at once', ERR_TIMEOUT, async () => {
    const out = new Collector();
    out.destroy();
    await assert.rejects(writeMultipart(twoPartPlan(), (_i, r) => part(r), out), /already closed/);
    const ended = new Collector();
    ended.end();
    await assert.rejects(writeMultipart(twoPartPlan(), (_i, r) => part(r), ended), /already closed/);
  });

  test('http client disconnects mid-body → writeMultipart rejects', ERR_TIMEOUT, async () => {
    const size = 4 * 1024 * 1024;
    const plan = multipartPlan([{ start: 0, end: size - 1 }, { start: 0, end: 0 }], size, 'a/b', newBoundary());
    let result: Promise<void> | undefined;
    let srcDestroyed: () => boolean = () => false;
    const server = http.createServer((_req, res) => {
      res.writeHead(206, { 'content-type': plan.contentType, 'content-length': plan.contentLength });
      result = writeMultipart(
        plan,
        (i) => {
          if (i === 1) return Buffer.alloc(1);
          let sent = 0;
          const src = new Readable({
            read() {
              // endless-ish slow source: the client will hang up first
              setTimeout(() => {
                const n = Math.min(65536, size - sent);
                sent += n;
                this.push(n > 0 ? Buffer.alloc(n) : null);
              }, 2);
            },
          });
          srcDestroyed = () => src.destroyed;
          return src;
        },
        res,
      );
      result.catch(() => res.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      await new Promise<void>((resolve) => {
        const req = http.get({ host: '127.0.0.1', port, path: '/' }, (res) => {
          let got = 0;
          res.on('data', (c: Buffer) => {
            got += c.length;
            if (got > 200_000) {
              req.destroy();
              resolve();
            }
          });
        });
        req.on('error', () => {});
      });
      assert.ok(result !== undefined);
      await assert.rejects(result, /closed|destroyed|aborted|reset/i);
      assert.ok(srcDestroyed());
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  test('end: false leaves the destination open', async () => {
    const out = new Collector();
    const plan = twoPartPlan();
    await writeMultipart(plan, (_i, r) => part(r), out, { end: false });
    assert.ok(!out.writableEnded);
    await new Promise<void>((resolve) => out.end(resolve));
    assert.equal(out.data.length, plan.contentLength);
    assert.equal(parseByteranges(plan.contentType, out.data).length, 2);
  });

  test('listeners are removed from the destination afterwards', async () => {
    const out = new Collector();
    const before = ['drain', 'error', 'close', 'finish'].map((e) => out.listenerCount(e));
    await writeMultipart(twoPartPlan(), (_i, r) => part(r), out, { end: false });
    assert.deepEqual(['drain', 'error', 'close', 'finish'].map((e) => out.listenerCount(e)), before);
  });
});

test('rangeLength', () => {
  assert.equal(rangeLength({ start: 0, end: 0 }), 1);
  assert.equal(rangeLength({ start: 10, end: 19 }), 10);
});
