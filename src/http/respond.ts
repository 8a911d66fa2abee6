/** Writing complete responses: registry errors and buffers, with the headers every answer carries. */
import { MirrorError } from '../oci/errors.js';
import { toRegistryError } from './registry-errors.js';
import type { RequestContext } from './context.js';

/** Headers of the success path that an error answer must not keep. */
const SUCCESS_HEADERS = ['content-range', 'accept-ranges', 'etag', 'docker-content-digest', 'content-encoding', 'vary', 'cache-control', 'warning', 'age'];

/** Sends the registry error for `err`; on a response already under way, aborts it (never a clean, short body). */
export function sendError(ctx: RequestContext, err: unknown): void {
  const { res } = ctx;
  const e = toRegistryError(err);
  ctx.failure = { code: e.code, kind: err instanceof MirrorError ? err.kind : 'internal', reason: reasonOf(err) };
  if (!(err instanceof MirrorError)) ctx.log.error({ err }, 'unexpected error');
  if (res.headersSent) {
    res.destroy(err instanceof Error ? err : new Error(String(err)));
    return;
  }
  const body = e.body();
  res.statusCode = e.status;
  for (const name of SUCCESS_HEADERS) res.removeHeader(name);
  for (const [k, v] of Object.entries(e.headers)) res.setHeader(k, v);
  if (e.status === 401 && !res.hasHeader('www-authenticate')) res.setHeader('www-authenticate', 'Basic realm="regmirror"');
  // A bodiless answer (416, a path outside the API, a bad query) has no Content-Type to announce.
  if (body === undefined) res.removeHeader('content-type');
  else res.setHeader('content-type', 'application/json');
  if (ctx.head || body === undefined) {
    res.setHeader('content-length', '0');
    res.end();
  } else {
    const bytes = Buffer.from(body);
    res.setHeader('content-length', bytes.length);
    ctx.bytes += bytes.length;
    res.end(bytes);
  }
}

/** Detail fields worth a log line, in the order a person reads them. */
const REASON_FIELDS = ['upstream', 'status', 'code', 'error', 'reason', 'errno', 'message', 'registry', 'method'];

/** The failure's message with the detail that explains it (`… (upstream=docker.io, error=ECONNREFUSED)`). */
function reasonOf(err: unknown): string {
  if (!(err instanceof MirrorError)) return `internal error: ${err instanceof Error ? err.message : String(err)}`;
  const d: Record<string, unknown> = { ...err.detail, ...(err.kind === 'disk' ? { errno: err.reason } : {}) };
  const parts: string[] = [];
  const seen = new Set<string>();
  for (const k of REASON_FIELDS) {
    const v = d[k];
    if ((typeof v !== 'string' && typeof v !== 'number') || seen.has(String(v))) continue;
    seen.add(String(v));
    parts.push(`${k}=${String(v).slice(0, 200)}`);
  }
  return parts.length > 0 ? `${err.message} (${parts.join(', ')})` : err.message;
}

/** Sends a complete body (or only its headers for HEAD). */
export function sendBuffer(ctx: RequestContext, status: number, body: Buffer, headers: Record<string, string | number> = {}): void {
  // One writeHead with a flat list: the cheapest way Node writes a small answer.
  const flat: string[] = [];
  for (const k in headers) flat.push(k, String(headers[k]));
  flat.push('content-length', String(body.length));
  sendFlat(ctx, status, body, flat);
}

/**
 * Sends `body` (none for HEAD, or when undefined) with `headers` as a flat name/value list, which must
 * carry the Content-Length when there is a body. The list is not kept: callers may reuse it.
 */
export function sendFlat(ctx: RequestContext, status: number, body: Buffer | undefined, headers: readonly string[]): void {
  const { res } = ctx;
  res.writeHead(status, headers as string[]);
  if (body === undefined || ctx.head) {
    res.end();
    return;
  }
  ctx.bytes += body.length;
  res.end(body);
}
