/**
 * An HTTP relay in front of an upstream, for counting what the upstream sends and injecting faults.
 *
 * Bodies are streamed both ways (never buffered). The `Host` header is passed through unchanged by
 * default, so `Location` headers the upstream builds and presigned S3 URLs (signed for the relay's
 * host) stay valid; `Location` headers are not rewritten.
 */
import { Agent, createServer, request, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { delay, listenLoopback, registerCleanup } from './proc.js';

/**
 * Fault modes. `pass`: relay faithfully. `corrupt`: XOR the first byte of every upstream chunk of
 * a matching body (length unchanged), or only the byte at `at`. `truncate`: send `afterBytes` of a
 * matching body, then close the connection. `fail`: answer `status` (503) with a JSON error, without
 * asking the upstream. `down`: reset every new connection and drop open ones.
 *
 * Hostile-upstream modes (body faults apply to matching 200/206 answers):
 * `reset`: send `afterBytes`, then reset the connection (TCP RST). `stall`: send `afterBytes`, then
 * send nothing more and keep the connection open. `overlength`: announce `extraLength` more bytes in
 * Content-Length than the body has, send the body, then close. `rewrite`: buffer the body and send
 * `rewrite(body)` instead, with a matching Content-Length and every other header (Docker-Content-Digest
 * included) kept. `redirect`: answer `status` (307) with `Location: location(request)`, without asking
 * the upstream. `delay`: hold matching requests for `delayMs` before forwarding them (a slow upstream).
 */
export type RelayMode = 'pass' | 'corrupt' | 'truncate' | 'fail' | 'down' | 'reset' | 'stall' | 'overlength' | 'rewrite' | 'redirect' | 'delay';

const BODY_FAULTS = new Set<RelayMode>(['corrupt', 'truncate', 'reset', 'stall', 'overlength', 'rewrite']);

/** What a fault matcher sees. */
export interface RelayRequestInfo {
  method: string;
  /** Request path with query. */
  path: string;
}

/** Options for {@link Relay.setMode}. */
export interface ModeOptions {
  /**
   * Requests the fault applies to. Default: blob bodies (GETs of `/v2/…/blobs/sha256:…` or S3 keys
   * `…/blobs/sha256/xx/<hex>/data` answered 200/206) for `corrupt`/`truncate`; every request for
   * `fail`. Ignored by `down`, which acts on connections (the client sees ECONNRESET).
   */
  match?: (r: RelayRequestInfo) => boolean;
  /** Apply the fault to this many requests (connections for `down`), then return to `pass`. */
  times?: number;
  /** `truncate`: body bytes sent before the connection is closed (default 1024). */
  afterBytes?: number;
  /** `fail`: status to answer (default 503); `redirect`: redirect status (default 307). */
  status?: number;
  /** `corrupt`: flip only the byte at this body offset (`'last'`: the last byte of the body). */
  at?: number | 'last';
  /** `overlength`: bytes announced beyond the real body (default 1024). */
  extraLength?: number;
  /** `rewrite`: the body to send instead of the upstream's. */
  rewrite?: (body: Buffer, r: RelayRequestInfo) => Buffer;
  /** `delay`: how long a matching request is held before it is forwarded, ms (default 1000). */
  delayMs?: number;
  /** `redirect`: the Location to answer with. */
  location?: (r: RelayRequestInfo) => string;
}

/** Options for {@link startRelay}. */
export interface RelayOptions {
  /** Upstream base URL, e.g. `http://127.0.0.1:5000` (http only). */
  target: string;
  /** Response-body throttle shared by all responses (a link), bytes per second. */
  bytesPerSecond?: number;
  /** Send the upstream's own host in `Host` instead of passing the client's through (default false). */
  rewriteHost?: boolean;
  /**
   * Drop a `Range` header that asks for several ranges before forwarding, so the upstream answers
   * 200 with the whole object. This makes s3rver (which answers such requests 206 with
   * `Content-Range: bytes 0-(size-1)/size`) behave like Amazon S3. Default false.
   */
  dropMultiRange?: boolean;
  /** Label for messages. */
  name?: string;
  /** Rewrites the path (with query) before it is forwarded, e.g. to strip `?n=&last=` (an upstream that ignores them). */
  rewritePath?: (path: string) => string;
  /**
   * Answer requests without `Authorization` with 401 and `WWW-Authenticate: Basic realm=…` (the upstream
   * itself needs no auth), so a mirror with credentials configured sends them. Default off.
   */
  requireBasic?: { realm: string };
}

/** One relayed request. */
export interface RelayRecord {
  method: string;
  /** Path with query, as requested. */
  path: string;
  /** Status sent to the client (0 for refused connections, 502 if the upstream was unreachable). */
  status: number;
  /** Response body bytes written to the client. */
  bytes: number;
  /** Request `Range` header, if any. */
  range?: string;
  /** Request `Authorization` header, if any. */
  authorization?: string;
  /** Response `Location` header, if any. */
  location?: string;
  /** Fault applied to this request, if any. */
  fault?: RelayMode;
  /** True once the exchange has ended. */
  done: boolean;
  /** True if the response did not complete (client went away, truncation, upstream error). */
  aborted: boolean;
  durationMs: number;
}

/** Counters of a relay. */
export interface RelayStats {
  /** Requests received (refused connections excluded). */
  requests: number;
  /** Response body bytes sent to clients. */
  bytes: number;
  /** Connections closed by `down` mode. */
  refused: number;
  /** Every request, oldest first. */
  log: RelayRecord[];
}

/** A running relay. */
export interface Relay {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  /** `127.0.0.1:PORT` */
  readonly host: string;
  readonly port: number;
  readonly target: string;
  /** Counters since start or `reset()`. */
  stats(): RelayStats;
  /** Zeroes counters and forgets records. */
  reset(): void;
  /** Switches the fault mode for new requests. `down` also drops open connections. */
  setMode(mode: RelayMode, opts?: ModeOptions): void;
  /** Current fault mode. */
  mode(): RelayMode;
  /** Changes (or removes, with undefined) the throttle. */
  setThrottle(bytesPerSecond: number | undefined): void;
  /** Closes the relay and every connection. */
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

const BLOB_PATH = /\/blobs\/sha256:[0-9a-f]{64}(?:[?#]|$)|\/blobs\/sha256\/[0-9a-f]{2}\/[0-9a-f]{64}\/data(?:[?#]|$)/;

/** Default matcher for body faults: GET of a registry or S3 blob path. */
export function isBlobRequest(r: RelayRequestInfo): boolean {
  return r.method === 'GET' && BLOB_PATH.test(r.path);
}

function filterHeaders(h: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  }
  return out;
}

/**
 * A virtual link shared by all responses: each slice reserves its transmission time on the link
 * and waits until then. Up to `SLACK_MS` of idle time is credited back, so timer oversleep does
 * not lower the rate, while a long idle link does not allow a burst.
 */
class Pacer {
  #next = 0;
  /** Bytes per slice: about 4 ms of link time (1 KiB … 256 KiB). */
  readonly slice: number;
  constructor(readonly bytesPerSecond: number) {
    this.slice = Math.max(1024, Math.min(256 * 1024, Math.floor(bytesPerSecond * 0.004)));
  }

  /** Waits until `n` more bytes fit the link rate. */
  async take(n: number): Promise<void> {
    const now = performance.now();
    const start = Math.max(now - SLACK_MS, this.#next);
    this.#next = start + (n / this.bytesPerSecond) * 1000;
    const wait = this.#next - now;
    if (wait > 1) await delay(wait);
  }
}

const SLACK_MS = 5;

/** Writes with backpressure; false if the client went away. */
async function writeOrClose(res: ServerResponse, buf: Buffer): Promise<boolean> {
  if (res.destroyed) return false;
  if (res.write(buf)) return true;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
  return !res.destroyed;
}

/** Starts a relay on 127.0.0.1:0 forwarding to `opts.target`. Closed by `cleanupAll()`. */
export async function startRelay(opts: RelayOptions): Promise<Relay> {
  const target = new URL(opts.target);
  if (target.protocol !== 'http:') throw new Error(`relay: only http targets are supported (${opts.target})`);
  const targetPort = Number(target.port || 80);
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  let pacer = opts.bytesPerSecond ? new Pacer(opts.bytesPerSecond) : undefined;
  let mode: RelayMode = 'pass';
  let modeOpts: ModeOptions = {};
  let remaining = Infinity;
  let log: RelayRecord[] = [];
  let bytes = 0;
  let refused = 0;
  const sockets = new Set<Socket>();

  const consume = (): void => {
    remaining -= 1;
    if (remaining <= 0) {
      mode = 'pass';
      modeOpts = {};
      remaining = Infinity;
    }
  };

  const server = createServer({ maxHeaderSize: 1024 * 1024 }, (req, res) => {
    handle(req, res);
  });
  server.on('connection', (sock: Socket) => {
    if (mode === 'down') {
      refused += 1;
      consume();
      sock.resetAndDestroy();
      return;
    }
    sockets.add(sock);
    sock.once('close', () => sockets.delete(sock));
  });

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    const info: RelayRequestInfo = { method: req.method ?? 'GET', path: req.url ?? '/' };
    const rec: RelayRecord = { method: info.method, path: info.path, status: 0, bytes: 0, done: false, aborted: false, durationMs: 0 };
    const range = req.headers.range;
    if (range !== undefined) rec.range = range;
    if (req.headers.authorization !== undefined) rec.authorization = req.headers.authorization;
    log.push(rec);
    const logAtStart = log;
    res.once('close', () => {
      rec.done = true;
      rec.aborted = rec.aborted || !res.writableFinished;
      rec.durationMs = performance.now() - started;
    });

    const matches = (defaultAll: boolean): boolean => (modeOpts.match ? modeOpts.match(info) : defaultAll || isBlobRequest(info));

    if (mode === 'fail' && matches(true)) {
      const status = modeOpts.status ?? 503;
      consume();
      rec.fault = 'fail';
      req.resume();
      const body = Buffer.from(JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: 'relay fault injection', detail: null }] }));
      rec.status = status;
      res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': String(body.length) });
      res.end(body);
      return;
    }

    if (mode === 'redirect' && matches(true)) {
      consume();
      rec.fault = 'redirect';
      req.resume();
      const location = modeOpts.location ? modeOpts.location(info) : info.path;
      rec.status = modeOpts.status ?? 307;
      rec.location = location;
      res.writeHead(rec.status, { Location: location, 'Content-Length': '0' });
      res.end();
      return;
    }

    if (mode === 'delay' && matches(true)) {
      consume();
      rec.fault = 'delay';
      const ms = modeOpts.delayMs ?? 1000;
      req.pause();
      setTimeout(() => forward(req, res, rec, info, matches, logAtStart), ms);
      return;
    }
    forward(req, res, rec, info, matches, logAtStart);
  }

  function forward(
    req: IncomingMessage,
    res: ServerResponse,
    rec: RelayRecord,
    info: RelayRequestInfo,
    matches: (defaultAll: boolean) => boolean,
    logAtStart: RelayRecord[],
  ): void {
    if (res.destroyed) return;
    if (opts.requireBasic && req.headers.authorization === undefined) {
      req.resume();
      rec.status = 401;
      const body = Buffer.from(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
      res.writeHead(401, { 'WWW-Authenticate': `Basic realm="${opts.requireBasic.realm}"`, 'Content-Type': 'application/json', 'Content-Length': String(body.length) });
      res.end(body);
      return;
    }

    const headers = filterHeaders(req.headers);
    if (opts.rewriteHost) headers.host = target.host;
    if (opts.dropMultiRange && typeof headers.range === 'string' && headers.range.includes(',')) delete headers.range;
    const upReq = request({
      host: target.hostname,
      port: targetPort,
      method: info.method,
      path: opts.rewritePath ? opts.rewritePath(info.path) : info.path,
      headers,
      agent,
    });
    res.once('close', () => {
      if (!res.writableFinished) upReq.destroy();
    });
    upReq.on('error', (err: Error) => {
      rec.aborted = true;
      if (!res.headersSent) {
        const body = Buffer.from(JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: `relay: upstream error: ${err.message}` }] }));
        rec.status = 502;
        res.writeHead(502, { 'Content-Type': 'application/json', 'Content-Length': String(body.length) });
        res.end(body);
      } else {
        res.destroy();
      }
    });
    upReq.on('response', (upRes) => {
      void relayResponse(upRes, res, rec, info, matches, logAtStart).catch(() => {
        rec.aborted = true;
        res.destroy();
        upRes.destroy();
      });
    });
    req.pipe(upReq);
  }

  async function relayResponse(
    upRes: IncomingMessage,
    res: ServerResponse,
    rec: RelayRecord,
    info: RelayRequestInfo,
    matches: (defaultAll: boolean) => boolean,
    logAtStart: RelayRecord[],
  ): Promise<void> {
    const status = upRes.statusCode ?? 502;
    rec.status = status;
    const loc = upRes.headers.location;
    if (loc !== undefined) rec.location = loc;
    let fault: RelayMode | undefined;
    const afterBytes = modeOpts.afterBytes ?? 1024;
    const o = modeOpts;
    if (BODY_FAULTS.has(mode) && (status === 200 || status === 206) && info.method !== 'HEAD' && matches(false)) {
      fault = mode;
      rec.fault = mode;
      consume();
    }
    const outHeaders = filterHeaders(upRes.headers);
    const declared = Number(upRes.headers['content-length'] ?? NaN);
    if (fault === 'rewrite') {
      const chunks: Buffer[] = [];
      for await (const c of upRes) chunks.push(c as Buffer);
      const body = o.rewrite ? o.rewrite(Buffer.concat(chunks), info) : Buffer.concat(chunks);
      outHeaders['content-length'] = String(body.length);
      res.writeHead(status, upRes.statusMessage, outHeaders);
      rec.bytes += body.length;
      if (log === logAtStart) bytes += body.length;
      for (let off = 0; off < body.length; off += 1 << 20) {
        if (!(await writeOrClose(res, body.subarray(off, off + (1 << 20))))) return;
      }
      res.end();
      return;
    }
    if (fault === 'overlength' && Number.isFinite(declared)) outHeaders['content-length'] = String(declared + (o.extraLength ?? 1024));
    res.writeHead(status, upRes.statusMessage, outHeaders);
    if (info.method === 'HEAD' || status === 204 || status === 304) {
      upRes.resume();
      res.end();
      return;
    }
    const flipAt = fault === 'corrupt' && o.at !== undefined ? (o.at === 'last' ? declared - 1 : o.at) : undefined;
    let sent = 0;
    for await (const chunk of upRes) {
      let buf = chunk as Buffer;
      if (fault === 'corrupt' && buf.length > 0) {
        if (flipAt === undefined) {
          buf = Buffer.from(buf);
          buf[0] = (buf[0] ?? 0) ^ 0xff;
        } else if (flipAt >= sent && flipAt < sent + buf.length) {
          buf = Buffer.from(buf);
          buf[flipAt - sent] = (buf[flipAt - sent] ?? 0) ^ 0xff;
        }
      }
      const sliceSize = pacer ? pacer.slice : buf.length;
      for (let off = 0; off < buf.length; off += sliceSize) {
        let slice = buf.subarray(off, Math.min(buf.length, off + sliceSize));
        const cut = (fault === 'truncate' || fault === 'reset' || fault === 'stall') && sent + slice.length >= afterBytes;
        if (cut) slice = slice.subarray(0, afterBytes - sent);
        if (pacer) await pacer.take(slice.length);
        if (res.destroyed) {
          upRes.destroy();
          return;
        }
        rec.bytes += slice.length;
        sent += slice.length;
        if (log === logAtStart) bytes += slice.length;
        if (cut) {
          rec.aborted = true;
          const sock = res.socket;
          if (fault === 'stall') {
            // Hold the connection open with nothing more to send, until the peer or the relay closes it.
            res.write(slice);
            upRes.destroy();
            return;
          }
          res.write(slice, () => (fault === 'reset' ? sock?.resetAndDestroy() : sock?.destroy()));
          upRes.destroy();
          return;
        }
        if (!(await writeOrClose(res, slice))) {
          upRes.destroy();
          return;
        }
      }
    }
    if (fault === 'overlength') {
      // The announced length never arrives: close once the real body is out.
      rec.aborted = true;
      const sock = res.socket;
      res.write(Buffer.alloc(0), () => sock?.destroy());
      return;
    }
    res.end();
  }

  const port = await listenLoopback(server);
  const close = async (): Promise<void> => {
    if (!server.listening) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    for (const s of sockets) s.destroy();
    agent.destroy();
    await closed;
  };
  registerCleanup(`relay ${opts.name ?? ''} :${port}`, close);

  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    port,
    target: opts.target,
    stats: () => ({ requests: log.length, bytes, refused, log: [...log] }),
    reset: () => {
      log = [];
      bytes = 0;
      refused = 0;
    },
    setMode: (m: RelayMode, o: ModeOptions = {}) => {
      mode = m;
      modeOpts = o;
      remaining = o.times ?? Infinity;
      if (m === 'down') {
        for (const s of sockets) s.destroy();
      }
    },
    mode: () => mode,
    setThrottle: (bps: number | undefined) => {
      pacer = bps ? new Pacer(bps) : undefined;
    },
    close,
  };
}
