/**
 * Byte ranges of a blob straight from the upstream (a range request on a blob that is not cached).
 * Whatever the upstream does with the Range header — 206 with the range, 206 with more than asked, or
 * 200 with the whole body (some object stores) — the caller gets exactly the bytes it asked for, and the
 * upstream body is abandoned as soon as they have been read.
 */
import { Readable } from 'node:stream';
import { RangeUnsatisfiable, UpstreamUnavailable } from '../oci/errors.js';
import type { Digest } from '../oci/digest.js';
import { parseContentRange, parseRangeSpecs, resolveRanges, type ByteRange } from '../range/parse.js';
import { contentLength, type Upstream, type UpstreamResponse } from './client.js';

/** A range answer from the upstream, reduced to what was asked. */
export interface UpstreamRange {
  range: ByteRange;
  /** The blob's size, when the upstream told. */
  size: number | undefined;
  body: Readable;
}

/** Yields `len` bytes of `src` after skipping `skip`, then stops reading it. Fails if it ends early. */
function slice(res: UpstreamResponse, skip: number, len: number, onBytes: (n: number) => void): Readable {
  async function* gen(): AsyncGenerator<Buffer> {
    let toSkip = skip;
    let left = len;
    try {
      for await (const raw of res.body) {
        let c = raw as Buffer;
        onBytes(c.length);
        if (toSkip > 0) {
          if (c.length <= toSkip) {
            toSkip -= c.length;
            continue;
          }
          c = c.subarray(toSkip);
          toSkip = 0;
        }
        if (c.length >= left) {
          yield c.subarray(0, left);
          left = 0;
          return;
        }
        left -= c.length;
        yield c;
      }
    } finally {
      if (!res.body.destroyed) res.body.destroy();
    }
    if (left > 0) throw new Error(`upstream range body ended ${left} bytes short`);
  }
  return Readable.from(gen(), { objectMode: false, highWaterMark: 64 * 1024 });
}

/**
 * Sends one single-range request upstream (`range` is a Range header value with one member).
 * Throws {@link RangeUnsatisfiable} when the upstream says the range is unsatisfiable, and the upstream's
 * domain error for anything else but 200/206.
 */
export async function fetchUpstreamRange(upstream: Upstream, repository: string, d: Digest, range: string, signal: AbortSignal | undefined, onBytes: (n: number) => void): Promise<UpstreamRange> {
  const res = await upstream.request({ kind: 'range', method: 'GET', repository, path: `/v2/${repository}/blobs/${d.value}`, headers: { range }, ...(signal ? { signal } : {}) });
  if (res.status === 416) {
    const cr = res.headers['content-range'];
    const size = typeof cr === 'string' ? Number(/\/(\d+)$/.exec(cr)?.[1]) : NaN;
    res.body.destroy();
    throw new RangeUnsatisfiable(Number.isSafeInteger(size) ? size : undefined);
  }
  if (res.status !== 200 && res.status !== 206) throw await upstream.error(res, 'range');
  const specs = parseRangeSpecs(range);
  if (specs.kind !== 'specs' || specs.specs.length !== 1) {
    res.body.destroy();
    throw new Error(`fetchUpstreamRange needs one range, got ${range}`);
  }
  if (res.status === 206) {
    const cr = parseContentRange(typeof res.headers['content-range'] === 'string' ? res.headers['content-range'] : undefined);
    if (!cr) {
      res.body.destroy();
      throw new UpstreamUnavailable('the upstream answered 206 without a valid Content-Range', { upstream: upstream.namespace, reason: 'content-range' });
    }
    const size = cr.size;
    const wanted = size !== undefined ? resolveRanges(specs.specs, size) : undefined;
    const want = wanted?.kind === 'ranges' ? wanted.ranges[0]! : { start: cr.start, end: cr.end };
    if (want.start < cr.start || want.end > cr.end) {
      // The upstream sent less than asked: take what it sent (a valid range answer for a single request).
      return { range: { start: cr.start, end: cr.end }, size, body: slice(res, 0, cr.end - cr.start + 1, onBytes) };
    }
    return { range: want, size, body: slice(res, want.start - cr.start, want.end - want.start + 1, onBytes) };
  }
  const len = contentLength(res);
  if (len === undefined) {
    res.body.destroy();
    throw new UpstreamUnavailable('the upstream ignored Range and sent no Content-Length', { upstream: upstream.namespace, reason: 'content-length' });
  }
  const resolved = resolveRanges(specs.specs, len);
  if (resolved.kind !== 'ranges') {
    res.body.destroy();
    throw new RangeUnsatisfiable(len);
  }
  const r = resolved.ranges[0]!;
  return { range: r, size: len, body: slice(res, r.start, r.end - r.start + 1, onBytes) };
}
