import type { MaxSize } from './max-size.js';
import type { PinSpec } from './pins.js';

/** The resolved configuration of a mirror. Every field has an embedded default (see defaults.ts). */

/** Credentials the mirror uses towards one upstream. Never logged. */
export type Credentials =
  | { username: string; password: string }
  | { /** A pre-issued bearer token, sent as `Authorization: Bearer`. */ token: string };

/** One upstream registry the mirror pulls from. */
export interface UpstreamConfig {
  /**
   * The registry host this upstream stands for (`docker.io`, `ghcr.io`, `quay.io`): what containerd
   * sends as `?ns=` and what a podman-style mirror puts as the first path segment.
   */
  namespace: string;
  /** The upstream's base URL (scheme, host, port), e.g. `https://registry-1.docker.io`. */
  url: string;
  /** Optional credentials; without them the mirror pulls anonymously. */
  credentials?: Credentials;
  /** Rewrite single-component names to `library/<name>` (Docker Hub's official images). */
  libraryPrefix: boolean;
  /**
   * The upstream is itself a mirror serving several registries (a regional regmirror, a tier above this
   * one): every request to it carries `?ns=<namespace>` as containerd sends to a mirror host, so it fetches
   * from the registry this upstream stands for and not its own default; its tag answers' `Age` and
   * `Warning` are honoured, so a client's staleness stays within one TTL across both tiers. Default false:
   * a plain registry is never sent `?ns=`. YAML `mirrorUpstreams: [docker.io]`, flag `--mirror-upstream`.
   */
  mirror?: boolean;
}

/** Limits and timeouts towards upstreams. */
export interface UpstreamTimeouts {
  /** TCP/TLS connect timeout, ms. */
  connectMs: number;
  /** Time to wait for response headers, ms. */
  headersMs: number;
  /** Longest pause between two body chunks before the upstream counts as stalled, ms. */
  bodyIdleMs: number;
  /** Deadline of a tag revalidation (HEAD); past it the last known answer is served stale, ms. */
  revalidateMs: number;
}

/** Single-flight blob fills. */
export interface FillConfig {
  /** Most blob fills running at once; more wait in a queue. */
  maxConcurrent: number;
  /** Longest a request waits for a fill slot before it gets UNAVAILABLE, ms. */
  queueTimeoutMs: number;
  /** Abort a fill when every client reading it has gone (default false: finish to warm the cache). */
  abortWhenOrphaned: boolean;
}

/** Range requests. */
export interface RangeConfig {
  /** Most ranges accepted in one Range header; beyond that the whole blob is answered with 200. */
  maxRanges: number;
  /** On a range request for an uncached blob, also start a whole-blob fill (default false). */
  fillOnMiss: boolean;
  /** Most single-range upstream requests in flight for one multi-range request. */
  upstreamParallelism: number;
  /**
   * Range misses on one uncached blob after which a background whole-blob fill starts (default 3),
   * so a fleet of partial pulls of one image costs the upstream about one blob. 0 turns it off.
   * YAML `rangeFillAfterMisses`.
   */
  fillAfterMisses: number;
  /**
   * Bound on the upstream bytes one client request may cost, as a multiple of the blob's size
   * (default 1: about one blob). Overlapping or duplicate ranges past it are merged, or the whole blob
   * is answered. YAML `maxRangeAmplification`.
   */
  maxAmplification: number;
}

/**
 * Limits on client connections, with nginx's defaults where nginx has one. YAML `limits: {…}`.
 * Durations in ms here; in YAML `60s`, `500ms` …
 */
export interface ClientLimits {
  /**
   * Longest time a client may take to send a complete request header block (default 60 s, nginx
   * `client_header_timeout`); past it the connection is closed (slowloris). YAML `limits.headersTimeout`,
   * env `REGMIRROR_CLIENT_HEADERS_TIMEOUT`.
   */
  headersTimeoutMs: number;
  /**
   * How long an idle keep-alive connection is kept open between requests (default 75 s, nginx
   * `keepalive_timeout`). YAML `limits.keepAliveTimeout`, env `REGMIRROR_KEEPALIVE_TIMEOUT`.
   */
  keepAliveTimeoutMs: number;
  /**
   * Longest time a response may make no write progress (the client reads nothing) before the
   * connection is dropped (default 60 s, nginx `send_timeout`). YAML `limits.writeIdleTimeout`,
   * env `REGMIRROR_WRITE_IDLE_TIMEOUT`.
   */
  writeIdleTimeoutMs: number;
  /**
   * Most client connections open at once (default 4096); further connections are closed at accept.
   * YAML `limits.maxConnections`, env `REGMIRROR_MAX_CONNECTIONS`.
   */
  maxConnections: number;
  /**
   * One global budget for bytes buffered in transfers to clients (default 256 MiB): a response whose
   * socket buffer is full waits for room instead of growing memory, so stalled readers cannot pin
   * memory without bound. YAML `limits.transferBufferBudget`, env `REGMIRROR_TRANSFER_BUFFER_BUDGET`.
   */
  transferBufferBytes: number;
  /**
   * On SIGTERM/SIGINT: how long responses in flight may take to finish before connections are cut
   * (default 30 s). YAML `limits.shutdownTimeout`, env `REGMIRROR_SHUTDOWN_TIMEOUT`.
   */
  shutdownTimeoutMs: number;
}

/** Where the mirror lets an upstream send it. YAML `trust: {…}`. */
export interface TrustPolicy {
  /**
   * Hosts (`host` or `host:port`, lowercase) an upstream may redirect to besides its own host and
   * public addresses, e.g. a CDN on a private network (default none). YAML `trust.allowRedirectHosts`.
   */
  allowRedirectHosts: string[];
  /**
   * Allow redirects to loopback, link-local and private addresses even when the upstream itself is not
   * on one (default false: refused, so a hostile upstream cannot point the mirror at internal services).
   * YAML `trust.allowPrivateRedirects`.
   */
  allowPrivateRedirects: boolean;
}

/** The Redis circuit breaker: after repeated failures the mirror stops asking Redis for a while. */
export interface RedisBreaker {
  /** Consecutive failed or timed-out commands that open the breaker (default 3). YAML `redis.breaker.failures`. */
  failureThreshold: number;
  /**
   * How long an open breaker sends every request down the local path before one probe command tries
   * Redis again (default 5 s). YAML `redis.breaker.cooldown`.
   */
  cooldownMs: number;
}

/** How the mirror talks to Redis (used only when {@link MirrorConfig.redisUrl} is set). */
export interface RedisPolicy {
  /**
   * Deadline of one Redis command (default 250 ms); past it the request takes the local path. YAML
   * `redis.timeout`, env `REGMIRROR_REDIS_TIMEOUT`.
   */
  timeoutMs: number;
  breaker: RedisBreaker;
}

/**
 * Upstream bandwidth limits, bytes per second; 0 means unlimited (the default). They shape the bytes of
 * blob transfers from upstreams (fills and range misses), never answers from the cache.
 */
export interface BandwidthConfig {
  /** Cap across every upstream together. YAML `maxBandwidth: 50MB/s`, env `REGMIRROR_MAX_BANDWIDTH`. */
  overall: number;
  /** Caps of single upstreams by namespace, within the overall one. YAML `upstreamBandwidth: {docker.io: 20MB/s}`. */
  perUpstream: Record<string, number>;
}

/** A fleet of mirrors sharing fills through Redis (issue 11). YAML `cluster: {advertise, token}`. */
export interface ClusterConfig {
  /**
   * The URL at which the other mirrors reach this one (e.g. `http://10.0.0.5:5000`); setting it turns
   * cluster mode on and needs `redis.url`. YAML `cluster.advertise`, env `REGMIRROR_ADVERTISE`, flag `--advertise`.
   */
  advertise?: string;
  /**
   * A shared secret that mirror-to-mirror requests carry as `Authorization: Bearer`; without it the peer
   * endpoint is open to anyone who can reach it. YAML `cluster.token`, env `REGMIRROR_CLUSTER_TOKEN`.
   */
  token?: string;
}

/** The disk cache's size policy (issue 10). */
export interface CacheConfig {
  /**
   * The cap: bytes, or a share of the filesystem that holds the data dir (default `80%`). YAML `maxSize`,
   * env `REGMIRROR_MAX_SIZE`, flag `--max-size`.
   */
  maxSize: MaxSize;
  /**
   * Eviction starts when the cache (committed bytes plus space reserved by fills) passes this fraction of
   * the cap (default 0.90: headroom for fills of unknown size and the index itself). YAML `evictHigh`.
   */
  evictHigh: number;
  /** …and stops at this fraction (default 0.80: evictions come in batches, not one per commit). YAML `evictLow`. */
  evictLow: number;
  /** Images whose manifests and blobs are never evicted and are fetched at start when missing. YAML `pin`. */
  pins: PinSpec[];
}

/** A resolved mirror configuration. */
export interface MirrorConfig {
  /** Listen address. */
  listen: { host: string; port: number };
  /** Cache directory (blobs, manifests, temp files). */
  dataDir: string;
  /** Upstreams in configuration order. */
  upstreams: UpstreamConfig[];
  /** Namespace of the upstream used when a request names none. */
  defaultNamespace: string;
  /** How long a tag → digest answer is trusted before it is revalidated upstream, ms. */
  tagTtlMs: number;
  /** pino log level. */
  logLevel: string;
  /** Redis URL for tag metadata; in-memory when unset. */
  redisUrl?: string;
  /** Bytes of manifests held in memory in front of the disk. */
  manifestMemoryBytes: number;
  /** Bytes of small, hot blobs held in memory in front of the disk (0 turns it off). */
  blobMemoryBytes: number;
  /** Largest blob held in memory. */
  blobMemoryItemBytes: number;
  /** Largest manifest accepted from an upstream, bytes. */
  maxManifestBytes: number;
  upstreamTimeouts: UpstreamTimeouts;
  fill: FillConfig;
  range: RangeConfig;
  /** Client connection limits (YAML `limits`). */
  limits: ClientLimits;
  /**
   * How long an upstream 404 for a tag or a manifest is remembered and answered without asking again,
   * ms (default 5 s: long enough to absorb a client's retry storm, short enough that a tag pushed a
   * moment later shows up). 0 turns it off. YAML `negativeTtl`, env `REGMIRROR_NEGATIVE_TTL`.
   */
  negativeTtlMs: number;
  /**
   * Cached content is shared by digest across repositories and namespaces by default (false): a blob
   * fetched for `ghcr.io` is served to a `docker.io` request naming the same digest. True keeps each
   * namespace's cached content to itself, for mirrors that front private upstreams where knowing a
   * digest must not be enough to read it: its own trees (`DATA_DIR/ns/<namespace>/`), memory-tier entries,
   * fills and index entries, under the one cap; peer fills are off in cluster mode (see store/layout.ts).
   * YAML `isolateNamespaces`, env `REGMIRROR_ISOLATE_NAMESPACES`.
   */
  isolateNamespaces: boolean;
  /** Redirect policy towards upstreams (YAML `trust`). */
  trust: TrustPolicy;
  /** Redis command deadline and breaker (YAML `redis: {url, timeout, breaker}`). */
  redis: RedisPolicy;
  /** Upstream bandwidth limits (YAML `maxBandwidth`, `upstreamBandwidth`). */
  bandwidth: BandwidthConfig;
  /** Cache size policy and pins. */
  cache: CacheConfig;
  /** Cluster mode (YAML `cluster`): on when `cluster.advertise` is set. */
  cluster: ClusterConfig;
}
