/**
 * Endpoints passed through to the upstream without caching: `tags/list` (with `n`/`last`, and the
 * `Link` header rewritten so the client follows it through the mirror) and `referrers`.
 */
import { pipeline } from 'node:stream';
import { InvalidInput } from '../../oci/errors.js';
import { checkDigest, isValidTag } from '../../oci/names.js';
import type { UpstreamResponse } from '../../upstream/client.js';
import type { Metrics } from '../../metrics.js';
import type { RepoContext } from '../context.js';

/** The client-side path prefix for this repository (`/v2/<prefix>/<name>`). */
function clientRepoPath(ctx: RepoContext): string {
  return `/v2/${ctx.via.prefix ? `${ctx.via.prefix}/` : ''}${ctx.clientName}`;
}

/** Rewrites an upstream `Link: <url>; rel="next"` to a link on the mirror for the same page. */
export function rewriteLink(link: string, ctx: RepoContext, endpoint: string): string | undefined {
  const m = /^\s*<([^>]*)>(.*)$/.exec(link);
  if (!m) return undefined;
  let target: URL;
  try {
    target = new URL(m[1]!, 'http://upstream.invalid');
  } catch {
    return undefined;
  }
  const params = new URLSearchParams();
  for (const k of ['n', 'last', 'artifactType']) {
    const v = target.searchParams.get(k);
    if (v !== null) params.set(k, v);
  }
  if (ctx.via.ns) params.set('ns', ctx.via.ns);
  const qs = params.toString();
  return `<${clientRepoPath(ctx)}/${endpoint}${qs ? `?${qs}` : ''}>${m[2]}`;
}

/** The tags-list and referrers handlers. */
export function passthroughHandlers({ metrics }: { metrics: Metrics }): { tagsList: (ctx: RepoContext) => Promise<void>; referrers: (ctx: RepoContext, digest: string) => Promise<void> } {
  return { tagsList: (ctx) => handleTagsList(metrics, ctx), referrers: (ctx, digest) => handleReferrers(metrics, ctx, digest) };
}

async function handleTagsList(metrics: Metrics, ctx: RepoContext): Promise<void> {
  const params = new URLSearchParams();
  const n = ctx.query.get('n');
  if (n !== null) {
    if (!/^\d{1,6}$/.test(n)) throw new InvalidInput('pagination', 'invalid number of results requested', { n: n.slice(0, 32) });
    params.set('n', n);
  }
  const last = ctx.query.get('last');
  if (last !== null && last !== '') {
    if (!isValidTag(last)) throw new InvalidInput('tag', 'invalid tag in last', { last: last.slice(0, 200) });
    params.set('last', last);
  }
  const qs = params.toString();
  ctx.cache = 'pass';
  const res = await ctx.upstream.request({ kind: 'tags', method: 'GET', repository: ctx.repository, path: `/v2/${ctx.repository}/tags/list${qs ? `?${qs}` : ''}`, headers: { accept: 'application/json' } });
  if (res.status !== 200) throw await ctx.upstream.error(res, 'tags');
  ctx.res.statusCode = 200;
  ctx.res.setHeader('content-type', 'application/json');
  const link = res.headers.link;
  const rewritten = typeof link === 'string' ? rewriteLink(link, ctx, 'tags/list') : undefined;
  if (rewritten) ctx.res.setHeader('link', rewritten);
  await passBody(metrics, ctx, res);
}

async function handleReferrers(metrics: Metrics, ctx: RepoContext, digest: string): Promise<void> {
  const d = checkDigest(digest);
  const params = new URLSearchParams();
  const at = ctx.query.get('artifactType');
  if (at !== null) {
    if (at.length > 255 || !/^[\w.+-]+\/[\w.+-]+$/.test(at)) throw new InvalidInput('header', 'invalid artifactType', { artifactType: at.slice(0, 255) });
    params.set('artifactType', at);
  }
  const qs = params.toString();
  ctx.cache = 'pass';
  const res = await ctx.upstream.request({ kind: 'referrers', method: 'GET', repository: ctx.repository, path: `/v2/${ctx.repository}/referrers/${d.value}${qs ? `?${qs}` : ''}`, headers: { accept: 'application/vnd.oci.image.index.v1+json' } });
  if (res.status !== 200) throw await ctx.upstream.error(res, 'referrers');
  ctx.res.statusCode = 200;
  const ct = res.headers['content-type'];
  ctx.res.setHeader('content-type', typeof ct === 'string' ? ct : 'application/vnd.oci.image.index.v1+json');
  const applied = res.headers['oci-filters-applied'];
  if (typeof applied === 'string') ctx.res.setHeader('oci-filters-applied', applied);
  const link = res.headers.link;
  const rewritten = typeof link === 'string' ? rewriteLink(link, ctx, `referrers/${d.value}`) : undefined;
  if (rewritten) ctx.res.setHeader('link', rewritten);
  await passBody(metrics, ctx, res);
}

/** Passes an upstream body on. HEAD sends the headers only and drops the upstream body (errors and all). */
async function passBody(metrics: Metrics, ctx: RepoContext, res: UpstreamResponse): Promise<void> {
  const len = res.headers['content-length'];
  if (typeof len === 'string') ctx.res.setHeader('content-length', len);
  if (ctx.head) {
    // Destroying an undici body emits 'error' (aborted): without a listener that is an uncaught exception.
    res.body.on('error', () => undefined);
    res.body.destroy();
    ctx.res.end();
    return;
  }
  res.body.on('data', (c: Buffer) => {
    ctx.bytes += c.length;
    metrics.bytesServed.inc({ source: 'upstream' }, c.length);
  });
  // An error on either side destroys both: the client sees an aborted transfer, never a short body that ends cleanly.
  await new Promise<void>((resolve) => pipeline(res.body, ctx.res, () => resolve()));
}
