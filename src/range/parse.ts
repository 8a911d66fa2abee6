/**
 * Pure parsing and planning for HTTP range requests (RFC 9110 §14, §13.1.5, §15.3.7).
 *
 * Nothing here does I/O: the mirror's handlers use these functions to decide between 200, 206 and
 * 416, to build `Content-Range` values, to check upstream 206 answers, and to plan which single-range
 * upstream fetches cover a multi-range request.
 *
 * @module
 */

/** An inclusive byte range `[start, end]` resolved against a known representation size. */
export interface ByteRange {
  /** Offset of the first byte (0-based). */
  readonly start: number;
  /** Offset of the last byte, inclusive (`end >= start`). */
  readonly end: number;
}

/**
 * An unresolved `int-range` (`first-` or `first-last`) as it appears in a Range header.
 * `last` is `undefined` for the open form `first-`.
 */
export interface IntRangeSpec {
  /** `first-pos`. */
  readonly first: number;
  /** `last-pos`, inclusive; `undefined` when absent (`first-`). */
  readonly last: number | undefined;
}

/** An unresolved `suffix-range` (`-n`: the last `n` bytes) as it appears in a Range header. */
export interface SuffixRangeSpec {
  /** `suffix-length`: the number of final bytes asked for. */
  readonly suffix: number;
}

/** One unresolved member of a `bytes` range set; tell the forms apart with `'suffix' in spec`. */
export type RangeSpec = IntRangeSpec | SuffixRangeSpec;

/** Result of {@link parseRange}: what the server should answer. */
export type RangeResult =
  /** No Range header, or a range unit other than `bytes` (RFC 9110 §14.2: ignore it) → 200 whole. */
  | { readonly kind: 'none' }
  /**
   * Satisfiable ranges, resolved and in request order (never merged or reordered); one member → 206
   * with `Content-Range`, several → 206 `multipart/byteranges`. `dropped` counts unsatisfiable
   * members that were left out (a client counting parts may care).
   */
  | { readonly kind: 'ranges'; readonly ranges: ByteRange[]; readonly dropped: number }
  /** Valid syntax but no member overlaps the representation → 416 with `bytes *\/size`. */
  | { readonly kind: 'unsatisfiable' }
  /** Syntactically malformed `bytes` range set → 400, or ignore the header and answer 200. */
  | { readonly kind: 'invalid'; readonly reason: string }
  /** More members than `maxRanges` → the caller may answer 200 with the whole body. */
  | { readonly kind: 'too-many'; readonly count: number };

/** Result of {@link parseRangeSpecs}: a `bytes` range set before the size is known. */
export type RangeSpecsResult =
  /** No Range header, or a range unit other than `bytes`. */
  | { readonly kind: 'none' }
  /** The range set's members in request order (at least one). */
  | { readonly kind: 'specs'; readonly specs: RangeSpec[] }
  /** Syntactically malformed `bytes` range set. */
  | { readonly kind: 'invalid'; readonly reason: string }
  /** More members than `maxRanges`. */
  | { readonly kind: 'too-many'; readonly count: number };

/** Options for {@link parseRange} and {@link parseRangeSpecs}. */
export interface RangeParseOptions {
  /**
   * Most range-spec members accepted in one header; more gives `{kind: 'too-many'}`.
   * Defaults to {@link DEFAULT_MAX_RANGES}.
   */
  readonly maxRanges?: number;
}

/**
 * Default cap on members in one Range header. containers/image partial pulls send up to ~1024
 * ranges; this leaves headroom while bounding the work a single request can cause.
 */
export const DEFAULT_MAX_RANGES = 4096;

/** A parsed `Content-Range` value of an upstream 206 answer. */
export interface ContentRange {
  /** First byte offset. */
  readonly start: number;
  /** Last byte offset, inclusive. */
  readonly end: number;
  /** Complete length, or `undefined` when the sender wrote `*` (unknown). */
  readonly size: number | undefined;
}

/** A planned upstream fetch covering one or more requested ranges; see {@link coalesce}. */
export interface Segment {
  /** First byte offset to fetch. */
  readonly start: number;
  /** Last byte offset to fetch, inclusive. */
  readonly end: number;
  /**
   * Indices into the `ranges` array given to {@link coalesce} of the ranges that lie inside this
   * segment, ascending. Part `i` is the segment's bytes `[ranges[i].start - start, ranges[i].end - start]`.
   */
  readonly indices: number[];
}

/** Options for {@link coalesce}. */
export interface CoalesceOptions {
  /**
   * Largest gap (bytes not asked for) between two ranges that may still be fetched as one;
   * `Infinity` leaves only `maxWaste` as the limit.
   */
  readonly maxGap: number;
  /** Most gap bytes fetched in total over all segments; defaults to {@link DEFAULT_MAX_WASTE}. */
  readonly maxWaste?: number;
}

/** Default for {@link CoalesceOptions.maxWaste}: 64 KiB. */
export const DEFAULT_MAX_WASTE = 64 * 1024;

/** Empty list elements (`bytes=0-1,,2-3`) always tolerated; more than max(this, maxRanges) is invalid. */
const MIN_EMPTY_ELEMENTS = 64;
const OWS_EDGES = /^[ \t]+|[ \t]+$/g;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const INT_RANGE = /^([0-9]+)-([0-9]*)$/;
const SUFFIX_RANGE = /^-([0-9]+)$/;
const CONTENT_RANGE = /^bytes[ ]+([0-9]+)-([0-9]+)\/([0-9]+|\*)$/i;
// entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE ; etagc = %x21 / %x23-7E / obs-text
const STRONG_ETAG = /^"[\x21\x23-\x7e\x80-\xff]*"$/;

function trimOws(s: string): string {
  return s.replace(OWS_EDGES, '');
}

/** Decimal digits to a number, or undefined when beyond Number.MAX_SAFE_INTEGER. */
function toSafeInt(digits: string): number | undefined {
  let i = 0;
  while (i < digits.length - 1 && digits.charCodeAt(i) === 0x30) i++;
  const d = i === 0 ? digits : digits.slice(i);
  if (d.length > 16) return undefined; // MAX_SAFE_INTEGER has 16 digits
  const n = Number(d);
  return Number.isSafeInteger(n) ? n : undefined;
}

function checkSize(size: number): void {
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new RangeError(`representation size must be a non-negative safe integer, got ${size}`);
  }
}

function checkMax(max: number): void {
  if (!(max >= 1)) throw new RangeError(`maxRanges must be >= 1, got ${max}`);
}

/**
 * Parses a Range header value without knowing the representation size yet (e.g. to forward
 * ranges upstream for a blob that is not cached). Same syntax rules as {@link parseRange}:
 * `bytes=` (unit case-insensitive), members `a-b`, `a-`, `-n`, optional whitespace around commas,
 * a reasonable number of empty list elements ignored (RFC 9110 §5.6.1), numbers limited to
 * `Number.MAX_SAFE_INTEGER`, `a-b` with `b < a` invalid.
 *
 * @param header - the Range field value, or `undefined` when absent.
 * @param opts - see {@link RangeParseOptions}.
 * @returns the members in request order, or why they cannot be used.
 */
export function parseRangeSpecs(header: string | undefined, opts?: RangeParseOptions): RangeSpecsResult {
  const maxRanges = opts?.maxRanges ?? DEFAULT_MAX_RANGES;
  checkMax(maxRanges);
  if (header === undefined) return { kind: 'none' };
  const value = trimOws(header);
  if (value === '') return { kind: 'none' };
  const eq = value.indexOf('=');
  if (eq < 0) return { kind: 'invalid', reason: 'missing "=" after range unit' };
  const unit = value.slice(0, eq);
  if (!TOKEN.test(unit)) return { kind: 'invalid', reason: 'range unit is not a token' };
  // RFC 9110 §14.1: range unit names are case-insensitive; unknown units are ignored (§14.2).
  if (unit.toLowerCase() !== 'bytes') return { kind: 'none' };

  const specs: RangeSpec[] = [];
  const maxEmpty = Math.max(MIN_EMPTY_ELEMENTS, maxRanges);
  let empty = 0;
  for (const raw of value.slice(eq + 1).split(',')) {
    const el = trimOws(raw);
    if (el === '') {
      // "a recipient MUST parse and ignore a reasonable number of empty list elements"
      if (++empty > maxEmpty) return { kind: 'invalid', reason: 'too many empty list elements' };
      continue;
    }
    let m = INT_RANGE.exec(el);
    if (m !== null) {
      const first = toSafeInt(m[1]!);
      if (first === undefined) return { kind: 'invalid', reason: 'first-pos too large' };
      let last: number | undefined;
      if (m[2] !== '') {
        last = toSafeInt(m[2]!);
        if (last === undefined) return { kind: 'invalid', reason: 'last-pos too large' };
        if (last < first) return { kind: 'invalid', reason: `last-pos before first-pos in "${el}"` };
      }
      specs.push({ first, last });
      continue;
    }
    m = SUFFIX_RANGE.exec(el);
    if (m !== null) {
      const suffix = toSafeInt(m[1]!);
      if (suffix === undefined) return { kind: 'invalid', reason: 'suffix-length too large' };
      specs.push({ suffix });
      continue;
    }
    return { kind: 'invalid', reason: `malformed range-spec "${el.length > 40 ? el.slice(0, 40) + '…' : el}"` };
  }
  if (specs.length === 0) return { kind: 'invalid', reason: 'empty range set' };
  if (specs.length > maxRanges) return { kind: 'too-many', count: specs.length };
  return { kind: 'specs', specs };
}

/**
 * Resolves unresolved members against the representation size (RFC 9110 §14.1.1–14.1.2):
 * `a-b` / `a-` is satisfiable when `a < size` (end clamped to `size - 1`), `-n` when `n > 0` and
 * `size > 0` (the whole representation when `n >= size`). Unsatisfiable members are dropped; order
 * is kept and nothing is merged.
 *
 * @param specs - members as from {@link parseRangeSpecs}.
 * @param size - representation length in bytes (non-negative safe integer).
 * @returns `ranges` (with the count dropped) or `unsatisfiable` when none remain.
 * @throws RangeError if `size` is not a non-negative safe integer.
 */
export function resolveRanges(
  specs: readonly RangeSpec[],
  size: number,
): Extract<RangeResult, { kind: 'ranges' | 'unsatisfiable' }> {
  checkSize(size);
  const ranges: ByteRange[] = [];
  for (const s of specs) {
    if ('suffix' in s) {
      if (s.suffix === 0 || size === 0) continue;
      ranges.push({ start: s.suffix >= size ? 0 : size - s.suffix, end: size - 1 });
    } else {
      if (s.first >= size) continue;
      ranges.push({ start: s.first, end: s.last === undefined || s.last >= size ? size - 1 : s.last });
    }
  }
  if (ranges.length === 0) return { kind: 'unsatisfiable' };
  return { kind: 'ranges', ranges, dropped: specs.length - ranges.length };
}

/**
 * Parses a Range header value and resolves it against the representation size.
 *
 * - absent / empty / other range unit → `none` (serve 200 whole);
 * - malformed `bytes` set (`bytes=5-2`, `bytes=abc`, `bytes=`, numbers beyond
 *   `Number.MAX_SAFE_INTEGER`, ...) → `invalid`;
 * - more than `maxRanges` members → `too-many`;
 * - otherwise satisfiable members in request order → `ranges`, or `unsatisfiable` (416) when none
 *   is (always the case for `size === 0`).
 *
 * @param header - the Range field value, or `undefined` when absent.
 * @param size - representation length in bytes.
 * @param opts - see {@link RangeParseOptions}.
 * @throws RangeError if `size` is not a non-negative safe integer or `maxRanges < 1`.
 */
export function parseRange(header: string | undefined, size: number, opts?: RangeParseOptions): RangeResult {
  checkSize(size);
  const parsed = parseRangeSpecs(header, opts);
  if (parsed.kind !== 'specs') return parsed;
  return resolveRanges(parsed.specs, size);
}

/**
 * Formats a Range header value (`bytes=a-b,c-,-n`) e.g. for an upstream request.
 *
 * @param items - resolved ranges and/or unresolved members, in the order to send them.
 * @throws RangeError on an empty list or an invalid member.
 */
export function formatRangeHeader(items: readonly (ByteRange | RangeSpec)[]): string {
  if (items.length === 0) throw new RangeError('a range set needs at least one member');
  const parts: string[] = [];
  for (const it of items) {
    if ('start' in it) {
      checkRange(it);
      parts.push(`${it.start}-${it.end}`);
    } else if ('suffix' in it) {
      if (!Number.isSafeInteger(it.suffix) || it.suffix < 0) throw new RangeError('invalid suffix-length');
      parts.push(`-${it.suffix}`);
    } else {
      if (!Number.isSafeInteger(it.first) || it.first < 0) throw new RangeError('invalid first-pos');
      if (it.last === undefined) parts.push(`${it.first}-`);
      else {
        if (!Number.isSafeInteger(it.last) || it.last < it.first) throw new RangeError('invalid last-pos');
        parts.push(`${it.first}-${it.last}`);
      }
    }
  }
  return `bytes=${parts.join(',')}`;
}

function checkRange(r: ByteRange): void {
  if (!Number.isSafeInteger(r.start) || !Number.isSafeInteger(r.end) || r.start < 0 || r.end < r.start) {
    throw new RangeError(`invalid byte range ${r.start}-${r.end}`);
  }
}

/** Number of bytes in an inclusive range (`end - start + 1`). */
export function rangeLength(r: ByteRange): number {
  return r.end - r.start + 1;
}

/**
 * Formats a `Content-Range` value for a 206 answer or part: `bytes a-b/size`.
 *
 * @throws RangeError if the range does not lie within `[0, size)`.
 */
export function formatContentRange(r: ByteRange, size: number): string {
  checkSize(size);
  checkRange(r);
  if (r.end >= size) throw new RangeError(`range ${r.start}-${r.end} exceeds size ${size}`);
  return `bytes ${r.start}-${r.end}/${size}`;
}

/**
 * Formats the `Content-Range` value of a 416 answer: `bytes *\/size`.
 *
 * @throws RangeError if `size` is not a non-negative safe integer.
 */
export function unsatisfiedContentRange(size: number): string {
  checkSize(size);
  return `bytes */${size}`;
}

/**
 * Parses the `Content-Range` of an upstream 206 answer: `bytes a-b/size` or `bytes a-b/*`
 * (unit case-insensitive, surrounding whitespace ignored).
 *
 * @returns the range, or `undefined` when malformed, when `b < a`, when `b >= size`, when a number
 *   exceeds `Number.MAX_SAFE_INTEGER`, or for the 416 form `bytes *\/size`.
 */
export function parseContentRange(value: string | undefined): ContentRange | undefined {
  if (value === undefined) return undefined;
  const m = CONTENT_RANGE.exec(trimOws(value));
  if (m === null) return undefined;
  const start = toSafeInt(m[1]!);
  const end = toSafeInt(m[2]!);
  if (start === undefined || end === undefined || end < start) return undefined;
  let size: number | undefined;
  if (m[3] !== '*') {
    size = toSafeInt(m[3]!);
    if (size === undefined || end >= size) return undefined;
  }
  return { start, end, size };
}

/**
 * Evaluates `If-Range` (RFC 9110 §13.1.5): whether the Range header should be honoured.
 *
 * True when there is no `If-Range`, or when it is an entity-tag that strongly matches `etag`
 * (both strong, identical opaque tags). A weak tag never matches; an HTTP-date never matches here
 * (blobs carry strong `"sha256:…"` tags and no validated Last-Modified), nor does a malformed value:
 * in those cases the caller must ignore Range and answer 200 with the whole representation.
 *
 * @param ifRange - the If-Range field value, or `undefined` when absent.
 * @param etag - the representation's current ETag, quotes included (e.g. `"sha256:…"`).
 */
export function ifRangeMatches(ifRange: string | undefined, etag: string): boolean {
  if (ifRange === undefined) return true;
  const v = trimOws(ifRange);
  if (!STRONG_ETAG.test(v) || !STRONG_ETAG.test(etag)) return false;
  return v === etag;
}

/**
 * Plans upstream fetches for a multi-range request: sorts the ranges and merges those that
 * overlap, touch, or are separated by a gap of at most `maxGap` bytes, as long as the total gap
 * bytes fetched over all segments stays within `maxWaste` (merging greedily in offset order).
 * Segments come back sorted and disjoint (separated by at least one byte); every requested range
 * lies inside exactly one segment. Requested ranges are not changed: overlapping or duplicate
 * ranges each keep their own index, so the caller can still emit one part per requested range.
 *
 * @param ranges - resolved ranges in request order.
 * @param opts - see {@link CoalesceOptions}.
 * @throws RangeError on an invalid range or a negative/non-integer `maxGap`/`maxWaste`.
 */
export function coalesce(ranges: readonly ByteRange[], opts: CoalesceOptions): Segment[] {
  const maxGap = opts.maxGap;
  const maxWaste = opts.maxWaste ?? DEFAULT_MAX_WASTE;
  if (!(maxGap >= 0)) throw new RangeError(`invalid maxGap ${maxGap}`);
  if (!(maxWaste >= 0)) throw new RangeError(`invalid maxWaste ${maxWaste}`);
  for (const r of ranges) checkRange(r);

  const order = ranges.map((_, i) => i);
  order.sort((a, b) => ranges[a]!.start - ranges[b]!.start || ranges[a]!.end - ranges[b]!.end || a - b);

  const out: { start: number; end: number; indices: number[] }[] = [];
  let cur: { start: number; end: number; indices: number[] } | undefined;
  let waste = 0;
  for (const i of order) {
    const r = ranges[i]!;
    if (cur !== undefined) {
      if (r.start <= cur.end + 1) {
        cur.indices.push(i);
        if (r.end > cur.end) cur.end = r.end;
        continue;
      }
      const gap = r.start - cur.end - 1;
      if (gap <= maxGap && waste + gap <= maxWaste) {
        waste += gap;
        cur.indices.push(i);
        cur.end = r.end; // r.start > cur.end, so r.end > cur.end too
        continue;
      }
    }
    cur = { start: r.start, end: r.end, indices: [i] };
    out.push(cur);
  }
  for (const s of out) s.indices.sort((a, b) => a - b);
  return out;
}
