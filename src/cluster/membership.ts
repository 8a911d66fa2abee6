/**
 * Membership: a mirror registers its advertise URL under a heartbeat key with a TTL and renews it; a
 * mirror that stops deletes it, one that dies drops out when the TTL runs out.
 */
import type { ClusterRedis } from './redis.js';
import { memberKey } from './keys.js';

/** Options of {@link Membership}. */
export interface MembershipOptions {
  /** Heartbeat key TTL, ms (default 15 s); the heartbeat runs at a third of it. */
  ttlMs?: number;
}

export class Membership {
  private timer: NodeJS.Timeout | undefined;
  private readonly ttlMs: number;

  constructor(private readonly redis: ClusterRedis, readonly advertise: string, readonly instance: string, opts: MembershipOptions = {}) {
    this.ttlMs = opts.ttlMs ?? 15_000;
  }

  /** Registers now and keeps the heartbeat going until {@link stop}. */
  start(): void {
    void this.beat();
    this.timer = setInterval(() => void this.beat(), Math.max(100, Math.floor(this.ttlMs / 3)));
    this.timer.unref();
  }

  private async beat(): Promise<void> {
    // PSETEX rather than SET PX: the same effect, and Redis' commandstats tell heartbeats from lease takes.
    await this.redis.call('member.beat', (r) => r.psetex(memberKey(this.advertise), this.ttlMs, this.instance));
  }

  /** True when `advertise` has a live heartbeat; undefined when Redis cannot tell. */
  async alive(advertise: string): Promise<boolean | undefined> {
    const got = await this.redis.call('member.alive', (r) => r.exists(memberKey(advertise)));
    return got.ok ? got.value === 1 : undefined;
  }

  /** Stops the heartbeat and leaves the cluster (deletes the key if it is still ours). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.redis.call('member.leave', (r) => r.eval(DEL_IF_MINE, 1, memberKey(this.advertise), this.instance) as Promise<number>);
  }
}

/** Deletes KEYS[1] if its value is ARGV[1] (a newer instance at the same address keeps its key). */
export const DEL_IF_MINE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";
