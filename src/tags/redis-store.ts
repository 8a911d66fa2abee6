/**
 * Tag metadata in Redis: one hash per tag (`regmirror:tag:<ns>/<repo>:<tag>`), one field per Accept set.
 * Redis trouble never fails a request: reads fall back to "unknown" (the mirror asks the upstream),
 * writes are best-effort, and both are logged.
 */
import { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import { tagKeyString, type TagEntry, type TagKey, type TagStore } from './store.js';

/** Tag hashes expire when unused this long (stale-if-error needs old entries; not forever). */
const RETENTION_SECONDS = 30 * 24 * 3600;

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

export class RedisTagStore implements TagStore {
  private readonly redis: Redis;

  constructor(url: string, private readonly log: Logger) {
    this.redis = new Redis(url, {
      lazyConnect: false,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: 1000,
      connectTimeout: 2000,
      retryStrategy: (times) => Math.min(times * 200, 2000),
    });
    this.redis.on('error', (err: Error) => this.log.warn({ err: err.message }, 'redis error'));
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

  private key(k: TagKey): string {
    return `regmirror:tag:${tagKeyString(k)}`;
  }

  async get(key: TagKey, acceptKey: string): Promise<TagEntry | undefined> {
    try {
      const raw = await this.redis.hget(this.key(key), acceptKey);
      return raw ? parseEntry(raw) : undefined;
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'redis read failed; treating tag as unknown');
      return undefined;
    }
  }

  async all(key: TagKey): Promise<Map<string, TagEntry>> {
    const out = new Map<string, TagEntry>();
    try {
      const raw = await this.redis.hgetall(this.key(key));
      for (const [field, value] of Object.entries(raw)) {
        const e = parseEntry(value);
        if (e) out.set(field, e);
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'redis read failed');
    }
    return out;
  }

  async set(key: TagKey, acceptKey: string, entry: TagEntry): Promise<void> {
    try {
      await this.redis.multi().hset(this.key(key), acceptKey, JSON.stringify(entry)).expire(this.key(key), RETENTION_SECONDS).exec();
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'redis write failed');
    }
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}
