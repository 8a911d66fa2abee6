/**
 * Multi-range answers for a blob that is not cached: the requested ranges are split into single-range
 * upstream fetches (S3 answers a multi-range GET with the whole object). Small ranges are coalesced into
 * segments (overlapping or nearly adjacent ones fetched once, within a waste budget), fetched ahead with
 * bounded parallelism and a bounded memory window, and cut apart again; large ranges are streamed from
 * their own upstream fetch when their part is written. Parts always come out in request order.
 */
import type { Readable } from 'node:stream';
import { coalesce, rangeLength, type ByteRange } from './parse.js';

/** The bytes of one part: a buffer, or a stream yielding exactly the part's bytes. */
export type PartBytes = Uint8Array | Readable;

/** Supplies the bytes of part `index` (whose range is `range`), called in answer order. */
export type PartProvider = (index: number, range: ByteRange) => Promise<PartBytes>;

/** Fetches exactly [start, end] of the blob from the upstream, as a stream. */
export type RangeFetcher = (start: number, end: number, signal: AbortSignal) => Promise<Readable>;

/** Tuning for {@link upstreamParts}. */
export interface UpstreamPartsOptions {
  /** Upstream fetches in flight at once. */
  parallelism: number;
  /** Ranges up to this length are coalesced and buffered; longer ones are streamed. Default 256 KiB. */
  smallPart?: number;
  /** Gap between two ranges that is still fetched to save a request. Default 16 KiB. */
  maxGap?: number;
  /** Total gap bytes fetched for one request. Default 32 KiB. */
  maxWaste?: number;
  /** A coalesced segment longer than this is cut into pieces of at most this length. Default 4 MiB. */
  maxSegment?: number;
  /** Buffered bytes fetched ahead of the writer. Default 16 MiB. */
  window?: number;
}

interface Seg {
  start: number;
  end: number;
  uses: number;
  state: 'waiting' | 'fetching' | 'ready';
  promise?: Promise<Buffer>;
}

async function collect(stream: Readable, expected: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of stream) {
    chunks.push(c as Buffer);
    n += (c as Buffer).length;
  }
  if (n !== expected) throw new Error(`upstream range gave ${n} bytes, expected ${expected}`);
  return Buffer.concat(chunks, n);
}

/**
 * A {@link PartProvider} over the upstream for `ranges`, plus `abort()` to stop every fetch (client gone).
 */
export function upstreamParts(ranges: readonly ByteRange[], fetch: RangeFetcher, opts: UpstreamPartsOptions): { provider: PartProvider; abort: () => void; fetches: () => number } {
  const smallPart = opts.smallPart ?? 256 * 1024;
  const maxSegment = opts.maxSegment ?? 4 * 1024 * 1024;
  const windowBytes = opts.window ?? 16 * 1024 * 1024;
  const controller = new AbortController();
  let fetches = 0;

  const small = ranges.map((r, i) => ({ r, i })).filter((x) => rangeLength(x.r) <= smallPart);
  const segOf = new Map<number, Seg>();
  const addSeg = (start: number, end: number, members: number[]) => {
    const seg: Seg = { start, end, uses: members.length, state: 'waiting' };
    for (const k of members) segOf.set(small[k]!.i, seg);
  };
  for (const s of coalesce(small.map((x) => x.r), { maxGap: opts.maxGap ?? 16 * 1024, maxWaste: opts.maxWaste ?? 32 * 1024 })) {
    if (s.end - s.start + 1 <= maxSegment) {
      addSeg(s.start, s.end, s.indices);
      continue;
    }
    // Too long to buffer as one: cut it at range boundaries into pieces of at most maxSegment
    // (every member is at most smallPart long, so each piece holds at least one).
    const members = [...s.indices].sort((a, b) => small[a]!.r.start - small[b]!.r.start);
    let piece: number[] = [];
    let pStart = 0;
    let pEnd = -1;
    for (const k of members) {
      const r = small[k]!.r;
      if (piece.length > 0 && Math.max(pEnd, r.end) - pStart + 1 > maxSegment) {
        addSeg(pStart, pEnd, piece);
        piece = [];
      }
      if (piece.length === 0) {
        pStart = r.start;
        pEnd = r.end;
      } else pEnd = Math.max(pEnd, r.end);
      piece.push(k);
    }
    if (piece.length > 0) addSeg(pStart, pEnd, piece);
  }
  // Segments in the order the writer will first need them.
  const order: Seg[] = [];
  for (let i = 0; i < ranges.length; i++) {
    const seg = segOf.get(i);
    if (seg && !order.includes(seg)) order.push(seg);
  }
  let next = 0;
  let inflight = 0;
  let buffered = 0;

  /** Starts fetches in need order; `wanted` (the segment the writer waits for) may exceed the window. */
  const pump = (wanted?: Seg): void => {
    while (next < order.length && inflight < opts.parallelism) {
      const seg = order[next]!;
      const len = seg.end - seg.start + 1;
      if (buffered > 0 && buffered + len > windowBytes && seg !== wanted) return;
      next++;
      inflight++;
      buffered += len;
      seg.state = 'fetching';
      fetches++;
      seg.promise = fetch(seg.start, seg.end, controller.signal)
        .then((s) => collect(s, len))
        .finally(() => {
          inflight--;
          seg.state = 'ready';
          pump();
        });
      seg.promise.catch(() => undefined);
    }
  };

  const provider: PartProvider = async (i, r): Promise<PartBytes> => {
    const seg = segOf.get(i);
    if (!seg) {
      fetches++;
      return fetch(r.start, r.end, controller.signal);
    }
    pump(seg);
    while (!seg.promise) {
      // Fetch order is need order, so an unscheduled segment is the next to fetch: it waits only for a slot.
      await Promise.race(order.filter((s) => s.state === 'fetching').map((s) => s.promise!.then(() => undefined, () => undefined)));
      pump(seg);
    }
    const buf = await seg.promise;
    const part = buf.subarray(r.start - seg.start, r.end - seg.start + 1);
    if (--seg.uses === 0) {
      buffered -= seg.end - seg.start + 1;
      pump();
    }
    return part;
  };

  return { provider, abort: () => controller.abort(), fetches: () => fetches };
}
