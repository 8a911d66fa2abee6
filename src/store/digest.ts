/** Hashing bytes against a digest. */
import { createHash, type Hash } from 'node:crypto';
import type { Digest } from '../registry/grammar.js';

/** A streaming hasher for the digest's algorithm. */
export function hasherFor(digest: Digest): Hash {
  return createHash(digest.algorithm);
}

/** The `alg:hex` digest of `bytes`. */
export function digestOf(bytes: Uint8Array, algorithm: Digest['algorithm'] = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}
