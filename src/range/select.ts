/** Deciding how to answer a blob request with a Range header, once the blob's size is known. */
import { RangeUnsatisfiable } from '../oci/errors.js';
import { ifRangeMatches, parseRange, type ByteRange } from './parse.js';

/** The answer's shape: the whole body (200), one range (206), or several (206 multipart). */
export type Selection = { kind: 'whole' } | { kind: 'single'; range: ByteRange } | { kind: 'multi'; ranges: ByteRange[] };

/**
 * Chooses the answer for `Range`/`If-Range` against a blob of `size` bytes with strong ETag `etag`.
 * A malformed header is ignored (RFC 9110 allows it) and so is one with more than `maxRanges`
 * members: both get the whole body. An unsatisfiable one throws {@link RangeUnsatisfiable}.
 */
export function selectRanges(range: string | undefined, ifRange: string | undefined, etag: string, size: number, maxRanges: number): Selection {
  if (range === undefined) return { kind: 'whole' };
  if (!ifRangeMatches(ifRange, etag)) return { kind: 'whole' };
  const r = parseRange(range, size, { maxRanges });
  switch (r.kind) {
    case 'none':
    case 'invalid':
    case 'too-many':
      return { kind: 'whole' };
    case 'unsatisfiable':
      throw new RangeUnsatisfiable(size);
    case 'ranges':
      return r.ranges.length === 1 ? { kind: 'single', range: r.ranges[0]! } : { kind: 'multi', ranges: r.ranges };
  }
}

/** True when the header asks for the whole blob in one range from 0 (`bytes=0-`): served like a full request. */
export function isWholeFromZero(range: string): boolean {
  return /^\s*bytes\s*=\s*0+-\s*$/i.test(range);
}
