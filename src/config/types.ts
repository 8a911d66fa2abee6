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
}
