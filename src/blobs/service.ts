/**
 * Blobs, the way distribution's proxyBlobStore composes them: a local store, in-flight fills and the
 * remote, with the policy between them. It answers "which bytes, from where" as a body source and a
 * selection; the HTTP edge only sends them.
 *
 * - Cached: its file (or memory, for small hot blobs); ranges cut from it.
 * - A fill in flight: joined; bytes stream from the fill's file as they arrive, ranges too.
 * - Not cached, whole blob (or `bytes=0-`): a fill starts and the answer streams from it.
 * - Not cached, a range: by default no fill (bandwidth is the point). One range is forwarded upstream (as a
 *   normalized header); several are split into single-range upstream fetches. `range.fillOnMiss` also
 *   starts a fill.
 */
import { LRUCache } from 'lru-cache';
import type { Digest } from '../oci/digest.js';
import { NotFound, UpstreamDenied } from '../oci/errors.js';
import type { BodySource } from '../body/source.js';
import { MemorySource } from '../body/memory-source.js';
import { FileSource } from '../body/file-source.js';
import { StreamSource } from '../body/stream-source.js';
import type { Fills } from '../fill/fills.js';
import type { FillBody, FillOrigin } from '../fill/blob-fill.js';
import type { BlobStore } from '../store/blobs.js';
import { scopedKey } from '../store/layout.js';
import { formatRangeHeader, parseRangeSpecs } from '../range/parse.js';
import { isWholeFromZero, selectRanges, type Selection } from '../range/select.js';
import { upstreamParts } from '../range/upstream-parts.js';
import type { RangeConfig } from '../config/types.js';
import type { Upstream } from '../upstream/client.js';
import type { Metrics } from '../metrics.js';
import type { Bandwidth } from '../upstream/bandwidth.js';
import { blobOrigin, blobOriginFrom, remoteBlobSize, remoteExact, remoteRange } from './remote.js';

/** Where an answer's bytes come from. */
export type BlobOrigin = 'cache' | 'fill' | 'upstream';
/** How the request was answered, for logs and metrics. */
export type BlobCache = 'hit' | 'joined' | 'miss' | 'range-miss';

/** A blob request, already checked. */
export interface BlobRequest {
  upstream: Upstream;
  /** Upstream repository name. */
  repository: string;
  digest: Digest;
  /** The client's Range header, if any. */
  range: string | undefined;
  /** The client's If-Range header, if any. */
  ifRange: string | undefined;
}

/** What to send: the bytes, which of them, and how they were found. */
export interface BlobAnswer {
  source: BodySource;
  selection: Selection;
  origin: BlobOrigin;
  cache: BlobCache;
}

/** What a HEAD learns: the size (when known) and how it was found. */
export interface BlobStat {
  size: number | undefined;
  cache: BlobCache;
}

/** The upstream side of one blob, as a {@link FillOriginChooser} sees it. */
export interface UpstreamFillSource {
  /** The whole blob. */
  whole: FillOrigin;
  /** The blob from byte `start` to its end (a Range where the upstream allows, else its whole body skipped to `start`). */
  from(start: number, signal: AbortSignal): Promise<FillBody>;
}

/** Where one new fill reads from, and what to do when it has ended (committed, or failed with `err`). */
export interface FillPlan {
  origin: FillOrigin;
  done?(err: Error | undefined): void | Promise<void>;
}

/** Chooses the origin of new fills (cluster mode: a peer mirror, or the upstream under a lease). */
export interface FillOriginChooser {
  choose(digest: Digest, upstream: UpstreamFillSource): FillPlan;
}

/** A blob request answered only from what this mirror holds (the peer endpoint): never the upstream. */
export type LocalBlobRequest = Pick<BlobRequest, 'digest' | 'range' | 'ifRange'> & { upstream?: Upstream };

/** What the blob service needs. */
export interface BlobServiceDeps {
  store: BlobStore;
  fills: Fills;
  metrics: Metrics;
  range: RangeConfig;
  /** Upstream bandwidth limits (absent: unlimited). */
  bandwidth?: Bandwidth;
  /** Origins of new fills; default: the request's upstream. */
  origins?: FillOriginChooser;
}

export class BlobService {
  /** Range misses per digest not yet cached, to start a whole fill for blobs that keep being read in pieces. */
  private readonly rangeMisses = new LRUCache<string, number>({ max: 10_000 });

  constructor(private readonly deps: BlobServiceDeps) {}

  /** The blob's size without moving its bytes: cache, fill in flight, else an upstream HEAD. */
  async stat(req: BlobRequest): Promise<BlobStat> {
    const ns = req.upstream.namespace;
    const size = await this.deps.store.size(req.digest, ns);
    if (size !== undefined) return { size, cache: 'hit' };
    const fill = this.deps.fills.get(req.digest, ns);
    if (fill && fill.size !== undefined) return { size: fill.size, cache: 'joined' };
    return { size: await remoteBlobSize(req.upstream, req.repository, req.digest), cache: 'miss' };
  }

  /** The bytes to answer `req` with. The caller sends them and the sender releases the source. */
  async open(req: BlobRequest): Promise<BlobAnswer> {
    const { fills, range } = this.deps;
    const d = req.digest;
    const cached = await this.fromCache(req);
    if (cached) return cached;
    const wantsRange = req.range !== undefined && !isWholeFromZero(req.range) && this.ifRangeHolds(req);
    if (!fills.get(d, req.upstream.namespace) && wantsRange && !range.fillOnMiss) {
      const miss = await this.rangeMiss(req, req.range!);
      if (miss) return miss;
    }
    return this.fromFill(req);
  }

  /**
   * What this mirror holds of the blob, committed or being filled; undefined when neither. Never goes
   * upstream nor starts a fill (the peer endpoint: a peer's request must not cost the upstream anything).
   */
  async openLocal(req: LocalBlobRequest): Promise<BlobAnswer | undefined> {
    const cached = await this.fromCache(req);
    if (cached) return cached;
    const fill = this.deps.fills.get(req.digest, req.upstream?.namespace);
    if (!fill) return undefined;
    const source = fill.reader();
    try {
      await fill.ready;
      const selection: Selection = fill.size === undefined ? { kind: 'whole' } : this.select(req, fill.size);
      return { source, selection, origin: 'fill', cache: 'joined' };
    } catch {
      // The fill failed before its first byte: this mirror has nothing to offer.
      source.release();
      return undefined;
    }
  }

  /** The committed blob (memory or file), if cached. */
  private async fromCache(req: LocalBlobRequest): Promise<BlobAnswer | undefined> {
    const { store } = this.deps;
    const d = req.digest;
    const ns = req.upstream?.namespace;
    const hot = store.fromMemory(d, ns);
    if (hot) return this.cached(req, new MemorySource(hot));
    const blob = await store.open(d, ns);
    if (blob) {
      if (blob.size <= store.memoryItemMax) {
        // Small and hot: read once, keep it in memory, serve it from there from now on.
        try {
          const buf = Buffer.allocUnsafe(blob.size);
          const { bytesRead } = await blob.handle.read(buf, 0, blob.size, 0);
          if (bytesRead === blob.size) {
            store.remember(d, buf, ns);
            return this.cached(req, new MemorySource(buf));
          }
        } finally {
          await blob.handle.close().catch(() => undefined);
          blob.done();
        }
      } else return this.cached(req, new FileSource(blob.handle, blob.size, blob.done));
    }
    return undefined;
  }

  /** Joins the fill of `req`'s blob or starts one from the origin the chooser picks (default: the upstream). */
  private obtainFill(req: BlobRequest): ReturnType<Fills['obtain']> {
    const { fills, origins } = this.deps;
    const { upstream, repository, digest: d } = req;
    const whole = blobOrigin(upstream, repository, d, this.deps.bandwidth?.forUpstream(upstream.namespace));
    if (!origins || fills.get(d, upstream.namespace)) return fills.obtain(d, whole, upstream.namespace);
    const plan = origins.choose(d, { whole, from: blobOriginFrom(upstream, repository, d) });
    const got = fills.obtain(d, plan.origin, upstream.namespace);
    if (!got.joined && plan.done) {
      const done = plan.done.bind(plan);
      got.fill.finished.then(() => done(undefined), (err: Error) => done(err));
    }
    return got;
  }

  private ifRangeHolds(req: BlobRequest): boolean {
    return req.ifRange === undefined || req.ifRange.trim() === `"${req.digest.value}"`;
  }

  private select(req: LocalBlobRequest, size: number): Selection {
    return selectRanges(req.range, req.ifRange, `"${req.digest.value}"`, size, this.deps.range);
  }

  private cached(req: LocalBlobRequest, source: BodySource): BlobAnswer {
    this.deps.metrics.hit('blob');
    this.deps.store.touched(req.digest, req.upstream?.namespace);
    try {
      return { source, selection: this.select(req, source.size!), origin: 'cache', cache: 'hit' };
    } catch (err) {
      source.release();
      throw err;
    }
  }

  private async fromFill(req: BlobRequest, retried = false): Promise<BlobAnswer> {
    const ns = req.upstream.namespace;
    const { fill, joined } = this.obtainFill(req);
    // Attach in the same tick as the join, so the fill's file stays open for this request whatever happens next.
    const source = fill.reader();
    if (!retried) this.deps.metrics.misses.inc({ kind: 'blob' });
    try {
      await fill.ready;
      const selection: Selection = fill.size === undefined ? { kind: 'whole' } : this.select(req, fill.size);
      return { source, selection, origin: 'fill', cache: joined ? 'joined' : 'miss' };
    } catch (err) {
      source.release();
      // Another namespace's upstream not having (or refusing) the blob says nothing about ours: ask ours.
      if (joined && !retried && fill.namespace !== ns && (err instanceof NotFound || err instanceof UpstreamDenied)) return this.fromFill(req, true);
      throw err;
    }
  }

  /** Counts a range miss; after `range.fillAfterMisses` of them the whole blob is filled in the background. */
  private noteRangeMiss(req: BlobRequest): void {
    const after = this.deps.range.fillAfterMisses;
    if (after <= 0) return;
    // Counted per scope: with isolated namespaces, one namespace's misses never fill another's copy.
    const key = scopedKey(req.digest.value, this.deps.store.layout.scopeOf(req.upstream.namespace));
    const n = (this.rangeMisses.get(key) ?? 0) + 1;
    if (n < after) {
      this.rangeMisses.set(key, n);
      return;
    }
    this.rangeMisses.delete(key);
    const { fill } = this.obtainFill(req);
    this.deps.metrics.backgroundFills.inc({ reason: 'range-misses' });
    fill.finished.catch(() => undefined);
  }

  /** A range request for a blob that is neither cached nor being filled: straight from the upstream. Undefined: serve it whole. */
  private async rangeMiss(req: BlobRequest, header: string): Promise<BlobAnswer | undefined> {
    const { metrics, range } = this.deps;
    const specs = parseRangeSpecs(header, { maxRanges: range.maxRanges });
    if (specs.kind !== 'specs') return undefined; // an ignored Range: the whole blob
    const { upstream, repository, digest: d } = req;
    this.noteRangeMiss(req);
    const abort = new AbortController();
    const onBytes = (n: number) => metrics.rangeUpstreamBytes.inc(n);
    const shaper = this.deps.bandwidth?.forUpstream(upstream.namespace);
    if (specs.specs.length === 1) {
      metrics.misses.inc({ kind: 'blob' });
      const got = await remoteRange(upstream, repository, d, formatRangeHeader(specs.specs), abort.signal, onBytes, shaper);
      const source = StreamSource.of(got.body, got.range.start, got.size, () => abort.abort());
      return { source, selection: { kind: 'single', range: got.range }, origin: 'upstream', cache: 'range-miss' };
    }
    // Several ranges: the size decides suffixes and clamping, so ask for it first (a HEAD moves no body).
    const size = await remoteBlobSize(upstream, repository, d);
    if (size === undefined) return undefined;
    const selection = this.select(req, size);
    if (selection.kind === 'whole') return undefined;
    metrics.misses.inc({ kind: 'blob' });
    const fetchExact = (start: number, end: number, signal: AbortSignal) => remoteExact(upstream, repository, d, start, end, signal, onBytes, shaper);
    if (selection.kind === 'single') {
      const source = new StreamSource(size, (_i, start, end) => fetchExact(start, end, abort.signal), () => abort.abort());
      await source.select(0, selection.range.start, selection.range.end);
      return { source, selection, origin: 'upstream', cache: 'range-miss' };
    }
    const parts = upstreamParts(selection.ranges, fetchExact, { parallelism: range.upstreamParallelism });
    const source = new StreamSource(size, (i, start, end) => parts.provider(i, { start, end }), parts.abort);
    return { source, selection, origin: 'upstream', cache: 'range-miss' };
  }
}
