/**
 * The single-flight table of blob fills: one fill per digest (per scope: with `isolateNamespaces` each
 * namespace fills its own copy, see store/layout.ts) at a time. A request for a digest with a
 * fill in flight joins it (and streams what has arrived); otherwise it starts one. Finished fills leave
 * the table — successes after their commit (so the store has the blob before the table forgets it),
 * failures at once (the next request starts afresh).
 */
import type { Digest } from '../oci/digest.js';
import { scopedKey, type Scope } from '../store/layout.js';
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

  /** True while a fill of `digest` (`alg:hex`) into `scope` runs. */
  has(digest: string, scope?: Scope): boolean {
    return this.inflight.has(scopedKey(digest, scope));
  }

  private key(digest: Digest, namespace: string | undefined): string {
    return scopedKey(digest.value, this.deps.store.layout.scopeOf(namespace));
  }

  /** The fill of `digest` in flight for a request of `namespace` (any namespace's unless isolated), if any. */
  get(digest: Digest, namespace?: string): BlobFill | undefined {
    const f = this.inflight.get(this.key(digest, namespace));
    return f?.joinable ? f : undefined;
  }

  /** Joins the fill of `digest` or starts one from `origin`, the upstream of `namespace`. */
  obtain(digest: Digest, origin: FillOrigin, namespace: string): { fill: BlobFill; joined: boolean } {
    const running = this.get(digest, namespace);
    if (running) {
      running.joiners++;
      this.deps.metrics.fillJoiners.inc();
      this.deps.metrics.coalesced.inc({ kind: 'blob' });
      return { fill: running, joined: true };
    }
    const fill = new BlobFill(digest, origin, namespace, this.deps);
    const key = this.key(digest, namespace);
    this.inflight.set(key, fill);
    const forget = () => {
      if (this.inflight.get(key) === fill) this.inflight.delete(key);
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
