/** ioredis, loaded on first use: a mirror without Redis never loads it (about 8 MiB of resident memory). */
import { createRequire } from 'node:module';
import type { Redis } from 'ioredis';

/** The ioredis client class, required the first time a Redis connection is made. */
export function redisClass(): typeof Redis {
  return (createRequire(import.meta.url)('ioredis') as typeof import('ioredis')).Redis;
}

/**
 * A client that fails fast: no offline queue and no per-command retries (while disconnected a command
 * fails at once and the caller's local path answers instead of queueing behind a reconnect), every
 * command bounded by `timeoutMs`, reconnects backing off up to 2 s.
 */
export function failFastRedis(url: string, timeoutMs: number): Redis {
  return new (redisClass())(url, {
    lazyConnect: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: timeoutMs,
    connectTimeout: Math.max(1000, timeoutMs * 4),
    retryStrategy: (times) => Math.min(times * 200, 2000),
  });
}
