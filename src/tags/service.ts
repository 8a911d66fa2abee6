/**
 * Tags: tag → digest per (upstream, repository, tag, Accept class). Within the TTL the answer costs no
 * upstream request; after it, one HEAD revalidates (concurrent requests share it; an unchanged digest
 * costs no GET). When the upstream is down, throttling or failing, the last known manifest is served
 * (stale-if-error) with a `Warning: 299` header; an upstream 404 is passed on and remembered for a few
 * seconds per (upstream, repository, tag, Accept class), so client retries stay off the upstream. Like
 * distribution's proxyTagService: remote first, local on failure.
 */
import { LRUCache } from 'lru-cache';
import { parseDigest, type Digest } from '../oci/digest.js';
import { isUpstreamOutage, NotFound } from '../oci/errors.js';
import { accepts, upstreamAccept, type AcceptSet } from '../oci/accept.js';
import type { StoredManifest } from '../store/manifests.js';
import { tagKeyString, type TagEntry, type TagKey, type TagStore } from './store.js';
import type { Upstream } from '../upstream/client.js';
import { headerDigest, type ManifestService } from '../manifests/service.js';
import { NegativeCache } from '../manifests/negative.js';
import { SingleFlight } from '../fill/flight.js';
import type { Metrics } from '../metrics.js';
import type { Logger } from '../log.js';
import type { RevalidationGate } from './gate.js';
import { HotAnswers } from './hot-answers.js';
import { confirmedAt } from './age.js';
import type { IncomingHttpHeaders } from 'node:http';

/** How a tag was answered. */
export type TagCache = 'hit' | 'revalidated' | 'miss' | 'stale';

/** A tag's answer: the manifest, how it was found, when it was confirmed, and the Warning for a stale answer. */
export interface TagAnswer {
  manifest: StoredManifest;
  cache: TagCache;
  /**
   * When a registry last confirmed the tag, ms since epoch (through a mirror upstream: when *its* registry
   * did). Sent to clients as `Age`, so a mirror tier below this one keeps one TTL of staleness, not two.
   */
  confirmedAt: number;
  warning?: string;
}

/** Longest Warning text passed on from a mirror upstream. */
const MAX_WARNING_LENGTH = 1024;

/** What the tag service needs. */
export interface TagServiceDeps {
  store: TagStore;
  manifests: ManifestService;
  metrics: Metrics;
  log: Logger;
  /** How long an answer is trusted before it is revalidated, ms. */
  ttlMs: number;
  /** Deadline of a revalidation HEAD; past it the last known answer is served stale, ms. */
  revalidateMs: number;
  /** How long an upstream 404 for a tag is remembered, ms (0: not at all). */
  negativeTtlMs: number;
  /** Cluster mode: one revalidation per tag per TTL across the fleet (others wait for its answer). */
  gate?: RevalidationGate;
}

/** Tag answers kept in memory for the synchronous hit path ({@link TagService.fresh}). */
const HOT_ANSWERS = 10_000;

/** After a failed revalidation, stale answers are given without asking the upstream for this long (at most the TTL). */
const OUTAGE_BACKOFF_MS = 10_000;

export class TagService {
  private readonly flights = new SingleFlight<TagAnswer>();
  /** Tag keys whose last revalidation failed, with the reason: answered stale without asking again for a short while. */
  private readonly outages = new LRUCache<string, string>({ max: 10_000, ttlAutopurge: false });
  /** Upstream 404s by tag key and Accept class. */
  private readonly missing: NegativeCache;
  /**
   * Answers inside their TTL, by tag key and Accept class, so a hit reads no store (the index or Redis)
   * and awaits nothing: the digest and when it was confirmed. The manifest itself stays in the
   * manifest store's memory tier, which bounds the bytes; a manifest no longer there takes the full path.
   */
  private readonly hot = new HotAnswers<{ digest: Digest; checkedAt: number }>(HOT_ANSWERS);

  constructor(private readonly deps: TagServiceDeps) {
    this.missing = new NegativeCache(deps.negativeTtlMs);
  }

  /**
   * The hit path, synchronous: the answer when it is inside its TTL and its manifest is in memory, else
   * undefined (then call {@link resolve}).
   */
  fresh(upstream: Upstream, repository: string, tag: string, accept: AcceptSet): TagAnswer | undefined {
    const h = this.hot.get(upstream.namespace, accept.key, repository, tag);
    if (h === undefined || Date.now() - h.checkedAt >= this.deps.ttlMs) return undefined;
    const manifest = this.deps.manifests.peek(h.digest, upstream.namespace);
    return manifest === undefined ? undefined : { manifest, cache: 'hit', confirmedAt: h.checkedAt };
  }

  /** Resolves a tag for a client with the given Accept set. */
  async resolve(upstream: Upstream, repository: string, tag: string, accept: AcceptSet): Promise<TagAnswer> {
    const { deps } = this;
    const key: TagKey = { namespace: upstream.namespace, repository, tag };
    const flightKey = `${tagKeyString(key)}\u0000${accept.key}`;
    const entry = await deps.store.get(key, accept.key);
    if (entry && Date.now() - entry.checkedAt < deps.ttlMs) {
      const d = parseDigest(entry.digest);
      if (d) {
        const { manifest, hit } = await deps.manifests.byDigest(upstream, repository, d);
        if (deps.store.shared !== true) this.hot.set(upstream.namespace, accept.key, repository, tag, { digest: d, checkedAt: entry.checkedAt });
        return { manifest, cache: hit ? 'hit' : 'miss', confirmedAt: entry.checkedAt };
      }
    }
    const known404 = this.missing.recall(flightKey);
    if (known404) throw known404;
    const outage = this.outages.get(flightKey);
    if (outage) {
      const stale = await this.staleAnswer(key, accept, entry, outage);
      if (stale) return stale;
    }
    try {
      return await this.flights.run(
        flightKey,
        () => this.revalidate(upstream, key, accept, entry, flightKey),
        () => deps.metrics.coalesced.inc({ kind: 'tag' }),
      );
    } catch (err) {
      if (err instanceof NotFound) this.missing.remember(flightKey, err);
      if (!isUpstreamOutage(err)) throw err;
      const reason = err.kind === 'upstream-throttled' ? 'TOOMANYREQUESTS' : 'UNAVAILABLE';
      this.outages.set(flightKey, reason, { ttl: Math.max(1, Math.min(OUTAGE_BACKOFF_MS, deps.ttlMs)) });
      const stale = await this.staleAnswer(key, accept, entry, reason);
      if (!stale) throw err;
      return stale;
    }
  }

  private async revalidate(upstream: Upstream, key: TagKey, accept: AcceptSet, entry: TagEntry | undefined, flightKey: string): Promise<TagAnswer> {
    const { gate, store, ttlMs, revalidateMs } = this.deps;
    if (!gate) return this.revalidateUpstream(upstream, key, accept, entry, flightKey);
    const theirs = await gate.before(flightKey, () => store.get(key, accept.key), (e) => Date.now() - e.checkedAt < ttlMs, revalidateMs);
    const d = theirs && parseDigest(theirs.digest);
    if (d) {
      // Another mirror of the cluster revalidated while we waited: its answer, no HEAD of ours.
      const { manifest } = await this.deps.manifests.byDigest(upstream, key.repository, d);
      return { manifest, cache: entry?.digest === manifest.digest ? 'revalidated' : 'miss', confirmedAt: theirs.checkedAt };
    }
    try {
      return await this.revalidateUpstream(upstream, key, accept, entry, flightKey);
    } finally {
      await gate.after(flightKey);
    }
  }

  private async revalidateUpstream(upstream: Upstream, key: TagKey, accept: AcceptSet, entry: TagEntry | undefined, flightKey: string): Promise<TagAnswer> {
    const { deps } = this;
    const { repository, tag } = key;
    const requestedAt = Date.now();
    const res = await upstream.request({
      kind: 'tag-head',
      method: 'HEAD',
      repository,
      path: `/v2/${repository}/manifests/${tag}`,
      headers: { accept: upstreamAccept(accept) },
      signal: AbortSignal.timeout(deps.revalidateMs),
    });
    if (res.status !== 200) {
      deps.metrics.tagRevalidations.inc({ result: res.status === 404 ? 'not-found' : 'error' });
      throw await upstream.error(res, 'tag-head');
    }
    await res.body.dump();
    const d = headerDigest(res.headers['docker-content-digest']);
    // Without a digest on HEAD, GET the tag and hash what it sends.
    const manifest = d ? (await deps.manifests.byDigest(upstream, repository, d)).manifest : await deps.manifests.byTag(upstream, repository, tag, accept);
    const unchanged = entry?.digest === manifest.digest;
    deps.metrics.tagRevalidations.inc({ result: unchanged ? 'unchanged' : entry ? 'changed' : 'new' });
    const tier = upstream.isMirror ? this.mirrorAnswer(res.headers, requestedAt) : undefined;
    const checkedAt = tier?.confirmedAt ?? Date.now();
    await deps.store.set(key, accept.key, { digest: manifest.digest, mediaType: manifest.mediaType, size: manifest.bytes.length, checkedAt });
    this.outages.delete(flightKey);
    this.missing.forget(flightKey);
    if (tier?.warning !== undefined) {
      // The tier above served it stale: so do we, saying so, and it is not taken as confirmed (see age.ts).
      deps.metrics.staleServed.inc({ upstream: key.namespace });
      deps.log.warn({ upstream: key.namespace, repository, tag, digest: manifest.digest, confirmedAt: new Date(checkedAt).toISOString() }, 'the mirror upstream served a stale tag; passing it on as stale');
      return { manifest, cache: 'stale', confirmedAt: checkedAt, warning: tier.warning };
    }
    return { manifest, cache: unchanged ? 'revalidated' : 'miss', confirmedAt: checkedAt };
  }

  /** A mirror upstream's tag answer: confirmed when its `Age` says, stale when it carries a `Warning`. */
  private mirrorAnswer(headers: IncomingHttpHeaders, requestedAt: number): { confirmedAt: number; warning?: string } {
    const raw = headers.warning;
    const warning = (Array.isArray(raw) ? raw.join(', ') : raw)?.replace(/[\r\n]+/g, ' ').slice(0, MAX_WARNING_LENGTH);
    const stale = warning !== undefined && warning.trim() !== '';
    const at = confirmedAt({ requestedAt, age: headers.age, stale, ttlMs: this.deps.ttlMs });
    return stale ? { confirmedAt: at, warning: warning! } : { confirmedAt: at };
  }

  /** The last known manifest of the tag that this client accepts, if it is still cached. */
  private async staleAnswer(key: TagKey, accept: AcceptSet, entry: TagEntry | undefined, reason: string): Promise<TagAnswer | undefined> {
    const { deps } = this;
    const candidates: TagEntry[] = entry ? [entry] : [];
    const all = [...(await deps.store.all(key)).values()].filter((e) => e !== entry && accepts(accept, e.mediaType));
    candidates.push(...all.sort((a, b) => b.checkedAt - a.checkedAt));
    for (const c of candidates) {
      const d = parseDigest(c.digest);
      const manifest = d && (await deps.manifests.cached(d, key.namespace));
      if (!manifest) continue;
      const at = new Date(c.checkedAt).toISOString();
      deps.metrics.staleServed.inc({ upstream: key.namespace });
      deps.log.warn({ upstream: key.namespace, repository: key.repository, tag: key.tag, digest: c.digest, confirmedAt: at, reason }, 'upstream failed; serving stale tag');
      return { manifest, cache: 'stale', confirmedAt: c.checkedAt, warning: `299 - "regmirror: upstream ${key.namespace} unavailable (${reason}); serving ${key.repository}:${key.tag} as last confirmed at ${at}"` };
    }
    return undefined;
  }
}
