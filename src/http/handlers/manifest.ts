/** `GET/HEAD /v2/<name>/manifests/<tag|digest>`: parse → manifest or tag service → send. */
import { checkReference } from '../../oci/names.js';
import { parseAccept } from '../../oci/accept.js';
import type { ManifestService } from '../../manifests/service.js';
import type { TagService } from '../../tags/service.js';
import type { StoredManifest } from '../../store/manifests.js';
import type { Metrics } from '../../metrics.js';
import type { RepoContext } from '../context.js';
import { sendBuffer } from '../respond.js';
import { ageSeconds } from '../../tags/age.js';

/** What the manifest handler needs. */
export interface ManifestHandlerDeps {
  manifests: ManifestService;
  tags: TagService;
  metrics: Metrics;
}

export function manifestHandler({ manifests, tags, metrics }: ManifestHandlerDeps): (ctx: RepoContext, reference: string) => Promise<void> {
  return async (ctx, reference) => {
    const ref = checkReference(reference);
    let manifest: StoredManifest;
    const headers: Record<string, string> = {};
    if (ref.kind === 'digest') {
      const got = await manifests.byDigest(ctx.upstream, ctx.repository, ref.digest);
      manifest = got.manifest;
      ctx.cache = got.hit ? 'hit' : 'miss';
    } else {
      const answer = await tags.resolve(ctx.upstream, ctx.repository, ref.tag, parseAccept(ctx.req.headers.accept));
      manifest = answer.manifest;
      ctx.cache = answer.cache;
      headers.vary = 'Accept';
      // How long ago a registry confirmed the tag: a mirror tier below this one counts its TTL from then.
      headers.age = String(ageSeconds(answer.confirmedAt, Date.now()));
      if (answer.warning) headers.warning = answer.warning;
    }
    const fromCache = ctx.cache !== 'miss';
    if (fromCache) metrics.hits.inc({ kind: 'manifest' });
    else metrics.misses.inc({ kind: 'manifest' });
    headers['content-type'] = manifest.mediaType;
    headers['docker-content-digest'] = manifest.digest;
    const etag = `"${manifest.digest}"`;
    headers.etag = etag;
    const inm = ctx.req.headers['if-none-match'];
    if (inm && inm.split(',').some((t) => t.trim() === etag)) {
      for (const k in headers) ctx.res.setHeader(k, headers[k]!);
      ctx.res.statusCode = 304;
      ctx.res.end();
      return;
    }
    if (!ctx.head) metrics.bytesServed.inc({ source: fromCache ? 'cache' : 'upstream' }, manifest.bytes.length);
    sendBuffer(ctx, 200, manifest.bytes, headers);
  };
}
