/**
 * `GET/HEAD /v2/<name>/blobs/<digest>`, top to bottom: route → store → fill → upstream.
 * A cached blob is streamed from its file. Otherwise the request joins the fill of that digest in
 * flight, or starts one, and streams from the fill's file as the bytes arrive.
 */
import type { Mirror } from '../mirror.js';
import type { RepoContext } from './context.js';
import { checkDigest, type Digest } from './grammar.js';
import { sendStream } from './respond.js';
import type { OpenBlob } from '../store/blobs.js';
import { FillReader } from '../fill/reader.js';
import type { FillSource } from '../fill/blob-fill.js';
import type { Upstream } from '../upstream/client.js';

/** Read size when streaming a cached blob. */
const FILE_CHUNK = 512 * 1024;

function blobHeaders(d: Digest): Record<string, string> {
  return {
    'content-type': 'application/octet-stream',
    'docker-content-digest': d.value,
    etag: `"${d.value}"`,
    'accept-ranges': 'bytes',
    'cache-control': 'max-age=31536000, immutable',
  };
}

function setHeaders(ctx: RepoContext, status: number, headers: Record<string, string | number>): void {
  ctx.res.statusCode = status;
  for (const [k, v] of Object.entries(headers)) ctx.res.setHeader(k, v);
}

export async function handleBlob(mirror: Mirror, ctx: RepoContext, digest: string): Promise<void> {
  const d = checkDigest(digest);
  if (ctx.head) return headBlob(mirror, ctx, d);
  const blob = await mirror.blobs.open(d);
  if (blob) return serveCached(mirror, ctx, d, blob);
  return serveFromFill(mirror, ctx, d);
}

async function headBlob(mirror: Mirror, ctx: RepoContext, d: Digest): Promise<void> {
  const size = await mirror.blobs.size(d);
  if (size !== undefined) {
    ctx.cache = 'hit';
    mirror.metrics.hits.inc({ kind: 'blob' });
    setHeaders(ctx, 200, { ...blobHeaders(d), 'content-length': size });
    ctx.res.end();
    return;
  }
  const fill = mirror.fills.get(d);
  if (fill && fill.size !== undefined) {
    ctx.cache = 'joined';
    setHeaders(ctx, 200, { ...blobHeaders(d), 'content-length': fill.size });
    ctx.res.end();
    return;
  }
  ctx.cache = 'miss';
  mirror.metrics.misses.inc({ kind: 'blob' });
  const res = await ctx.upstream.request({ kind: 'blob-head', method: 'HEAD', repository: ctx.repository, path: `/v2/${ctx.repository}/blobs/${d.value}` });
  if (res.status !== 200) throw await ctx.upstream.error(res, 'blob-head');
  await res.body.dump();
  const len = Number(res.headers['content-length']);
  setHeaders(ctx, 200, { ...blobHeaders(d), ...(Number.isSafeInteger(len) && len >= 0 ? { 'content-length': len } : {}) });
  ctx.res.end();
}

async function serveCached(mirror: Mirror, ctx: RepoContext, d: Digest, blob: OpenBlob): Promise<void> {
  ctx.cache = 'hit';
  mirror.metrics.hits.inc({ kind: 'blob' });
  setHeaders(ctx, 200, { ...blobHeaders(d), 'content-length': blob.size });
  const stream = blob.handle.createReadStream({ highWaterMark: FILE_CHUNK, autoClose: true });
  stream.on('data', (c: string | Buffer) => {
    ctx.bytes += c.length;
    mirror.metrics.bytesServed.inc({ source: 'cache' }, c.length);
  });
  await sendStream(ctx, stream);
}

/** Opens the upstream body of a blob for a fill. */
export function blobSource(upstream: Upstream, repository: string, d: Digest): FillSource {
  return async (signal) => {
    const res = await upstream.request({ kind: 'blob', method: 'GET', repository, path: `/v2/${repository}/blobs/${d.value}`, signal });
    if (res.status !== 200) throw await upstream.error(res, 'blob');
    const len = Number(res.headers['content-length']);
    return {
      size: res.headers['content-length'] !== undefined && Number.isSafeInteger(len) && len >= 0 ? len : undefined,
      chunks: res.body,
      destroy: (err?: Error) => res.body.destroy(err),
    };
  };
}

async function serveFromFill(mirror: Mirror, ctx: RepoContext, d: Digest): Promise<void> {
  const { fill, joined } = mirror.fills.obtain(d, blobSource(ctx.upstream, ctx.repository, d));
  ctx.cache = joined ? 'joined' : 'miss';
  mirror.metrics.misses.inc({ kind: 'blob' });
  await fill.ready;
  setHeaders(ctx, 200, { ...blobHeaders(d), ...(fill.size !== undefined ? { 'content-length': fill.size } : {}) });
  ctx.res.flushHeaders(); // joiners get their headers at once, whatever has arrived yet
  const reader = new FillReader(fill, 0, Infinity, (n) => {
    ctx.bytes += n;
    if (joined) mirror.metrics.fillJoinerBytes.inc(n);
    mirror.metrics.bytesServed.inc({ source: 'fill' }, n);
  });
  await sendStream(ctx, reader, (err) => ctx.log.warn({ err: err.message, digest: d.value }, 'blob transfer aborted'));
}
