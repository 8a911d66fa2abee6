/**
 * The distribution-spec grammar for repository names, tags and digests.
 * Everything a client sends is checked here before it touches disk or the upstream.
 */
import { RegistryError } from './errors.js';

const COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const NAME_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

/** Clients cap host + name at 255 characters; we cap the name alone at that. */
export const MAX_NAME_LENGTH = 255;

/** The digest algorithms the mirror can verify, with the length of their hex encoding. */
export const DIGEST_ALGORITHMS = { sha256: 64, sha512: 128 } as const;
export type DigestAlgorithm = keyof typeof DIGEST_ALGORITHMS;

/** A parsed, verified-syntax digest. */
export interface Digest {
  readonly algorithm: DigestAlgorithm;
  readonly hex: string;
  /** `algorithm:hex` */
  readonly value: string;
}

/** True when `name` is a valid repository name. */
export function isValidName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_NAME_LENGTH && NAME_RE.test(name);
}

/** True when `tag` is a valid tag. */
export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

/** Parses a digest the mirror can verify; undefined for anything else. */
export function parseDigest(value: string): Digest | undefined {
  const colon = value.indexOf(':');
  if (colon <= 0) return undefined;
  const algorithm = value.slice(0, colon);
  const hex = value.slice(colon + 1);
  if (!Object.hasOwn(DIGEST_ALGORITHMS, algorithm)) return undefined;
  const alg = algorithm as DigestAlgorithm;
  if (hex.length !== DIGEST_ALGORITHMS[alg] || !/^[0-9a-f]+$/.test(hex)) return undefined;
  return { algorithm: alg, hex, value };
}

/** True when `ref` looks like a digest (has an algorithm prefix), valid or not. */
export function looksLikeDigest(ref: string): boolean {
  return /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:/.test(ref);
}

/** Checks a repository name or throws NAME_INVALID. */
export function checkName(name: string): string {
  if (!isValidName(name)) throw new RegistryError('NAME_INVALID', { name: name.slice(0, 300) });
  return name;
}

/** Checks a digest or throws DIGEST_INVALID. */
export function checkDigest(value: string): Digest {
  const d = parseDigest(value);
  if (!d) throw new RegistryError('DIGEST_INVALID', { digest: value.slice(0, 300) }, { message: 'invalid or unsupported digest' });
  return d;
}

/** A manifest reference: a tag or a digest. */
export type Reference = { kind: 'tag'; tag: string } | { kind: 'digest'; digest: Digest };

/** Parses a manifest reference or throws TAG_INVALID / DIGEST_INVALID. */
export function checkReference(ref: string): Reference {
  if (looksLikeDigest(ref)) return { kind: 'digest', digest: checkDigest(ref) };
  if (!isValidTag(ref)) throw new RegistryError('TAG_INVALID', { tag: ref.slice(0, 300) }, { message: 'invalid tag' });
  return { kind: 'tag', tag: ref };
}
