/** Mapping what an upstream answered to the registry error the client gets. */
import { ERROR_TABLE, RegistryError, type ErrorCode } from '../registry/errors.js';

/** What an upstream request was for; used in metrics and to pick the 404 code. */
export type UpstreamKind = 'manifest' | 'tag-head' | 'blob' | 'blob-head' | 'range' | 'tags' | 'referrers' | 'token';

function notFoundCode(kind: UpstreamKind): ErrorCode {
  if (kind === 'manifest' || kind === 'tag-head') return 'MANIFEST_UNKNOWN';
  if (kind === 'blob' || kind === 'blob-head' || kind === 'range') return 'BLOB_UNKNOWN';
  return 'NAME_UNKNOWN';
}

/** Reads the first error code from a registry JSON error body, if it is one of ours. */
export function upstreamErrorCode(body: string): { code?: ErrorCode; message?: string } {
  try {
    const parsed = JSON.parse(body) as { errors?: Array<{ code?: unknown; message?: unknown }> };
    const first = parsed.errors?.[0];
    const code = typeof first?.code === 'string' && Object.hasOwn(ERROR_TABLE, first.code) ? (first.code as ErrorCode) : undefined;
    return { ...(code ? { code } : {}), ...(typeof first?.message === 'string' ? { message: first.message.slice(0, 500) } : {}) };
  } catch {
    return {};
  }
}

/**
 * The registry error for a non-success upstream answer.
 * @param body the upstream's error body (already read, possibly empty; HEAD answers have none).
 */
export function errorForUpstreamStatus(status: number, kind: UpstreamKind, namespace: string, body: string, retryAfter?: string): RegistryError {
  const up = upstreamErrorCode(body);
  const detail = { upstream: namespace, status, ...(up.code ? { code: up.code } : {}), ...(up.message ? { message: up.message } : {}) };
  if (status === 404) {
    const code = up.code && ERROR_TABLE[up.code].status === 404 ? up.code : notFoundCode(kind);
    return new RegistryError(code, detail);
  }
  if (status === 401 || status === 403) return new RegistryError('DENIED', detail, { message: 'the upstream registry denied access to this repository' });
  if (status === 429) {
    const headers: Record<string, string> = {};
    if (retryAfter && /^[\w ,:]{1,64}$/.test(retryAfter)) headers['retry-after'] = retryAfter;
    return new RegistryError('TOOMANYREQUESTS', detail, { message: 'the upstream registry is rate limiting the mirror', headers });
  }
  if (status === 400 && up.code && ERROR_TABLE[up.code].status === 400) return new RegistryError(up.code, detail);
  return new RegistryError('UNAVAILABLE', detail, { message: `the upstream registry answered ${status}` });
}

/** True for answers where a stale cached tag should be served instead (stale-if-error). */
export function isUpstreamOutage(err: unknown): boolean {
  return err instanceof RegistryError && (err.code === 'UNAVAILABLE' || err.code === 'TOOMANYREQUESTS');
}
