/**
 * The cluster's Redis connection. Every command has a deadline (ioredis `commandTimeout`) and no offline
 * queue, so when Redis is slow or down a call fails at once or within the deadline and the caller works
 * alone. {@link ClusterRedis.call} never throws: it answers `{ok: false}` on any error, so a caller cannot
 * mistake an error for a miss (a Redis nil is a value, `null`, with `ok: true`).
 */
import type { Redis } from 'ioredis';
import { failFastRedis } from '../redis-client.js';
import type { Logger } from '../log.js';
import type { ClusterMetrics } from './metrics.js';

/** A Redis answer: the value (null for a nil), or a failure. */
export type RedisResult<T> = { ok: true; value: T } | { ok: false };

/** Options of {@link ClusterRedis}. */
export interface ClusterRedisOptions {
  url: string;
  /** Deadline of one command, ms (config `redis.timeout`, default 250). */
  timeoutMs: number;
  metrics: ClusterMetrics;
  log: Logger;
}

export class ClusterRedis {
  readonly redis: Redis;
  private lastWarn = 0;

  constructor(private readonly opts: ClusterRedisOptions) {
    this.redis = failFastRedis(opts.url, opts.timeoutMs);
    this.redis.on('error', (err: Error) => this.warn(err, 'connection'));
  }

  /** True while connected: calls are tried only then (otherwise they fail without waiting). */
  get up(): boolean {
    return this.redis.status === 'ready';
  }

  /** Runs one Redis operation under its deadline, timing it; errors become `{ok: false}`. */
  async call<T>(op: string, fn: (r: Redis) => Promise<T>): Promise<RedisResult<T>> {
    const t0 = performance.now();
    if (!this.up) {
      this.opts.metrics.redisDuration.observe({ op, result: 'error' }, 0);
      return { ok: false };
    }
    try {
      const value = await fn(this.redis);
      this.opts.metrics.redisDuration.observe({ op, result: value === null ? 'nil' : 'ok' }, (performance.now() - t0) / 1000);
      return { ok: true, value };
    } catch (err) {
      this.opts.metrics.redisDuration.observe({ op, result: 'error' }, (performance.now() - t0) / 1000);
      this.warn(err as Error, op);
      return { ok: false };
    }
  }

  /** Resolves once connected, or after `ms` either way. */
  async ready(ms: number): Promise<boolean> {
    if (this.up) return true;
    return new Promise<boolean>((resolve) => {
      const t = setTimeout(() => {
        this.redis.off('ready', onReady);
        resolve(false);
      }, ms);
      const onReady = () => {
        clearTimeout(t);
        resolve(true);
      };
      this.redis.once('ready', onReady);
    });
  }

  /** Logs Redis trouble at most once a second (an outage would otherwise log every request). */
  private warn(err: Error, op: string): void {
    const now = Date.now();
    if (now - this.lastWarn < 1000) return;
    this.lastWarn = now;
    this.opts.log.warn({ err: err.message, op }, 'cluster redis unavailable; working alone');
  }

  close(): void {
    this.redis.disconnect();
  }
}
