/**
 * Fill leases: before a mirror goes upstream for a digest it takes the digest's lease (SET NX PX); the
 * holder renews it while its fill runs and releases it at the end. A lease names its holder
 * (`<advertise> <instance>`), so a mirror that misses the digest knows whose fill to join, and a mirror
 * whose source died can take the lease over from exactly that holder (compare-and-set), so that of several
 * survivors one goes upstream and the others join it.
 */
import type { ClusterRedis } from './redis.js';
import type { ClusterMetrics } from './metrics.js';
import { leaseKey } from './keys.js';
import { DEL_IF_MINE } from './membership.js';

/** Who holds a lease. */
export interface Holder {
  /** The holder's advertise URL. */
  url: string;
  /** The raw lease value (for a takeover from exactly this holder). */
  value: string;
}

/** What taking a lease gave: ours, someone else's, or no answer (Redis failed: work alone). */
export type LeaseOutcome = { kind: 'taken' } | { kind: 'held'; holder: Holder } | { kind: 'error' };

/** Sets KEYS[1] to ARGV[2] (PX ARGV[3]) if it is absent or still ARGV[1]; returns nil when set, else the holder. */
const TAKE_OVER = "local v = redis.call('GET', KEYS[1]) if v == false or v == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return false end return v";
/** Extends KEYS[1] by ARGV[2] ms if its value is ARGV[1]. */
const RENEW = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0";

export function parseHolder(value: string): Holder {
  const sp = value.indexOf(' ');
  return { url: sp < 0 ? value : value.slice(0, sp), value };
}

export class Leases {
  constructor(
    private readonly redis: ClusterRedis,
    private readonly metrics: ClusterMetrics,
    /** This member's lease value: `<advertise> <instance>`. */
    readonly self: string,
    /** Lease TTL, ms: a dead holder's lease lapses after this long at most. */
    readonly ttlMs: number,
  ) {}

  private outcome(got: { ok: true; value: string | null } | { ok: false }): LeaseOutcome {
    if (!got.ok) {
      this.metrics.lookups.inc({ kind: 'lease', result: 'error' });
      return { kind: 'error' };
    }
    // A nil is a miss: nobody held the lease, and now we do.
    this.metrics.lookups.inc({ kind: 'lease', result: got.value === null ? 'miss' : 'hit' });
    return got.value === null ? { kind: 'taken' } : { kind: 'held', holder: parseHolder(got.value) };
  }

  /** Takes the lease of `digest` if nobody holds it (one command: SET NX PX GET). */
  async take(digest: string): Promise<LeaseOutcome> {
    return this.outcome(await this.redis.call('lease.take', (r) => r.call('SET', leaseKey(digest), this.self, 'NX', 'PX', this.ttlMs, 'GET') as Promise<string | null>));
  }

  /** Takes the lease over from `dead` (whose transfer failed) if it still holds it, or if nobody does. */
  async takeOver(digest: string, dead: Holder): Promise<LeaseOutcome> {
    return this.outcome(await this.redis.call('lease.takeover', (r) => r.eval(TAKE_OVER, 1, leaseKey(digest), dead.value, this.self, this.ttlMs) as Promise<string | null>));
  }

  /** Extends our lease; false when it is no longer ours (or Redis failed). */
  async renew(digest: string): Promise<boolean> {
    const got = await this.redis.call('lease.renew', (r) => r.eval(RENEW, 1, leaseKey(digest), this.self, this.ttlMs) as Promise<number>);
    return got.ok && got.value === 1;
  }

  /** Releases our lease (a no-op if it is no longer ours). */
  async release(digest: string): Promise<void> {
    await this.redis.call('lease.release', (r) => r.eval(DEL_IF_MINE, 1, leaseKey(digest), this.self) as Promise<number>);
  }
}
