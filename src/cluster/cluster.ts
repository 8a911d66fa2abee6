/**
 * Cluster mode (issue 11): a fleet of mirrors that fetches each digest from upstream once, with Redis as
 * the only coordination service and plain HTTP between mirrors. This builds the parts (Redis connection,
 * membership, directory, leases, peer client, fill-origin chooser, peer endpoint) and runs their lifecycle.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../log.js';
import type { ClusterMetrics } from './metrics.js';
import { ClusterRedis } from './redis.js';
import { Membership } from './membership.js';
import { Directory } from './directory.js';
import { Leases } from './lease.js';
import { PeerClient } from './peer-origin.js';
import { ClusterOrigins } from './fill-origin.js';
import { ClusterTagGate } from './tag-gate.js';

/** Options of {@link Cluster}. */
export interface ClusterOptions {
  redisUrl: string;
  /** This mirror's advertise URL. */
  advertise: string;
  token: string | undefined;
  /** Redis command deadline, ms. */
  redisTimeoutMs: number;
  /** Peer body idle deadline, ms. */
  bodyIdleMs: number;
  /** Fill lease TTL, ms (default 5 s: a dead holder's lease lapses that fast even with no takeover). */
  leaseTtlMs?: number;
  metrics: ClusterMetrics;
  log: Logger;
}

export class Cluster {
  readonly redis: ClusterRedis;
  readonly membership: Membership;
  readonly origins: ClusterOrigins;
  readonly peers: PeerClient;
  /** One tag revalidation per tag per TTL across the cluster. */
  readonly tagGate: ClusterTagGate;
  /** A random id of this process, so a restarted mirror at the same address never mistakes the old one's keys for its own. */
  readonly instance = randomBytes(6).toString('hex');

  constructor(readonly opts: ClusterOptions) {
    const log = opts.log.child({ component: 'cluster' });
    this.redis = new ClusterRedis({ url: opts.redisUrl, timeoutMs: opts.redisTimeoutMs, metrics: opts.metrics, log });
    this.membership = new Membership(this.redis, opts.advertise, this.instance);
    this.peers = new PeerClient({ token: opts.token, bodyIdleMs: opts.bodyIdleMs });
    this.tagGate = new ClusterTagGate(this.redis, opts.metrics, `${opts.advertise} ${this.instance}`);
    this.origins = new ClusterOrigins({
      leases: new Leases(this.redis, opts.metrics, `${opts.advertise} ${this.instance}`, opts.leaseTtlMs ?? 5_000),
      directory: new Directory(this.redis, opts.metrics),
      peers: this.peers,
      metrics: opts.metrics,
      log,
      self: opts.advertise,
    });
  }

  /** Connects (waiting at most `waitMs`; until Redis answers the mirror works alone) and joins. */
  async start(waitMs = 1000): Promise<boolean> {
    const up = await this.redis.ready(waitMs);
    this.membership.start();
    return up;
  }

  /** Leaves the cluster and closes connections. */
  async stop(): Promise<void> {
    await this.origins.settled();
    await this.membership.stop();
    this.redis.close();
    await this.peers.close();
  }
}
