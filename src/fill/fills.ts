/**
 * The single-flight table of blob fills: one fill per digest at a time. A request for a digest with a
 * fill in flight joins it (and streams what has arrived); otherwise it starts one. Finished fills leave
 * the table — successes after their commit (so the store has the blob before the table forgets it),
 * failures at once (the next request starts afresh).
 */
import type { Digest } from '../oci/digest.js';
import { BlobFill, type FillDeps, type FillOrigin, type FillState } from './blob-fill.js';

/** One fill in flight as the status page shows it (a copy: reading it changes nothing). */
export interface FillSnapshot {
  digest: string;
  /** The upstream namespace it reads from. */
  namespace: string;
  state: FillState;
  /** Bytes written to the temp file so far. */
  written: number;
  /** Bytes the upstream announced, when known. */
  size: number | null;
  /** Requests reading it now. */
  readers: number;
  /** Requests that joined it after it started. */
  joiners: number;
  elapsedMs: number;
}

export class Fills {
  private readonly inflight = new Map<string, BlobFill>();

  constructor(private readonly deps: FillDeps) {}

  /** The fill of `digest` in flight, if any. */
  get(digest: Digest): BlobFill | undefined {
    const f = this.inflight.get(digest.value);
    return f?.joinable ? f : undefined;
  }

  /** Joins the fill of `digest` or starts one from `origin`, the upstream of `namespace`. */
  obtain(digest: Digest, origin: FillOrigin, namespace: string): { fill: BlobFill; joined: boolean } {
    const running = this.get(digest);
    if (running) {
      running.joiners++;
      this.deps.metrics.fillJoiners.inc();
      this.deps.metrics.coalesced.inc({ kind: 'blob' });
      return { fill: running, joined: true };
    }
    const fill = new BlobFill(digest, origin, namespace, this.deps);
    this.inflight.set(digest.value, fill);
    const forget = () => {
      if (this.inflight.get(digest.value) === fill) this.inflight.delete(digest.value);
      fill.retire();
    };
    fill.finished.then(forget, forget);
    return { fill, joined: false };
  }

  /**
   * Waits up to `ms` for the fills in flight to finish; cancels the rest (their temp files are removed).
   * Resolves once every fill has settled.
   */
  async settle(ms: number): Promise<void> {
    const all = [...this.inflight.values()];
    if (all.length === 0) return;
    const done = Promise.allSettled(all.map((f) => f.finished));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([done.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), ms)))]);
    clearTimeout(timer);
    if (timedOut) for (const f of all) f.cancel();
    await done;
  }

  /** The fills in flight now, oldest first. Read-only. */
  snapshot(): FillSnapshot[] {
    const now = performance.now();
    return [...this.inflight.values()].map((f) => ({
      digest: f.digest.value,
      namespace: f.namespace,
      state: f.state,
      written: f.written,
      size: f.size ?? null,
      readers: f.readerCount,
      joiners: f.joiners,
      elapsedMs: Math.round(now - f.startedAt),
    }));
  }

  /** Fills running now. */
  get size(): number {
    return this.inflight.size;
  }
}
