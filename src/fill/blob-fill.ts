/**
 * One blob fill: the upstream body is hashed and written to a temp file; once the whole body is there
 * and its digest matches, the file is synced and renamed into the store. Readers follow the temp file as
 * it grows, each at its own pace, through positional reads on the fill's own file handle (so a rename or
 * unlink of the path never disturbs them): {@link BlobFill.reader} gives each request a body source. The
 * fill belongs to the mirror, not to any client: it runs to the end whoever is reading, unless configured
 * to stop when orphaned.
 *
 * When the disk fails (ENOSPC, EIO: the temp file cannot be created or written), the fill goes on
 * *uncached*: bytes already on disk are read from the file, later ones from a bounded window in memory
 * that moves with the slowest reader (the upstream is read no faster than the readers take it), the
 * digest is still verified before any reader gets its last byte, and nothing is committed. Those
 * readers get their bytes; the next request starts afresh (and caches again once there is room).
 */
import { EventEmitter } from 'node:events';
import { open, type FileHandle } from 'node:fs/promises';
import { hasherFor, type Digest } from '../oci/digest.js';
import { DiskError, MirrorError, UpstreamUnavailable, VerificationFailed } from '../oci/errors.js';
import type { BodySource } from '../body/source.js';
import type { BlobStore } from '../store/blobs.js';
import type { Metrics } from '../metrics.js';
import type { Logger } from '../log.js';

/** An open upstream body for a blob. */
export interface FillBody {
  /** Content-Length of the upstream answer, when it sent one. */
  size: number | undefined;
  /** The upstream's namespace, for metrics. */
  upstream: string;
  chunks: AsyncIterable<Uint8Array>;
  /** Stops reading the upstream. */
  destroy(err?: Error): void;
}

/** Opens the upstream body; throws a domain error when the upstream has no such blob or fails. */
export type FillOrigin = (signal: AbortSignal) => Promise<FillBody>;

/** Why a fill failed, as a metric label: the verification reason, else the error's kind. */
export function fillFailureLabel(err: unknown): string {
  if (err instanceof VerificationFailed) return err.verifyReason;
  if (err instanceof UpstreamUnavailable && err.reason === 'aborted') return 'aborted';
  if (err instanceof MirrorError) return err.kind === 'not-found' || err.kind.startsWith('upstream-') ? 'upstream' : err.kind;
  return 'internal';
}

/** Bytes an uncached fill holds in memory ahead of its slowest reader. */
const UNCACHED_WINDOW = 8 * 1024 * 1024;

/** Shared dependencies of fills. */
export interface FillDeps {
  store: BlobStore;
  metrics: Metrics;
  log: Logger;
  /** Takes a fill slot (bounded concurrency); returns its release. */
  acquireSlot: () => Promise<() => void>;
  abortWhenOrphaned: boolean;
  /** Holds room for a fill of that many bytes within the cache cap; undefined when there is none. */
  reserve?: (bytes: number) => Promise<{ release(): void } | undefined>;
  /** Told after a fill ends (the evictor checks the watermarks). */
  afterCommit?: () => void;
  /** Told of the size of every chunk received, so dead chunks are collected sooner (src/reclaim.ts). */
  received?: (bytes: number) => void;
}

export type FillState = 'pending' | 'running' | 'done' | 'failed';

export class BlobFill extends EventEmitter {
  state: FillState = 'pending';
  /** Bytes the upstream announced, when known. */
  size: number | undefined;
  /** Bytes written to the temp file so far. */
  written = 0;
  error: Error | undefined;
  /** Resolves when the upstream answered and the temp file is open (size known); rejects if the fill fails before. */
  readonly ready: Promise<void>;
  /** Resolves once the blob is verified and committed; rejects when the fill fails. */
  readonly finished: Promise<void>;
  readonly startedAt = performance.now();
  /** Requests that joined this fill after it started (the table counts them, the status page shows them). */
  joiners = 0;

  private handle: FileHandle | undefined;
  /** Set once the disk failed: bytes [0, diskEnd) are in the temp file, later ones only in {@link window}. */
  private diskEnd: number | undefined;
  /** Uncached mode: chunks from `windowStart` on, kept until every reader has passed them. */
  private window: Buffer[] = [];
  private windowStart = 0;
  private windowBytes = 0;
  /** Each attached reader's position (uncached mode trims the window behind the slowest). */
  private readonly positions = new Map<symbol, number>();
  private readers = 0;
  private retired = false;
  private everRead = false;
  private readonly abort = new AbortController();
  private readonly tempPath: string;
  private resolveReady!: () => void;
  private rejectReady!: (e: Error) => void;

  /**
   * @param namespace the upstream namespace the fill reads from (a joiner from another namespace retries on
   *   its own upstream when this one has no such blob or refuses it)
   */
  constructor(readonly digest: Digest, private readonly origin: FillOrigin, readonly namespace: string, private readonly deps: FillDeps) {
    super();
    this.setMaxListeners(0);
    this.tempPath = deps.store.layout.temp(digest);
    this.ready = new Promise<void>((res, rej) => {
      this.resolveReady = res;
      this.rejectReady = rej;
    });
    this.ready.catch(() => undefined);
    this.finished = this.run();
    this.finished.catch(() => undefined);
  }

  private async run(): Promise<void> {
    const { metrics, log, store } = this.deps;
    let release: (() => void) | undefined;
    let body: FillBody | undefined;
    let reservation: { release(): void } | undefined;
    metrics.fillsStarted.inc();
    try {
      release = await this.deps.acquireSlot();
      metrics.fillsInFlight.inc();
      body = await this.origin(this.abort.signal);
      // Room for the announced size within the cap, evicting first; none to be had: streamed uncached.
      reservation = body.size !== undefined && this.deps.reserve ? await this.deps.reserve(body.size) : undefined;
      if (body.size !== undefined && this.deps.reserve && !reservation) {
        this.goUncached(new DiskError('no room within the cache cap for the fill', Object.assign(new Error('cache cap reached'), { code: 'ECAP' })));
      } else {
        try {
          this.handle = await open(this.tempPath, 'wx+');
        } catch (err) {
          this.goUncached(new DiskError('cannot create a temp file for the fill', err));
        }
      }
      this.size = body.size;
      this.state = 'running';
      this.resolveReady();
      const hash = hasherFor(this.digest);
      try {
        for await (const chunk of body.chunks) {
          if (this.size !== undefined && this.written + chunk.length > this.size) throw new VerificationFailed('blob', 'long-body', 'upstream sent more bytes than announced');
          hash.update(chunk);
          if (this.diskEnd === undefined) {
            try {
              await this.writeAll(chunk);
            } catch (err) {
              this.goUncached(new DiskError('cannot write the fill to disk', err));
            }
          }
          if (this.diskEnd !== undefined) await this.hold(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
          this.written += chunk.length;
          this.deps.received?.(chunk.length);
          metrics.upstreamBytes.inc({ upstream: body.upstream, kind: 'blob' }, chunk.length);
          this.emit('progress');
        }
      } catch (err) {
        if (err instanceof MirrorError) throw err;
        if (this.abort.signal.aborted) throw new UpstreamUnavailable('fill aborted: no reader left', { upstream: body.upstream, reason: 'aborted', cause: err });
        throw new UpstreamUnavailable('the upstream body failed', { upstream: body.upstream, reason: (err as NodeJS.ErrnoException).code ?? 'body', cause: err });
      }
      if (this.size !== undefined && this.written !== this.size) throw new VerificationFailed('blob', 'short-body', `upstream body ended after ${this.written} of ${this.size} bytes`);
      const got = hash.digest('hex');
      if (got !== this.digest.hex) throw new VerificationFailed('blob', 'digest-mismatch', `upstream bytes hash to ${this.digest.algorithm}:${got}, not ${this.digest.value}`);
      let committed = false;
      if (this.diskEnd === undefined) {
        try {
          await this.handle!.datasync();
          await store.commit(this.tempPath, this.digest, this.written, this.namespace);
          committed = true;
        } catch (err) {
          // Every byte is in the (unlinked-later) temp file: the readers still get them, nothing is cached.
          this.logDisk(new DiskError('cannot commit the blob', err));
        }
      }
      this.size = this.written;
      this.state = 'done';
      if (!committed) {
        await store.discard(this.tempPath);
        metrics.uncachedPulls.inc({ reason: 'disk' });
        log.warn({ digest: this.digest.value, bytes: this.written }, 'blob served uncached (disk); the next request will try to cache it again');
        this.emit('progress');
        return;
      }
      metrics.fillsCompleted.inc();
      metrics.fillDuration.observe((performance.now() - this.startedAt) / 1000);
      log.info({ digest: this.digest.value, bytes: this.written, ms: Math.round(performance.now() - this.startedAt) }, 'blob cached');
      this.emit('progress');
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      body?.destroy();
      // The temp file goes first: once readers see the failure, nothing of it is left on disk.
      await store.discard(this.tempPath);
      this.error = e;
      this.state = 'failed';
      const reason = fillFailureLabel(e);
      metrics.fillsFailed.inc({ reason });
      if (e instanceof VerificationFailed) metrics.verifyFailures.inc({ kind: 'blob', reason: e.verifyReason });
      const level = e instanceof MirrorError && (e.kind === 'not-found' || e.kind === 'upstream-denied') ? 'info' : 'warn';
      log[level]({ digest: this.digest.value, reason, kind: e instanceof MirrorError ? e.kind : 'internal', err: e.message, cause: (e.cause as Error | undefined)?.message, written: this.written }, 'blob fill failed; nothing cached');
      this.rejectReady(e);
      this.emit('progress');
      throw e;
    } finally {
      reservation?.release();
      if (release) {
        release();
        metrics.fillsInFlight.dec();
      }
      if (this.state === 'done') this.deps.afterCommit?.();
      await this.maybeClose();
    }
  }

  /** Switches to uncached mode (the disk failed). */
  private goUncached(err: DiskError): void {
    this.diskEnd = this.written;
    this.windowStart = this.written;
    this.logDisk(err);
  }

  private logDisk(err: DiskError): void {
    this.deps.log.warn({ digest: this.digest.value, errno: err.errno, err: (err.cause as Error | undefined)?.message, written: this.written }, `${err.message}; serving this fill uncached`);
  }

  /**
   * Keeps a chunk for the readers (uncached mode), waiting first while the window is full and readers are
   * still behind it. With no reader left there is nobody to serve: the fill stops.
   */
  private async hold(chunk: Buffer): Promise<void> {
    while (this.windowBytes > UNCACHED_WINDOW) {
      if (this.readers === 0) throw new UpstreamUnavailable('uncached fill stopped: no reader left', { upstream: this.namespace, reason: 'aborted' });
      await new Promise<void>((resolve) => this.once('consumed', resolve));
    }
    this.window.push(chunk);
    this.windowBytes += chunk.length;
  }

  /** Drops window chunks every reader has passed. */
  private trim(): void {
    let min = Infinity;
    for (const p of this.positions.values()) min = Math.min(min, p);
    if (this.readers === 0) min = Infinity;
    while (this.window.length > 0 && this.windowStart + this.window[0]!.length <= min) {
      const c = this.window.shift()!;
      this.windowStart += c.length;
      this.windowBytes -= c.length;
    }
    this.emit('consumed');
  }

  private async writeAll(chunk: Uint8Array): Promise<void> {
    let off = 0;
    while (off < chunk.length) {
      const { bytesWritten } = await this.handle!.write(chunk, off, chunk.length - off, this.written + off);
      off += bytesWritten;
    }
  }

  /** Bytes a reader may take now: everything once verified, otherwise all but the last byte written, so no
   * client ever holds a complete body before it is verified. */
  get readable(): number {
    if (this.state === 'done') return this.written;
    return Math.max(0, this.written - 1);
  }

  /**
   * A body source over this fill for one request: attached now (so the fill's file stays open for it
   * whatever happens next), detached on release.
   */
  reader(): BodySource {
    this.attach();
    let released = false;
    const fill = this;
    const id = Symbol('reader');
    this.positions.set(id, 0);
    return {
      get size() {
        return fill.size;
      },
      get trust() {
        return fill.state === 'done' ? 'verified' : 'pending';
      },
      available: (position, want) => {
        // Uncached: a reader waiting for `position` needs nothing before it. Recorded now, not only after a
        // read: a range joiner waiting far ahead would otherwise pin the window at 0, the fill would wait for
        // the window to drain, and every reader would stall until a client gave up (a paused body never times out).
        if (this.diskEnd !== undefined && position > (this.positions.get(id) ?? 0)) {
          this.positions.set(id, position);
          this.trim();
        }
        return this.available(position, want);
      },
      read: async (buf, length, position) => {
        const n = await this.read(buf, length, position);
        if (this.diskEnd !== undefined) {
          this.positions.set(id, position + n);
          this.trim();
        }
        return n;
      },
      whenVerified: () => this.finished,
      release: () => {
        if (released) return;
        released = true;
        this.positions.delete(id);
        this.detach();
        if (this.diskEnd !== undefined) this.trim();
      },
    } satisfies BodySource;
  }

  /** Requests reading this fill now. */
  get readerCount(): number {
    return this.readers;
  }

  private attach(): void {
    this.readers++;
    this.everRead = true;
  }

  private detach(): void {
    this.readers--;
    if (this.readers === 0 && this.everRead && this.deps.abortWhenOrphaned && (this.state === 'running' || this.state === 'pending')) {
      this.abort.abort();
    }
    void this.maybeClose();
  }

  /**
   * Bytes readable from `position` now (see {@link readable}), waiting for progress until there are at
   * least `want` (or the fill is done); 0 once the fill is done and `position` is at its end. Rejects when
   * the fill failed. Only while attached.
   */
  private async available(position: number, want = 1): Promise<number> {
    for (;;) {
      if (this.state === 'failed') throw this.error ?? new Error('fill failed');
      const n = this.readable - position;
      // Waiting for `want` bytes batches the wake-ups of many readers (fewer, larger reads and writes).
      if (n >= want || (n > 0 && this.state === 'done')) return n;
      if (this.state === 'done') return 0;
      await new Promise<void>((resolve) => this.once('progress', resolve));
    }
  }

  private async read(buf: Buffer, length: number, position: number): Promise<number> {
    const diskEnd = this.diskEnd;
    if (diskEnd === undefined || position < diskEnd) {
      const n = diskEnd === undefined ? length : Math.min(length, diskEnd - position);
      const { bytesRead } = await this.handle!.read(buf, 0, n, position);
      return bytesRead;
    }
    // Uncached: from the window in memory.
    if (position < this.windowStart) throw new Error('uncached fill: bytes already dropped from the window');
    let skip = position - this.windowStart;
    let n = 0;
    for (const c of this.window) {
      if (skip >= c.length) {
        skip -= c.length;
        continue;
      }
      const take = Math.min(c.length - skip, length - n);
      c.copy(buf, n, skip, skip + take);
      n += take;
      skip = 0;
      if (n >= length) break;
    }
    return n;
  }

  /** Stops the fill (shutdown): the upstream transfer is cut and nothing is cached. */
  cancel(): void {
    if (this.state === 'running' || this.state === 'pending') this.abort.abort();
  }

  /** True while new readers may attach (not failed, file handle kept open). */
  get joinable(): boolean {
    // An uncached fill may have dropped the bytes a new reader would start with.
    return !this.retired && this.state !== 'failed' && this.diskEnd === undefined;
  }

  /** Called once the single-flight table has forgotten this fill: no new reader can attach any more. */
  retire(): void {
    this.retired = true;
    void this.maybeClose();
  }

  private async maybeClose(): Promise<void> {
    if (!this.retired || this.readers > 0 || this.state === 'running' || this.state === 'pending' || !this.handle) return;
    const h = this.handle;
    this.handle = undefined;
    await h.close().catch(() => undefined);
  }
}
