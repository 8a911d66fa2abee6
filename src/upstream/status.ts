/** What an upstream's non-success answer means, as a domain error. */
import {
  InvalidInput,
  NotFound,
  UpstreamDenied,
  UpstreamThrottled,
  UpstreamUnavailable,
  type InputField,
  type Missing,
  type MirrorError,
} from '../oci/errors.js';

/** What an upstream request was for; used in metrics and to pick what a 404 means. */
export type UpstreamKind = 'manifest' | 'tag-head' | 'blob' | 'blob-head' | 'range' | 'tags' | 'referrers' | 'token';

function missingFor(kind: UpstreamKind): Missing {
  if (kind === 'manifest' || kind === 'tag-head') return 'manifest';
  if (kind === 'blob' || kind === 'blob-head' || kind === 'range') return 'blob';
  return 'name';
}

/** Registry codes an upstream may send with a 404, and what they mean. */
const MISSING_CODES: Record<string, Missing> = { BLOB_UNKNOWN: 'blob', MANIFEST_UNKNOWN: 'manifest', NAME_UNKNOWN: 'name' };
/** Registry codes an upstream may send with a 400, and the input they blame. */
const INPUT_CODES: Record<string, InputField> = { NAME_INVALID: 'name', DIGEST_INVALID: 'digest', TAG_INVALID: 'tag', MANIFEST_INVALID: 'manifest', PAGINATION_NUMBER_INVALID: 'pagination' };
const KNOWN_CODES = new Set([...Object.keys(MISSING_CODES), ...Object.keys(INPUT_CODES), 'UNAUTHORIZED', 'DENIED', 'UNSUPPORTED', 'TOOMANYREQUESTS', 'UNAVAILABLE']);

/** Reads the first error code and message from a registry JSON error body. */
export function upstreamErrorCode(body: string): { code?: string; message?: string } {
  try {
    const parsed = JSON.parse(body) as { errors?: Array<{ code?: unknown; message?: unknown }> };
    const first = parsed.errors?.[0];
    const code = typeof first?.code === 'string' && KNOWN_CODES.has(first.code) ? first.code : undefined;
    return { ...(code ? { code } : {}), ...(typeof first?.message === 'string' ? { message: first.message.slice(0, 500) } : {}) };
  } catch {
    return {};
  }
}

/**
 * The domain error for a non-success upstream answer.
 * @param body the upstream's error body (already read, possibly empty; HEAD answers have none).
 */
export function errorForUpstreamStatus(status: number, kind: UpstreamKind, namespace: string, body: string, retryAfter?: string): MirrorError {
  const up = upstreamErrorCode(body);
  const detail = { upstream: namespace, status, ...(up.code ? { code: up.code } : {}), ...(up.message ? { message: up.message } : {}) };
  if (status === 404) {
    const what = (up.code !== undefined ? MISSING_CODES[up.code] : undefined) ?? missingFor(kind);
    return new NotFound(what, undefined, { detail, reason: 'upstream-404' });
  }
  if (status === 401 || status === 403) return new UpstreamDenied('the upstream registry denied access to this repository', { upstream: namespace, reason: `http-${status}`, detail });
  if (status === 429) {
    const ra = retryAfter && /^[\w ,:]{1,64}$/.test(retryAfter) ? retryAfter : undefined;
    return new UpstreamThrottled('the upstream registry is rate limiting the mirror', { upstream: namespace, reason: 'http-429', detail, ...(ra ? { retryAfter: ra } : {}) });
  }
  const field = status === 400 && up.code !== undefined ? INPUT_CODES[up.code] : undefined;
  if (field) return new InvalidInput(field, up.message ?? `the upstream registry refused the ${field}`, detail);
  return new UpstreamUnavailable(`the upstream registry answered ${status}`, { upstream: namespace, reason: `http-${status}`, detail });
}
