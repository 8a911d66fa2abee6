/** A source over a committed (verified) blob file, read with positional reads on one open handle. */
import type { FileHandle } from 'node:fs/promises';
import type { BodySource } from './source.js';

export class FileSource implements BodySource {
  readonly trust = 'verified' as const;
  private closed = false;

  /** @param onRelease called once the handle is closed (the blob is no longer being read) */
  constructor(private readonly handle: FileHandle, readonly size: number, private readonly onRelease?: () => void) {}

  async available(position: number): Promise<number> {
    return Math.max(0, this.size - position);
  }

  async read(buf: Buffer, length: number, position: number): Promise<number> {
    return (await this.handle.read(buf, 0, length, position)).bytesRead;
  }

  release(): void {
    if (this.closed) return;
    this.closed = true;
    void this.handle.close().catch(() => undefined).finally(() => this.onRelease?.());
  }
}
