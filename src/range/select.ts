/** Deciding how to answer a blob request with a Range header, once the blob's size is known. */
import { RangeUnsatisfiable } from '../oci/errors.js';
import { ifRangeMatches, parseRange, rangeLength, type ByteRange } from './parse.js';

/** The answer's shape: the whole body (200), one range (206), or several (206 multipart). */
export type Selection = { kind: 'whole' } | { kind: 'single'; range: ByteRange } | { kind: 'multi'; ranges: ByteRange[] };

/** Limits on what one Range header may ask for. */
export interface RangePolicy {
  /** Most members; beyond that the whole body is answered. */
  maxRanges: number;
  /**
   * Most bytes the parts may add up to, as a multiple of the blob's size; beyond that (overlapping or
   * duplicate ranges) the whole body is answered instead, so one request never costs more than about
   * `maxAmplification` blobs — to send, or to fetch upstream.
   */
  maxAmplification: number;
}

/**
 * Chooses the answer for `Range`/`If-Range` against a blob of `size` bytes with strong ETag `etag`.
 * A malformed header is ignored (RFC 9110 allows it) and so is one with more than `maxRanges`
 * members or whose parts add up to more than the policy allows: all get the whole body. Parts are kept
 * one per requested range, in request order (containers/image expects exactly that). An unsatisfiable
 * header throws {@link RangeUnsatisfiable}.
 */
export function selectRanges(range: string | undefined, ifRange: string | undefined, etag: string, size: number, policy: RangePolicy): Selection {
  if (range === undefined) return { kind: 'whole' };
  if (!ifRangeMatches(ifRange, etag)) return { kind: 'whole' };
  const r = parseRange(range, size, { maxRanges: policy.maxRanges });
  switch (r.kind) {
    case 'none':
    case 'invalid':
    case 'too-many':
      return { kind: 'whole' };
    case 'unsatisfiable':
      throw new RangeUnsatisfiable(size);
    case 'ranges': {
      if (r.ranges.length === 1) return { kind: 'single', range: r.ranges[0]! };
      let total = 0;
      for (const x of r.ranges) total += rangeLength(x);
      if (total > size * policy.maxAmplification) return { kind: 'whole' };
      return { kind: 'multi', ranges: r.ranges };
    }
  }
}

/** True when the header asks for the whole blob in one range from 0 (`bytes=0-`): served like a full request. */
export function isWholeFromZero(range: string): boolean {
  return /^\s*bytes\s*=\s*0+-\s*$/i.test(range);
}
