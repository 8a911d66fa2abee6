/** Digests: the algorithms the mirror can verify, parsing `alg:hex`, and hashing bytes against one. */
import { createHash, type Hash } from 'node:crypto';

/** The digest algorithms the mirror can verify, with the length of their hex encoding. */
export const DIGEST_ALGORITHMS = { sha256: 64, sha512: 128 } as const;
export type DigestAlgorithm = keyof typeof DIGEST_ALGORITHMS;

/** A parsed digest of an algorithm the mirror can verify. */
export interface Digest {
  readonly algorithm: DigestAlgorithm;
  readonly hex: string;
  /** `algorithm:hex` */
  readonly value: string;
}

const HEX_RE = /^[0-9a-f]+$/;

/** Parses a digest the mirror can verify; undefined for anything else. */
export function parseDigest(value: string): Digest | undefined {
  const colon = value.indexOf(':');
  if (colon <= 0) return undefined;
  const algorithm = value.slice(0, colon);
  const hex = value.slice(colon + 1);
  if (!Object.hasOwn(DIGEST_ALGORITHMS, algorithm)) return undefined;
  const alg = algorithm as DigestAlgorithm;
  if (hex.length !== DIGEST_ALGORITHMS[alg] || !HEX_RE.test(hex)) return undefined;
  return { algorithm: alg, hex, value };
}

/** True when `ref` looks like a digest (has an algorithm prefix), valid or not. */
export function looksLikeDigest(ref: string): boolean {
  return /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:/.test(ref);
}

/** A streaming hasher for the digest's algorithm. */
export function hasherFor(digest: Digest): Hash {
  return createHash(digest.algorithm);
}

/** The `alg:hex` digest of `bytes`. */
export function digestOf(bytes: Uint8Array, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}
