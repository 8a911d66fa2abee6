/**
 * The upstream side of blobs: the body of a whole blob for a fill, its size from a HEAD, and exact byte
 * ranges. Like distribution's remote blob store behind proxyBlobStore. Bodies pass through the upstream's
 * bandwidth shaper when one is configured (see upstream/bandwidth.ts); cached content never does.
 */
import type { Readable } from 'node:stream';
import type { Digest } from '../oci/digest.js';
import { UpstreamUnavailable } from '../oci/errors.js';
import type { FillBody, FillOrigin } from '../fill/blob-fill.js';
import { contentLength, type Upstream } from '../upstream/client.js';
import { fetchUpstreamRange, type UpstreamRange } from '../upstream/range.js';
import { shapeChunks, shapeReadable, type Shaper } from '../upstream/bandwidth.js';

/** Opens the upstream body of a blob for a fill, shaped by `shaper` when given. */
export function blobOrigin(upstream: Upstream, repository: string, d: Digest, shaper?: Shaper): FillOrigin {
  return async (signal) => {
    const res = await upstream.request({ kind: 'blob', method: 'GET', repository, path: `/v2/${repository}/blobs/${d.value}`, signal });
    if (res.status !== 200) throw await upstream.error(res, 'blob');
    return {
      size: contentLength(res),
      upstream: upstream.namespace,
      chunks: shaper ? shapeChunks(res.body, shaper) : res.body,
      destroy: (err?: Error) => res.body.destroy(err),
    };
  };
}

/** Opens the upstream body of a blob from byte `start` (a fill resuming after its peer source failed). */
export function blobOriginFrom(upstream: Upstream, repository: string, d: Digest): (start: number, signal: AbortSignal) => Promise<FillBody> {
  return async (start, signal) => {
    const got = await fetchUpstreamRange(upstream, repository, d, `bytes=${start}-`, signal, () => undefined);
    if (got.range.start !== start) {
      got.body.destroy();
      throw new UpstreamUnavailable(`the upstream answered from byte ${got.range.start} for bytes=${start}-`, { upstream: upstream.namespace, reason: 'content-range' });
    }
    return { size: got.size, upstream: upstream.namespace, chunks: got.body, destroy: (err?: Error) => got.body.destroy(err) };
  };
}

/** The blob's size from an upstream HEAD (no body moves); undefined when it sent no usable length. */
export async function remoteBlobSize(upstream: Upstream, repository: string, d: Digest): Promise<number | undefined> {
  const res = await upstream.request({ kind: 'blob-head', method: 'HEAD', repository, path: `/v2/${repository}/blobs/${d.value}` });
  if (res.status !== 200) throw await upstream.error(res, 'blob-head');
  await res.body.dump();
  return contentLength(res);
}

/** One range of the blob from the upstream, as it answered it (`range` is a one-member Range header value). */
export async function remoteRange(upstream: Upstream, repository: string, d: Digest, range: string, signal: AbortSignal, onBytes: (n: number) => void, shaper?: Shaper): Promise<UpstreamRange> {
  const got = await fetchUpstreamRange(upstream, repository, d, range, signal, onBytes);
  return shaper ? { ...got, body: shapeReadable(got.body, shaper) } : got;
}

/** Exactly bytes [start, end] of the blob from the upstream, as a stream. */
export async function remoteExact(upstream: Upstream, repository: string, d: Digest, start: number, end: number, signal: AbortSignal, onBytes: (n: number) => void, shaper?: Shaper): Promise<Readable> {
  const got = await fetchUpstreamRange(upstream, repository, d, `bytes=${start}-${end}`, signal, onBytes);
  if (got.range.start !== start || got.range.end !== end) {
    got.body.destroy();
    throw new UpstreamUnavailable(`the upstream answered bytes ${got.range.start}-${got.range.end} for ${start}-${end}`, { upstream: upstream.namespace, reason: 'content-range' });
  }
  return shapeReadable(got.body, shaper);
}
