/** `GET/HEAD /v2/<name>/blobs/<digest>`: parse → blob service → a body source → the sender. */
import { checkDigest } from '../../oci/names.js';
import type { Digest } from '../../oci/digest.js';
import type { BlobService } from '../../blobs/service.js';
import type { Sender } from '../../body/sender.js';
import type { Metrics } from '../../metrics.js';
import type { RepoContext } from '../context.js';

const OCTET = 'application/octet-stream';

function one(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function blobHeaders(d: Digest): Record<string, string> {
  return {
    'docker-content-digest': d.value,
    etag: `"${d.value}"`,
    'accept-ranges': 'bytes',
    'cache-control': 'max-age=31536000, immutable',
  };
}

/** What the blob handler needs. */
export interface BlobHandlerDeps {
  blobs: BlobService;
  sender: Sender;
  metrics: Metrics;
}

export function blobHandler({ blobs, sender, metrics }: BlobHandlerDeps): (ctx: RepoContext, digest: string) => Promise<void> {
  return async (ctx, digest) => {
    const d = checkDigest(digest);
    const req = { upstream: ctx.upstream, repository: ctx.repository, digest: d, range: one(ctx.req.headers.range), ifRange: one(ctx.req.headers['if-range']) };
    if (ctx.head) {
      const stat = await blobs.stat(req);
      ctx.cache = stat.cache;
      if (stat.cache === 'hit') metrics.hit('blob');
      else if (stat.cache === 'miss') metrics.misses.inc({ kind: 'blob' });
      const res = ctx.res;
      res.statusCode = 200;
      res.setHeader('content-type', OCTET);
      for (const [k, v] of Object.entries(blobHeaders(d))) res.setHeader(k, v);
      if (stat.size !== undefined) res.setHeader('content-length', stat.size);
      res.end();
      return;
    }
    const answer = await blobs.open(req);
    ctx.cache = answer.cache;
    const { origin, selection } = answer;
    if (selection.kind !== 'whole') {
      metrics.rangeRequests.inc({ source: origin, parts: selection.kind });
      metrics.rangeParts.inc({ source: origin }, selection.kind === 'single' ? 1 : selection.ranges.length);
    }
    const joined = answer.cache === 'joined';
    const err = await sender.send(ctx.res, answer.source, selection, {
      headers: blobHeaders(d),
      contentType: OCTET,
      head: false,
      onBytes: (n) => {
        ctx.bytes += n;
        metrics.served(origin, n);
        if (joined) metrics.fillJoinerBytes.inc(n);
      },
    });
    if (err) ctx.log[origin === 'cache' ? 'debug' : 'warn']({ err: err.message, digest: d.value, origin }, 'blob transfer ended early');
  };
}
