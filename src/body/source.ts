/**
 * Where the bytes of an answer come from. Every source — a buffer in memory, a committed file, a fill in
 * flight, an upstream range, later a peer mirror — is read the same way, at an offset, by the one sender
 * (sender.ts), which owns backpressure, byte counting and holding unverified bytes back.
 */

/** How far the bytes of a source can be trusted. */
export type Trust =
  /** Verified against their digest (a committed file, or memory read from one). */
  | 'verified'
  /** Being verified: the answer's last byte waits for {@link BodySource.whenVerified}. */
  | 'pending'
  /** Cannot be verified without the whole blob (a range forwarded from the upstream). */
  | 'unverifiable';

export interface BodySource {
  /** Total size of the blob, when known. */
  readonly size: number | undefined;
  readonly trust: Trust;
  /**
   * Bytes readable from `position` now, waiting until there are at least `want` (a growing source) or the
   * source is complete; 0 at the end of a source of unknown size. Rejects when the source failed (a fill
   * that failed verification or lost its upstream).
   */
  available(position: number, want: number): Promise<number>;
  /** Reads up to `length` bytes at `position` into `buf`; resolves with the count. */
  read(buf: Buffer, length: number, position: number): Promise<number>;
  /** For `pending` sources: resolves once the bytes are verified, rejects if they are not. */
  whenVerified?(): Promise<void>;
  /**
   * Sources that are read in sequence (an upstream stream) are told, in answer order, which range the
   * sender starts on next (a multipart answer may repeat or reorder ranges).
   */
  select?(index: number, start: number, end: number): Promise<void>;
  /** Bytes [start, end] without copying, when the source holds them in memory. */
  slice?(start: number, end: number): Uint8Array;
  /** Releases what the source holds (file handle, fill reader slot, upstream connection). Idempotent. */
  release(): void;
}
