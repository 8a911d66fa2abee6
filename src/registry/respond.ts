/** Writing responses: registry errors, buffers and streams, with the headers every answer carries. */
import { pipeline, type Readable } from 'node:stream';
import type { ServerResponse } from 'node:http';
import { RegistryError } from './errors.js';
import type { RequestContext } from './context.js';

/** Sends a registry error; on a response already under way, aborts it (never a clean, short body). */
export function sendError(ctx: RequestContext, err: unknown): void {
  const { res } = ctx;
  if (res.headersSent) {
    res.destroy(err instanceof Error ? err : new Error(String(err)));
    return;
  }
  const e = err instanceof RegistryError ? err : new RegistryError('UNAVAILABLE', undefined, { message: 'internal error' });
  if (!(err instanceof RegistryError)) ctx.log.error({ err }, 'unexpected error');
  ctx.error = { code: e.code, reason: err instanceof RegistryError ? reasonOf(e) : `internal error: ${err instanceof Error ? err.message : String(err)}` };
  const body = e.body();
  res.statusCode = e.status;
  for (const name of ['content-range', 'accept-ranges', 'etag', 'docker-content-digest', 'content-encoding', 'vary']) res.removeHeader(name);
  for (const [k, v] of Object.entries(e.headers)) res.setHeader(k, v);
  if (e.status === 401 && !res.hasHeader('www-authenticate')) res.setHeader('www-authenticate', 'Basic realm="regmirror"');
  res.setHeader('content-type', 'application/json');
  if (ctx.head) {
    res.setHeader('content-length', '0');
    res.end();
  } else {
    const bytes = Buffer.byteLength(body);
    res.setHeader('content-length', bytes);
    ctx.bytes += bytes;
    res.end(body);
  }
}

/** Detail fields worth a log line, in the order a person reads them. */
const REASON_FIELDS = ['upstream', 'status', 'code', 'error', 'reason', 'message', 'registry', 'method'];

/** The error's message with the detail that explains it (`upstream=docker.io, error=ECONNREFUSED`). */
function reasonOf(e: RegistryError): string {
  const d = e.detail;
  if (!d || typeof d !== 'object') return e.message;
  const o = d as Record<string, unknown>;
  const parts: string[] = [];
  for (const k of REASON_FIELDS) {
    const v = o[k];
    if (typeof v === 'string' || typeof v === 'number') parts.push(`${k}=${String(v).slice(0, 200)}`);
  }
  return parts.length > 0 ? `${e.message} (${parts.join(', ')})` : e.message;
}

/** Sends a complete body (or only its headers for HEAD). */
export function sendBuffer(ctx: RequestContext, status: number, body: Buffer, headers: Record<string, string | number> = {}): void {
  const { res } = ctx;
  res.statusCode = status;
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  res.setHeader('content-length', body.length);
  if (ctx.head) {
    res.end();
    return;
  }
  ctx.bytes += body.length;
  res.end(body);
}

/**
 * Streams `body` to the response. An error on either side destroys both: the client sees an aborted
 * transfer, never a short body that ends cleanly. Resolves when the response is over either way.
 */
export function sendStream(ctx: RequestContext, body: Readable, onError?: (err: Error) => void): Promise<void> {
  return new Promise((resolve) => {
    pipeline(body, ctx.res as ServerResponse, (err) => {
      if (err && onError) onError(err);
      resolve();
    });
  });
}
