/**
 * A mirror's lifecycle: build its parts (wire.ts), lock and prepare the data directory, listen, drain,
 * close. Client limits (header timeout, keep-alive idle timeout, connection cap) live on the server.
 */
import { mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import type { MirrorConfig } from './config/types.js';
import { createLogger, type Logger } from './log.js';
import type { Metrics } from './metrics.js';
import { RedisTagStore } from './tags/redis-store.js';
import { requestPipeline } from './http/server.js';
import { MirrorResponse } from './http/response.js';
import { wire, type MirrorParts } from './wire.js';
import { DataDirLock } from './store/lock.js';
import { reconcile } from './store/index/reconcile.js';
import { pinImages } from './warm/pin.js';

/** Options beyond the configuration, for embedding and tests. */
export interface MirrorOptions {
  /** A logger to use instead of one writing to stdout. */
  logger?: Logger;
  /** Collect Node process metrics as well (default true). */
  processMetrics?: boolean;
}

/** After SIGTERM, idle keep-alive connections stay open this long (at most) to answer `/readyz` 503. */
const DRAIN_GRACE_MS = 1000;

/** Largest request header block accepted: containers/image sends ~1024 ranges in one Range header. */
export const MAX_HEADER_SIZE = 256 * 1024;

export class Mirror {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly parts: MirrorParts;
  readonly server: Server;
  private lock: DataDirLock | undefined;
  private draining: Promise<void> | undefined;

  private constructor(readonly config: MirrorConfig, opts: MirrorOptions) {
    this.log = opts.logger ?? createLogger(config.logLevel);
    this.parts = wire(config, this.log, { processMetrics: opts.processMetrics ?? true, draining: () => this.draining !== undefined });
    this.metrics = this.parts.metrics;
    const handle = requestPipeline(this.parts.pipeline);
    const { limits } = config;
    this.server = createServer(
      {
        ServerResponse: MirrorResponse,
        maxHeaderSize: MAX_HEADER_SIZE,
        // A client has this long to send its request headers (slowloris); GETs and HEADs carry no body.
        headersTimeout: limits.headersTimeoutMs,
        requestTimeout: limits.headersTimeoutMs,
        keepAliveTimeout: limits.keepAliveTimeoutMs,
        // How often Node checks those two timeouts (its default, 30 s, would let short ones overrun).
        connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.floor(limits.headersTimeoutMs / 4))),
      },
      (req, res) => {
        // A new connection gets the header timeout as an inactivity timeout until its first request (below);
        // from then on keep-alive idle and write-idle limits apply.
        if (req.socket.timeout) req.socket.setTimeout(0);
        void handle(req, res);
      },
    );
    // Node's headersTimeout starts with the first byte: a connection that never sends one is closed by this.
    this.server.on('connection', (socket: net.Socket) => socket.setTimeout(limits.headersTimeoutMs));
    this.server.maxConnections = limits.maxConnections;
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      if (socket.writable && !socket.destroyed) {
        const status =
          err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
        // Close our side for good once the answer is out: a client that never closes its own (slowloris) is not waited for.
        socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, () => socket.destroy());
      } else socket.destroy();
    });
  }

  /** Creates a mirror: prepares the data directory (removing temp files left by a crash) and the metadata store. */
  static async create(config: MirrorConfig, opts: MirrorOptions = {}): Promise<Mirror> {
    const m = new Mirror(config, opts);
    await mkdir(m.parts.layout.root, { recursive: true });
    m.lock = await DataDirLock.acquire(m.parts.layout.root);
    const removed = await m.parts.blobStore.init();
    if (removed > 0) m.log.info({ removed }, 'removed temp files left by an earlier run');
    const tags = m.parts.tagStore;
    if (tags instanceof RedisTagStore) {
      // Give Redis a moment, but never hold the listener back for long: until it answers, tags are revalidated upstream.
      await tags.ready(1000).then(
        () => m.log.info('redis connected'),
        (err: Error) => m.log.warn({ err: err.message }, 'redis not reachable yet; tags are revalidated upstream until it is'),
      );
    }
    const cluster = m.parts.cluster;
    if (cluster) {
      const up = await cluster.start(1000);
      if (up) m.log.info({ advertise: config.cluster.advertise, instance: cluster.instance }, 'cluster: joined');
      else m.log.warn({ advertise: config.cluster.advertise }, 'cluster: redis not reachable yet; filling alone until it is');
    }
    return m;
  }

  /** Starts listening; resolves with the bound address. */
  async listen(host = this.config.listen.host, port = this.config.listen.port): Promise<{ host: string; port: number; url: string }> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const a = this.server.address() as AddressInfo;
    const h = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    const served = this.config.upstreams.map((u) => `${u.namespace} by ${u.url}${u.mirror ? ' (a mirror: ?ns=)' : ''}${u.namespace === this.config.defaultNamespace ? ' (default)' : ''}`);
    this.log.info({ address: `${h}:${a.port}`, upstreams: this.config.upstreams.map((u) => `${u.namespace}=${u.url}`), default: this.config.defaultNamespace, dataDir: this.parts.layout.root }, `regmirror listening; serving ${served.join(', ')}`);
    if (!this.parts.namespaces.get('docker.io')) {
      // containerd asks for docker.io images with ?ns=docker.io: without that namespace they get 404 and containerd quietly pulls from Docker Hub.
      this.log.warn({ namespaces: this.parts.namespaces.names() }, 'no upstream is named docker.io: containerd pulls of docker.io images (?ns=docker.io) get 404 and fall back to Docker Hub; name a Docker Hub stand-in with --upstream docker.io=URL');
    }
    const url = `http://${h}:${a.port}`;
    this.startBackground(a.family === 'IPv6' && a.address === '::' ? `http://[::1]:${a.port}` : a.address === '0.0.0.0' ? `http://127.0.0.1:${a.port}` : url);
    return { host: a.address, port: a.port, url };
  }

  private readonly background = new AbortController();

  /** After listening: index and files are reconciled in the background (no wait at start, however large), pins fetched, then the cap is checked. */
  private startBackground(selfUrl: string): void {
    const { cache } = this.parts;
    this.parts.lifetime.start();
    const index = cache.maintainable;
    if (!index) return;
    void reconcile({ index, layout: this.parts.layout, signal: this.background.signal, log: this.log })
      .then(async (report) => {
        this.log.info({ report }, 'cache index reconciled with the files');
        // Pins go through the mirror itself: fetched (when missing), verified, then protected from eviction.
        if (this.config.cache.pins.length > 0 && !this.background.signal.aborted) await pinImages(selfUrl, this.config.cache.pins, cache.index, this.log);
        return cache.evictor.check();
      })
      .catch((err: unknown) => {
        if (!this.background.signal.aborted) this.log.warn({ err: (err as Error).message }, 'cache reconciliation failed');
      });
  }

  /** Stops background work and closes the index (after the last commit). */
  private async closeCache(): Promise<void> {
    this.background.abort();
    await this.parts.lifetime.close();
    await this.parts.cache.index.close();
  }

  /**
   * Graceful drain (SIGTERM): `/readyz` answers 503, the listener stops accepting, idle keep-alive
   * connections close, responses in flight get up to `limits.shutdownTimeout` to finish (each closes its
   * connection when done), fills in flight finish or are cancelled (nothing partial stays cached), then
   * upstream connections, Redis and the data-directory lock are released.
   */
  drain(): Promise<void> {
    this.draining ??= this.doDrain();
    return this.draining;
  }

  private async doDrain(): Promise<void> {
    const deadline = Date.now() + this.config.limits.shutdownTimeoutMs;
    // Stop accepting now, but leave idle keep-alive connections open for a short grace: a load balancer or
    // probe on one of them gets `/readyz` 503 (and `Connection: close`) instead of a reset. http.Server's own
    // close() would drop them at once, so the listener is closed at the net level.
    const closed = new Promise<void>((resolve) => net.Server.prototype.close.call(this.server, () => resolve()));
    const grace = Math.min(DRAIN_GRACE_MS, this.config.limits.shutdownTimeoutMs / 4);
    let idle: NodeJS.Timeout | undefined;
    const graceTimer = setTimeout(() => {
      this.server.closeIdleConnections();
      idle = setInterval(() => this.server.closeIdleConnections(), 250);
    }, grace);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([closed.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), Math.max(0, deadline - Date.now()))))]);
    clearTimeout(timer);
    clearTimeout(graceTimer);
    clearInterval(idle);
    if (timedOut) {
      this.log.warn({ timeoutMs: this.config.limits.shutdownTimeoutMs }, 'shutdown timeout: cutting the transfers still in flight');
      this.server.closeAllConnections();
      await closed;
    }
    await this.parts.fills.settle(Math.max(0, deadline - Date.now()));
    await this.release();
  }

  /** Leaves the cluster, closes Redis, the index, upstream connections, and releases the data-dir lock. */
  private async release(): Promise<void> {
    await this.parts.cluster?.stop();
    await this.parts.tagStore.close();
    await this.closeCache();
    await this.parts.dispatcher.close().catch(() => undefined);
    await Promise.all(this.parts.namespaces.all().map((u) => u.close()));
    await this.lock?.release();
  }

  /** Stops at once: ends connections (after at most 2 s), releases upstream connections, Redis and the lock. */
  async close(): Promise<void> {
    if (this.draining) return this.draining;
    this.draining = (async () => {
      await new Promise<void>((resolve) => {
        this.server.close(() => resolve());
        this.server.closeIdleConnections();
        setTimeout(() => this.server.closeAllConnections(), 2000).unref();
      });
      await this.release();
    })();
    return this.draining;
  }
}
