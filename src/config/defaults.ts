import type { MirrorConfig } from './types.js';

/** Docker Hub's registry API endpoint. */
export const DOCKER_HUB_URL = 'https://registry-1.docker.io';

/** The embedded defaults: `npm start` mirrors Docker Hub on 0.0.0.0:5000 with the cache in ./data. */
export function defaultConfig(): MirrorConfig {
  return {
    listen: { host: '0.0.0.0', port: 5000 },
    dataDir: './data',
    upstreams: [{ namespace: 'docker.io', url: DOCKER_HUB_URL, libraryPrefix: true }],
    defaultNamespace: 'docker.io',
    tagTtlMs: 60_000,
    logLevel: 'info',
    manifestMemoryBytes: 64 * 2 ** 20,
    blobMemoryBytes: 64 * 2 ** 20,
    blobMemoryItemBytes: 2 ** 20,
    maxManifestBytes: 4 * 2 ** 20,
    upstreamTimeouts: { connectMs: 10_000, headersMs: 30_000, bodyIdleMs: 30_000, revalidateMs: 5_000 },
    fill: { maxConcurrent: 64, queueTimeoutMs: 60_000, abortWhenOrphaned: false },
    range: { maxRanges: 2048, fillOnMiss: false, upstreamParallelism: 4, fillAfterMisses: 3, maxAmplification: 1 },
    // nginx's defaults: client_header_timeout 60s, keepalive_timeout 75s, send_timeout 60s.
    limits: {
      headersTimeoutMs: 60_000,
      keepAliveTimeoutMs: 75_000,
      writeIdleTimeoutMs: 60_000,
      maxConnections: 4096,
      transferBufferBytes: 256 * 2 ** 20,
      shutdownTimeoutMs: 30_000,
    },
    negativeTtlMs: 5_000,
    isolateNamespaces: false,
    trust: { allowRedirectHosts: [], allowPrivateRedirects: false },
    redis: { timeoutMs: 250, breaker: { failureThreshold: 3, cooldownMs: 5_000 } },
    bandwidth: { overall: 0, perUpstream: {} },
    cluster: {},
  };
}
