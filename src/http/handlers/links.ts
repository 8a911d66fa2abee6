/**
 * `Link: <…>; rel="next"` headers for paginated answers (tags list, referrers), pointing at the mirror:
 * the client follows them through the mirror, with its routing (`?ns=` or a registry-host prefix) kept.
 */
import type { RepoContext } from '../context.js';

/** The client-side path prefix for this repository (`/v2/<prefix>/<name>`). */
export function clientRepoPath(ctx: Pick<RepoContext, 'via' | 'clientName'>): string {
  return `/v2/${ctx.via.prefix ? `${ctx.via.prefix}/` : ''}${ctx.clientName}`;
}

/** A Link to the next page on the mirror, with these query parameters (and the client's `ns`). */
export function nextLink(ctx: Pick<RepoContext, 'via' | 'clientName'>, endpoint: string, query: Record<string, string>): string {
  const params = new URLSearchParams(query);
  if (ctx.via.ns) params.set('ns', ctx.via.ns);
  const qs = params.toString();
  return `<${clientRepoPath(ctx)}/${endpoint}${qs ? `?${qs}` : ''}>; rel="next"`;
}

/** Rewrites an upstream `Link: <url>; rel="next"` to a link on the mirror for the same page. */
export function rewriteLink(link: string, ctx: Pick<RepoContext, 'via' | 'clientName'>, endpoint: string): string | undefined {
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
