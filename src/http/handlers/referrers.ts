/** `GET/HEAD /v2/<name>/referrers/<digest>?artifactType=`: parse → referrers service → an OCI image index. */
import { InvalidInput } from '../../oci/errors.js';
import { checkDigest } from '../../oci/names.js';
import { OCI_INDEX } from '../../oci/accept.js';
import type { ReferrersService } from '../../tags/referrers.js';
import type { Metrics } from '../../metrics.js';
import type { RepoContext } from '../context.js';
import { sendBuffer } from '../respond.js';
import { rewriteLink } from './links.js';

/** A media type (`type/subtype`), as artifactType values are. */
const MEDIA_TYPE = /^[\w.+-]+\/[\w.+-]+$/;

/** What the referrers handler needs. */
export interface ReferrersHandlerDeps {
  referrers: ReferrersService;
  metrics: Metrics;
}

export function referrersHandler({ referrers, metrics }: ReferrersHandlerDeps): (ctx: RepoContext, digest: string) => Promise<void> {
  return async (ctx, digest) => {
    const d = checkDigest(digest);
    const at = ctx.query.get('artifactType');
    if (at !== null && (at.length > 255 || !MEDIA_TYPE.test(at))) throw new InvalidInput('header', 'artifactType must be a media type', { artifactType: at.slice(0, 255) });
    const answer = await referrers.list(ctx.upstream, ctx.repository, d, at ?? undefined);
    ctx.cache = answer.cache;
    const headers: Record<string, string> = { 'content-type': OCI_INDEX };
    if (answer.filtersApplied) headers['oci-filters-applied'] = answer.filtersApplied;
    if (answer.warning) headers.warning = answer.warning;
    if (answer.link) {
      const link = rewriteLink(answer.link, ctx, `referrers/${d.value}`);
      if (link) headers.link = link;
    }
    if (!ctx.head) metrics.served(answer.source === 'upstream' ? 'upstream' : 'cache', answer.body.length);
    sendBuffer(ctx, 200, answer.body, headers);
  };
}
