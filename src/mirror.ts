/**
 * A mirror's lifecycle: build its parts (wire.ts), prepare the data directory, listen, close.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { MirrorConfig } from './config/types.js';
import { createLogger, type Logger } from './log.js';
import type { Metrics } from './metrics.js';
import { RedisTagStore } from './tags/redis-store.js';
import { requestPipeline } from './http/server.js';
import { wire, type MirrorParts } from './wire.js';

/** Options beyond the configuration, for embedding and tests. */
export interface MirrorOptions {
  /** A logger to use instead of one writing to stdout. */
  logger?: Logger;
  /** Collect Node process metrics as well (default true). */
  processMetrics?: boolean;
}

/** Largest request header block accepted: containers/image sends ~1024 ranges in one Range header. */
export const MAX_HEADER_SIZE = 256 * 1024;

export class Mirror {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly parts: MirrorParts;
  readonly server: Server;

  private constructor(readonly config: MirrorConfig, opts: MirrorOptions) {
    this.log = opts.logger ?? createLogger(config.logLevel);
    this.parts = wire(config, this.log, { processMetrics: opts.processMetrics ?? true });
    this.metrics = this.parts.metrics;
    const handle = requestPipeline(this.parts.pipeline);
    this.server = createServer({ maxHeaderSize: MAX_HEADER_SIZE, keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => {
      void handle(req, res);
    });
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      if (socket.writable && !socket.destroyed) {
        const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
        socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      } else socket.destroy();
    });
  }

  /** Creates a mirror: prepares the data directory (removing temp files left by a crash) and the metadata store. */
  static async create(config: MirrorConfig, opts: MirrorOptions = {}): Promise<Mirror> {
    const m = new Mirror(config, opts);
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
    this.log.info({ address: `${h}:${a.port}`, upstreams: this.config.upstreams.map((u) => `${u.namespace}=${u.url}`), default: this.config.defaultNamespace, dataDir: this.parts.layout.root }, 'regmirror listening');
    return { host: a.address, port: a.port, url: `http://${h}:${a.port}` };
  }

  /** Stops accepting requests, ends connections and releases upstream connections and Redis. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
      setTimeout(() => this.server.closeAllConnections(), 2000).unref();
    });
    await this.parts.tagStore.close();
    await this.parts.dispatcher.close().catch(() => undefined);
    await Promise.all(this.parts.namespaces.all().map((u) => u.close()));
  }
}
