/**
 * Tags: tag → digest per (upstream, repository, tag, Accept set). Within the TTL the answer costs no
 * upstream request; after it, one HEAD revalidates (concurrent requests share it; an unchanged digest
 * costs no GET). When the upstream is down, throttling or failing, the last known manifest is served
 * (stale-if-error) with a `Warning: 299` header; an upstream 404 is passed on.
 */
import { RegistryError } from '../registry/errors.js';
import { parseDigest } from '../registry/grammar.js';
import { accepts, upstreamAccept, type AcceptSet } from '../registry/accept.js';
import { digestOf } from '../store/digest.js';
import type { StoredManifest } from '../store/manifests.js';
import { tagKeyString, type TagEntry, type TagKey } from '../store/tags.js';
import { isUpstreamOutage } from '../upstream/status.js';
import type { Upstream } from '../upstream/client.js';
import type { Mirror } from '../mirror.js';
import { headerDigest, manifestByDigest, manifestMediaType, readManifestBody, storeVerified } from './fetch.js';

/** How a tag was answered. */
export type TagCache = 'hit' | 'revalidated' | 'miss' | 'stale';

/** A tag's answer: the manifest, how it was found, and the Warning for a stale answer. */
export interface TagAnswer {
  manifest: StoredManifest;
  cache: TagCache;
  warning?: string;
}

/** After a failed revalidation, stale answers are given without asking the upstream for this long (at most the TTL). */
const OUTAGE_BACKOFF_MS = 10_000;

/** Resolves a tag for a client with the given Accept set. */
export async function resolveTag(mirror: Mirror, upstream: Upstream, repository: string, tag: string, accept: AcceptSet): Promise<TagAnswer> {
  const key: TagKey = { namespace: upstream.namespace, repository, tag };
  const entry = await mirror.tags.get(key, accept.key);
  if (entry && Date.now() - entry.checkedAt < mirror.config.tagTtlMs) {
    const d = parseDigest(entry.digest);
    if (d) {
      const { manifest, hit } = await manifestByDigest(mirror, upstream, repository, d);
      return { manifest, cache: hit ? 'hit' : 'miss' };
    }
  }
  const flightKey = `${tagKeyString(key)}\u0000${accept.key}`;
  const outage = mirror.outages.get(flightKey);
  if (outage) {
    const stale = await staleAnswer(mirror, key, accept, entry, outage);
    if (stale) return stale;
  }
  try {
    return await mirror.tagFlights.run(
      flightKey,
      () => revalidate(mirror, upstream, key, accept, entry),
      () => mirror.metrics.coalesced.inc({ kind: 'tag' }),
    );
  } catch (err) {
    if (!isUpstreamOutage(err)) throw err;
    const reason = `${(err as RegistryError).code}`;
    mirror.outages.set(flightKey, reason, { ttl: Math.max(1, Math.min(OUTAGE_BACKOFF_MS, mirror.config.tagTtlMs)) });
    const stale = await staleAnswer(mirror, key, accept, entry, reason);
    if (!stale) throw err;
    return stale;
  }
}

async function revalidate(mirror: Mirror, upstream: Upstream, key: TagKey, accept: AcceptSet, entry: TagEntry | undefined): Promise<TagAnswer> {
  const { repository, tag } = key;
  const res = await upstream.request({
    kind: 'tag-head',
    method: 'HEAD',
    repository,
    path: `/v2/${repository}/manifests/${tag}`,
    headers: { accept: upstreamAccept(accept) },
    signal: AbortSignal.timeout(mirror.config.upstreamTimeouts.revalidateMs),
  });
  if (res.status !== 200) {
    mirror.metrics.tagRevalidations.inc({ result: res.status === 404 ? 'not-found' : 'error' });
    throw await upstream.error(res, 'tag-head');
  }
  await res.body.dump();
  const d = headerDigest(res.headers['docker-content-digest']);
  let manifest: StoredManifest;
  let cache: TagCache;
  if (d) {
    const got = await manifestByDigest(mirror, upstream, repository, d);
    manifest = got.manifest;
    const unchanged = entry?.digest === d.value;
    cache = unchanged ? 'revalidated' : 'miss';
    mirror.metrics.tagRevalidations.inc({ result: unchanged ? 'unchanged' : entry ? 'changed' : 'new' });
  } else {
    // The upstream gave no digest on HEAD: GET the tag and hash what it sends.
    const get = await upstream.request({ kind: 'manifest', method: 'GET', repository, path: `/v2/${repository}/manifests/${tag}`, headers: { accept: upstreamAccept(accept) } });
    if (get.status !== 200) throw await upstream.error(get, 'manifest');
    const bytes = await readManifestBody(get, mirror.config.maxManifestBytes, mirror, upstream);
    const computed = parseDigest(digestOf(bytes))!;
    manifest = (await mirror.manifests.get(computed)) ?? (await storeVerified(mirror, computed, manifestMediaType(get.headers['content-type'], bytes), bytes, upstream));
    cache = entry?.digest === computed.value ? 'revalidated' : 'miss';
    mirror.metrics.tagRevalidations.inc({ result: cache === 'revalidated' ? 'unchanged' : entry ? 'changed' : 'new' });
  }
  await mirror.tags.set(key, accept.key, { digest: manifest.digest, mediaType: manifest.mediaType, size: manifest.bytes.length, checkedAt: Date.now() });
  mirror.outages.delete(`${tagKeyString(key)}\u0000${accept.key}`);
  return { manifest, cache };
}

/** The last known manifest of the tag that this client accepts, if it is still on disk. */
async function staleAnswer(mirror: Mirror, key: TagKey, accept: AcceptSet, entry: TagEntry | undefined, reason: string): Promise<TagAnswer | undefined> {
  const candidates: TagEntry[] = entry ? [entry] : [];
  const all = [...(await mirror.tags.all(key)).values()].filter((e) => e !== entry && accepts(accept, e.mediaType));
  candidates.push(...all.sort((a, b) => b.checkedAt - a.checkedAt));
  for (const c of candidates) {
    const d = parseDigest(c.digest);
    const manifest = d && (await mirror.manifests.get(d));
    if (!manifest) continue;
    const at = new Date(c.checkedAt).toISOString();
    mirror.metrics.staleServed.inc({ upstream: key.namespace });
    mirror.log.warn({ upstream: key.namespace, repository: key.repository, tag: key.tag, digest: c.digest, confirmedAt: at, reason }, 'upstream failed; serving stale tag');
    return { manifest, cache: 'stale', warning: `299 - "regmirror: upstream ${key.namespace} unavailable (${reason}); serving ${key.repository}:${key.tag} as last confirmed at ${at}"` };
  }
  return undefined;
}
