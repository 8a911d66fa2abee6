/**
 * Tag metadata in Redis: one hash per tag (`regmirror:tag:<ns>/<repo>:<tag>`), one field per Accept set,
 * with a copy of everything this process learnt kept in a local store.
 *
 * Redis trouble never fails a request, and never makes one wait on Redis for long:
 * - every command has a deadline (`redis.timeoutMs`); a command past it counts as a failure;
 * - after `redis.breaker.failureThreshold` consecutive failures the breaker opens and, for
 *   `redis.breaker.cooldownMs`, requests take the local path without touching Redis; then one request
 *   probes Redis again;
 * - reads that cannot use Redis answer from the local copy, so an outage still serves what this
 *   process knew; writes always go to the local copy;
 * - a Redis nil is a miss; only a key whose Redis read answered (a miss, or a stale entry) is written
 *   back to Redis: a read that failed never leads to a write (which would only wait on Redis again);
 * - one log line per state change (unavailable / back), never one per request.
 */
import type { Redis } from 'ioredis';
import { failFastRedis } from '../redis-client.js';
import { LRUCache } from 'lru-cache';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { RedisPolicy } from '../config/types.js';
import { Breaker, type BreakerState } from './redis-breaker.js';
import { MemoryTagStore, tagKeyString, type TagEntry, type TagKey, type TagStore } from './store.js';

/** Tag hashes expire when unused this long (stale-if-error needs old entries; not forever). */
const RETENTION_SECONDS = 30 * 24 * 3600;

/** While Redis cannot be reached, a reminder line at most this often. */
const CONNECTION_LOG_INTERVAL_MS = 10_000;

/** Redis operations, as metric labels. */
type Op = 'get' | 'all' | 'set';

/** Thrown instead of sending a command while the breaker is open. */
class BreakerOpen extends Error {
  constructor() {
    super('redis breaker open');
  }
}

function parseEntry(raw: string): TagEntry | undefined {
  try {
    const e = JSON.parse(raw) as Partial<TagEntry>;
    if (typeof e.digest === 'string' && typeof e.mediaType === 'string' && typeof e.size === 'number' && typeof e.checkedAt === 'number') {
      return { digest: e.digest, mediaType: e.mediaType, size: e.size, checkedAt: e.checkedAt };
    }
  } catch {
    /* a corrupt entry counts as missing */
  }
  return undefined;
}

/** What a Redis tag store needs. */
export interface RedisTagStoreOptions {
  url: string;
  policy: RedisPolicy;
  log: Logger;
  metrics: Metrics;
  /** The local copy (default: an in-memory store). */
  local?: TagStore;
}

export class RedisTagStore implements TagStore {
  readonly shared = true;
  private readonly redis: Redis;
  private readonly breaker: Breaker;
  private readonly local: TagStore;
  private readonly log: Logger;
  private readonly metrics: Metrics;
  private readonly cooldownMs: number;
  /** When this connection outage was last logged (0: not in an outage). */
  private connectionLoggedAt = 0;
  /** Keys whose last Redis read failed: their next write goes to the local copy only. */
  private readonly readFailed = new LRUCache<string, true>({ max: 10_000 });

  constructor(opts: RedisTagStoreOptions) {
    const { policy } = opts;
    this.log = opts.log;
    this.metrics = opts.metrics;
    this.local = opts.local ?? new MemoryTagStore();
    this.cooldownMs = policy.breaker.cooldownMs;
    this.redis = failFastRedis(opts.url, policy.timeoutMs);
    this.breaker = new Breaker(policy.breaker, (to, from, cause) => this.changed(to, from, cause));
    // Connection errors repeat on every reconnect attempt: the first of an outage is logged, then a
    // reminder at most every CONNECTION_LOG_INTERVAL_MS, the rest at debug.
    this.redis.on('error', (err: Error) => {
      const now = Date.now();
      if (now - this.connectionLoggedAt < CONNECTION_LOG_INTERVAL_MS) return this.log.debug({ err: err.message }, 'redis connection error');
      const first = this.connectionLoggedAt === 0;
      this.connectionLoggedAt = now;
      this.log.warn({ err: err.message }, first ? 'redis error: cannot reach Redis; reconnecting' : 'redis error: still cannot reach Redis; reconnecting');
    });
    this.redis.on('ready', () => {
      this.connectionLoggedAt = 0;
      this.updateUp();
    });
    this.redis.on('close', () => this.updateUp());
    this.updateUp();
  }

  private updateUp(): void {
    this.metrics.redisUp.set(this.redis.status === 'ready' && this.breaker.state === 'closed' ? 1 : 0);
  }

  private changed(to: BreakerState, from: BreakerState, cause: unknown): void {
    this.updateUp();
    if (to === 'open' && from === 'closed') {
      const err = cause instanceof Error ? cause.message : String(cause);
      this.log.warn({ err, cooldownMs: this.cooldownMs }, 'redis unavailable: tags take the local path until a probe succeeds');
    } else if (to === 'closed') {
      this.log.info('redis available again');
    }
    // half-open and a failed probe (half-open → open) are not news: the outage goes on.
  }

  /** Resolves once connected (or rejects after `timeoutMs`). */
  async ready(timeoutMs = 5000): Promise<void> {
    if (this.redis.status === 'ready') return;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('redis: not ready in time')), timeoutMs);
      this.redis.once('ready', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** The breaker's state (for readiness reports). */
  get state(): BreakerState {
    return this.breaker.state;
  }

  /** Runs one Redis command under the breaker, timing it and counting failures. */
  private async run<T>(op: Op, command: () => Promise<T>): Promise<T> {
    if (!this.breaker.allow()) throw new BreakerOpen();
    const end = this.metrics.redisOperationDuration.startTimer({ op });
    try {
      const out = await command();
      this.breaker.success();
      return out;
    } catch (err) {
      this.metrics.redisErrors.inc({ op });
      this.breaker.failure(err);
      this.log.debug({ op, err: (err as Error).message }, 'redis command failed');
      throw err;
    } finally {
      end();
    }
  }

  private key(k: TagKey): string {
    return `regmirror:tag:${tagKeyString(k)}`;
  }

  async get(key: TagKey, acceptKey: string): Promise<TagEntry | undefined> {
    let raw: string | null;
    try {
      raw = await this.run('get', () => this.redis.hget(this.key(key), acceptKey));
    } catch {
      this.readFailed.set(tagKeyString(key), true);
      return this.local.get(key, acceptKey);
    }
    this.readFailed.delete(tagKeyString(key));
    const entry = raw ? parseEntry(raw) : undefined;
    // What this process read from Redis it knows too: kept locally for the next outage.
    if (entry) await this.local.set(key, acceptKey, entry);
    return entry;
  }

  async all(key: TagKey): Promise<Map<string, TagEntry>> {
    const local = await this.local.all(key);
    let raw: Record<string, string>;
    try {
      raw = await this.run('all', () => this.redis.hgetall(this.key(key)));
    } catch {
      return local;
    }
    // Redis is the shared truth; what only this process knew fills the gaps (for stale answers).
    for (const [field, value] of Object.entries(raw)) {
      const e = parseEntry(value);
      if (e) local.set(field, e);
    }
    return local;
  }

  async set(key: TagKey, acceptKey: string, entry: TagEntry): Promise<void> {
    await this.local.set(key, acceptKey, entry);
    const k = tagKeyString(key);
    if (this.readFailed.has(k)) {
      this.readFailed.delete(k);
      return;
    }
    try {
      await this.run('set', () => this.redis.multi().hset(this.key(key), acceptKey, JSON.stringify(entry)).expire(this.key(key), RETENTION_SECONDS).exec());
    } catch {
      /* counted and reflected in the breaker; the local copy has it */
    }
  }

  async close(): Promise<void> {
    this.redis.disconnect();
    await this.local.close();
  }
}
