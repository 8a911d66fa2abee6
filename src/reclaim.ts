/**
 * Gives the memory of upstream chunks back sooner, by asking V8 for a scavenge every so many bytes filled.
 *
 * Every chunk a fill receives is a fresh Buffer (64 KiB from a socket read) whose memory lives outside the
 * V8 heap and is freed only when a scavenge finds its small JS wrapper dead. A fill allocates almost no JS
 * besides those wrappers, so no scavenge comes until V8's external-memory limit (64 MiB) forces one: one
 * 64 MiB fill lifted RSS by ~60 MiB of dead chunks, and glibc kept most of that resident afterwards.
 * A minor GC per {@link RECLAIM_EVERY} bytes bounds the dead chunks to about that much; it costs one
 * scavenge (well under a millisecond with the capped young generation, src/cli/young-generation.ts) per
 * 8 MiB, ~1 % of a core at 1 GB/s of fills.
 *
 * The GC function comes from V8's `--expose-gc`, set at run time and read from a fresh context (the flag
 * applies to contexts created after it); when that is unavailable the reclaimer does nothing.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Bytes filled between two scavenges. */
export const RECLAIM_EVERY = 8 * 1024 * 1024;

type GcFunction = (options?: { type?: 'minor' | 'major'; execution?: 'sync' | 'async' }) => void;

let gcFunction: GcFunction | null | undefined;

function gc(): GcFunction | null {
  if (gcFunction !== undefined) return gcFunction;
  try {
    const existing = (globalThis as { gc?: unknown }).gc;
    if (typeof existing === 'function') gcFunction = existing as GcFunction;
    else {
      setFlagsFromString('--expose-gc');
      const fn: unknown = runInNewContext('gc');
      gcFunction = typeof fn === 'function' ? (fn as GcFunction) : null;
    }
  } catch {
    gcFunction = null;
  }
  return gcFunction;
}

/** Counts bytes filled and runs a scavenge every `every` of them. */
export class Reclaimer {
  private since = 0;
  private readonly fn: GcFunction | null;

  /** @param every bytes between scavenges; 0 turns reclaiming off */
  constructor(private readonly every = RECLAIM_EVERY) {
    this.fn = every > 0 ? gc() : null;
  }

  /** Whether scavenges are being run (the GC function was obtained). */
  get active(): boolean {
    return this.fn !== null;
  }

  /** Told of every chunk a fill received. */
  received(bytes: number): void {
    if (this.fn === null) return;
    this.since += bytes;
    if (this.since < this.every) return;
    this.since = 0;
    this.fn({ type: 'minor' });
  }
}
