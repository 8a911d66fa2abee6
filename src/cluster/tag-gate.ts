/**
 * One tag revalidation per tag per TTL per cluster (issue 11, item 4). Tag answers are already shared
 * through Redis (the tag store); what is left is the moment the TTL runs out, when every mirror would send
 * its own HEAD. Before revalidating, a mirror takes a short lock (SET NX PX); a mirror that finds the lock
 * held waits for the holder's fresh answer to appear in the tag store (polling it, for at most the
 * revalidation deadline) and uses it. No answer in time, the lock gone, or Redis failing: it revalidates
 * itself, as without a cluster.
 */
import type { TagEntry } from '../tags/store.js';
import type { RevalidationGate } from '../tags/gate.js';
import type { ClusterRedis } from './redis.js';
import type { ClusterMetrics } from './metrics.js';
import { DEL_IF_MINE } from './membership.js';

/** How often a waiter looks for the holder's answer, ms. */
const POLL_MS = 50;

const lockKey = (key: string) => `regmirror:cluster:reval:${key}`;

export class ClusterTagGate implements RevalidationGate {
  private readonly held = new Set<string>();

  constructor(private readonly redis: ClusterRedis, private readonly metrics: ClusterMetrics, private readonly self: string) {}

  async before(key: string, reread: () => Promise<TagEntry | undefined>, fresh: (e: TagEntry) => boolean, deadlineMs: number): Promise<TagEntry | undefined> {
    const k = lockKey(key);
    const got = await this.redis.call('tag.lock', (r) => r.set(k, this.self, 'PX', deadlineMs + 1000, 'NX'));
    if (!got.ok) {
      this.metrics.lookups.inc({ kind: 'tag-lock', result: 'error' });
      return undefined;
    }
    if (got.value === 'OK') {
      this.metrics.lookups.inc({ kind: 'tag-lock', result: 'miss' });
      // Another mirror may have revalidated and unlocked between our stale read and our lock: look again.
      const now = await reread();
      if (now && fresh(now)) {
        await this.redis.call('tag.unlock', (r) => r.eval(DEL_IF_MINE, 1, k, this.self) as Promise<number>);
        return now;
      }
      this.held.add(key);
      return undefined;
    }
    this.metrics.lookups.inc({ kind: 'tag-lock', result: 'hit' });
    const until = performance.now() + deadlineMs;
    while (performance.now() < until) {
      await new Promise((r) => setTimeout(r, POLL_MS));
      const e = await reread();
      if (e && fresh(e)) return e;
      const still = await this.redis.call('tag.locked', (r) => r.exists(k));
      if (!still.ok || still.value === 0) {
        // The holder finished without a fresh answer (failed), or Redis went away: ask ourselves.
        const last = await reread();
        return last && fresh(last) ? last : undefined;
      }
    }
    return undefined;
  }

  async after(key: string): Promise<void> {
    if (!this.held.delete(key)) return;
    await this.redis.call('tag.unlock', (r) => r.eval(DEL_IF_MINE, 1, lockKey(key), this.self) as Promise<number>);
  }
}
