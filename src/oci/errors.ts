/**
 * The domain's failures, by kind. Stores, fills, services and upstream clients throw these; only the
 * HTTP edge (src/http/registry-errors.ts) turns a kind into a registry error code and a status. A kind
 * is also what logs and metrics label a failure with, so a full disk reads `disk`, never `upstream`.
 */

/** Every kind of failure the mirror knows. */
export type ErrorKind =
  /** The client's input does not follow the grammar (name, digest, reference, query, header). */
  | 'invalid-input'
  /** Nothing of that name or digest exists (here or upstream). */
  | 'not-found'
  /** A byte range that the blob cannot satisfy. */
  | 'range-unsatisfiable'
  /** A method or endpoint this pull-only mirror does not offer. */
  | 'unsupported'
  /** The upstream cannot be reached, timed out, failed (5xx) or sent something unusable. */
  | 'upstream-unavailable'
  /** The upstream throttles the mirror (429). */
  | 'upstream-throttled'
  /** The upstream refused the mirror's credentials for this repository (401/403). */
  | 'upstream-denied'
  /** Bytes did not match their digest, or their announced size. */
  | 'verify-failed'
  /** The data directory failed (ENOSPC, EIO, EACCES …). */
  | 'disk'
  /** A limit of the mirror's own (fill queue, connections, budget) was reached. */
  | 'limit-exceeded';

/** What does not exist: picks the registry code (BLOB_UNKNOWN, MANIFEST_UNKNOWN, NAME_UNKNOWN; `route`: a path outside the API). */
export type Missing = 'blob' | 'manifest' | 'name' | 'route';

/** What input was malformed: picks the registry code. */
export type InputField = 'name' | 'digest' | 'tag' | 'pagination' | 'header' | 'path' | 'manifest';

/** Base of every domain error. `detail` is safe to show a client (no secrets, bounded size). */
export abstract class MirrorError extends Error {
  abstract readonly kind: ErrorKind;
  /** A short reason a person can act on, used as a metric and log label (`timeout`, `ENOSPC`, `digest-mismatch`). */
  readonly reason: string;
  readonly detail: Record<string, unknown> | undefined;

  constructor(message: string, opts: { reason?: string; detail?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, { cause: opts.cause });
    this.name = new.target.name;
    this.reason = opts.reason ?? 'unknown';
    this.detail = opts.detail;
  }
}

export class InvalidInput extends MirrorError {
  readonly kind = 'invalid-input';
  constructor(readonly field: InputField, message: string, detail?: Record<string, unknown>) {
    super(message, { reason: field, ...(detail ? { detail } : {}) });
  }
}

export class NotFound extends MirrorError {
  readonly kind = 'not-found';
  /** The upstream's own registry code, when it named one of the not-found codes. */
  constructor(readonly what: Missing, message?: string, opts: { detail?: Record<string, unknown>; reason?: string } = {}) {
    super(message ?? `${what} unknown`, { reason: opts.reason ?? what, ...(opts.detail ? { detail: opts.detail } : {}) });
  }
}

export class RangeUnsatisfiable extends MirrorError {
  readonly kind = 'range-unsatisfiable';
  /** The blob's size, when known (for `Content-Range: bytes *\/size`). */
  constructor(readonly size: number | undefined) {
    super('requested range not satisfiable', { reason: 'range', ...(size !== undefined ? { detail: { size } } : {}) });
  }
}

export class Unsupported extends MirrorError {
  readonly kind = 'unsupported';
  constructor(message: string, detail?: Record<string, unknown>) {
    super(message, { reason: 'unsupported', ...(detail ? { detail } : {}) });
  }
}

/** Options shared by the upstream errors. */
export interface UpstreamErrorOptions {
  /** The upstream namespace (`docker.io`). */
  upstream: string;
  reason: string;
  detail?: Record<string, unknown>;
  cause?: unknown;
}

export class UpstreamUnavailable extends MirrorError {
  readonly kind = 'upstream-unavailable';
  readonly upstream: string;
  constructor(message: string, opts: UpstreamErrorOptions) {
    super(message, { reason: opts.reason, detail: { upstream: opts.upstream, reason: opts.reason, ...opts.detail }, cause: opts.cause });
    this.upstream = opts.upstream;
  }
}

export class UpstreamThrottled extends MirrorError {
  readonly kind = 'upstream-throttled';
  readonly upstream: string;
  /** The upstream's Retry-After, when it sent a usable one. */
  readonly retryAfter: string | undefined;
  constructor(message: string, opts: UpstreamErrorOptions & { retryAfter?: string }) {
    super(message, { reason: opts.reason, detail: { upstream: opts.upstream, ...opts.detail }, cause: opts.cause });
    this.upstream = opts.upstream;
    this.retryAfter = opts.retryAfter;
  }
}

export class UpstreamDenied extends MirrorError {
  readonly kind = 'upstream-denied';
  readonly upstream: string;
  constructor(message: string, opts: UpstreamErrorOptions) {
    super(message, { reason: opts.reason, detail: { upstream: opts.upstream, ...opts.detail }, cause: opts.cause });
    this.upstream = opts.upstream;
  }
}

/** Why fetched bytes were refused. */
export type VerifyReason = 'digest-mismatch' | 'short-body' | 'long-body' | 'oversize';

export class VerificationFailed extends MirrorError {
  readonly kind = 'verify-failed';
  constructor(readonly what: 'blob' | 'manifest', readonly verifyReason: VerifyReason, message: string, detail?: Record<string, unknown>) {
    super(message, { reason: verifyReason, ...(detail ? { detail } : {}) });
  }
}

export class DiskError extends MirrorError {
  readonly kind = 'disk';
  /** The errno code (`ENOSPC`, `EIO`, `EACCES`), or `unknown`. */
  readonly errno: string;
  constructor(message: string, cause: unknown) {
    const errno = (cause as NodeJS.ErrnoException | undefined)?.code ?? 'unknown';
    super(message, { reason: errno, cause });
    this.errno = errno;
  }
}

export class LimitExceeded extends MirrorError {
  readonly kind = 'limit-exceeded';
  constructor(readonly limit: string, message: string, readonly retryAfterSeconds?: number) {
    super(message, { reason: limit });
  }
}

/** True for upstream failures where a stale tag answer should be served instead (stale-if-error). */
export function isUpstreamOutage(err: unknown): err is UpstreamUnavailable | UpstreamThrottled {
  return err instanceof UpstreamUnavailable || err instanceof UpstreamThrottled;
}

/** The kind of any thrown value: domain errors carry theirs; anything else is a bug, labelled `internal`. */
export function kindOf(err: unknown): ErrorKind | 'internal' {
  return err instanceof MirrorError ? err.kind : 'internal';
}
