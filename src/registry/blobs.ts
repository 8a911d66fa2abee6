/**
 * `GET/HEAD /v2/<name>/blobs/<digest>`, top to bottom: route → store → fill → upstream.
 *
 * - Cached: streamed from its file; ranges (one → 206, several → 206 multipart) cut from it.
 * - A fill in flight: joined; the answer streams from the fill's file as bytes arrive. Ranges are served
 *   from it too: bytes already on disk at once, the rest as the fill reaches them.
 * - Not cached, whole blob (or `bytes=0-`): a fill starts and the answer streams from it.
 * - Not cached, a range: by default no fill (bandwidth is the point). One range is forwarded upstream and
 *   streamed back; several are split into single-range upstream fetches and answered as multipart.
 *   `rangeFillOnMiss` also starts a fill.
 */
import type { Readable } from 'node:stream';
import type { FileHandle } from 'node:fs/promises';
import type { Mirror } from '../mirror.js';
import type { RepoContext } from './context.js';
import { checkDigest, type Digest } from './grammar.js';
import { sendStream } from './respond.js';
import { FillReader } from '../fill/reader.js';
import type { BlobFill, FillSource } from '../fill/blob-fill.js';
import { contentLength, type Upstream } from '../upstream/client.js';
import { fetchUpstreamRange } from '../upstream/blob-range.js';
import { formatContentRange, parseRangeSpecs, type ByteRange } from '../range/parse.js';
import { multipartPlan, newBoundary, writeMultipart, type PartSource } from '../range/multipart.js';
import { isWholeFromZero, selectRanges, type Selection } from '../range/select.js';
import { upstreamParts } from '../range/upstream-parts.js';
import { sendRange, type ByteSource } from '../store/send-file.js';

/** Read size when streaming a cached blob. */
const FILE_CHUNK = 512 * 1024;
/** Parts up to this size are read into memory in one call rather than streamed. */
const SMALL_PART = 64 * 1024;
const OCTET = 'application/octet-stream';

type Source = 'cache' | 'fill' | 'upstream';

/** Opens bytes [start, end] of the blob; `part` is the index of the multipart part it is for. */
type Opener = (start: number, end: number, part?: number) => PartSource | Promise<PartSource>;

function one(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function blobHeaders(d: Digest): Record<string, string> {
  return {
    'content-type': OCTET,
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
  const range = ctx.req.headers.range;
  const hot = mirror.blobs.fromMemory(d);
  if (hot) {
    mirror.metrics.hits.inc({ kind: 'blob' });
    return serveMemory(mirror, ctx, d, hot);
  }
  const blob = await mirror.blobs.open(d);
  if (blob) return serveCached(mirror, ctx, d, blob.handle, blob.size);
  const inflight = mirror.fills.get(d);
  const wantsRange = range !== undefined && !isWholeFromZero(range) && ifRangeHolds(ctx, d);
  if (!inflight && wantsRange && !mirror.config.range.fillOnMiss) return serveRangeMiss(mirror, ctx, d, range);
  return serveFromFill(mirror, ctx, d);
}

function ifRangeHolds(ctx: RepoContext, d: Digest): boolean {
  const ir = one(ctx.req.headers['if-range']);
  return ir === undefined || ir.trim() === `"${d.value}"`;
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
  const len = await upstreamBlobSize(ctx, d);
  setHeaders(ctx, 200, { ...blobHeaders(d), ...(len !== undefined ? { 'content-length': len } : {}) });
  ctx.res.end();
}

/** The blob's size from an upstream HEAD (no body moves); undefined when it sent no usable length. */
async function upstreamBlobSize(ctx: RepoContext, d: Digest): Promise<number | undefined> {
  const res = await ctx.upstream.request({ kind: 'blob-head', method: 'HEAD', repository: ctx.repository, path: `/v2/${ctx.repository}/blobs/${d.value}` });
  if (res.status !== 200) throw await ctx.upstream.error(res, 'blob-head');
  await res.body.dump();
  return contentLength(res);
}

/**
 * Answers with the whole blob, one range or several, from `open`; `sendBody`, when given, sends a
 * whole or single-range body itself (the file fast path).
 */
async function answer(
  mirror: Mirror,
  ctx: RepoContext,
  d: Digest,
  size: number | undefined,
  sel: Selection,
  open: Opener,
  source: Source,
  sendBody?: (start: number, end: number, count: (n: number) => void) => Promise<void>,
): Promise<void> {
  const { res } = ctx;
  const count = (n: number) => {
    ctx.bytes += n;
    mirror.metrics.bytesServed.inc({ source }, n);
  };
  const stream = async (src: PartSource, flush: boolean) => {
    if (flush) res.flushHeaders();
    if (src instanceof Uint8Array) {
      count(src.length);
      res.end(src);
      return;
    }
    src.on('data', (c: Buffer) => count(c.length));
    await sendStream(ctx, src as Readable, (err) => ctx.log.warn({ err: err.message, digest: d.value }, 'blob transfer aborted'));
  };
  if (sel.kind === 'whole') {
    setHeaders(ctx, 200, { ...blobHeaders(d), ...(size !== undefined ? { 'content-length': size } : {}) });
    if (sendBody) return sendBody(0, size === undefined ? Infinity : size - 1, count);
    return stream(await open(0, size === undefined ? Infinity : size - 1), source !== 'cache');
  }
  mirror.metrics.rangeRequests.inc({ source, parts: sel.kind });
  if (sel.kind === 'single') {
    const r = sel.range;
    mirror.metrics.rangeParts.inc({ source });
    setHeaders(ctx, 206, { ...blobHeaders(d), 'content-range': formatContentRange(r, size!), 'content-length': r.end - r.start + 1 });
    if (sendBody) return sendBody(r.start, r.end, count);
    return stream(await open(r.start, r.end), source !== 'cache');
  }
  const plan = multipartPlan(sel.ranges, size!, OCTET, newBoundary());
  mirror.metrics.rangeParts.inc({ source }, sel.ranges.length);
  setHeaders(ctx, 206, { ...blobHeaders(d), 'content-type': plan.contentType, 'content-length': plan.contentLength });
  await writeMultipart(
    plan,
    async (i, r) => {
      const part = await open(r.start, r.end, i);
      if (part instanceof Uint8Array) count(part.length);
      else part.on('data', (c: Buffer) => count(c.length));
      return part;
    },
    res,
  ).catch((err: Error) => {
    ctx.log.warn({ err: err.message, digest: d.value }, 'multipart transfer aborted');
    res.destroy(err);
  });
}

async function serveCached(mirror: Mirror, ctx: RepoContext, d: Digest, handle: FileHandle, size: number): Promise<void> {
  ctx.cache = 'hit';
  mirror.metrics.hits.inc({ kind: 'blob' });
  try {
    if (size <= mirror.blobs.memoryItemMax) {
      // Small and hot: read once, keep it in memory, serve it from there from now on.
      const buf = Buffer.allocUnsafe(size);
      const { bytesRead } = await handle.read(buf, 0, size, 0);
      if (bytesRead !== size) throw new Error('cached blob shorter than its size');
      mirror.blobs.remember(d, buf);
      return await serveMemory(mirror, ctx, d, buf);
    }
    const sel = selectRanges(ctx.req.headers.range, one(ctx.req.headers['if-range']), `"${d.value}"`, size, mirror.config.range.maxRanges);
    const open: Opener = async (start, end) => {
      const len = Math.min(end, size - 1) - start + 1;
      if (len <= SMALL_PART) {
        const buf = Buffer.allocUnsafe(len);
        const { bytesRead } = await handle.read(buf, 0, len, start);
        if (bytesRead !== len) throw new Error('cached blob shorter than its size');
        return buf;
      }
      return handle.createReadStream({ start, end: Math.min(end, size - 1), highWaterMark: FILE_CHUNK, autoClose: false });
    };
    const file: ByteSource = {
      read: async (buf, length, position) => (await handle.read(buf, 0, length, position)).bytesRead,
      available: async (position) => size - position,
    };
    const send = async (start: number, end: number, count: (n: number) => void) => {
      const err = await sendRange(file, start, end, ctx.res, count);
      if (err) ctx.log.debug({ err: err.message, digest: d.value }, 'blob transfer ended early');
    };
    await answer(mirror, ctx, d, size, sel, open, 'cache', send);
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** A small blob held in memory: whole, ranges and multipart cut from the buffer. */
async function serveMemory(mirror: Mirror, ctx: RepoContext, d: Digest, buf: Buffer): Promise<void> {
  ctx.cache = 'hit';
  const sel = selectRanges(ctx.req.headers.range, one(ctx.req.headers['if-range']), `"${d.value}"`, buf.length, mirror.config.range.maxRanges);
  await answer(mirror, ctx, d, buf.length, sel, (start, end) => buf.subarray(start, Math.min(end, buf.length - 1) + 1), 'cache');
}

/** Opens the upstream body of a blob for a fill. */
export function blobSource(upstream: Upstream, repository: string, d: Digest): FillSource {
  return async (signal) => {
    const res = await upstream.request({ kind: 'blob', method: 'GET', repository, path: `/v2/${repository}/blobs/${d.value}`, signal });
    if (res.status !== 200) throw await upstream.error(res, 'blob');
    return {
      size: contentLength(res),
      upstream: upstream.namespace,
      chunks: res.body,
      destroy: (err?: Error) => res.body.destroy(err),
    };
  };
}

async function serveFromFill(mirror: Mirror, ctx: RepoContext, d: Digest): Promise<void> {
  const { fill, joined } = mirror.fills.obtain(d, blobSource(ctx.upstream, ctx.repository, d));
  // Attach in the same tick as the join, so the fill's file stays open for this request whatever happens next.
  fill.attach();
  try {
    ctx.cache = joined ? 'joined' : 'miss';
    mirror.metrics.misses.inc({ kind: 'blob' });
    await fill.ready;
    const sel: Selection = fill.size === undefined ? { kind: 'whole' } : selectRanges(ctx.req.headers.range, one(ctx.req.headers['if-range']), `"${d.value}"`, fill.size, mirror.config.range.maxRanges);
    const joinerBytes = (n: number) => {
      if (joined) mirror.metrics.fillJoinerBytes.inc(n);
    };
    const open: Opener = (start, end) => new FillReader(fill as BlobFill, start, end, joinerBytes);
    const send = async (start: number, end: number, count: (n: number) => void) => {
      ctx.res.flushHeaders(); // joiners get their headers at once, whatever has arrived yet
      const err = await sendRange(fill, start, end, ctx.res, (n) => {
        count(n);
        joinerBytes(n);
      });
      if (err) ctx.log.warn({ err: err.message, digest: d.value }, 'blob transfer aborted');
    };
    await answer(mirror, ctx, d, fill.size, sel, open, 'fill', send);
  } finally {
    fill.detach();
  }
}

/** A range request for a blob that is neither cached nor being filled: straight from the upstream. */
async function serveRangeMiss(mirror: Mirror, ctx: RepoContext, d: Digest, range: string): Promise<void> {
  ctx.cache = 'range-miss';
  mirror.metrics.misses.inc({ kind: 'blob' });
  const specs = parseRangeSpecs(range, { maxRanges: mirror.config.range.maxRanges });
  if (specs.kind !== 'specs') return serveFromFill(mirror, ctx, d); // ignored Range: the whole blob
  const abort = new AbortController();
  ctx.res.on('close', () => abort.abort());
  const onBytes = (n: number) => mirror.metrics.rangeUpstreamBytes.inc(n);
  const fetchExact = async (start: number, end: number, signal: AbortSignal): Promise<Readable> => {
    const got = await fetchUpstreamRange(ctx.upstream, ctx.repository, d, `bytes=${start}-${end}`, signal, onBytes);
    if (got.range.start !== start || got.range.end !== end) {
      got.body.destroy();
      throw new Error(`upstream answered bytes ${got.range.start}-${got.range.end} for ${start}-${end}`);
    }
    return got.body;
  };
  if (specs.specs.length === 1) {
    const got = await fetchUpstreamRange(ctx.upstream, ctx.repository, d, range.trim(), abort.signal, onBytes);
    const size = got.size;
    const r: ByteRange = got.range;
    mirror.metrics.rangeRequests.inc({ source: 'upstream', parts: 'single' });
    mirror.metrics.rangeParts.inc({ source: 'upstream' });
    setHeaders(ctx, 206, { ...blobHeaders(d), 'content-range': size !== undefined ? formatContentRange(r, size) : `bytes ${r.start}-${r.end}/*`, 'content-length': r.end - r.start + 1 });
    ctx.res.flushHeaders();
    got.body.on('data', (c: Buffer) => {
      ctx.bytes += c.length;
      mirror.metrics.bytesServed.inc({ source: 'upstream' }, c.length);
    });
    await sendStream(ctx, got.body, (err) => ctx.log.warn({ err: err.message, digest: d.value }, 'range transfer aborted'));
    return;
  }
  // Several ranges: the size decides suffixes and clamping, so ask for it first (a HEAD moves no body).
  const size = await upstreamBlobSize(ctx, d);
  if (size === undefined) return serveFromFill(mirror, ctx, d);
  const sel = selectRanges(range, undefined, `"${d.value}"`, size, mirror.config.range.maxRanges);
  if (sel.kind === 'whole') return serveFromFill(mirror, ctx, d);
  if (sel.kind === 'single') return answer(mirror, ctx, d, size, sel, (s, e) => fetchExact(s, e, abort.signal), 'upstream');
  const parts = upstreamParts(sel.ranges, fetchExact, { parallelism: mirror.config.range.upstreamParallelism });
  ctx.res.on('close', parts.abort);
  await answer(mirror, ctx, d, size, sel, (s, e, i) => parts.provider(i!, { start: s, end: e }), 'upstream');
  ctx.log.debug({ digest: d.value, ranges: sel.ranges.length, upstreamFetches: parts.fetches() }, 'multi-range answered from upstream');
}
