/**
 * Each upstream's health as the status page shows it: when it last answered well, its last error and
 * why, and the rate-limit headroom it announces (Docker Hub's `ratelimit-remaining: 76;w=21600`). Fed by
 * the upstream client's {@link UpstreamObserver} hook; holds a few fields per upstream, nothing secret.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { UpstreamObserver } from '../upstream/observer.js';
import type { UpstreamKind } from '../upstream/status.js';

/** The last error seen from an upstream. */
export interface UpstreamError {
  /** ISO time. */
  at: string;
  /** What failed: a status (`503`, `429 rate-limited`) or a transport code (`ECONNREFUSED`, `timeout`). */
  reason: string;
  /** The request kind that saw it (`manifest`, `blob`, `token` …). */
  kind: UpstreamKind;
}

/** Rate-limit headroom as the upstream announced it on its last answer that carried it. */
export interface RateLimit {
  limit: number | null;
  remaining: number;
  /** The window the numbers count over, seconds, when given (`;w=21600`). */
  windowSeconds: number | null;
  /** ISO time of the answer that carried it. */
  at: string;
}

/** What is known of one upstream. */
export interface UpstreamHealthEntry {
  /** ISO time of the last good answer (2xx, 3xx, or a 404 — a registry that says "no such thing" is up). */
  lastSuccessAt: string | null;
  lastError: UpstreamError | null;
  rateLimit: RateLimit | null;
  /** Answers and failures seen since start. */
  answers: number;
  failures: number;
  /** Epoch ms of the last success and the last error, for ordering. */
  lastSuccessMs: number;
  lastErrorMs: number;
}

/** `76;w=21600` or `76` → numbers. */
function parseRateHeader(v: string | string[] | undefined): { n: number; w: number | null } | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  if (s === undefined) return undefined;
  const m = /^\s*(\d+)\s*(?:;\s*w\s*=\s*(\d+))?/.exec(s);
  if (!m) return undefined;
  return { n: Number(m[1]), w: m[2] === undefined ? null : Number(m[2]) };
}

function errorReason(status: number): string | undefined {
  if (status === 429) return '429 rate-limited';
  if (status >= 500) return String(status);
  if (status === 403) return '403 denied';
  return undefined;
}

/** Records upstream health; one per mirror. */
export class UpstreamHealth implements UpstreamObserver {
  private readonly entries = new Map<string, UpstreamHealthEntry>();

  constructor(private readonly now: () => number = Date.now) {}

  private entry(namespace: string): UpstreamHealthEntry {
    let e = this.entries.get(namespace);
    if (!e) this.entries.set(namespace, (e = { lastSuccessAt: null, lastError: null, rateLimit: null, answers: 0, failures: 0, lastSuccessMs: 0, lastErrorMs: 0 }));
    return e;
  }

  answered(namespace: string, kind: UpstreamKind, status: number, headers: IncomingHttpHeaders): void {
    const e = this.entry(namespace);
    const t = this.now();
    e.answers++;
    const remaining = parseRateHeader(headers['ratelimit-remaining'] ?? headers['x-ratelimit-remaining']);
    if (remaining) {
      const limit = parseRateHeader(headers['ratelimit-limit'] ?? headers['x-ratelimit-limit']);
      e.rateLimit = { limit: limit?.n ?? null, remaining: remaining.n, windowSeconds: remaining.w ?? limit?.w ?? null, at: new Date(t).toISOString() };
    }
    const bad = errorReason(status);
    if (bad) {
      e.failures++;
      e.lastError = { at: new Date(t).toISOString(), reason: bad, kind };
      e.lastErrorMs = t;
    } else if (status !== 401) {
      // A 401 is the first half of every token handshake: neither good nor bad news.
      e.lastSuccessAt = new Date(t).toISOString();
      e.lastSuccessMs = t;
    }
  }

  failed(namespace: string, kind: UpstreamKind, err: unknown): void {
    const name = (err as { name?: unknown } | null)?.name;
    // A client that went away aborts its upstream request; that says nothing about the upstream.
    if (name === 'AbortError') return;
    const e = this.entry(namespace);
    const t = this.now();
    const code = (err as { code?: unknown } | null)?.code;
    const reason = name === 'TimeoutError' ? 'timeout' : typeof code === 'string' ? code : 'transport';
    e.failures++;
    e.lastError = { at: new Date(t).toISOString(), reason, kind };
    e.lastErrorMs = t;
  }

  /** A copy of what is known of `namespace` (an upstream never asked yet has an empty entry). */
  get(namespace: string): UpstreamHealthEntry {
    return { ...this.entry(namespace) };
  }
}
