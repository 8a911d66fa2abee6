/**
 * A Docker Hub stand-in in front of a real registry: a streaming relay that adds Hub's rate-limit
 * headers (`ratelimit-limit: 100;w=21600`, `ratelimit-remaining: N;w=21600`) to every answer and,
 * as Hub does, spends one pull per manifest GET (HEAD is free).
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { listenLoopback, registerCleanup } from './proc.js';

/** Options for {@link startHubRateLimit}. */
export interface HubRateLimitOptions {
  /** The registry behind it, `http://127.0.0.1:PORT`. */
  target: string;
  /** Pulls per window (default 100). */
  limit?: number;
  /** Pulls left at the start (default `limit`). */
  remaining?: number;
}

/** A running stand-in. */
export interface HubRateLimit {
  readonly url: string;
  /** Pulls left now (what the last answer said, after a manifest GET spent one). */
  remaining(): number;
  readonly limit: number;
  close(): Promise<void>;
}

const WINDOW = 21600;

export async function startHubRateLimit(opts: HubRateLimitOptions): Promise<HubRateLimit> {
  const target = new URL(opts.target);
  const limit = opts.limit ?? 100;
  let remaining = opts.remaining ?? limit;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '/';
    if (req.method === 'GET' && /\/manifests\//.test(path)) remaining = Math.max(0, remaining - 1);
    const headers = { ...req.headers, host: target.host };
    const up = request({ host: target.hostname, port: target.port, method: req.method, path, headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, {
        ...ur.headers,
        'ratelimit-limit': `${limit};w=${WINDOW}`,
        'ratelimit-remaining': `${remaining};w=${WINDOW}`,
        'docker-ratelimit-source': '127.0.0.1',
      });
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  const port = await listenLoopback(server);
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  registerCleanup('hub-ratelimit', close);
  return { url: `http://127.0.0.1:${port}`, remaining: () => remaining, limit, close };
}
