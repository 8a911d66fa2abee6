/**
 * The one sender: a whole body (200), one range (206) or several (206 multipart/byteranges) from any
 * {@link BodySource}, with backpressure, byte counting and the rule that the last byte of an answer from
 * bytes still being verified waits for the verdict (a client never holds a complete answer of unverified
 * bytes; when verification fails, the response is aborted, never ended cleanly).
 *
 * Whole and single-range bodies go through positional reads into reused buffers from the global
 * {@link BufferBudget}, each write awaited before its buffer is reused (a body streamed alone gets a second
 * buffer, so its next chunk is read while the previous one is written): no per-chunk allocation, so large
 * blobs stream without garbage, and backpressure is the socket's own. A client that takes no bytes for the write-idle timeout is dropped.
 */
import type { ServerResponse } from 'node:http';
import { formatContentRange, rangeLength, type ByteRange } from '../range/parse.js';
import type { Selection } from '../range/select.js';
import { multipartPlan, newBoundary, writeMultipart, type PartSource } from './multipart.js';
import type { BufferBudget } from './buffer-budget.js';
import { SourceReadable } from './readable.js';
import type { BodySource } from './source.js';

/** Bytes a reader of a growing source waits for before it reads again. */
const BATCH = 256 * 1024;
/** Multipart parts up to this size are read into memory in one call rather than streamed. */
const SMALL_PART = 64 * 1024;
/**
 * A body gets a second (read-ahead) buffer only while fewer than this many bodies are being pumped, that
 * is, only a body streamed alone. The read-ahead lets a read run on another core while the previous chunk
 * is written; with two or more bodies streaming, the other bodies' writes fill that time already, and a
 * second 1 MiB per body cost both memory and speed: at 16 streams of a 64 MiB blob, on one core, 16 MiB
 * more RSS and 15–20 % less throughput than one buffer each (the working set falls out of the CPU caches;
 * README, "Memory").
 */
export const READ_AHEAD_BELOW = 1;

/** How to send one answer. */
export interface SendOptions {
  /** Headers every variant of the answer carries (digest, ETag, cache policy …). */
  headers: Record<string, string | number>;
  /** The blob's media type (also each multipart part's Content-Type). */
  contentType: string;
  /** HEAD: headers only. */
  head: boolean;
  /** Called with the size of each chunk of body bytes the socket took. */
  onBytes: (n: number) => void;
}

/** What the sender needs. */
export interface SenderDeps {
  budget: BufferBudget;
  /** A response that takes no bytes for this long is dropped (a client that stopped reading), ms. */
  writeIdleMs: number;
}

export class Sender {
  /** Whole and single-range bodies being pumped now. */
  private readonly pumping = { count: 0 };

  constructor(private readonly deps: SenderDeps) {}

  /** Whole and single-range bodies being pumped now. */
  get streaming(): number {
    return this.pumping.count;
  }

  /**
   * Sends `sel` of `src` as the response and releases the source. Resolves when the response is over: with
   * undefined when it completed, or the error that cut it (client gone, source failed, client stalled); the
   * response is then destroyed, so the client sees an aborted transfer, never a clean short body.
   */
  send(res: ServerResponse, src: BodySource, sel: Selection, opts: SendOptions): Promise<Error | undefined> {
    return sendBody(this.deps, this.pumping, res, src, sel, opts);
  }
}

async function sendBody(deps: SenderDeps, pumping: { count: number }, res: ServerResponse, src: BodySource, sel: Selection, opts: SendOptions): Promise<Error | undefined> {
  try {
    res.statusCode = sel.kind === 'whole' ? 200 : 206;
    for (const k in opts.headers) res.setHeader(k, opts.headers[k]!);
    const hold = src.trust === 'pending' && src.whenVerified ? () => src.whenVerified!() : undefined;
    if (sel.kind === 'multi') {
      const plan = multipartPlan(sel.ranges, src.size!, opts.contentType, newBoundary());
      res.setHeader('content-type', plan.contentType);
      res.setHeader('content-length', plan.contentLength);
      if (opts.head) return end(res);
      if (src.trust !== 'verified') res.flushHeaders();
      // Parts are written by the multipart framer: a socket with no progress for the write-idle time is dropped.
      res.setTimeout(deps.writeIdleMs, () => res.destroy(new Error('client took no bytes for the write-idle timeout')));
      const last = sel.ranges.length - 1;
      return await writeMultipart(plan, (i, r) => part(src, i, r, opts.onBytes, i === last ? hold : undefined), res).then(
        () => undefined,
        (err: Error) => fail(res, err),
      );
    }
    res.setHeader('content-type', opts.contentType);
    let start = 0;
    let last = src.size === undefined ? Infinity : src.size - 1;
    if (sel.kind === 'single') {
      start = sel.range.start;
      last = sel.range.end;
      res.setHeader('content-range', src.size !== undefined ? formatContentRange(sel.range, src.size) : `bytes ${start}-${last}/*`);
      res.setHeader('content-length', rangeLength(sel.range));
    } else if (src.size !== undefined) res.setHeader('content-length', src.size);
    if (opts.head) return end(res);
    const bytes = src.slice && src.trust === 'verified' && last !== Infinity ? src.slice(start, last) : undefined;
    if (bytes) {
      opts.onBytes(bytes.length);
      res.end(bytes);
      return undefined;
    }
    // Joiners of a fill and clients of a forwarded range get their headers at once, whatever has arrived yet.
    if (src.trust !== 'verified') res.flushHeaders();
    return await pump(deps, pumping, res, src, start, last, opts.onBytes, last === Infinity ? undefined : hold);
  } catch (err) {
    return fail(res, err as Error);
  } finally {
    src.release();
  }
}

function end(res: ServerResponse): undefined {
  res.end();
  return undefined;
}

function fail(res: ServerResponse, err: Error): Error {
  res.destroy(err);
  return err;
}

/** The data of one multipart part: small parts read into a buffer, large ones streamed. */
async function part(src: BodySource, i: number, r: ByteRange, onBytes: (n: number) => void, hold: (() => Promise<void>) | undefined): Promise<PartSource> {
  if (src.select) await src.select(i, r.start, r.end);
  const len = rangeLength(r);
  if (src.slice && src.trust === 'verified') {
    onBytes(len);
    return src.slice(r.start, r.end);
  }
  if (len > SMALL_PART) return new SourceReadable(src, r.start, r.end, onBytes, hold);
  const buf = Buffer.allocUnsafe(len);
  let got = 0;
  while (got < len) {
    const avail = await src.available(r.start + got, len - got);
    if (avail <= 0) throw new Error('source ended before the range did');
    const n = await src.read(buf.subarray(got), Math.min(avail, len - got), r.start + got);
    if (n <= 0) throw new Error('source shorter than it said');
    got += n;
  }
  if (hold) await hold();
  onBytes(len);
  return buf;
}

/**
 * Writes bytes [start, last] of `src` (`last` may be Infinity for a source of unknown size) and ends the
 * response. With `hold`, the final byte is written only once it resolves.
 */
async function pump(deps: SenderDeps, pumping: { count: number }, res: ServerResponse, src: BodySource, start: number, last: number, onBytes: (n: number) => void, hold: (() => Promise<void>) | undefined): Promise<Error | undefined> {
  const { budget, writeIdleMs } = deps;
  // The second buffer (read-ahead) only for a body streamed alone, and when the budget has room for it now.
  const first = await budget.take();
  const second = pumping.count < READ_AHEAD_BELOW ? budget.tryTake() : undefined;
  pumping.count++;
  const bufs = second ? [first, second] : [first];
  let which = 0;
  let closed = false;
  let wake: ((err: Error | undefined) => void) | undefined;
  const onClose = () => {
    closed = true;
    wake?.(new Error('client went away'));
  };
  res.on('close', onClose);
  // Resolves when the socket took the chunk (so its buffer may be reused), or when the client is gone.
  const write = (chunk: Uint8Array) => {
    let idle: NodeJS.Timeout | undefined;
    return new Promise<Error | undefined>((resolve) => {
      wake = resolve;
      idle = setTimeout(() => {
        const err = new Error('client took no bytes for the write-idle timeout');
        res.destroy(err);
        resolve(err);
      }, writeIdleMs);
      res.write(chunk, (err) => resolve(err ?? undefined));
    }).finally(() => {
      clearTimeout(idle);
      wake = undefined;
    });
  };
  const readAt = async (pos: number): Promise<Buffer | undefined> => {
    const avail = await src.available(pos, Math.min(BATCH, last - pos + 1));
    if (avail <= 0) return undefined;
    which = (which + 1) % bufs.length;
    const buf = bufs[which]!;
    const want = Math.min(buf.length, avail, last - pos + 1);
    const n = await src.read(buf, want, pos);
    if (n <= 0) throw new Error('source ended before its size');
    return n === buf.length ? buf : buf.subarray(0, n);
  };
  let pending: Promise<Buffer | undefined> | undefined;
  try {
    let pos = start;
    pending = pos <= last ? readAt(pos) : undefined;
    while (pending) {
      const chunk = await pending;
      if (!chunk) break;
      pos += chunk.length;
      // With two buffers the next read overlaps this write; with one it must wait for the write.
      pending = bufs.length > 1 && pos <= last && !closed ? readAt(pos) : undefined;
      if (closed) return new Error('client went away');
      let err: Error | undefined;
      if (hold && pos > last) {
        // The answer's last byte: everything before it goes now, the byte itself once the bytes are verified.
        if (chunk.length > 1) err = await write(chunk.subarray(0, chunk.length - 1));
        if (!err) {
          await hold();
          if (closed) return new Error('client went away');
          err = await write(chunk.subarray(chunk.length - 1));
        }
      } else err = await write(chunk);
      if (err) return err;
      onBytes(chunk.length);
      if (bufs.length === 1 && pos <= last && !closed) pending = readAt(pos);
    }
    if (last !== Infinity && pos <= last) throw new Error('source ended before its size');
    res.end();
    return undefined;
  } catch (err) {
    res.destroy(err as Error);
    return err as Error;
  } finally {
    res.off('close', onClose);
    // A read still in flight must land before its buffer goes back to the pool (and before the source is released).
    await pending?.catch(() => undefined);
    for (const b of bufs) budget.give(b);
    pumping.count--;
  }
}
