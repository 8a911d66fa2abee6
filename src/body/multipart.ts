/**
 * `multipart/byteranges` bodies (RFC 9110 §14.6, RFC 2046 §5.1.1): planning (exact framing and
 * Content-Length up front) and streaming the parts with backpressure.
 *
 * @module
 */

import { randomBytes } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import { formatContentRange, rangeLength, type ByteRange } from '../range/parse.js';

/**
 * Everything needed to send a `multipart/byteranges` body: the response Content-Type and
 * Content-Length, and the framing around each part. Parts come in the order of `ranges`.
 */
export interface MultipartPlan {
  /** The boundary string (without the leading `--`). */
  readonly boundary: string;
  /** Response `Content-Type`: `multipart/byteranges; boundary=B`. */
  readonly contentType: string;
  /** The ranges, one part each, in response order. */
  readonly ranges: readonly ByteRange[];
  /** Complete length of the representation, as written in each part's Content-Range. */
  readonly size: number;
  /**
   * Bytes written before part `i`'s data: the delimiter and the part's header section
   * (`--B` for the first part, `CRLF--B` for the others, then `Content-Type`, `Content-Range`
   * and the empty line).
   */
  readonly partHeaders: readonly Buffer[];
  /** Bytes written after the last part: the close delimiter `CRLF--B--CRLF`. */
  readonly trailer: Buffer;
  /** Exact length of the whole multipart body in bytes (for the response Content-Length). */
  readonly contentLength: number;
}

/**
 * What a part provider returns for one part: a Buffer/Uint8Array with exactly the part's bytes,
 * or a byte stream (not object mode, no encoding) that yields exactly the part's bytes.
 */
export type PartSource = Readable | Uint8Array;

/**
 * Supplies the data of part `index` (whose range is `range`). Called lazily, in order, once per
 * part, only after the previous part has been written.
 */
export type PartProvider = (index: number, range: ByteRange) => PartSource | Promise<PartSource>;

/** Options for {@link writeMultipart}. */
export interface WriteMultipartOptions {
  /**
   * Call `out.end()` after the close delimiter and wait for `'finish'` (default `true`). With
   * `false`, resolves once the close delimiter has been accepted by `out`.
   */
  readonly end?: boolean;
}

const BOUNDARY_RE = /^[0-9A-Za-z'+_.-]{1,70}$/;
// field-value: no CTLs except HTAB (so no CR/LF header injection).
const FIELD_VALUE_RE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * Generates a random boundary: 32 hex characters (128 random bits). Hex is within RFC 2046's
 * `bchars` and is an HTTP token, so it needs no quoting; the chance that it occurs in blob data
 * is negligible.
 */
export function newBoundary(): string {
  return randomBytes(16).toString('hex');
}

/**
 * Computes the framing of a `multipart/byteranges` body: one part per range, in the given order
 * (no merging or reordering), each with `Content-Type: contentType` and
 * `Content-Range: bytes a-b/size`. The body is
 * `--B CRLF headers CRLF CRLF data (CRLF --B CRLF headers CRLF CRLF data)* CRLF --B-- CRLF`.
 *
 * A single range is accepted, but RFC 9110 §14.6 forbids a multipart answer to a request for a
 * single range: send a plain 206 then.
 *
 * @param ranges - resolved ranges within `[0, size)`, at least one.
 * @param size - complete length of the representation.
 * @param contentType - the representation's media type, used in every part.
 * @param boundary - from {@link newBoundary}; 1–70 chars of `[0-9A-Za-z'+_.-]`.
 * @throws RangeError on no ranges, a range outside the representation, or a bad boundary or
 *   content type.
 */
export function multipartPlan(
  ranges: readonly ByteRange[],
  size: number,
  contentType: string,
  boundary: string,
): MultipartPlan {
  if (ranges.length === 0) throw new RangeError('a multipart/byteranges body needs at least one part');
  if (!BOUNDARY_RE.test(boundary)) throw new RangeError('boundary must be 1-70 chars of [0-9A-Za-z\'+_.-]');
  if (!FIELD_VALUE_RE.test(contentType) || contentType.trim() === '') {
    throw new RangeError('content type must be a non-empty header field value');
  }
  const partHeaders: Buffer[] = [];
  let contentLength = 0;
  for (let i = 0; i < ranges.length; i++) {
    const r = ranges[i]!;
    const cr = formatContentRange(r, size); // validates r against size
    const head = Buffer.from(
      `${i === 0 ? '' : '\r\n'}--${boundary}\r\nContent-Type: ${contentType}\r\nContent-Range: ${cr}\r\n\r\n`,
      'latin1',
    );
    partHeaders.push(head);
    contentLength += head.length + rangeLength(r);
  }
  const trailer = Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1');
  contentLength += trailer.length;
  return {
    boundary,
    contentType: `multipart/byteranges; boundary=${boundary}`,
    ranges: ranges.slice(),
    size,
    partHeaders,
    trailer,
    contentLength,
  };
}

function isUint8Array(x: unknown): x is Uint8Array {
  return x instanceof Uint8Array;
}

function isThenable(x: PartSource | Promise<PartSource>): x is Promise<PartSource> {
  return !isUint8Array(x) && typeof (x as Partial<Promise<PartSource>>).then === 'function';
}

function noop(): void {}

/**
 * Streams a planned `multipart/byteranges` body into `out`: for each part in order, its framing
 * then its data from `getPart`, then the close delimiter; exactly `plan.contentLength` bytes.
 *
 * Honours backpressure (waits for `'drain'`), holds no more of a part than its source yields, and
 * corks `out` so that headers and small parts go out in batched writes. Rejects, without writing
 * further, if a part source errors, ends early, yields more or fewer bytes than its range, yields
 * non-binary chunks, if `getPart` throws/rejects, or if `out` errors, is destroyed or closes early.
 * A Readable part source is destroyed when the write fails. On rejection the body in `out` is
 * incomplete: the caller must destroy the response (so the client sees a truncated message).
 *
 * @param plan - from {@link multipartPlan}.
 * @param getPart - supplies each part's bytes; see {@link PartProvider}.
 * @param out - destination, e.g. an `http.ServerResponse` whose headers declare the plan.
 * @param opts - see {@link WriteMultipartOptions}.
 */
export async function writeMultipart(
  plan: MultipartPlan,
  getPart: PartProvider,
  out: Writable,
  opts?: WriteMultipartOptions,
): Promise<void> {
  const end = opts?.end ?? true;
  if (out.destroyed || out.writableEnded) throw new Error('multipart destination is already closed');

  let outError: Error | undefined;
  let waiter: (() => void) | undefined;
  const wake = (): void => {
    const w = waiter;
    waiter = undefined;
    w?.();
  };
  const wait = (): Promise<void> =>
    new Promise<void>((resolve) => {
      waiter = resolve;
    });
  const onOutError = (err: Error): void => {
    outError ??= err;
    wake();
  };
  const onOutClose = (): void => {
    if (!out.writableFinished) outError ??= new Error('multipart destination closed before the body was complete');
    wake();
  };
  const checkOut = (): void => {
    if (outError !== undefined) throw outError;
    if (out.destroyed) {
      outError = out.errored ?? new Error('multipart destination destroyed before the body was complete');
      throw outError;
    }
  };

  let corked = false;
  const cork = (): void => {
    if (!corked) {
      out.cork();
      corked = true;
    }
  };
  const flush = (): void => {
    if (corked) {
      corked = false;
      out.uncork();
    }
  };
  /** Writes `chunk`; false when `out` wants the caller to await {@link drained} first. */
  const put = (chunk: Uint8Array): boolean => {
    checkOut();
    return out.write(chunk);
  };
  /** Flushes corked data and waits until `out` no longer needs draining. */
  const drained = async (): Promise<void> => {
    flush();
    for (;;) {
      checkOut();
      if (!out.writableNeedDrain) return;
      await wait();
    }
  };

  out.on('drain', wake);
  out.on('error', onOutError);
  out.on('close', onOutClose);
  out.on('finish', wake);
  try {
    for (let i = 0; i < plan.ranges.length; i++) {
      const range = plan.ranges[i]!;
      const header = plan.partHeaders[i];
      if (header === undefined) throw new Error(`multipart plan has no header for part ${i}`);
      const expected = rangeLength(range);

      let src = getPart(i, range);
      if (isThenable(src)) {
        flush(); // don't hold written bytes back while the source is being prepared
        src = await src;
      }

      if (isUint8Array(src)) {
        if (src.byteLength !== expected) {
          throw new Error(`part ${i} (${range.start}-${range.end}) has ${src.byteLength} bytes, expected ${expected}`);
        }
        cork();
        if (!put(header)) await drained();
        if (!put(src)) await drained();
      } else {
        await pumpPart(src, i, range, header, expected);
      }
    }
    cork();
    if (!put(plan.trailer)) await drained();
    flush();
    if (end) {
      checkOut();
      out.end();
      while (!out.writableFinished) {
        checkOut();
        await wait();
      }
    }
  } finally {
    flush();
    out.off('drain', wake);
    out.off('error', onOutError);
    out.off('close', onOutClose);
    out.off('finish', wake);
  }

  async function pumpPart(
    src: Readable,
    i: number,
    range: ByteRange,
    header: Buffer,
    expected: number,
  ): Promise<void> {
    if (typeof (src as Partial<Readable> | null)?.read !== 'function') {
      throw new Error(`part ${i}: source is neither a Uint8Array nor a Readable`);
    }
    let srcError: Error | undefined;
    const onSrcError = (err: Error): void => {
      srcError ??= err;
      wake();
    };
    src.on('error', onSrcError);
    src.on('readable', wake);
    src.on('end', wake);
    src.on('close', wake);
    let got = 0;
    let ok = false;
    try {
      cork();
      if (!put(header)) await drained();
      for (;;) {
        checkOut();
        if (srcError !== undefined) throw srcError;
        const chunk: unknown = src.read();
        if (chunk !== null) {
          if (!isUint8Array(chunk)) throw new Error(`part ${i}: source yielded a non-binary chunk`);
          got += chunk.byteLength;
          if (got > expected) {
            throw new Error(`part ${i} (${range.start}-${range.end}): source yielded more than ${expected} bytes`);
          }
          if (chunk.byteLength > 0 && !put(chunk)) await drained();
          continue;
        }
        if (src.readableEnded) break;
        const err = src.errored;
        if (err) throw err;
        if (src.destroyed) throw new Error(`part ${i}: source closed before its end`);
        flush(); // nothing more to batch now: let what we have go out while we wait
        await wait();
      }
      if (got !== expected) {
        throw new Error(`part ${i} (${range.start}-${range.end}): source yielded ${got} bytes, expected ${expected}`);
      }
      ok = true;
    } finally {
      src.off('readable', wake);
      src.off('end', wake);
      src.off('close', wake);
      src.off('error', onSrcError);
      if (!ok) {
        src.on('error', noop); // a late error from the abandoned source must not crash the process
        src.destroy();
      }
    }
  }
}
