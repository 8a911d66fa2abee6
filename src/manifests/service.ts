/**
 * Manifests by digest: from the store (memory, then disk), else fetched from the upstream once
 * (concurrent requests share the fetch), verified against the digest that was asked for, stored. An
 * upstream 404 is remembered for a few seconds per (upstream, repository, digest), so retry storms stay
 * off the upstream. Like distribution's proxyManifestStore: a local store, a remote, and the policy
 * between them.
 */
import { digestOf, parseDigest, type Digest } from '../oci/digest.js';
import { DiskError, NotFound, VerificationFailed } from '../oci/errors.js';
import { MANIFEST_TYPES, upstreamAccept, type AcceptSet } from '../oci/accept.js';
import type { ManifestStore, StoredManifest } from '../store/manifests.js';
import { contentLength, type Upstream, type UpstreamResponse } from '../upstream/client.js';
import { readBounded } from '../upstream/body.js';
import { SingleFlight } from '../fill/flight.js';
import type { Metrics } from '../metrics.js';
import type { Logger } from '../log.js';
import { NegativeCache } from './negative.js';

/** Accept sent when fetching by digest: the bytes are fixed, so every manifest type is welcome. */
const DIGEST_ACCEPT = [...MANIFEST_TYPES, '*/*'].join(', ');

/** What the manifest service needs. */
export interface ManifestServiceDeps {
  store: ManifestStore;
  metrics: Metrics;
  log: Logger;
  /** Largest manifest accepted from an upstream, bytes. */
  maxBytes: number;
  /** How long an upstream 404 for a digest is remembered, ms (0: not at all). */
  negativeTtlMs: number;
}

/** The media type of an upstream manifest answer (Content-Type without parameters, else the JSON's mediaType). */
export function manifestMediaType(contentType: string | string[] | undefined, bytes: Buffer): string {
  const ct = (Array.isArray(contentType) ? contentType[0] : contentType)?.split(';')[0]?.trim().toLowerCase();
  if (ct && ct !== 'application/json' && ct !== 'text/plain' && ct !== 'application/octet-stream') return ct;
  try {
    const mt = (JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown }).mediaType;
    if (typeof mt === 'string' && mt.length < 256) return mt;
  } catch {
    /* not JSON: fall through */
  }
  return ct || 'application/octet-stream';
}

/** Parses a `Docker-Content-Digest` header we can verify, else undefined. */
export function headerDigest(value: string | string[] | undefined): Digest | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  return v ? parseDigest(v.trim()) : undefined;
}

export class ManifestService {
  private readonly flights = new SingleFlight<StoredManifest>();
  /** Upstream 404s by (upstream, repository, digest). */
  private readonly missing: NegativeCache;

  constructor(private readonly deps: ManifestServiceDeps) {
    this.missing = new NegativeCache(deps.negativeTtlMs);
  }

  /** A manifest held in memory for `namespace` (any namespace's unless isolated), without any I/O. */
  peek(d: Digest, namespace?: string): StoredManifest | undefined {
    return this.deps.store.peek(d, namespace);
  }

  /** A cached manifest (memory or disk) for `namespace`, without asking the upstream. */
  cached(d: Digest, namespace?: string): Promise<StoredManifest | undefined> {
    return this.deps.store.get(d, namespace);
  }

  /**
   * A manifest by digest: cached, or fetched upstream (single-flight by digest), verified and stored.
   * `hit` tells whether the upstream was needed.
   */
  async byDigest(upstream: Upstream, repository: string, d: Digest): Promise<{ manifest: StoredManifest; hit: boolean }> {
    const ns = upstream.namespace;
    const cached = this.deps.store.peek(d, ns) ?? (await this.deps.store.get(d, ns));
    if (cached) return { manifest: cached, hit: true };
    const missingKey = `${upstream.namespace}\u0000${repository}\u0000${d.value}`;
    const known404 = this.missing.recall(missingKey);
    if (known404) throw known404;
    // Keyed by namespace too: a 404 or a refusal from one upstream must never fail a request for another.
    const manifest = await this.flights.run(
      `${upstream.namespace}\u0000${d.value}`,
      async () => {
        const again = await this.deps.store.get(d, ns);
        if (again) return again;
        const res = await upstream.request({ kind: 'manifest', method: 'GET', repository, path: `/v2/${repository}/manifests/${d.value}`, headers: { accept: DIGEST_ACCEPT } });
        if (res.status !== 200) {
          const err = await upstream.error(res, 'manifest');
          // Remembered under the key of the request that asked (joiners from other repositories do not inherit it).
          if (err instanceof NotFound) this.missing.remember(missingKey, err);
          throw err;
        }
        const bytes = await this.readBody(res, upstream);
        return this.storeVerified(d, manifestMediaType(res.headers['content-type'], bytes), bytes, upstream);
      },
      () => this.deps.metrics.coalesced.inc({ kind: 'manifest' }),
    );
    return { manifest, hit: false };
  }

  /** GETs a tag (for upstreams that send no digest on HEAD), hashes what it sends and stores it under that digest. */
  async byTag(upstream: Upstream, repository: string, tag: string, accept: AcceptSet): Promise<StoredManifest> {
    const res = await upstream.request({ kind: 'manifest', method: 'GET', repository, path: `/v2/${repository}/manifests/${tag}`, headers: { accept: upstreamAccept(accept) } });
    if (res.status !== 200) throw await upstream.error(res, 'manifest');
    const bytes = await this.readBody(res, upstream);
    const computed = parseDigest(digestOf(bytes))!;
    return (await this.deps.store.get(computed, upstream.namespace)) ?? (await this.storeVerified(computed, manifestMediaType(res.headers['content-type'], bytes), bytes, upstream));
  }

  /** Reads a manifest body, refusing more than the configured maximum. */
  private async readBody(res: UpstreamResponse, upstream: Upstream): Promise<Buffer> {
    const max = this.deps.maxBytes;
    const declared = contentLength(res);
    const tooLarge = () => {
      this.deps.metrics.verifyFailures.inc({ kind: 'manifest', reason: 'oversize' });
      return new VerificationFailed('manifest', 'oversize', 'the upstream manifest is too large', { upstream: upstream.namespace, limit: max });
    };
    const bytes = await readBounded(res, upstream, { maxBytes: max, what: 'manifest', tooLarge });
    const size = bytes.length;
    if (declared !== undefined && declared !== size) {
      this.deps.metrics.verifyFailures.inc({ kind: 'manifest', reason: 'short-body' });
      throw new VerificationFailed('manifest', 'short-body', 'the upstream manifest body is shorter than announced', { upstream: upstream.namespace });
    }
    this.deps.metrics.upstreamBytes.inc({ upstream: upstream.namespace, kind: 'manifest' }, size);
    return bytes;
  }

  /**
   * Verifies manifest bytes fetched upstream and stores them. A verified manifest that cannot be written
   * (disk full, read-only) is still served: it stays in memory and the failure is logged with its errno.
   */
  private async storeVerified(d: Digest, mediaType: string, bytes: Buffer, upstream: Upstream): Promise<StoredManifest> {
    const got = digestOf(bytes, d.algorithm);
    if (got !== d.value) {
      this.deps.metrics.verifyFailures.inc({ kind: 'manifest', reason: 'digest-mismatch' });
      this.deps.log.warn({ upstream: upstream.namespace, want: d.value, got }, 'upstream manifest does not match its digest; not cached');
      throw new VerificationFailed('manifest', 'digest-mismatch', 'the upstream sent a manifest that does not match its digest', { upstream: upstream.namespace });
    }
    try {
      return await this.deps.store.put(d, mediaType, bytes, upstream.namespace);
    } catch (err) {
      if (!(err instanceof DiskError)) throw err;
      this.deps.log.warn({ digest: d.value, errno: err.errno, err: (err.cause as Error | undefined)?.message }, 'verified manifest not written to disk; serving it from memory');
      return this.deps.store.remember(d, mediaType, bytes, upstream.namespace);
    }
  }
}
