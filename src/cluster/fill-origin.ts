/**
 * Where a cluster fill reads from, and how it survives its source dying. For a digest this mirror misses:
 *
 * 1. Take the lease (SET NX PX GET, one command).
 *    - Taken: look the digest up in the directory; a peer holding it committed is read from, else the
 *      upstream. The lease is renewed while the fill runs and released after the commit is recorded.
 *    - Held by a peer: join that peer's fill through its peer endpoint (bytes stream as they arrive).
 *    - Redis failed: work alone (the upstream, no lease, and no directory write afterwards).
 * 2. When a peer fails mid-stream (connection lost, stalled, answered a miss), take the lease over from
 *    exactly that holder (compare-and-set, so of several survivors one wins); the winner continues from
 *    the upstream with `Range: bytes=<written>-`, the others continue from the winner the same way.
 *    The local fill sees one body: its hash and temp file carry on, clients reading it notice nothing.
 * 3. A fill that fails verification after a peer contributed bytes counts against that peer, which is
 *    avoided for a while (the next fill goes upstream instead).
 *
 * Upstream failures stay the fill's, as without a cluster.
 */
import type { Digest } from '../oci/digest.js';
import { VerificationFailed } from '../oci/errors.js';
import type { FillBody } from '../fill/blob-fill.js';
import type { FillOriginChooser, FillPlan, UpstreamFillSource } from '../blobs/service.js';
import type { Logger } from '../log.js';
import type { ClusterMetrics } from './metrics.js';
import type { Directory } from './directory.js';
import type { Holder, Leases } from './lease.js';
import { PeerError, type PeerClient } from './peer-origin.js';

/** How long a peer that sent wrong bytes is avoided, ms. */
const AVOID_MS = 60_000;
/** Most source switches of one fill before it stops asking peers and reads the upstream alone. */
const MAX_SWITCHES = 4;

/** What cluster fills need. */
export interface ClusterOriginDeps {
  leases: Leases;
  directory: Directory;
  peers: PeerClient;
  metrics: ClusterMetrics;
  log: Logger;
  /** This mirror's advertise URL (never asked as a peer). */
  self: string;
}

/** One byte source of a fill: an upstream body, or a peer's. */
interface Source {
  body: FillBody;
  /** The peer read from; undefined for the upstream. */
  peer?: Holder;
}

export class ClusterOrigins implements FillOriginChooser {
  private readonly avoided = new Map<string, number>();
  /** Fills whose end (directory record, lease release) is being written to Redis. */
  private readonly ending = new Set<Promise<void>>();

  constructor(private readonly deps: ClusterOriginDeps) {}

  /** True while `url` is avoided (it sent bytes that failed verification). */
  avoids(url: string): boolean {
    const until = this.avoided.get(url);
    if (until === undefined) return false;
    if (Date.now() < until) return true;
    this.avoided.delete(url);
    return false;
  }

  choose(digest: Digest, upstream: UpstreamFillSource): FillPlan {
    const run = new ClusterFill(digest, upstream, this.deps, this);
    return {
      origin: (signal) => run.open(signal),
      done: (err) => {
        const p = run.done(err).finally(() => this.ending.delete(p));
        this.ending.add(p);
        return p;
      },
    };
  }

  /** Resolves once every ended fill has recorded its commit and released its lease (before Redis closes). */
  async settled(): Promise<void> {
    await Promise.all([...this.ending]);
  }

  /** A peer sent bytes that failed verification: count it and keep away from it for a while. */
  blame(peer: string, reason: string): void {
    this.deps.metrics.peerFailures.inc({ reason });
    this.avoided.set(peer, Date.now() + AVOID_MS);
    this.deps.log.warn({ peer, reason, avoidMs: AVOID_MS }, 'peer sent bad bytes; avoiding it');
  }
}

/** The state of one fill in cluster mode. */
class ClusterFill {
  private holding = false;
  private alone = false;
  private renewTimer: NodeJS.Timeout | undefined;
  private written = 0;
  private size: number | undefined;
  private readonly peersUsed = new Set<string>();

  constructor(
    private readonly digest: Digest,
    private readonly upstream: UpstreamFillSource,
    private readonly deps: ClusterOriginDeps,
    private readonly origins: ClusterOrigins,
  ) {}

  /** The fill's origin: opens the first source, and returns one body over every source it will use. */
  async open(signal: AbortSignal): Promise<FillBody> {
    const first = await this.first(signal);
    this.size = first.body.size;
    this.deps.metrics.fillOrigins.inc({ origin: first.peer ? 'peer' : this.alone ? 'alone' : 'upstream' });
    let current = first;
    const self = this;
    async function* chunks(): AsyncGenerator<Uint8Array> {
      let switches = 0;
      for (;;) {
        try {
          for await (const c of current.body.chunks) {
            self.written += c.length;
            if (current.peer) self.deps.metrics.peerBytes.inc(c.length);
            yield c;
          }
          if (!current.peer || self.size === undefined || self.written >= self.size) return;
          throw new PeerError(current.peer.url, 'short-body', `body ended after ${self.written} of ${self.size} bytes`);
        } catch (err) {
          const dead = current.peer;
          if (signal.aborted || !dead || err instanceof VerificationFailed) throw err;
          const reason = err instanceof PeerError ? err.reason : 'body';
          self.deps.metrics.peerFailures.inc({ reason });
          self.deps.log.warn({ digest: self.digest.value, peer: dead.url, reason, err: (err as Error).message, written: self.written }, 'peer transfer failed; continuing elsewhere');
          current.body.destroy();
          current = await self.next(dead, signal, ++switches > MAX_SWITCHES);
        }
      }
    }
    return { size: first.body.size, upstream: first.peer ? 'peer' : first.body.upstream, chunks: chunks(), destroy: (e) => current.body.destroy(e) };
  }

  /** The first source: see the module comment. */
  private async first(signal: AbortSignal): Promise<Source> {
    const { leases, directory } = this.deps;
    const lease = await leases.take(this.digest.value);
    if (lease.kind === 'error') {
      this.alone = true;
      return { body: await this.upstream.whole(signal) };
    }
    if (lease.kind === 'taken') {
      this.hold();
      const holders = await directory.holders(this.digest.value);
      for (const url of holders ?? []) {
        if (url === this.deps.self || this.origins.avoids(url)) continue;
        const got = await this.tryPeer({ url, value: url }, signal, true);
        if (got) return got;
      }
      return { body: await this.upstream.whole(signal) };
    }
    const holder = lease.holder;
    if (holder.url !== this.deps.self && !this.origins.avoids(holder.url)) {
      const got = await this.tryPeer(holder, signal, false);
      if (got) return got;
    }
    // A dead holder's lease is taken over; an avoided one is left alone (it is alive) and we read the upstream.
    return this.next(holder, signal, this.origins.avoids(holder.url));
  }

  /** Opens a peer from the bytes written so far; undefined (counted) when it cannot serve. */
  private async tryPeer(peer: Holder, signal: AbortSignal, committed: boolean): Promise<Source | undefined> {
    try {
      const body = await this.deps.peers.open(peer.url, this.digest, this.written, signal, committed);
      if (this.size !== undefined && body.size !== undefined && body.size !== this.size) {
        body.destroy();
        throw new PeerError(peer.url, 'content-range', `announced ${body.size} bytes, not ${this.size}`);
      }
      this.peersUsed.add(peer.url);
      return { body: { size: body.size, upstream: 'peer', chunks: body.chunks, destroy: body.destroy }, peer };
    } catch (err) {
      if (signal.aborted) throw err;
      const reason = err instanceof PeerError ? err.reason : 'connect';
      this.deps.metrics.peerFailures.inc({ reason });
      // A holder that says it does not have the blob is stale in the directory.
      if (committed && reason === 'miss') void this.deps.directory.remove(this.digest.value, peer.url);
      this.deps.log.info({ digest: this.digest.value, peer: peer.url, reason, err: (err as Error).message }, 'peer cannot serve the blob');
      return undefined;
    }
  }

  /**
   * The source after `dead` failed: if we hold the lease, the upstream; else take the lease over from
   * `dead` (then the upstream) or join whoever took it first. From the bytes written, always.
   */
  private async next(dead: Holder, signal: AbortSignal, giveUp: boolean): Promise<Source> {
    for (let i = 0; i < MAX_SWITCHES && !this.holding && !this.alone && !giveUp; i++) {
      const lease = await this.deps.leases.takeOver(this.digest.value, dead);
      if (lease.kind === 'error') break;
      if (lease.kind === 'taken') {
        this.hold();
        break;
      }
      const h = lease.holder;
      if (h.url === this.deps.self || this.origins.avoids(h.url)) break;
      const got = await this.tryPeer(h, signal, false);
      if (got) {
        this.deps.log.info({ digest: this.digest.value, peer: h.url, from: this.written }, 'continuing from the new lease holder');
        this.deps.metrics.takeovers.inc({ to: 'peer', mode: this.written > 0 ? 'resume' : 'start' });
        return got;
      }
      dead = h;
    }
    this.deps.log.info({ digest: this.digest.value, from: this.written, holding: this.holding, alone: this.alone, giveUp }, 'continuing from the upstream');
    this.deps.metrics.takeovers.inc({ to: 'upstream', mode: this.written > 0 ? 'resume' : 'start' });
    return { body: this.written > 0 ? await this.upstream.from(this.written, signal) : await this.upstream.whole(signal) };
  }

  /** We hold the lease: renew it while the fill runs. */
  private hold(): void {
    this.holding = true;
    const every = Math.max(100, Math.floor(this.deps.leases.ttlMs / 3));
    this.renewTimer = setInterval(() => {
      void this.deps.leases.renew(this.digest.value).then((mine) => {
        if (!mine && this.renewTimer) {
          // Lost (expired during a Redis outage, or taken over): stop renewing; the fill carries on.
          clearInterval(this.renewTimer);
          this.renewTimer = undefined;
        }
      });
    }, every);
    this.renewTimer.unref();
  }

  /** The fill ended: record the commit, then release the lease (in that order, so a late miss finds the holder). */
  async done(err: Error | undefined): Promise<void> {
    clearInterval(this.renewTimer);
    this.renewTimer = undefined;
    if (err instanceof VerificationFailed) for (const p of this.peersUsed) this.origins.blame(p, err.verifyReason);
    if (!err && !this.alone) await this.deps.directory.add(this.digest.value, this.deps.self);
    if (this.holding) await this.deps.leases.release(this.digest.value);
  }
}
