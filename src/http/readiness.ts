/**
 * `/healthz` is liveness (the process answers); `/readyz` is readiness: not draining, the data directory
 * writable with some room left. Redis trouble is reported as degraded, not unready: the mirror serves on
 * its local path without Redis. Results are cached briefly, so probes cost no I/O per request.
 */
import type { SpaceReport } from '../store/space.js';

/** What readiness is computed from. */
export interface ReadinessDeps {
  draining: () => boolean;
  space: () => Promise<SpaceReport>;
  /** True while Redis is configured and failing. */
  redisDegraded: () => boolean;
  /** Least free bytes on the data directory's filesystem for the mirror to call itself ready. */
  minFreeBytes: number;
}

/** A readiness answer: HTTP status and JSON body. */
export interface Readiness {
  ready: boolean;
  status: 'ok' | 'degraded' | 'draining' | 'disk';
  detail: Record<string, unknown>;
}

const CACHE_MS = 1000;

export class ReadinessCheck {
  private cached: { at: number; space: SpaceReport } | undefined;

  constructor(private readonly deps: ReadinessDeps) {}

  async check(): Promise<Readiness> {
    const { deps } = this;
    if (deps.draining()) return { ready: false, status: 'draining', detail: {} };
    const now = Date.now();
    if (!this.cached || now - this.cached.at > CACHE_MS) this.cached = { at: now, space: await deps.space() };
    const space = this.cached.space;
    if (!space.writable || space.freeBytes < deps.minFreeBytes) return { ready: false, status: 'disk', detail: { writable: space.writable, freeBytes: space.freeBytes } };
    const redis = deps.redisDegraded();
    return { ready: true, status: redis ? 'degraded' : 'ok', detail: { freeBytes: space.freeBytes, ...(redis ? { redis: 'unavailable' } : {}) } };
  }
}
