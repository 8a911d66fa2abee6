/**
 * Reading a manifest the way a pulling client does: what it points at. An index or Docker list
 * names per-platform manifests; an image manifest names its config and layers. Anything else with
 * `layers` or `blobs` (artifacts) is walked for its blobs too.
 */
import type { Digest } from '../oci/digest.js';
import { parseDigest } from '../oci/digest.js';
import { INDEX_TYPES } from './accept-sets.js';
import { WarmError } from './errors.js';
import type { Platform } from './platform.js';

/** A content descriptor as found in a manifest, digest parsed. */
export interface Desc {
  mediaType: string;
  digest: Digest;
  size: number;
  platform?: Platform;
  /** Set for foreign / non-distributable layers fetched from elsewhere (Windows base layers). */
  urls?: string[];
}

/** What a manifest references. */
export type ManifestContent = { kind: 'index'; mediaType: string; manifests: Desc[] } | { kind: 'image'; mediaType: string; config?: Desc; blobs: Desc[] };

interface RawDescriptor {
  mediaType?: unknown;
  digest?: unknown;
  size?: unknown;
  platform?: unknown;
  urls?: unknown;
}

function desc(raw: RawDescriptor, where: string): Desc {
  const digest = typeof raw.digest === 'string' ? parseDigest(raw.digest) : undefined;
  if (!digest) throw new WarmError('invalid', `${where}: a descriptor has no valid digest (${JSON.stringify(raw.digest)})`);
  if (typeof raw.size !== 'number' || !Number.isSafeInteger(raw.size) || raw.size < 0) throw new WarmError('invalid', `${where}: descriptor ${digest.value} has no valid size`);
  const out: Desc = { mediaType: typeof raw.mediaType === 'string' ? raw.mediaType : '', digest, size: raw.size };
  const p = raw.platform as Partial<Platform> | undefined;
  if (p && typeof p.os === 'string' && typeof p.architecture === 'string') {
    out.platform = { os: p.os, architecture: p.architecture, ...(typeof p.variant === 'string' && p.variant ? { variant: p.variant } : {}) };
  }
  if (Array.isArray(raw.urls) && raw.urls.length) out.urls = raw.urls.filter((u): u is string => typeof u === 'string');
  return out;
}

/** Parses manifest bytes (`headerType`: the Content-Type it came with, used when the JSON has no mediaType). */
export function parseManifest(bytes: Buffer, headerType: string, where: string): ManifestContent {
  let json: { mediaType?: unknown; manifests?: unknown; config?: unknown; layers?: unknown; blobs?: unknown; schemaVersion?: unknown };
  try {
    json = JSON.parse(bytes.toString('utf8')) as typeof json;
  } catch {
    throw new WarmError('invalid', `${where}: the manifest is not JSON`);
  }
  if (typeof json !== 'object' || json === null) throw new WarmError('invalid', `${where}: the manifest is not a JSON object`);
  if (json.schemaVersion === 1) throw new WarmError('invalid', `${where}: Docker schema 1 manifests are not supported`);
  const mediaType = typeof json.mediaType === 'string' ? json.mediaType : headerType;
  if (INDEX_TYPES.has(mediaType) || (Array.isArray(json.manifests) && json.config === undefined)) {
    const list = Array.isArray(json.manifests) ? (json.manifests as RawDescriptor[]) : [];
    return { kind: 'index', mediaType, manifests: list.map((m) => desc(m, where)) };
  }
  const blobs: Desc[] = [];
  const config = json.config !== undefined ? desc(json.config as RawDescriptor, where) : undefined;
  if (config) blobs.push(config);
  for (const key of ['layers', 'blobs'] as const) {
    const arr = json[key];
    if (Array.isArray(arr)) for (const l of arr as RawDescriptor[]) blobs.push(desc(l, where));
  }
  if (blobs.length === 0) throw new WarmError('invalid', `${where}: manifest of type ${JSON.stringify(mediaType)} references nothing`);
  return config ? { kind: 'image', mediaType, config, blobs } : { kind: 'image', mediaType, blobs };
}
