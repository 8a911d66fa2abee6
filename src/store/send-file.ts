/**
 * Sending a byte range of a file — committed, or still growing under a fill — to a response, fast:
 * positional reads into two reused buffers (the next chunk is read while the previous one is written),
 * each write awaited before its buffer is reused. No per-chunk allocation, so large blobs stream without
 * garbage, and backpressure is the socket's own.
 */
import type { ServerResponse } from 'node:http';

/** Size of each of the two buffers. */
export const SEND_CHUNK = 1024 * 1024;
/** Bytes a reader of a growing source waits for before it reads again. */
const BATCH = 256 * 1024;
/** Buffers kept for reuse across responses (bounded so idle memory stays small). */
const POOL_MAX = 16;
const pool: Buffer[] = [];

function take(): Buffer {
  return pool.pop() ?? Buffer.allocUnsafeSlow(SEND_CHUNK);
}

function give(b: Buffer): void {
  if (pool.length < POOL_MAX) pool.push(b);
}

/** Where the bytes come from. */
export interface ByteSource {
  /** Reads up to `length` bytes at `position` into `buf`; resolves with the count. */
  read(buf: Buffer, length: number, position: number): Promise<number>;
  /**
   * Bytes readable from `position` now, waiting until there are at least `want` (a growing source) or
   * the source is complete; 0 at the end of a source of unknown size. Rejects when the source failed
   * (a fill that failed verification or lost its upstream).
   */
  available(position: number, want: number): Promise<number>;
}

/**
 * Writes bytes [start, end] of `src` to `res` and ends it (`end` may be Infinity for a source of unknown
 * size). Resolves when done. When the client leaves or the source fails, the response is destroyed (the
 * client sees an aborted transfer, never a clean short body) and the error is returned for logging.
 * @param onBytes called with each chunk's size once the socket took it
 */
export async function sendRange(src: ByteSource, start: number, end: number, res: ServerResponse, onBytes: (n: number) => void): Promise<Error | undefined> {
  const bufs = [take(), take()];
  let which = 0;
  let closed = false;
  let wake: ((err: Error | undefined) => void) | undefined;
  const onClose = () => {
    closed = true;
    wake?.(new Error('client went away'));
  };
  res.on('close', onClose);
  // Resolves when the socket took the chunk (so its buffer may be reused), or when the client is gone.
  const write = (chunk: Buffer) =>
    new Promise<Error | undefined>((resolve) => {
      wake = resolve;
      res.write(chunk, (err) => resolve(err ?? undefined));
    }).finally(() => {
      wake = undefined;
    });
  const readAt = async (pos: number): Promise<Buffer | undefined> => {
    const avail = await src.available(pos, Math.min(BATCH, end - pos + 1));
    if (avail <= 0) return undefined;
    which ^= 1;
    const buf = bufs[which]!;
    const want = Math.min(SEND_CHUNK, avail, end - pos + 1);
    const n = await src.read(buf, want, pos);
    if (n <= 0) throw new Error('source ended before its size');
    return n === buf.length ? buf : buf.subarray(0, n);
  };
  let pending: Promise<Buffer | undefined> | undefined;
  try {
    let pos = start;
    pending = pos <= end ? readAt(pos) : undefined;
    while (pending) {
      const chunk = await pending;
      if (!chunk) break;
      pos += chunk.length;
      pending = pos <= end && !closed ? readAt(pos) : undefined;
      if (closed) return new Error('client went away');
      const err = await write(chunk);
      if (err) return err;
      onBytes(chunk.length);
    }
    res.end();
    return undefined;
  } catch (err) {
    res.destroy(err as Error);
    return err as Error;
  } finally {
    res.off('close', onClose);
    // A read still in flight must land before its buffer goes back to the pool.
    await pending?.catch(() => undefined);
    give(bufs[0]!);
    give(bufs[1]!);
  }
}
