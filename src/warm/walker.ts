/**
 * Warms one image through the mirror the way clients will pull it:
 *
 * 1. a tag is HEADed once with each client's Accept set (containerd, containers/image, dockerd), so the
 *    mirror holds a tag answer for each; a set that resolves to another digest is walked too;
 * 2. each manifest is GET by digest and checked against it; an index is narrowed to the chosen
 *    platforms (or all of them) and its children walked;
 * 3. every config and layer blob is GET through the mirror and hashed as it streams by (and thrown
 *    away): the mirror caches and verifies it, and the client side checks it too.
 *
 * Blobs are shared across images: one transfer per digest per run. Requests run in bounded pools.
 */
import { createHash } from 'node:crypto';
import { parseDigest, type Digest } from '../oci/digest.js';
import { ANY_MANIFEST_ACCEPT, CLIENT_ACCEPTS, type ClientAccept } from './accept-sets.js';
import type { MirrorClient, RepoTarget } from './client.js';
import { WarmError, asWarmError } from './errors.js';
import type { ErrorInfo, ImageResult, TagAnswerInfo, WarmListener } from './events.js';
import { parseManifest, type Desc } from './manifest.js';
import { formatPlatform, platformMatches, type Platform } from './platform.js';
import type { Pool } from './pool.js';
import { parseImageRef, type ImageRef } from './reference.js';

/**
 * Request slots: blob transfers in one pool, manifest requests (small, and what every image waits on
 * first) in another, so resolving the next image never queues behind large layers.
 */
export interface WarmerPools {
  blobs: Pool;
  manifests: Pool;
}

/** Options for {@link Warmer}. */
export interface WarmerOptions {
  /** Platforms to keep from an index; `all` keeps every entry (attestations included). */
  platforms: readonly Platform[] | 'all';
  /** Clock (ms), for tests; default `performance.now`. */
  now?: () => number;
}

/** A blob's transfer, shared by every image that has it. */
export interface BlobState {
  digest: Digest;
  size: number;
  received: number;
  status: 'queued' | 'running' | 'done' | 'failed';
  images: string[];
  startedAt?: number;
  promise?: Promise<void>;
  /** For an image config: the platform it names (read while it streams by). */
  platform?: Platform;
  /** Keep the bytes to read the platform from (image configs only). */
  isConfig?: boolean;
}

/** Live view of one image for progress rendering. */
export interface ImageProgress {
  ref: string;
  status: 'resolving' | 'fetching' | 'done' | 'failed';
  startedAt: number;
  finishedAt?: number;
  /** Bytes of its blobs (known once resolved). */
  total: number;
  blobs: BlobState[];
}

/** Image configs up to this size are read for their platform (real ones are a few KiB). */
const MAX_CONFIG_BYTES = 1 << 20;

/** The platform an image config names (`os`, `architecture`, `variant`), if it is one. */
function configPlatform(bytes: Buffer): Platform | undefined {
  try {
    const c = JSON.parse(bytes.toString('utf8')) as { os?: unknown; architecture?: unknown; variant?: unknown };
    if (typeof c.os !== 'string' || typeof c.architecture !== 'string') return undefined;
    return { os: c.os, architecture: c.architecture, ...(typeof c.variant === 'string' && c.variant ? { variant: c.variant } : {}) };
  } catch {
    return undefined;
  }
}

/** Nesting allowed for indexes inside indexes. */
const MAX_DEPTH = 4;

const info = (e: WarmError): ErrorInfo => ({ kind: e.kind, message: e.message });

/** See the module comment. One Warmer per run. */
export class Warmer {
  /** Every blob of the run, by digest. */
  readonly blobs = new Map<string, BlobState>();
  /** Every image of the run, in the order started. */
  readonly images: ImageProgress[] = [];
  /** Every manifest walked and verified, by digest (the mirror's pins are these and {@link blobs}). */
  readonly manifestDigests = new Set<string>();
  private readonly now: () => number;
  private readonly t0: number;

  constructor(
    private readonly client: MirrorClient,
    private readonly pools: WarmerPools,
    private readonly emit: WarmListener,
    private readonly opts: WarmerOptions,
  ) {
    this.now = opts.now ?? (() => performance.now());
    this.t0 = this.now();
  }

  /** ms since the run started. */
  elapsed(): number {
    return this.now() - this.t0;
  }

  /**
   * Bytes received so far and bytes known to be needed, over the distinct blobs; `resolving` counts the
   * images whose manifests are still being read, so while it is above 0 the total is not final yet.
   */
  totals(): { received: number; total: number; blobsDone: number; blobs: number; resolving: number } {
    let received = 0;
    let total = 0;
    let blobsDone = 0;
    for (const b of this.blobs.values()) {
      received += b.received;
      total += b.size;
      if (b.status === 'done') blobsDone++;
    }
    let resolving = 0;
    for (const i of this.images) if (i.status === 'resolving') resolving++;
    return { received, total, blobsDone, blobs: this.blobs.size, resolving };
  }

  /** Warms one IMAGE argument; never throws (failures are in the result). */
  async warm(input: string): Promise<ImageResult> {
    const started = this.now();
    const result: ImageResult = { input, ref: input, ok: false, platforms: [], tags: [], manifests: 0, blobs: 0, bytes: 0, skippedForeign: 0, ms: 0, warnings: [] };
    const progress: ImageProgress = { ref: input, status: 'resolving', startedAt: this.elapsed(), total: 0, blobs: [] };
    this.images.push(progress);
    try {
      const ref = parseImageRef(input);
      result.ref = progress.ref = ref.canonical;
      this.emit({ type: 'image-start', t: this.elapsed(), input, ref: ref.canonical });
      const roots = await this.resolveRoots(ref, result);
      const found = new Map<string, Desc>();
      const platforms = new Set<string>();
      const configs: string[] = [];
      for (const [i, root] of roots.entries()) {
        const top = await this.walk(ref, root, 0, found, platforms, configs, result);
        if (i === 0) {
          result.digest = root.value;
          result.mediaType = top;
        }
      }
      result.platforms = [...platforms].sort();
      const blobs: BlobState[] = [];
      for (const d of found.values()) {
        if (d.urls) {
          result.skippedForeign++;
          continue;
        }
        const b = this.blob(d, ref.canonical);
        if (configs.includes(d.digest.value) && d.size <= MAX_CONFIG_BYTES) b.isConfig = true;
        blobs.push(b);
      }
      progress.blobs = blobs;
      progress.total = blobs.reduce((s, b) => s + b.size, 0);
      progress.status = 'fetching';
      result.blobs = blobs.length;
      result.bytes = progress.total;
      this.emit({ type: 'image-resolved', t: this.elapsed(), ref: ref.canonical, digest: result.digest!, mediaType: result.mediaType ?? '', platforms: result.platforms, manifests: result.manifests, blobs: blobs.length, bytes: progress.total });
      const outcomes = await Promise.allSettled(blobs.map((b) => this.transfer(b, ref)));
      const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
      if (failed) throw failed.reason;
      // A manifest reached without an index entry names its platform only in its config.
      for (const c of configs) platforms.add(this.blobs.get(c)?.platform ? formatPlatform(this.blobs.get(c)!.platform!) : 'unknown');
      result.platforms = [...platforms].sort();
      result.ok = true;
    } catch (err) {
      result.error = info(asWarmError(err));
    }
    result.ms = Math.round(this.now() - started);
    progress.status = result.ok ? 'done' : 'failed';
    progress.finishedAt = this.elapsed();
    this.emit({ type: result.ok ? 'image-done' : 'image-failed', t: this.elapsed(), result });
    return result;
  }

  /**
   * The manifests to walk: the digest given, or what each client's Accept set resolves the tag to.
   * The first set (containerd's) is asked alone, so the others find the manifest cached on a cold mirror.
   */
  private async resolveRoots(ref: ImageRef, result: ImageResult): Promise<Digest[]> {
    if (ref.digest) return [ref.digest];
    const tag = ref.tag!;
    const ask = async ({ client, lines }: ClientAccept, method: 'HEAD' | 'GET' = 'HEAD'): Promise<TagAnswerInfo> => {
      try {
        let a = await this.pools.manifests.run(() => this.client.manifest(ref, tag, method, lines));
        // A mirror that gives no digest on HEAD: GET and hash what it sends, as clients do.
        if (!a.digest && method === 'HEAD') a = await this.pools.manifests.run(() => this.client.manifest(ref, tag, 'GET', lines));
        const digest = a.digest ?? (a.bytes.length ? `sha256:${createHash('sha256').update(a.bytes).digest('hex')}` : undefined);
        if (!digest || !parseDigest(digest)) throw new WarmError('invalid', `tag ${ref.canonical}: the mirror gave no valid Docker-Content-Digest for ${client}'s Accept`);
        return { client, digest, mediaType: a.mediaType };
      } catch (err) {
        return { client, error: info(asWarmError(err)) };
      }
    };
    const [first, ...others] = CLIENT_ACCEPTS as [ClientAccept, ...ClientAccept[]];
    let primary = await ask(first);
    if (primary.error) {
      // A HEAD error has no body: ask again with GET for the registry error code and message
      // (e.g. NAME_UNKNOWN "registry X is not configured on this mirror").
      primary = await ask(first, 'GET');
      if (primary.error) {
        result.tags = [primary];
        throw new WarmError(primary.error.kind, primary.error.message);
      }
    }
    const answers = [primary, ...(await Promise.all(others.map((o) => ask(o))))];
    result.tags = answers;
    const roots: Digest[] = [];
    for (const a of answers) {
      if (a.error) {
        result.warnings.push(`${a.client}'s Accept set: ${a.error.message}`);
        continue;
      }
      const d = parseDigest(a.digest!)!;
      if (!roots.some((r) => r.value === d.value)) roots.push(d);
    }
    return roots;
  }

  /** GETs a manifest by digest, checks it, and walks what it references. Returns its media type. */
  private async walk(ref: ImageRef, digest: Digest, depth: number, found: Map<string, Desc>, platforms: Set<string>, configs: string[], result: ImageResult, platform?: Platform): Promise<string> {
    const where = `${ref.registry}/${ref.repository}@${digest.value}`;
    const target: RepoTarget = ref;
    const a = await this.pools.manifests.run(() => this.client.manifest(target, digest.value, 'GET', ANY_MANIFEST_ACCEPT));
    const got = `${digest.algorithm}:${createHash(digest.algorithm).update(a.bytes).digest('hex')}`;
    if (got !== digest.value) throw new WarmError('verify', `manifest ${where}: the mirror sent bytes hashing to ${got}`);
    result.manifests++;
    this.manifestDigests.add(digest.value);
    const content = parseManifest(a.bytes, a.mediaType, where);
    if (content.kind === 'image') {
      if (platform) platforms.add(formatPlatform(platform));
      else if (content.config) configs.push(content.config.digest.value);
      else platforms.add('unknown');
      for (const b of content.blobs) if (!found.has(b.digest.value)) found.set(b.digest.value, b);
      return content.mediaType;
    }
    if (depth >= MAX_DEPTH) throw new WarmError('invalid', `${where}: indexes nested more than ${MAX_DEPTH} deep`);
    const want = this.opts.platforms;
    const children = want === 'all' ? content.manifests : content.manifests.filter((m) => want.some((p) => platformMatches(p, m.platform)));
    if (children.length === 0) {
      const has = content.manifests.map((m) => (m.platform ? formatPlatform(m.platform) : 'unknown')).join(', ') || 'nothing';
      const asked = want === 'all' ? 'any platform' : want.map(formatPlatform).join(', ');
      throw new WarmError('platform', `${ref.canonical}: no manifest for ${asked} in the index (it has: ${has})`);
    }
    await Promise.all(children.map((c) => this.walk(ref, c.digest, depth + 1, found, platforms, configs, result, c.platform)));
    return content.mediaType;
  }

  /** The run's shared state for a blob, created on first sight. */
  private blob(d: Desc, image: string): BlobState {
    let b = this.blobs.get(d.digest.value);
    if (!b) {
      b = { digest: d.digest, size: d.size, received: 0, status: 'queued', images: [] };
      this.blobs.set(d.digest.value, b);
    }
    if (!b.images.includes(image)) b.images.push(image);
    return b;
  }

  /** Fetches a blob once per run; later callers share the transfer. */
  private transfer(b: BlobState, ref: ImageRef): Promise<void> {
    b.promise ??= this.pools.blobs
      .run(async () => {
        b.status = 'running';
        b.startedAt = this.elapsed();
        const keep: Buffer[] | undefined = b.isConfig ? [] : undefined;
        await this.client.blob(ref, b.digest, b.size, (n) => {
          b.received += n;
        }, keep);
        if (keep) b.platform = configPlatform(Buffer.concat(keep));
      })
      .then(
        () => {
          b.status = 'done';
          this.emit({ type: 'blob-done', t: this.elapsed(), digest: b.digest.value, size: b.size, ms: Math.round(this.elapsed() - (b.startedAt ?? 0)), images: [...b.images] });
        },
        (err: unknown) => {
          b.status = 'failed';
          const e = asWarmError(err);
          this.emit({ type: 'blob-failed', t: this.elapsed(), digest: b.digest.value, images: [...b.images], error: info(e) });
          throw e;
        },
      );
    return b.promise;
  }
}
