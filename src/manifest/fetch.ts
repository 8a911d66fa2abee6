/**
 * Manifests by digest: from the store (memory, then disk), else fetched from the upstream once
 * (concurrent requests share the fetch), verified against the digest that was asked for, stored.
 */
import { RegistryError } from '../registry/errors.js';
import { parseDigest, type Digest } from '../registry/grammar.js';
import { digestOf } from '../store/digest.js';
import type { StoredManifest } from '../store/manifests.js';
import { contentLength, type Upstream, type UpstreamResponse } from '../upstream/client.js';
import { MANIFEST_TYPES } from '../registry/accept.js';
import type { Mirror } from '../mirror.js';

/** Accept sent when fetching by digest: the bytes are fixed, so every manifest type is welcome. */
const DIGEST_ACCEPT = [...MANIFEST_TYPES, '*/*'].join(', ');

/** Reads a manifest body, refusing more than `max` bytes. */
export async function readManifestBody(res: UpstreamResponse, max: number, mirror: Mirror, upstream: Upstream): Promise<Buffer> {
  const declared = contentLength(res);
  const tooLarge = () => {
    mirror.metrics.verifyFailures.inc({ kind: 'manifest', reason: 'oversize' });
    return new RegistryError('UNAVAILABLE', { upstream: upstream.namespace, reason: `manifest larger than ${max} bytes` }, { message: 'the upstream manifest is too large' });
  };
  if (declared !== undefined && declared > max) {
    res.body.destroy();
    throw tooLarge();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > max) {
        res.body.destroy();
        throw tooLarge();
      }
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    if (err instanceof RegistryError) throw err;
    throw new RegistryError('UNAVAILABLE', { upstream: upstream.namespace, reason: 'manifest body failed' }, { cause: err });
  }
  const bytes = Buffer.concat(chunks, size);
  if (declared !== undefined && declared !== size) {
    mirror.metrics.verifyFailures.inc({ kind: 'manifest', reason: 'short-body' });
    throw new RegistryError('UNAVAILABLE', { upstream: upstream.namespace, reason: 'manifest body shorter than announced' });
  }
  mirror.metrics.upstreamBytes.inc({ upstream: upstream.namespace, kind: 'manifest' }, size);
  return bytes;
}

/** The media type of an upstream manifest answer (Content-Type without parameters, else the JSON's mediaType). */
export function manifestMediaType(contentType: string | string[] | undefined, bytes: Buffer): string {
  const ct = (Array.isArray(contentType) ? contentType[0] : contentType)?.split(';')[0]?.trim().toLowerCase();
  if (ct && ct !== 'application/json' && ct !== 'text/plain' && ct !== 'application/octet-stream') return ct;
  try {
    const mt = (JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown }).mediaType;
    if (typeof mt === 'string' && mt.length < 256) return mt;
  } catch {
    /* not JSON: fall through */
  }
  return ct || 'application/octet-stream';
}

/** Verifies and stores manifest bytes fetched upstream. */
export async function storeVerified(mirror: Mirror, d: Digest, mediaType: string, bytes: Buffer, upstream: Upstream): Promise<StoredManifest> {
  const got = digestOf(bytes, d.algorithm);
  if (got !== d.value) {
    mirror.metrics.verifyFailures.inc({ kind: 'manifest', reason: 'digest-mismatch' });
    mirror.log.warn({ upstream: upstream.namespace, want: d.value, got }, 'upstream manifest does not match its digest; not cached');
    throw new RegistryError('UNAVAILABLE', { upstream: upstream.namespace, reason: 'manifest does not match its digest' }, { message: 'the upstream sent a manifest that does not match its digest' });
  }
  return mirror.manifests.put(d, mediaType, bytes);
}

/**
 * A manifest by digest: cached, or fetched upstream (single-flight by digest), verified and stored.
 * `hit` tells whether the upstream was needed.
 */
export async function manifestByDigest(mirror: Mirror, upstream: Upstream, repository: string, d: Digest): Promise<{ manifest: StoredManifest; hit: boolean }> {
  const cached = mirror.manifests.peek(d) ?? (await mirror.manifests.get(d));
  if (cached) return { manifest: cached, hit: true };
  const manifest = await mirror.manifestFlights.run(
    d.value,
    async () => {
      const again = await mirror.manifests.get(d);
      if (again) return again;
      const res = await upstream.request({ kind: 'manifest', method: 'GET', repository, path: `/v2/${repository}/manifests/${d.value}`, headers: { accept: DIGEST_ACCEPT } });
      if (res.status !== 200) throw await upstream.error(res, 'manifest');
      const bytes = await readManifestBody(res, mirror.config.maxManifestBytes, mirror, upstream);
      return storeVerified(mirror, d, manifestMediaType(res.headers['content-type'], bytes), bytes, upstream);
    },
    () => mirror.metrics.coalesced.inc({ kind: 'manifest' }),
  );
  return { manifest, hit: false };
}

/** Parses a `Docker-Content-Digest` header we can verify, else undefined. */
export function headerDigest(value: string | string[] | undefined): Digest | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  return v ? parseDigest(v.trim()) : undefined;
}
