/**
 * "node floor": a bare `node:http` server answering the benchmark's warm requests with the bytes and
 * headers regmirror sends, doing nothing else: what Node itself costs per request, the ceiling regmirror's
 * hot path is measured against (issue 8, item 7).
 *
 * - Manifests (by tag and by digest) from memory, headers built once at start; only X-Request-Id is made
 *   per request (a per-process prefix and a counter, as regmirror makes it).
 * - Blobs from their files with regmirror's read loop (src/store/send-file.ts, reimplemented here on
 *   purpose so the floor does not move when src/ changes): open and fstat per request, positional reads
 *   into two reused 1 MiB buffers from a small pool, the next chunk read while the previous one is
 *   written, each write awaited before its buffer is reused.
 * - The same server options as regmirror (maxHeaderSize 256 KiB, keepAliveTimeout 65 s, no request
 *   timeout), so the Connection and Keep-Alive headers Node adds are the same too.
 *
 * No ranges, no ns parameter, no logging, no metrics. Run as `node build/bench/node-floor.js CONFIG.json`;
 * the config is a {@link FloorConfig}.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';

/** One manifest the floor answers, by tag and by digest. */
export interface FloorManifest {
  repo: string;
  tag: string;
  digest: string;
  mediaType: string;
  /** The exact bytes, base64. */
  bodyBase64: string;
}

/** One blob the floor streams from its file. */
export interface FloorBlob {
  repo: string;
  digest: string;
  path: string;
}

/** What the floor serves and where it listens (the JSON file given as its argument). */
export interface FloorConfig {
  host: string;
  port: number;
  /** Value of OCI-Namespace (regmirror's default upstream namespace). */
  namespace: string;
  manifests: FloorManifest[];
  blobs: FloorBlob[];
}

/** Size of each of the two buffers (regmirror's SEND_CHUNK). */
const CHUNK = 1024 * 1024;
/** Buffers kept for reuse across responses (regmirror's POOL_MAX). */
const POOL_MAX = 16;
const pool: Buffer[] = [];

const ID_PREFIX = randomBytes(4).toString('hex');
let idCounter = 0;

/** Flat `[name, value, name, value, …]` headers, as `writeHead` takes them. */
type HeaderList = (string | number)[];

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * A header list made once: X-Request-Id first (as regmirror sets it), then `rest` in regmirror's order,
 * then Content-Length. `fill` writes a fresh id (and the length) into it and returns it; `writeHead` turns
 * the list into the header block synchronously, so one list per route can be reused for every request.
 */
function headerTemplate(rest: HeaderList): { fill: (length: number) => HeaderList } {
  const list: HeaderList = ['x-request-id', '', ...rest, 'content-length', 0];
  const last = list.length - 1;
  return {
    fill: (length) => {
      list[1] = `${ID_PREFIX}${(++idCounter).toString(36)}`;
      list[last] = length;
      return list;
    },
  };
}

/** A complete body from memory; HEAD gets the same headers and no body. */
function bufferHandler(body: Buffer, headers: HeaderList): Handler {
  const t = headerTemplate(headers);
  return (req, res) => {
    res.writeHead(200, t.fill(body.length));
    if (req.method === 'HEAD') res.end();
    else res.end(body);
  };
}

/** Writes `chunk` and resolves once the socket took it (or the response closed). */
function write(res: ServerResponse, chunk: Buffer, closed: { wake?: (err: Error | undefined) => void }): Promise<Error | undefined> {
  return new Promise<Error | undefined>((resolve) => {
    closed.wake = resolve;
    res.write(chunk, (err) => resolve(err ?? undefined));
  }).finally(() => {
    closed.wake = undefined;
  });
}

const errorHeaders = headerTemplate([]);

/** Streams the whole file at `path`: regmirror's two-buffer positional read loop. */
async function sendFile(path: string, headers: ReturnType<typeof headerTemplate>, req: IncomingMessage, res: ServerResponse): Promise<void> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    res.writeHead(500, errorHeaders.fill(0));
    res.end();
    process.stderr.write(`node-floor: open ${path}: ${(err as Error).message}\n`);
    return;
  }
  const bufs = [pool.pop() ?? Buffer.allocUnsafeSlow(CHUNK), pool.pop() ?? Buffer.allocUnsafeSlow(CHUNK)] as const;
  let pending: Promise<Buffer | undefined> | undefined;
  let closed = false;
  const waker: { wake?: (err: Error | undefined) => void } = {};
  const onClose = (): void => {
    closed = true;
    waker.wake?.(new Error('client went away'));
  };
  try {
    const size = (await handle.stat()).size;
    res.writeHead(200, headers.fill(size));
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    res.on('close', onClose);
    const end = size - 1;
    let which = 0;
    const fh = handle;
    const readAt = async (pos: number): Promise<Buffer | undefined> => {
      const avail = size - pos;
      if (avail <= 0) return undefined;
      which ^= 1;
      const buf = bufs[which]!;
      const want = Math.min(CHUNK, avail, end - pos + 1);
      const { bytesRead } = await fh.read(buf, 0, want, pos);
      if (bytesRead <= 0) throw new Error('file ended before its size');
      return bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
    };
    let pos = 0;
    pending = pos <= end ? readAt(pos) : undefined;
    while (pending) {
      const chunk = await pending;
      if (!chunk) break;
      pos += chunk.length;
      pending = pos <= end && !closed ? readAt(pos) : undefined;
      if (closed) return;
      if (await write(res, chunk, waker)) return;
    }
    res.end();
  } catch (err) {
    res.destroy(err as Error);
  } finally {
    res.off('close', onClose);
    // A read still in flight must land before its buffer goes back to the pool.
    await pending?.catch(() => undefined);
    for (const b of bufs) if (pool.length < POOL_MAX) pool.push(b);
    await handle.close().catch(() => undefined);
  }
}

/** The routes: exact paths (no query string) → handler. */
export function routes(cfg: FloorConfig): Map<string, Handler> {
  const api = ['docker-distribution-api-version', 'registry/2.0'];
  const ns = ['oci-namespace', cfg.namespace];
  const map = new Map<string, Handler>();
  map.set('/v2/', bufferHandler(Buffer.from('{}'), [...api, 'content-type', 'application/json']));
  for (const m of cfg.manifests) {
    const body = Buffer.from(m.bodyBase64, 'base64');
    const common = ['content-type', m.mediaType, 'docker-content-digest', m.digest, 'etag', `"${m.digest}"`];
    map.set(`/v2/${m.repo}/manifests/${m.tag}`, bufferHandler(body, [...api, ...ns, 'vary', 'Accept', 'age', '0', ...common]));
    map.set(`/v2/${m.repo}/manifests/${m.digest}`, bufferHandler(body, [...api, ...ns, ...common]));
  }
  for (const b of cfg.blobs) {
    const headers = headerTemplate([
      ...api,
      ...ns,
      'content-type',
      'application/octet-stream',
      'docker-content-digest',
      b.digest,
      'etag',
      `"${b.digest}"`,
      'accept-ranges',
      'bytes',
      'cache-control',
      'max-age=31536000, immutable',
    ]);
    map.set(`/v2/${b.repo}/blobs/${b.digest}`, (req, res) => void sendFile(b.path, headers, req, res));
  }
  return map;
}

function main(configPath: string): void {
  const cfg = JSON.parse(readFileSync(configPath, 'utf8')) as FloorConfig;
  const table = routes(cfg);
  const notFoundHeaders = headerTemplate(['docker-distribution-api-version', 'registry/2.0', 'content-type', 'application/json']);
  const notFound = Buffer.from('{"errors":[{"code":"NAME_UNKNOWN","message":"not served by the node floor"}]}');
  const server = createServer({ maxHeaderSize: 256 * 1024, keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const handler = (req.method === 'GET' || req.method === 'HEAD') && table.get(q < 0 ? url : url.slice(0, q));
    if (handler) return handler(req, res);
    res.writeHead(404, notFoundHeaders.fill(notFound.length));
    res.end(req.method === 'HEAD' ? undefined : notFound);
  });
  server.listen(cfg.port, cfg.host);
  const stop = (): void => {
    server.close();
    server.closeAllConnections();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const configPath = process.argv[2];
  if (!configPath) {
    process.stderr.write('usage: node build/bench/node-floor.js CONFIG.json\n');
    process.exit(2);
  }
  main(configPath);
}
