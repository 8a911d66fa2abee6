/**
 * The one place where domain failures become registry errors: the OCI distribution-spec code, the HTTP
 * status, the JSON body `{"errors":[{"code","message","detail"}]}` and extra headers (Retry-After,
 * Content-Range). Nothing below the HTTP edge knows a status code.
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

export const ERROR_TABLE = {
  BLOB_UNKNOWN: { status: 404, message: 'blob unknown to registry' },
  MANIFEST_UNKNOWN: { status: 404, message: 'manifest unknown' },
  NAME_UNKNOWN: { status: 404, message: 'repository name not known to registry' },
  NAME_INVALID: { status: 400, message: 'invalid repository name' },
  TAG_INVALID: { status: 400, message: 'manifest tag did not match URI' },
  DIGEST_INVALID: { status: 400, message: 'provided digest did not match uploaded content' },
  MANIFEST_INVALID: { status: 400, message: 'manifest invalid' },
  PAGINATION_NUMBER_INVALID: { status: 400, message: 'invalid number of results requested' },
  UNAUTHORIZED: { status: 401, message: 'authentication required' },
  DENIED: { status: 403, message: 'requested access to the resource is denied' },
  NOT_FOUND: { status: 404, message: 'not found' },
  UNSUPPORTED: { status: 405, message: 'the operation is unsupported' },
  RANGE_INVALID: { status: 416, message: 'invalid content range' },
  REQUEST_HEADER_INVALID: { status: 400, message: 'invalid request header' },
  TOOMANYREQUESTS: { status: 429, message: 'too many requests' },
  UNAVAILABLE: { status: 503, message: 'service unavailable' },
} as const satisfies Record<string, { status: number; message: string }>;

/** A registry error code from {@link ERROR_TABLE}. */
export type ErrorCode = keyof typeof ERROR_TABLE;

/** A registry error as it goes on the wire. */
export class RegistryError {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    readonly message: string,
    readonly detail: unknown,
    /** Extra response headers (Retry-After, Content-Range, …). */
    readonly headers: Record<string, string> = {},
  ) {
    this.status = ERROR_TABLE[code].status;
  }

  /** The JSON body of this error. */
  body(): string {
    const entry: { code: string; message: string; detail?: unknown } = { code: this.code, message: this.message };
    if (this.detail !== undefined) entry.detail = this.detail;
    return JSON.stringify({ errors: [entry] });
  }
}

const MISSING_CODE: Record<Missing, ErrorCode> = { blob: 'BLOB_UNKNOWN', manifest: 'MANIFEST_UNKNOWN', name: 'NAME_UNKNOWN', route: 'NOT_FOUND' };
const INPUT_CODE: Record<InputField, ErrorCode> = {
  name: 'NAME_INVALID',
  digest: 'DIGEST_INVALID',
  tag: 'TAG_INVALID',
  pagination: 'PAGINATION_NUMBER_INVALID',
  header: 'REQUEST_HEADER_INVALID',
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
      return new RegistryError('RANGE_INVALID', err.message, detail, size !== undefined ? { 'content-range': unsatisfiedContentRange(size) } : {});
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
