/**
 * The registry error table: every error the mirror answers with, by OCI distribution-spec code.
 * Handlers throw {@link RegistryError}; the server turns it into
 * `{"errors":[{"code","message","detail"}]}` with the status below (no body on HEAD).
 */
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

/** An error that becomes a registry JSON error response. */
export class RegistryError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: unknown;
  /** Extra response headers (Retry-After, Content-Range, ...). */
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, detail?: unknown, opts: { message?: string; headers?: Record<string, string>; cause?: unknown } = {}) {
    super(opts.message ?? ERROR_TABLE[code].message, { cause: opts.cause });
    this.name = 'RegistryError';
    this.code = code;
    this.status = ERROR_TABLE[code].status;
    this.detail = detail;
    this.headers = opts.headers ?? {};
  }

  /** The JSON body of this error. */
  body(): string {
    const entry: { code: string; message: string; detail?: unknown } = { code: this.code, message: this.message };
    if (this.detail !== undefined) entry.detail = this.detail;
    return JSON.stringify({ errors: [entry] });
  }
}

/** True when `err` is a {@link RegistryError}. */
export function isRegistryError(err: unknown): err is RegistryError {
  return err instanceof RegistryError;
}
