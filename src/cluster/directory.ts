/**
 * The directory: which members hold a digest committed, as one small Redis set per digest (refreshed
 * expiry, so digests nobody asks for age out). Which member is *filling* a digest is its lease
 * (lease.ts). Entries can be stale (a member evicted the blob, or left): a peer that answers "miss" is
 * removed; a peer that cannot be reached is just skipped.
 */
import type { ClusterRedis } from './redis.js';
import type { ClusterMetrics } from './metrics.js';
import { holdersKey } from './keys.js';

/** A digest's holder set lives this long after its last addition. */
const HOLDERS_TTL_SECONDS = 7 * 24 * 3600;

export class Directory {
  constructor(private readonly redis: ClusterRedis, private readonly metrics: ClusterMetrics) {}

  /** Members holding `digest` committed; undefined when Redis cannot tell (an error is not a miss). */
  async holders(digest: string): Promise<string[] | undefined> {
    const got = await this.redis.call('dir.holders', (r) => r.smembers(holdersKey(digest)));
    if (!got.ok) {
      this.metrics.lookups.inc({ kind: 'directory', result: 'error' });
      return undefined;
    }
    this.metrics.lookups.inc({ kind: 'directory', result: got.value.length > 0 ? 'hit' : 'miss' });
    return got.value;
  }

  /** Records that `member` holds `digest` committed. */
  async add(digest: string, member: string): Promise<void> {
    const k = holdersKey(digest);
    // One round trip, no transaction: an expiry missed by a crash between the two only keeps the set longer.
    await this.redis.call('dir.add', async (r) => {
      const res = await r.pipeline().sadd(k, member).expire(k, HOLDERS_TTL_SECONDS).exec();
      const failed = res?.find(([err]) => err);
      if (failed) throw failed[0];
      return res;
    });
  }

  /** Removes `member` from `digest`'s holders (it answered that it does not have it). */
  async remove(digest: string, member: string): Promise<void> {
    await this.redis.call('dir.remove', (r) => r.srem(holdersKey(digest), member));
  }
}
