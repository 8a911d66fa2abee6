/** `GET/HEAD /v2/<name>/manifests/<tag|digest>`. */
import type { Mirror } from '../mirror.js';
import type { RepoContext } from './context.js';
import { checkReference } from './grammar.js';
import { parseAccept } from './accept.js';
import { sendBuffer } from './respond.js';
import { manifestByDigest } from '../manifest/fetch.js';
import { resolveTag } from '../manifest/tags.js';
import type { StoredManifest } from '../store/manifests.js';

export async function handleManifest(mirror: Mirror, ctx: RepoContext, reference: string): Promise<void> {
  const ref = checkReference(reference);
  let manifest: StoredManifest;
  const headers: Record<string, string> = {};
  if (ref.kind === 'digest') {
    const got = await manifestByDigest(mirror, ctx.upstream, ctx.repository, ref.digest);
    manifest = got.manifest;
    ctx.cache = got.hit ? 'hit' : 'miss';
  } else {
    const accept = parseAccept(ctx.req.headers.accept);
    const answer = await resolveTag(mirror, ctx.upstream, ctx.repository, ref.tag, accept);
    manifest = answer.manifest;
    ctx.cache = answer.cache;
    headers.vary = 'Accept';
    if (answer.warning) headers.warning = answer.warning;
  }
  if (ctx.cache === 'hit' || ctx.cache === 'revalidated' || ctx.cache === 'stale') mirror.metrics.hits.inc({ kind: 'manifest' });
  else mirror.metrics.misses.inc({ kind: 'manifest' });
  const etag = `"${manifest.digest}"`;
  Object.assign(headers, {
    'content-type': manifest.mediaType,
    'docker-content-digest': manifest.digest,
    etag,
  });
  const inm = ctx.req.headers['if-none-match'];
  if (inm && inm.split(',').some((t) => t.trim() === etag)) {
    for (const [k, v] of Object.entries(headers)) ctx.res.setHeader(k, v);
    ctx.res.statusCode = 304;
    ctx.res.end();
    return;
  }
  mirror.metrics.bytesServed.inc({ source: ctx.cache === 'miss' ? 'upstream' : 'cache' }, ctx.head ? 0 : manifest.bytes.length);
  sendBuffer(ctx, 200, manifest.bytes, headers);
}
