/**
 * Referrers (`GET /v2/<name>/referrers/<digest>?artifactType=`), always answered as an OCI image index.
 *
 * An upstream with the referrers API answers itself; when it ignored an `artifactType` filter, the mirror
 * filters and says so (`OCI-Filters-Applied: artifactType`). An upstream without the API answers 404
 * (distribution 2.8): the spec's client fallback is then done here, from the referrers tag schema
 * (`<alg>-<first 64 characters of the hex>`, an image index kept by the pushing clients), filtered the
 * same way; no such tag, or not an index, is an empty index. The tag goes through the tag service, so it
 * is cached like any tag (TTL, revalidation, stale-if-error, a 404 remembered for a few seconds), and
 * "this repository has no referrers API" is remembered for the tag TTL, so a cached answer costs the
 * upstream nothing.
 */
import { LRUCache } from 'lru-cache';
import type { Digest } from '../oci/digest.js';
import { isUpstreamOutage, NotFound, UpstreamUnavailable } from '../oci/errors.js';
import { OCI_INDEX, parseAccept } from '../oci/accept.js';
import type { StoredManifest } from '../store/manifests.js';
import type { Upstream, UpstreamResponse } from '../upstream/client.js';
import type { Metrics } from '../metrics.js';
import type { Logger } from '../log.js';
import type { TagService } from './service.js';
import { readUpstreamJson } from './upstream-json.js';

/** Only an OCI image index is a referrers list. */
const INDEX_ACCEPT = parseAccept(OCI_INDEX);
const EMPTY_INDEX = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }));

/** Where a referrers answer came from. */
export type ReferrersSource = 'upstream' | 'tag-schema' | 'empty';

/** A referrers answer: the index bytes and the headers that go with them. */
export interface ReferrersAnswer {
  /** An OCI image index (JSON). */
  body: Buffer;
  source: ReferrersSource;
  /** Cache outcome for the log (`pass`, or the tag's: hit, revalidated, miss, stale). */
  cache: string;
  /** `OCI-Filters-Applied` value, when a filter was applied. */
  filtersApplied?: string;
  /** The upstream's Link header (to be rewritten for the client). */
  link?: string;
  /** `Warning` for an answer served stale. */
  warning?: string;
}

/** What the referrers service needs. */
export interface ReferrersDeps {
  tags: TagService;
  metrics: Metrics;
  log: Logger;
  /** How long "this repository has no referrers API" is trusted before the API is asked again, ms (the tag TTL). */
  ttlMs: number;
  /** Largest referrers index read from an upstream, bytes. */
  maxBytes: number;
}

/** The referrers tag schema's tag for a subject digest. */
export function referrersTag(d: Digest): string {
  return `${d.algorithm}-${d.hex.slice(0, 64)}`;
}

type IndexJson = { manifests: unknown[]; [k: string]: unknown };

/** The JSON of an image index (an object with a `manifests` list), else undefined. */
function asIndex(json: unknown): IndexJson | undefined {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
  const manifests = (json as { manifests?: unknown }).manifests;
  return Array.isArray(manifests) ? (json as IndexJson) : undefined;
}

/** The descriptors of `manifests` with this artifactType (all descriptors when none is asked). */
function filterDescriptors(manifests: readonly unknown[], artifactType: string | undefined): unknown[] {
  const descriptors = manifests.filter((m) => typeof m === 'object' && m !== null && !Array.isArray(m));
  return artifactType === undefined ? descriptors : descriptors.filter((m) => (m as { artifactType?: unknown }).artifactType === artifactType);
}

export class ReferrersService {
  /** Repositories whose upstream answered the referrers API with 404, with when: ms since epoch. */
  private readonly noApi = new LRUCache<string, number>({ max: 10_000 });

  constructor(private readonly deps: ReferrersDeps) {}

  /** The referrers of `subject` in `repository`, optionally only those of one artifactType. */
  async list(upstream: Upstream, repository: string, subject: Digest, artifactType?: string): Promise<ReferrersAnswer> {
    const key = `${upstream.namespace}\u0000${repository}`;
    const learned = this.noApi.get(key);
    if (learned === undefined || Date.now() - learned >= this.deps.ttlMs) {
      try {
        const res = await upstream.request({
          kind: 'referrers',
          method: 'GET',
          repository,
          path: `/v2/${repository}/referrers/${subject.value}${artifactType !== undefined ? `?${new URLSearchParams({ artifactType })}` : ''}`,
          headers: { accept: OCI_INDEX },
        });
        if (res.status === 200) {
          const answer = await this.fromUpstream(res, upstream, artifactType);
          this.noApi.delete(key);
          return answer;
        }
        const err = await upstream.error(res, 'referrers');
        if (!(err instanceof NotFound)) throw err;
        this.noApi.set(key, Date.now());
      } catch (err) {
        // Upstream down, and this repository was answered from the tag schema before: go on doing so (stale-if-error).
        if (!(learned !== undefined && isUpstreamOutage(err))) throw err;
      }
    }
    return this.fromTagSchema(upstream, repository, subject, artifactType);
  }

  private async fromUpstream(res: UpstreamResponse, upstream: Upstream, artifactType: string | undefined): Promise<ReferrersAnswer> {
    const { json, bytes } = await readUpstreamJson(res, upstream, { maxBytes: this.deps.maxBytes, what: 'referrers index', kind: 'referrers', metrics: this.deps.metrics });
    const index = asIndex(json);
    if (!index) throw new UpstreamUnavailable('the upstream referrers answer is not an image index', { upstream: upstream.namespace, reason: 'invalid-referrers' });
    const link = typeof res.headers.link === 'string' ? res.headers.link : undefined;
    const applied = typeof res.headers['oci-filters-applied'] === 'string' ? res.headers['oci-filters-applied'] : undefined;
    const upstreamFiltered = applied?.split(',').some((f) => f.trim() === 'artifactType') ?? false;
    const base = { source: 'upstream' as const, cache: 'pass', ...(link ? { link } : {}) };
    if (artifactType === undefined || upstreamFiltered) return { ...base, body: bytes, ...(applied ? { filtersApplied: applied } : {}) };
    const filtered = { ...index, manifests: filterDescriptors(index.manifests, artifactType) };
    return { ...base, body: Buffer.from(JSON.stringify(filtered)), filtersApplied: 'artifactType' };
  }

  private async fromTagSchema(upstream: Upstream, repository: string, subject: Digest, artifactType: string | undefined): Promise<ReferrersAnswer> {
    const filters = artifactType !== undefined ? { filtersApplied: 'artifactType' } : {};
    let manifest: StoredManifest;
    let cache: string;
    let warning: string | undefined;
    try {
      const answer = await this.deps.tags.resolve(upstream, repository, referrersTag(subject), INDEX_ACCEPT);
      ({ manifest, cache, warning } = answer);
    } catch (err) {
      if (err instanceof NotFound) return { body: EMPTY_INDEX, source: 'empty', cache: 'empty', ...filters };
      throw err;
    }
    let index: IndexJson | undefined;
    if (manifest.mediaType === OCI_INDEX) {
      try {
        index = asIndex(JSON.parse(manifest.bytes.toString('utf8')));
      } catch {
        index = undefined;
      }
    }
    // The spec's client rule: a tag that is not a valid image index means no referrers.
    if (!index) {
      this.deps.log.debug({ upstream: upstream.namespace, repository, tag: referrersTag(subject), mediaType: manifest.mediaType }, 'referrers tag is not an image index; answering an empty index');
      return { body: EMPTY_INDEX, source: 'empty', cache, ...filters, ...(warning ? { warning } : {}) };
    }
    const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: filterDescriptors(index.manifests, artifactType) }));
    return { body, source: 'tag-schema', cache, ...filters, ...(warning ? { warning } : {}) };
  }
}
