/** The last few failed requests, for the status page: a bounded ring, oldest overwritten first. */

/** One failed request. Only what is safe to show: no query string, no headers, no credentials. */
export interface RecentError {
  /** ISO time. */
  at: string;
  /** HTTP status sent (0 when the connection was cut before a status). */
  status: number;
  /** The registry error code (`BLOB_UNKNOWN`, `UNAVAILABLE` …), when there was one. */
  code: string | null;
  /** Why, as a metric reason label (`upstream`, `timeout`, `verify` …), when known. */
  reason: string | null;
  method: string;
  /** The path, without its query, at most 200 characters. */
  path: string;
}

/**
 * A reason as the page may show it: at most 300 characters, URLs without user info or query, no bearer or
 * basic credentials (reasons carry upstream messages, which the mirror does not control).
 */
export function scrubReason(reason: string): string {
  return reason
    .slice(0, 300)
    .replace(/(\b[a-z][a-z0-9+.-]*:\/\/)[^/\s@]*@/gi, '$1')
    .replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^\s?#]*)[?#][^\s,;)]*/gi, '$1')
    .replace(/\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+/gi, '$1 …');
}

/** A fixed-size ring of {@link RecentError}s. */
export class RecentErrors {
  private readonly ring: (RecentError | undefined)[];
  private next = 0;
  private total = 0;

  /** @param capacity most errors kept (default 50) */
  constructor(readonly capacity = 50) {
    this.ring = new Array<RecentError | undefined>(capacity);
  }

  /** Records a failed request; `url` may carry a query, which is dropped here. */
  add(e: { status: number; code?: string | undefined; reason?: string | undefined; method: string; url: string }, at = Date.now()): void {
    const q = e.url.indexOf('?');
    const path = (q < 0 ? e.url : e.url.slice(0, q)).slice(0, 200);
    this.ring[this.next] = { at: new Date(at).toISOString(), status: e.status, code: e.code ?? null, reason: e.reason === undefined ? null : scrubReason(e.reason), method: e.method.slice(0, 16), path };
    this.next = (this.next + 1) % this.capacity;
    this.total++;
  }

  /** Errors recorded since start (including those the ring no longer holds). */
  get count(): number {
    return this.total;
  }

  /** The errors held, newest first. */
  list(): RecentError[] {
    const out: RecentError[] = [];
    for (let i = 1; i <= this.capacity; i++) {
      const e = this.ring[(this.next - i + this.capacity) % this.capacity];
      if (e) out.push(e);
    }
    return out;
  }
}
