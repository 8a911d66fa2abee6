/**
 * Tag lists (`GET /v2/<name>/tags/list?n=&last=`) with the spec's MUSTs held by the mirror itself, since
 * upstreams differ (distribution 2.8 ignores `n` and `last`): tags in lexical order ("case-insensitive
 * alphanumeric order", distribution-spec v1.1.1 "Listing Tags"), only tags after `last`, at most `n`,
 * and a `Link: <…>; rel="next"` when the page was cut at `n`. `n=0` is an empty list without Link.
 *
 * `n` and `last` are still sent upstream, so an upstream that paginates keeps pages small; its page is
 * then ordered and cut again here (a no-op when it did the same), and its own Link is kept when the
 * mirror did not cut. Across pages of such an upstream, the order between pages is the upstream's.
 */
import { isValidTag } from '../oci/names.js';
import { UpstreamUnavailable } from '../oci/errors.js';
import type { Upstream } from '../upstream/client.js';
import type { Metrics } from '../metrics.js';
import { readUpstreamJson } from './upstream-json.js';

/** Largest tag list read from an upstream (about 60 000 tags of 128 characters). */
export const MAX_TAG_LIST_BYTES = 8 * 2 ** 20;

/** The spec's lexical order: case-insensitive, ties (`A` and `a`) broken by code point so the order is total. */
export function compareTags(a: string, b: string): number {
  const la = a.toLowerCase();
  const lb = b.toLowerCase();
  if (la !== lb) return la < lb ? -1 : 1;
  return a === b ? 0 : a < b ? -1 : 1;
}

/** What a client asked for. */
export interface TagPageRequest {
  /** At most this many tags (undefined: all). */
  n?: number;
  /** Only tags after this one, in {@link compareTags} order. */
  last?: string;
}

/** One page of tags. `nextLast` is set when the page was cut at `n`: the `last` of the next page. */
export interface TagPage {
  tags: string[];
  nextLast?: string;
}

/** Orders, filters and cuts a tag list (pure). Duplicates are dropped. */
export function paginateTags(tags: readonly string[], req: TagPageRequest): TagPage {
  if (req.n === 0) return { tags: [] };
  const last = req.last;
  let sorted = [...new Set(tags)].sort(compareTags);
  if (last !== undefined) sorted = sorted.filter((t) => compareTags(t, last) > 0);
  if (req.n === undefined || sorted.length <= req.n) return { tags: sorted };
  const page = sorted.slice(0, req.n);
  return { tags: page, nextLast: page[page.length - 1]! };
}

/** The tags of an upstream tags-list answer; throws when it has not the spec's shape. Entries that are not valid tags are dropped. */
export function tagsOf(json: unknown): string[] {
  const tags = (json as { tags?: unknown } | null)?.tags;
  if (tags === null || tags === undefined) return [];
  if (!Array.isArray(tags)) throw new TypeError('tags is not a list');
  return tags.filter((t): t is string => typeof t === 'string' && isValidTag(t));
}

/** A page as the mirror answers it. */
export interface TagListAnswer extends TagPage {
  /** The upstream's `Link` header, when it paginates and the mirror did not cut its page. */
  upstreamLink?: string;
}

/** What the tag-list service needs. */
export interface TagListDeps {
  metrics: Metrics;
  /** Largest upstream answer read, bytes (default {@link MAX_TAG_LIST_BYTES}). */
  maxBytes?: number;
}

export class TagListService {
  constructor(private readonly deps: TagListDeps) {}

  /** One page of a repository's tags. Upstream errors (404 and all) are thrown as domain errors. */
  async list(upstream: Upstream, repository: string, req: TagPageRequest): Promise<TagListAnswer> {
    const params = new URLSearchParams();
    // n=0 still asks upstream (one tag), so an unknown repository is a 404 as it would be otherwise.
    if (req.n !== undefined) params.set('n', String(Math.max(1, req.n)));
    if (req.last !== undefined && req.n !== 0) params.set('last', req.last);
    const qs = params.toString();
    const res = await upstream.request({ kind: 'tags', method: 'GET', repository, path: `/v2/${repository}/tags/list${qs ? `?${qs}` : ''}`, headers: { accept: 'application/json' } });
    if (res.status !== 200) throw await upstream.error(res, 'tags');
    const { json } = await readUpstreamJson(res, upstream, { maxBytes: this.deps.maxBytes ?? MAX_TAG_LIST_BYTES, what: 'tags list', kind: 'tags', metrics: this.deps.metrics });
    let tags: string[];
    try {
      tags = tagsOf(json);
    } catch (err) {
      throw new UpstreamUnavailable('the upstream sent a tags list without a list of tags', { upstream: upstream.namespace, reason: 'invalid-tags-list', cause: err });
    }
    const page = paginateTags(tags, req);
    const link = res.headers.link;
    if (page.nextLast === undefined && req.n !== 0 && typeof link === 'string') return { ...page, upstreamLink: link };
    return page;
  }
}
