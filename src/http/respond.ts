/** Writing complete responses: registry errors and buffers, with the headers every answer carries. */
import { MirrorError } from '../oci/errors.js';
import { toRegistryError } from './registry-errors.js';
import type { RequestContext } from './context.js';

/** Headers of the success path that an error answer must not keep. */
const SUCCESS_HEADERS = ['content-range', 'accept-ranges', 'etag', 'docker-content-digest', 'content-encoding', 'vary', 'cache-control', 'warning'];

/** Sends the registry error for `err`; on a response already under way, aborts it (never a clean, short body). */
export function sendError(ctx: RequestContext, err: unknown): void {
  const { res } = ctx;
  const e = toRegistryError(err);
  ctx.failure = { code: e.code, kind: err instanceof MirrorError ? err.kind : 'internal', reason: err instanceof MirrorError ? err.reason : 'internal' };
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

/** Sends a complete body (or only its headers for HEAD). */
export function sendBuffer(ctx: RequestContext, status: number, body: Buffer, headers: Record<string, string | number> = {}): void {
  const { res } = ctx;
  res.statusCode = status;
  for (const k in headers) res.setHeader(k, headers[k]!);
  res.setHeader('content-length', body.length);
  if (ctx.head) {
    res.end();
    return;
  }
  ctx.bytes += body.length;
  res.end(body);
}
