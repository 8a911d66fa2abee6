/**
 * Sending a byte range of an open file to a response, fast: positional reads into two reused buffers
 * (one being read while the other is written), each write awaited before its buffer is reused. No
 * per-chunk allocation, so large warm blobs stream without garbage, and backpressure is the socket's.
 */
import type { FileHandle } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';

/** Size of each of the two buffers. */
export const SEND_CHUNK = 1024 * 1024;
/** Buffers kept for reuse across responses (bounded so idle memory stays small). */
const POOL_MAX = 32;
const pool: Buffer[] = [];

function take(): Buffer {
  return pool.pop() ?? Buffer.allocUnsafeSlow(SEND_CHUNK);
}

function give(b: Buffer): void {
  if (pool.length < POOL_MAX) pool.push(b);
}

/**
 * Writes bytes [start, end] of `handle` to `res` and ends it. Resolves when done; on a client that
 * leaves or a read error, destroys the response and resolves (the error is returned for logging).
 * @param onBytes called with each chunk's size once the chunk was handed to the socket
 */
export async function sendFileRange(handle: FileHandle, start: number, end: number, res: ServerResponse, onBytes: (n: number) => void): Promise<Error | undefined> {
  const bufs = [take(), take()] as const;
  let closed = false;
  let wake: ((err: Error | undefined) => void) | undefined;
  const onClose = () => {
    closed = true;
    wake?.(new Error('client went away'));
  };
  res.on('close', onClose);
  // Resolves when the socket took the chunk (its buffer may be reused), or when the client is gone.
  const write = (chunk: Buffer) =>
    new Promise<Error | undefined>((resolve) => {
      wake = resolve;
      res.write(chunk, (err) => resolve(err ?? undefined));
    }).finally(() => {
      wake = undefined;
    });
  try {
    let pos = start;
    let which = 0;
    let pending = pos <= end ? handle.read(bufs[0], 0, Math.min(SEND_CHUNK, end - pos + 1), pos) : undefined;
    while (pending) {
      const { bytesRead } = await pending;
      if (bytesRead <= 0) throw new Error('file ended before its size');
      const cur = bufs[which]!;
      pos += bytesRead;
      which ^= 1;
      pending = pos <= end && !closed ? handle.read(bufs[which]!, 0, Math.min(SEND_CHUNK, end - pos + 1), pos) : undefined;
      if (closed) {
        await pending?.catch(() => undefined);
        return new Error('client went away');
      }
      const err = await write(bytesRead === cur.length ? cur : cur.subarray(0, bytesRead));
      if (err) {
        await pending?.catch(() => undefined);
        return err;
      }
      onBytes(bytesRead);
    }
    res.end();
    return undefined;
  } catch (err) {
    res.destroy(err as Error);
    return err as Error;
  } finally {
    res.off('close', onClose);
    give(bufs[0]);
    give(bufs[1]);
  }
}
