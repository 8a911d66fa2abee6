/**
 * A mirror: the configuration and the parts every request uses (upstreams, stores, fills, metrics,
 * logger), and the HTTP server that answers the registry API on them.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LRUCache } from 'lru-cache';
import type { Agent } from 'undici';
import type { MirrorConfig } from './config/types.js';
import { createLogger, type Logger } from './log.js';
import { Metrics } from './metrics.js';
import { Layout } from './store/layout.js';
import { BlobStore } from './store/blobs.js';
import { ManifestStore, type StoredManifest } from './store/manifests.js';
import { MemoryTagStore, type TagStore } from './store/tags.js';
import { RedisTagStore } from './store/redis-tags.js';
import { createDispatcher, Upstream } from './upstream/client.js';
import { Fills } from './fill/fills.js';
import { Slots } from './fill/slots.js';
import { SingleFlight } from './fill/flight.js';
import type { TagAnswer } from './manifest/tags.js';
import { handleRequest } from './registry/server.js';

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
  readonly layout: Layout;
  readonly blobs: BlobStore;
  readonly manifests: ManifestStore;
  readonly tags: TagStore;
  readonly upstreams = new Map<string, Upstream>();
  readonly fills: Fills;
  readonly manifestFlights = new SingleFlight<StoredManifest>();
  readonly tagFlights = new SingleFlight<TagAnswer>();
  /** Tag keys whose last revalidation failed, with the reason: answered stale without asking again for a short while. */
  readonly outages = new LRUCache<string, string>({ max: 10_000, ttlAutopurge: false });
  readonly server: Server;
  private readonly dispatcher: Agent;

  private constructor(readonly config: MirrorConfig, opts: MirrorOptions) {
    this.log = opts.logger ?? createLogger(config.logLevel);
    this.metrics = new Metrics({ defaultMetrics: opts.processMetrics ?? true });
    this.layout = new Layout(config.dataDir);
    this.blobs = new BlobStore(this.layout, config.blobMemoryBytes, config.blobMemoryItemBytes);
    this.manifests = new ManifestStore(this.layout, config.manifestMemoryBytes);
    this.tags = config.redisUrl ? new RedisTagStore(config.redisUrl, this.log) : new MemoryTagStore();
    this.dispatcher = createDispatcher(config.upstreamTimeouts);
    for (const u of config.upstreams) {
      this.upstreams.set(u.namespace, new Upstream(u, { dispatcher: this.dispatcher, timeouts: config.upstreamTimeouts, metrics: this.metrics, log: this.log }));
    }
    const slots = new Slots(config.fill.maxConcurrent, config.fill.queueTimeoutMs, (n) => this.metrics.fillQueueWaiting.set(n));
    this.fills = new Fills({ store: this.blobs, metrics: this.metrics, log: this.log, acquireSlot: () => slots.acquire(), abortWhenOrphaned: config.fill.abortWhenOrphaned });
    this.server = createServer({ maxHeaderSize: MAX_HEADER_SIZE, keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => {
      void handleRequest(this, req, res);
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
    const removed = await m.blobs.init();
    if (removed > 0) m.log.info({ removed }, 'removed temp files left by an earlier run');
    if (m.tags instanceof RedisTagStore) {
      // Give Redis a moment, but never hold the listener back for long: until it answers, tags are revalidated upstream.
      await m.tags.ready(1000).then(
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
    const served = this.config.upstreams.map((u) => `${u.namespace} by ${u.url}${u.namespace === this.config.defaultNamespace ? ' (default)' : ''}`);
    this.log.info({ address: `${h}:${a.port}`, upstreams: this.config.upstreams.map((u) => `${u.namespace}=${u.url}`), default: this.config.defaultNamespace, dataDir: this.layout.root }, `regmirror listening; serving ${served.join(', ')}`);
    if (!this.upstreams.has('docker.io')) {
      // containerd asks for docker.io images with ?ns=docker.io: without that namespace they get 404 and containerd quietly pulls from Docker Hub.
      this.log.warn({ namespaces: [...this.upstreams.keys()] }, 'no upstream is named docker.io: containerd pulls of docker.io images (?ns=docker.io) get 404 and fall back to Docker Hub; name a Docker Hub stand-in with --upstream docker.io=URL');
    }
    return { host: a.address, port: a.port, url: `http://${h}:${a.port}` };
  }

  /** Stops accepting requests, ends connections and releases upstream connections and Redis. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
      setTimeout(() => this.server.closeAllConnections(), 2000).unref();
    });
    await this.tags.close();
    await this.dispatcher.close().catch(() => undefined);
  }
}
