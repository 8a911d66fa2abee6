/** A raw HTTP client for tests: exact headers (repeated Accept lines, Range), HEAD Content-Length, aborts. */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { createHash } from 'node:crypto';

export interface HttpResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** True when the body ended cleanly (false: the connection was aborted mid-body). */
  complete: boolean;
}

/**
 * Sends a request and collects the answer. Headers given as arrays are sent as repeated lines.
 * Never rejects for an aborted body: `complete` tells.
 */
export function http(url: string, opts: { method?: string; headers?: Record<string, string | string[]> } = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let settled = false;
      const done = (complete: boolean) => {
        if (settled) return;
        settled = true;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), complete });
      };
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => done(res.complete));
      res.on('error', () => done(false));
      res.on('aborted', () => done(false));
      res.on('close', () => done(res.complete));
    });
    req.on('error', reject);
    req.end();
  });
}

/** GETs a URL and returns status, sha256 of the body and whether it completed, without keeping the body. */
export function httpDigest(url: string, headers: Record<string, string> = {}): Promise<{ status: number; digest: string; bytes: number; complete: boolean; firstByteAt: number; endAt: number }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers, agent: false }, (res) => {
      const h = createHash('sha256');
      let bytes = 0;
      let firstByteAt = 0;
      let settled = false;
      const done = (complete: boolean) => {
        if (settled) return;
        settled = true;
        resolve({ status: res.statusCode ?? 0, digest: `sha256:${h.digest('hex')}`, bytes, complete, firstByteAt, endAt: performance.now() });
      };
      res.on('data', (c: Buffer) => {
        if (!firstByteAt) firstByteAt = performance.now();
        bytes += c.length;
        h.update(c);
      });
      res.on('end', () => done(res.complete));
      res.on('error', () => done(false));
      res.on('close', () => done(res.complete));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The parsed registry error code of a response body. */
export function errorCode(r: HttpResult): string | undefined {
  try {
    return (JSON.parse(r.body.toString()) as { errors?: Array<{ code?: string }> }).errors?.[0]?.code;
  } catch {
    return undefined;
  }
}
