/**
 * The one place where domain failures become registry errors: the OCI distribution-spec code, the HTTP
 * status, the JSON body `{"errors":[{"code","message","detail"}]}` and extra headers (Retry-After,
 * Content-Range). Nothing below the HTTP edge knows a status code.
 *
 * What the spec allows (distribution-spec v1.1, "Error Codes"): a 4XX answer MAY carry a body in any
 * format, and a JSON body's `code` MUST be one of the spec's table (code-1 … code-14). So:
 * - every 4XX with a JSON body uses a code of that table ({@link ERROR_TABLE});
 * - where none of those codes fits, the answer has a status and no body ({@link BODILESS}): an
 *   unsatisfiable range (416 with `Content-Range: bytes *\/size`, as RFC 9110 asks), a path outside the
 *   API (404, like distribution, whose router answers unknown routes with a plain 404) and a malformed
 *   query or header (400: the spec's "400 Bad Request MUST be returned" for an invalid request);
 * - an invalid tag in a manifest reference is a manifest that cannot exist: 404 MANIFEST_UNKNOWN (the
 *   conformance suite's `.INVALID_MANIFEST_NAME` check);
 * - 5XX bodies are outside the spec's 4XX rule: a 503 carries UNAVAILABLE, distribution's own code
 *   (`errcode.ErrorCodeUnavailable`); clients treat codes they do not know as UNKNOWN.
 */
import {
  MirrorError,
  InvalidInput,
  LimitExceeded,
  NotFound,
  RangeUnsatisfiable,
  UpstreamThrottled,
  type InputField,
  type Missing,
} from '../oci/errors.js';
import { unsatisfiedContentRange } from '../range/parse.js';

/** The registry error codes the mirror sends in a JSON body, with their statuses. */
export const ERROR_TABLE = {
  BLOB_UNKNOWN: { status: 404, message: 'blob unknown to registry' },
  MANIFEST_UNKNOWN: { status: 404, message: 'manifest unknown' },
  NAME_UNKNOWN: { status: 404, message: 'repository name not known to registry' },
  NAME_INVALID: { status: 400, message: 'invalid repository name' },
  DIGEST_INVALID: { status: 400, message: 'provided digest did not match uploaded content' },
  MANIFEST_INVALID: { status: 400, message: 'manifest invalid' },
  UNAUTHORIZED: { status: 401, message: 'authentication required' },
  DENIED: { status: 403, message: 'requested access to the resource is denied' },
  UNSUPPORTED: { status: 405, message: 'the operation is unsupported' },
  TOOMANYREQUESTS: { status: 429, message: 'too many requests' },
  /** Not in the spec's table, which governs 4XX bodies only; distribution's code for a 503. */
  UNAVAILABLE: { status: 503, message: 'service unavailable' },
} as const satisfies Record<string, { status: number; message: string }>;

/**
 * Answers with a status and no body, where no spec code fits. The key names the answer in the request
 * log (`code`), never on the wire.
 */
export const BODILESS = {
  RANGE_NOT_SATISFIABLE: { status: 416 },
  NOT_FOUND: { status: 404 },
  BAD_REQUEST: { status: 400 },
} as const satisfies Record<string, { status: number }>;

/** A registry error code from {@link ERROR_TABLE}. */
export type ErrorCode = keyof typeof ERROR_TABLE;
/** A bodiless answer from {@link BODILESS}. */
export type BodilessCode = keyof typeof BODILESS;

/** A registry error as it goes on the wire. */
export class RegistryError {
  readonly status: number;
  constructor(
    /** The spec code of the JSON body, or the log name of a bodiless answer. */
    readonly code: ErrorCode | BodilessCode,
    readonly message: string,
    readonly detail: unknown,
    /** Extra response headers (Retry-After, Content-Range, …). */
    readonly headers: Record<string, string> = {},
  ) {
    this.status = code in ERROR_TABLE ? ERROR_TABLE[code as ErrorCode].status : BODILESS[code as BodilessCode].status;
  }

  /** True when the answer carries a JSON error body (on GET; HEAD answers never have a body). */
  get hasBody(): boolean {
    return this.code in ERROR_TABLE;
  }

  /** The JSON body of this error; undefined for a bodiless answer. */
  body(): string | undefined {
    if (!this.hasBody) return undefined;
    const entry: { code: string; message: string; detail?: unknown } = { code: this.code, message: this.message };
    if (this.detail !== undefined) entry.detail = this.detail;
    return JSON.stringify({ errors: [entry] });
  }
}

/** What does not exist → the answer. */
const MISSING_CODE: Record<Missing, ErrorCode | BodilessCode> = {
  blob: 'BLOB_UNKNOWN',
  manifest: 'MANIFEST_UNKNOWN',
  name: 'NAME_UNKNOWN',
  route: 'NOT_FOUND',
};
/** What input was malformed → the answer. */
const INPUT_CODE: Record<InputField, ErrorCode | BodilessCode> = {
  name: 'NAME_INVALID',
  digest: 'DIGEST_INVALID',
  // A reference that fails the tag grammar names no manifest that could exist.
  tag: 'MANIFEST_UNKNOWN',
  pagination: 'BAD_REQUEST',
  header: 'BAD_REQUEST',
  path: 'NOT_FOUND',
  manifest: 'MANIFEST_INVALID',
};

/** Maps any thrown value to the registry error the client gets. Anything not a domain error is internal (503). */
export function toRegistryError(err: unknown): RegistryError {
  if (!(err instanceof MirrorError)) return new RegistryError('UNAVAILABLE', 'internal error', undefined);
  const detail = err.detail;
  switch (err.kind) {
    case 'invalid-input':
      return new RegistryError(INPUT_CODE[(err as InvalidInput).field], err.message, detail);
    case 'not-found':
      return new RegistryError(MISSING_CODE[(err as NotFound).what], err.message, detail);
    case 'range-unsatisfiable': {
      const size = (err as RangeUnsatisfiable).size;
      return new RegistryError('RANGE_NOT_SATISFIABLE', err.message, detail, size !== undefined ? { 'content-range': unsatisfiedContentRange(size) } : {});
    }
    case 'unsupported':
      return new RegistryError('UNSUPPORTED', err.message, detail);
    case 'upstream-denied':
      return new RegistryError('DENIED', err.message, detail);
    case 'upstream-throttled': {
      const ra = (err as UpstreamThrottled).retryAfter;
      return new RegistryError('TOOMANYREQUESTS', err.message, detail, ra ? { 'retry-after': ra } : {});
    }
    case 'limit-exceeded': {
      const ra = (err as LimitExceeded).retryAfterSeconds;
      return new RegistryError('UNAVAILABLE', err.message, { reason: err.reason }, ra !== undefined ? { 'retry-after': String(ra) } : {});
    }
    case 'upstream-unavailable':
    case 'verify-failed':
      return new RegistryError('UNAVAILABLE', err.message, detail);
    case 'disk':
      // The errno is for the log and the metric; the client needs only to know to retry.
      return new RegistryError('UNAVAILABLE', 'the mirror could not use its cache', { reason: 'disk' });
  }
}
