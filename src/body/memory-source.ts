/** A source over bytes in memory (a small hot blob read once from its verified file). */
import type { BodySource } from './source.js';

export class MemorySource implements BodySource {
  readonly trust = 'verified' as const;
  constructor(private readonly bytes: Buffer) {}

  get size(): number {
    return this.bytes.length;
  }

  async available(position: number): Promise<number> {
    return Math.max(0, this.bytes.length - position);
  }

  async read(buf: Buffer, length: number, position: number): Promise<number> {
    return this.bytes.copy(buf, 0, position, Math.min(this.bytes.length, position + length));
  }

  slice(start: number, end: number): Uint8Array {
    return this.bytes.subarray(start, Math.min(end, this.bytes.length - 1) + 1);
  }

  release(): void {}
}
