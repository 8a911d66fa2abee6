/** `GET/HEAD /v2/<name>/tags/list?n=&last=`: parse the page asked for → tag-list service → a JSON page and its Link. */
import { InvalidInput } from '../../oci/errors.js';
import { isValidTag } from '../../oci/names.js';
import type { TagListService, TagPageRequest } from '../../tags/list.js';
import type { Metrics } from '../../metrics.js';
import type { RepoContext } from '../context.js';
import { sendBuffer } from '../respond.js';
import { nextLink, rewriteLink } from './links.js';

/** The page a client asked for; a malformed `n` or `last` is a 400 (pagination). */
export function pageRequest(query: URLSearchParams): TagPageRequest {
  const req: TagPageRequest = {};
  const n = query.get('n');
  if (n !== null) {
    if (!/^\d{1,6}$/.test(n)) throw new InvalidInput('pagination', 'n must be a whole number of at most 6 digits', { n: n.slice(0, 32) });
    req.n = Number(n);
  }
  const last = query.get('last');
  if (last !== null && last !== '') {
    // The spec: "<tagname> MUST NOT be a numerical index, but rather it MUST be a proper tag".
    if (!isValidTag(last)) throw new InvalidInput('pagination', 'last must be a tag', { last: last.slice(0, 200) });
    req.last = last;
  }
  return req;
}

/** What the tags-list handler needs. */
export interface TagsListHandlerDeps {
  tagLists: TagListService;
  metrics: Metrics;
}

export function tagsListHandler({ tagLists, metrics }: TagsListHandlerDeps): (ctx: RepoContext) => Promise<void> {
  return async (ctx) => {
    const req = pageRequest(ctx.query);
    ctx.cache = 'pass';
    const page = await tagLists.list(ctx.upstream, ctx.repository, req);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (page.nextLast !== undefined) headers.link = nextLink(ctx, 'tags/list', { n: String(req.n), last: page.nextLast });
    else if (page.upstreamLink !== undefined) {
      const link = rewriteLink(page.upstreamLink, ctx, 'tags/list');
      if (link) headers.link = link;
    }
    // The name the client used (registry-host prefix included): the repository as the mirror serves it.
    const name = ctx.via.prefix ? `${ctx.via.prefix}/${ctx.clientName}` : ctx.clientName;
    const body = Buffer.from(JSON.stringify({ name, tags: page.tags }));
    if (!ctx.head) metrics.served('upstream', body.length);
    sendBuffer(ctx, 200, body, headers);
  };
}
