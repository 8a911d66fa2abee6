/**
 * The config's `pin:` list: image references whose manifests and blobs are never evicted (and are
 * fetched at start when missing; resolving them to digests is the serving code's job).
 *
 *   pin:
 *     - docker.io/library/alpine:3.20                  # every platform of the index
 *     - ref: ghcr.io/acme/app@sha256:…
 *       platforms: [linux/amd64, linux/arm64/v8]       # only these platforms' manifests and blobs
 *
 * A reference without a registry host (`alpine:3.20`) leaves `namespace` unset: the default
 * upstream's. Without a tag or digest the tag is `latest`, as every client does.
 */
import { isValidName, isValidTag } from '../../oci/names.js';
import { parseDigest, type Digest } from '../../oci/digest.js';

/** A platform to keep: `os/architecture[/variant]`. */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** One parsed pin. */
export interface PinSpec {
  /** The reference as configured (for logs and the pins table). */
  ref: string;
  /** Registry host (upstream namespace), when the reference names one. */
  namespace?: string;
  repository: string;
  /** The tag, when the reference has one (kept even with a digest, for display). */
  tag?: string;
  /** The digest, when the reference has one: it wins over the tag. */
  digest?: Digest;
  /** Platforms to keep; 'all' when none are configured. */
  platforms: Platform[] | 'all';
}

/** Error in the `pin:` list, naming the entry. */
export class PinConfigError extends Error {
  override readonly name = 'PinConfigError';
}

/** True when the first path component is a registry host rather than a repository component. */
function isHost(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost';
}

/** Parses an image reference: `[host[:port]/]repository[:tag][@algorithm:hex]`. */
export function parseImageReference(ref: string): Omit<PinSpec, 'platforms'> {
  let rest = ref.trim();
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = parseDigest(rest.slice(at + 1));
    if (!digest) throw new PinConfigError(`pin ${JSON.stringify(ref)}: invalid or unsupported digest`);
    rest = rest.slice(0, at);
  }
  let namespace: string | undefined;
  const slash = rest.indexOf('/');
  if (slash > 0 && isHost(rest.slice(0, slash))) {
    namespace = rest.slice(0, slash);
    rest = rest.slice(slash + 1);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!isValidTag(tag)) throw new PinConfigError(`pin ${JSON.stringify(ref)}: invalid tag ${JSON.stringify(tag)}`);
  }
  if (!isValidName(rest)) throw new PinConfigError(`pin ${JSON.stringify(ref)}: invalid repository name ${JSON.stringify(rest)}`);
  if (!tag && !digest) tag = 'latest';
  const out: Omit<PinSpec, 'platforms'> = { ref: ref.trim(), repository: rest };
  if (namespace !== undefined) out.namespace = namespace;
  if (tag !== undefined) out.tag = tag;
  if (digest !== undefined) out.digest = digest;
  return out;
}

/** Parses `os/architecture[/variant]`. */
export function parsePlatform(value: string): Platform {
  const parts = value.trim().toLowerCase().split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9._-]+$/.test(p))) {
    throw new PinConfigError(`invalid platform ${JSON.stringify(value)} (use os/architecture[/variant], e.g. linux/arm64/v8)`);
  }
  const [os = '', architecture = '', variant] = parts;
  return variant === undefined ? { os, architecture } : { os, architecture, variant };
}

/** Parses the `pin:` value of a config file (undefined or null: no pins). */
export function parsePins(raw: unknown): PinSpec[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw new PinConfigError('pin must be a list of image references');
  return raw.map((item: unknown, i) => {
    if (typeof item === 'string') return { ...parseImageReference(item), platforms: 'all' as const };
    if (item && typeof item === 'object' && !Array.isArray(item)) {
      const o = item as Record<string, unknown>;
      for (const k of Object.keys(o)) if (k !== 'ref' && k !== 'platforms') throw new PinConfigError(`pin[${i}]: unknown key ${JSON.stringify(k)}`);
      if (typeof o.ref !== 'string') throw new PinConfigError(`pin[${i}]: ref must be an image reference`);
      const spec = parseImageReference(o.ref);
      if (o.platforms === undefined) return { ...spec, platforms: 'all' as const };
      if (!Array.isArray(o.platforms) || o.platforms.length === 0 || !o.platforms.every((p) => typeof p === 'string')) {
        throw new PinConfigError(`pin[${i}]: platforms must be a non-empty list like [linux/amd64]`);
      }
      return { ...spec, platforms: (o.platforms as string[]).map(parsePlatform) };
    }
    throw new PinConfigError(`pin[${i}]: expected an image reference or {ref, platforms}`);
  });
}

/** True when a manifest's platform is one the pin keeps. */
export function pinKeepsPlatform(spec: PinSpec, p: Platform): boolean {
  if (spec.platforms === 'all') return true;
  return spec.platforms.some((q) => q.os === p.os && q.architecture === p.architecture && (q.variant === undefined || q.variant === p.variant));
}
