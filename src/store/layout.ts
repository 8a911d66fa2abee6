/**
 * The on-disk layout under the data directory. Every path is built from a digest that passed
 * {@link parseDigest} (algorithm name + lowercase hex) and, for an isolated namespace, from a name that
 * passed {@link isScopeName} (a registry host, no `/`), so nothing a client sends can escape it.
 *
 *   blobs/<alg>/<hex[0:2]>/<hex>                 verified blob bytes (shared by digest)
 *   manifests/<alg>/<hex[0:2]>/<hex>             "<media type>\n" + verified manifest bytes
 *   ns/<namespace>/blobs/…, ns/<namespace>/manifests/…
 *                                                the same trees, one per namespace (isolateNamespaces)
 *   tmp/                                         fills in progress (removed at start-up)
 *
 * A *scope* is where an object lives: `undefined` for the shared trees, a namespace for its own. With
 * `isolateNamespaces` off every namespace maps to the shared scope (content is shared by digest, as
 * distribution's proxy does); with it on each namespace maps to itself, so a digest cached for one
 * upstream is never served for another. {@link Layout.scopeOf} is the one place that decides.
 */
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import type { Digest } from '../oci/digest.js';

/** Where a cached object lives: undefined for the shared trees, else the namespace whose own trees hold it. */
export type Scope = string | undefined;

/** Directory of the per-namespace trees under the data directory. */
export const SCOPES_DIR = 'ns';

/**
 * True for a name that may be a scope directory: a registry host with an optional port, as upstream
 * namespaces are validated in the config. No `/`, no `..` on its own, nothing that leaves `ns/`.
 */
export function isScopeName(name: string): boolean {
  return name.length <= 255 && /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d+)?$/.test(name);
}

/** The key of an object in the in-memory tables (memory tiers, fills, readers): its digest, and its scope when it has one. */
export function scopedKey(digest: string, scope: Scope): string {
  return scope === undefined ? digest : `${scope}\u001f${digest}`;
}

/** Options of {@link Layout}. */
export interface LayoutOptions {
  /** Keep each namespace's content in its own trees (config `isolateNamespaces`). Default false. */
  isolate?: boolean;
}

export class Layout {
  readonly root: string;
  readonly tmp: string;
  /** True when each namespace has its own trees. */
  readonly isolate: boolean;

  constructor(dataDir: string, options: LayoutOptions = {}) {
    this.root = resolve(dataDir);
    this.tmp = join(this.root, 'tmp');
    this.isolate = options.isolate ?? false;
  }

  /** The scope of a request for `namespace`: the shared trees unless namespaces are isolated. */
  scopeOf(namespace: string | undefined): Scope {
    if (!this.isolate || namespace === undefined) return undefined;
    // Namespaces come from the config, where they were validated; checked again because this names a directory.
    if (!isScopeName(namespace)) throw new Error(`invalid namespace for an isolated cache: ${JSON.stringify(namespace)}`);
    return namespace;
  }

  /** The directory holding a scope's `blobs/` and `manifests/` trees. */
  scopeRoot(scope: Scope): string {
    if (scope === undefined) return this.root;
    if (!isScopeName(scope)) throw new Error(`invalid cache scope: ${JSON.stringify(scope)}`);
    return join(this.root, SCOPES_DIR, scope);
  }

  /** Path of a committed blob. */
  blob(d: Digest, scope?: Scope): string {
    return join(this.scopeRoot(scope), 'blobs', d.algorithm, d.hex.slice(0, 2), d.hex);
  }

  /** Path of a committed manifest. */
  manifest(d: Digest, scope?: Scope): string {
    return join(this.scopeRoot(scope), 'manifests', d.algorithm, d.hex.slice(0, 2), d.hex);
  }

  /** The namespaces that have their own trees on disk (whatever the current setting: reconcile and the CLI walk them all). */
  async scopesOnDisk(): Promise<string[]> {
    try {
      return (await readdir(join(this.root, SCOPES_DIR))).filter(isScopeName).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  /** A fresh, unique temp file path for a fill of `d` (one temp dir for every scope: the rename stays on one filesystem). */
  temp(d: Digest): string {
    return join(this.tmp, `${d.algorithm}-${d.hex.slice(0, 16)}-${randomBytes(6).toString('hex')}`);
  }
}
