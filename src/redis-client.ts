/** ioredis, loaded on first use: a mirror without Redis never loads it (about 8 MiB of resident memory). */
import { createRequire } from 'node:module';
import type { Redis } from 'ioredis';

/** The ioredis client class, required the first time a Redis connection is made. */
export function redisClass(): typeof Redis {
  return (createRequire(import.meta.url)('ioredis') as typeof import('ioredis')).Redis;
}
