/** `GET/HEAD /v2/<name>/manifests/<tag|digest>`: parse → manifest or tag service → send. */
import { checkReference } from '../../oci/names.js';
import { parseAccept } from '../../oci/accept.js';
import type { ManifestService } from '../../manifests/service.js';
import type { TagAnswer, TagService } from '../../tags/service.js';
import type { StoredManifest } from '../../store/manifests.js';
import type { Metrics } from '../../metrics.js';
import type { RepoContext } from '../context.js';
import { sendFlat } from '../respond.js';
import { requestHeader } from '../raw-headers.js';
import { ageSeconds } from '../../tags/age.js';

/** What the manifest handler needs. */
export interface ManifestHandlerDeps {
  manifests: ManifestService;
  tags: TagService;
  metrics: Metrics;
}

/**
 * A manifest's own headers (type, digest, ETag, length), made once per manifest held in memory: a warm
 * manifest then costs one array copy, not four strings and an object per request.
 */
const headerCache = new WeakMap<StoredManifest, readonly string[]>();

function manifestHeaders(m: StoredManifest): readonly string[] {
  let h = headerCache.get(m);
  if (h === undefined) {
    h = ['content-type', m.mediaType, 'docker-content-digest', m.digest, 'etag', `"${m.digest}"`, 'content-length', String(m.bytes.length)];
    headerCache.set(m, h);
  }
  return h;
}

/** The last tag answer's header list, reused while the manifest, the Age second and the Warning stay the same. */
let lastTag: { own: readonly string[]; age: number; warning: string | undefined; list: readonly string[] } | undefined;

/** A tag answer's headers: it varies by Accept, says its Age (and Warning, when stale), then the manifest's own. */
function tagHeaders(own: readonly string[], age: number, warning: string | undefined): readonly string[] {
  const last = lastTag;
  if (last !== undefined && last.own === own && last.age === age && last.warning === warning) return last.list;
  const list = ['vary', 'Accept', 'age', String(age)];
  if (warning !== undefined) list.push('warning', warning);
  for (const h of own) list.push(h);
  lastTag = { own, age, warning, list };
  return list;
}

/** Sends a manifest (or 304 when the client holds it). Tag answers vary by Accept, carry their Age and may carry a Warning. */
function send(ctx: RepoContext, metrics: Metrics, manifest: StoredManifest, tag: TagAnswer | undefined): void {
  const fromCache = ctx.cache !== 'miss';
  if (fromCache) metrics.hit('manifest');
  else metrics.misses.inc({ kind: 'manifest' });
  const own = manifestHeaders(manifest);
  // A tag answer says how long ago a registry confirmed it (`Age`): a mirror tier below this one counts its TTL from then.
  const headers = tag === undefined ? own : tagHeaders(own, ageSeconds(tag.confirmedAt, Date.now()), tag.warning);
  const inm = requestHeader(ctx.req, 'if-none-match');
  if (inm !== undefined && inm.split(',').some((t) => t.trim() === `"${manifest.digest}"`)) {
    // A 304 has no body and announces none: every header but Content-Length.
    sendFlat(ctx, 304, undefined, headers.slice(0, -2));
    return;
  }
  if (!ctx.head) metrics.served(fromCache ? 'cache' : 'upstream', manifest.bytes.length);
  sendFlat(ctx, 200, manifest.bytes, headers);
}

export function manifestHandler({ manifests, tags, metrics }: ManifestHandlerDeps): (ctx: RepoContext, reference: string) => Promise<void> | void {
  // Hits from memory are answered synchronously; anything else awaits the services.
  const slow = async (ctx: RepoContext, ref: ReturnType<typeof checkReference>): Promise<void> => {
    if (ref.kind === 'digest') {
      const got = await manifests.byDigest(ctx.upstream, ctx.repository, ref.digest);
      ctx.cache = got.hit ? 'hit' : 'miss';
      send(ctx, metrics, got.manifest, undefined);
      return;
    }
    const answer = await tags.resolve(ctx.upstream, ctx.repository, ref.tag, parseAccept(requestHeader(ctx.req, 'accept')));
    ctx.cache = answer.cache;
    send(ctx, metrics, answer.manifest, answer);
  };
  return (ctx, reference) => {
    const ref = checkReference(reference);
    if (ref.kind === 'digest') {
      const m = manifests.peek(ref.digest, ctx.upstream.namespace);
      if (m === undefined) return slow(ctx, ref);
      ctx.cache = 'hit';
      send(ctx, metrics, m, undefined);
      return;
    }
    const answer = tags.fresh(ctx.upstream, ctx.repository, ref.tag, parseAccept(requestHeader(ctx.req, 'accept')));
    if (answer === undefined) return slow(ctx, ref);
    ctx.cache = answer.cache;
    send(ctx, metrics, answer.manifest, answer);
  };
}
