/**
 * `GET|HEAD /_regmirror/peer/blobs/<digest>`: what this mirror holds of a blob, for the other mirrors of
 * its cluster — committed (a normal blob answer, ranges included) or being filled (the fill's reader:
 * bytes stream as they arrive, the last one after verification) — else a clear 404 miss. It never goes
 * upstream and never starts a fill. With `cluster.token` it requires `Authorization: Bearer <token>`.
 */
import { timingSafeEqual } from 'node:crypto';
import { checkDigest } from '../oci/names.js';
import { Unsupported } from '../oci/errors.js';
import type { BlobService } from '../blobs/service.js';
import type { Sender } from '../body/sender.js';
import type { RequestContext } from '../http/context.js';
import { sendBuffer } from '../http/respond.js';
import type { ClusterMetrics } from './metrics.js';
import { COMMITTED_ONLY, PEER_PREFIX } from './peer-origin.js';

const OCTET = 'application/octet-stream';

/** What the peer endpoint needs. */
export interface PeerEndpointDeps {
  blobs: BlobService;
  sender: Sender;
  metrics: ClusterMetrics;
  /** The cluster's shared secret; undefined: open to whoever can reach the mirror. */
  token: string | undefined;
}

function one(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function errorBody(code: string, message: string): Buffer {
  return Buffer.from(JSON.stringify({ errors: [{ code, message, detail: null }] }));
}

/** Constant-time comparison of the Authorization header with the expected bearer token. */
function authorized(header: string | undefined, token: string): boolean {
  if (header === undefined) return false;
  const got = Buffer.from(header);
  const want = Buffer.from(`Bearer ${token}`);
  return got.length === want.length && timingSafeEqual(got, want);
}

/** The peer endpoint's handler; `path` is the request path (under `/_regmirror/`). */
export function peerEndpoint(deps: PeerEndpointDeps): (ctx: RequestContext, path: string) => Promise<void> {
  return async (ctx, path) => {
    const method = ctx.req.method;
    if (method !== 'GET' && method !== 'HEAD') throw new Unsupported('the peer endpoint is read-only', { method: method ?? '' });
    if (deps.token !== undefined && !authorized(ctx.req.headers.authorization, deps.token)) {
      deps.metrics.peerServed.inc({ result: 'denied' });
      ctx.cache = 'peer-denied';
      sendBuffer(ctx, 403, errorBody('DENIED', 'peer endpoint: missing or wrong cluster token'), { 'content-type': 'application/json' });
      return;
    }
    if (!path.startsWith(PEER_PREFIX)) {
      sendBuffer(ctx, 404, errorBody('NOT_FOUND', `no such peer endpoint: ${path.slice(0, 200)}`), { 'content-type': 'application/json' });
      return;
    }
    const d = checkDigest(path.slice(PEER_PREFIX.length));
    let answer = await deps.blobs.openLocal({ digest: d, range: one(ctx.req.headers.range), ifRange: one(ctx.req.headers['if-range']) });
    if (answer && answer.origin !== 'cache' && ctx.req.headers[COMMITTED_ONLY] !== undefined) {
      answer.source.release();
      answer = undefined;
    }
    if (!answer) {
      deps.metrics.peerServed.inc({ result: 'miss' });
      ctx.cache = 'peer-miss';
      sendBuffer(ctx, 404, errorBody('BLOB_UNKNOWN', `this mirror neither holds nor is filling ${d.value} (peer miss)`), { 'content-type': 'application/json', 'x-regmirror-peer': 'miss' });
      return;
    }
    const result = answer.origin === 'cache' ? 'hit' : 'joined';
    deps.metrics.peerServed.inc({ result });
    ctx.cache = `peer-${result}`;
    const err = await deps.sender.send(ctx.res, answer.source, answer.selection, {
      headers: { 'docker-content-digest': d.value, etag: `"${d.value}"`, 'accept-ranges': 'bytes', 'x-regmirror-peer': result },
      contentType: OCTET,
      head: ctx.head,
      onBytes: (n) => (ctx.bytes += n),
    });
    if (err) ctx.log.info({ err: err.message, digest: d.value }, 'peer transfer ended early');
  };
}
