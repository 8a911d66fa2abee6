/**
 * Hit and byte counters over the cache's life, across restarts: what this process counted plus what earlier
 * processes on the same data directory had, kept in `DATA_DIR/stats.json` (written every 30 s and at close;
 * a crash loses at most that much). For the status page's "over the cache's life" figures.
 */
import { readFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Counters over the cache's life. */
export interface LifetimeCounters {
  hits: number;
  misses: number;
  bytesSaved: number;
}

const ZERO: LifetimeCounters = { hits: 0, misses: 0, bytesSaved: 0 };
const SAVE_MS = 30_000;

export class LifetimeStats {
  private readonly path: string;
  private readonly base: LifetimeCounters;
  private timer: NodeJS.Timeout | undefined;

  /** @param current what this process has counted since it started */
  constructor(dataDir: string, private readonly current: () => Promise<LifetimeCounters>) {
    this.path = join(dataDir, 'stats.json');
    this.base = LifetimeStats.read(this.path);
  }

  private static read(path: string): LifetimeCounters {
    try {
      const o = JSON.parse(readFileSync(path, 'utf8')) as Partial<LifetimeCounters>;
      const n = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0);
      return { hits: n(o.hits), misses: n(o.misses), bytesSaved: n(o.bytesSaved) };
    } catch {
      return { ...ZERO };
    }
  }

  /** Earlier processes' counters plus this one's. */
  async total(): Promise<LifetimeCounters> {
    const c = await this.current();
    return { hits: this.base.hits + c.hits, misses: this.base.misses + c.misses, bytesSaved: this.base.bytesSaved + c.bytesSaved };
  }

  /** Starts saving periodically. */
  start(): void {
    this.timer ??= setInterval(() => void this.save(), SAVE_MS).unref();
  }

  /** Writes the totals now (atomically); never throws. */
  async save(): Promise<void> {
    const tmp = `${this.path}.tmp`;
    try {
      await writeFile(tmp, JSON.stringify(await this.total()));
      await rename(tmp, this.path);
    } catch {
      /* a full or read-only disk: the figures are best effort */
    }
  }

  /** Stops and saves once more. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.save();
  }
}
