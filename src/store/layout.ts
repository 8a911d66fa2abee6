/**
 * The on-disk layout under the data directory. Every path is built from a digest that passed
 * {@link parseDigest} (algorithm name + lowercase hex), so nothing a client sends can escape it.
 *
 *   blobs/<alg>/<hex[0:2]>/<hex>        verified blob bytes
 *   manifests/<alg>/<hex[0:2]>/<hex>    "<media type>\n" + verified manifest bytes
 *   tmp/                                fills in progress (removed at start-up)
 */
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Digest } from '../oci/digest.js';

export class Layout {
  readonly root: string;
  readonly tmp: string;

  constructor(dataDir: string) {
    this.root = resolve(dataDir);
    this.tmp = join(this.root, 'tmp');
  }

  /** Path of a committed blob. */
  blob(d: Digest): string {
    return join(this.root, 'blobs', d.algorithm, d.hex.slice(0, 2), d.hex);
  }

  /** Path of a committed manifest. */
  manifest(d: Digest): string {
    return join(this.root, 'manifests', d.algorithm, d.hex.slice(0, 2), d.hex);
  }

  /** A fresh, unique temp file path for a fill of `d`. */
  temp(d: Digest): string {
    return join(this.tmp, `${d.algorithm}-${d.hex.slice(0, 16)}-${randomBytes(6).toString('hex')}`);
  }
}
