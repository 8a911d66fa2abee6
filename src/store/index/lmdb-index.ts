/**
 * The {@link CacheIndex} on LMDB (lmdb-js), one environment at `<dataDir>/index/cache.mdb`.
 *
 * Why LMDB: see bench/index/RESULTS.md. In short: its binaries ship inside npm packages for
 * Node 20/22/24 (no compiler, no download at install), several processes may read and write the
 * same environment (the `regmirror cache` CLI beside a serving mirror: one writer at a time under
 * LMDB's robust mutex, readers on MVCC snapshots that never block), and a killed process cannot
 * leave it half-written (copy-on-write B-trees, the meta page flips last).
 *
 * Key spaces (named databases, all written in the same transactions so they never disagree):
 *   objects  `b/<digest>` | `m/<digest>` → {s: size, a: last access ms, n: namespaces}
 *            `b@<namespace>/<digest>` | `m@…`     the same, in a namespace's own trees (isolateNamespaces);
 *                                                 `@` sorts apart from `/`, so each scope is one key range
 *   lru      [last access ms, object key] → 1          the eviction order, oldest first
 *   meta     'totals' → {bs, bo, ms, mo}               bytes/objects by kind, exact
 *   tags     `ns␟repo␟tag␟accept class` → TagAnswer
 *   pins     digest → references that need it
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import type { TagKey } from '../../oci/tag.js';
import { digestString, type DigestLike, type MaintainableIndex } from './cache-index.js';
import { IndexHealth, type IndexOp } from './health.js';
import type { IndexEntry, IndexLogger, IndexTotals, LruCursor, ObjectKind, TagAnswer } from './types.js';

/** Options of {@link openLmdbIndex}. */
export interface LmdbIndexOptions {
  /** The mirror's data directory; the index lives in `<dataDir>/index/`. */
  dataDir: string;
  /**
   * How often buffered access times are written, ms. Default 1000: one small transaction a
   * second is invisible on the hit path, and a crash loses at most a second of access order
   * (LRU needs order, not precision).
   */
  flushIntervalMs?: number;
  /** Flush early once this many distinct objects are buffered. Default 5000. */
  flushEntries?: number;
  /**
   * Most distinct objects buffered; beyond it touches are dropped (counted in `droppedTouches`).
   * Default 200 000: bounds memory when writes fail for a long time.
   */
  maxBuffered?: number;
  /** Where state changes (failing / recovered) are logged. */
  log?: IndexLogger;
  /** Called on every failure (for a metric). */
  onError?: (op: IndexOp, err: unknown) => void;
  /** The clock, ms since epoch (tests pass their own). Default Date.now. */
  now?: () => number;
}

interface ObjectRecord {
  /** size */
  s: number;
  /** last access, ms */
  a: number;
  /** namespaces seen */
  n: string[];
}

interface TotalsRecord {
  bs: number;
  bo: number;
  ms: number;
  mo: number;
}

type LruKey = [number, string];

const SEP = '\x1f';

function objectKey(kind: ObjectKind, digest: string, scope?: string): string {
  const k = kind === 'blob' ? 'b' : 'm';
  // A scope is a registry host (no `/`), so the first `/` after `@` ends it.
  return scope === undefined ? `${k}/${digest}` : `${k}@${scope}/${digest}`;
}

function kindOf(key: string): ObjectKind {
  return key[0] === 'b' ? 'blob' : 'manifest';
}

function entryOf(key: string, r: ObjectRecord): IndexEntry {
  const e: IndexEntry = { kind: kindOf(key), digest: '', size: r.s, lastAccess: r.a, namespaces: r.n };
  if (key[1] === '@') {
    const slash = key.indexOf('/', 2);
    e.scope = key.slice(2, slash);
    e.digest = key.slice(slash + 1);
  } else e.digest = key.slice(2);
  return e;
}

/** The first key after every key that starts with `prefix` (its last character + 1). */
function prefixEnd(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}

function tagPrefix(k: TagKey): string {
  return `${k.namespace}${SEP}${k.repository}${SEP}${k.tag}${SEP}`;
}

/** The file path of the index environment under a data dir (for the CLI's messages and tests). */
export function indexPath(dataDir: string): string {
  return join(dataDir, 'index', 'cache.mdb');
}

/** Opens (creating when absent) the index of a data dir. Throws when it cannot be opened. */
export function openLmdbIndex(options: LmdbIndexOptions): LmdbCacheIndex {
  mkdirSync(join(options.dataDir, 'index'), { recursive: true });
  const env = open({ path: indexPath(options.dataDir), maxDbs: 8 });
  return new LmdbCacheIndex(env, options);
}

export class LmdbCacheIndex implements MaintainableIndex {
  /** Touches dropped because the buffer was full. */
  droppedTouches = 0;
  private readonly health: IndexHealth;
  private readonly objects: Database<ObjectRecord, string>;
  private readonly lru: Database<number, LruKey>;
  private readonly meta: Database<TotalsRecord, string>;
  private readonly tags: Database<TagAnswer, string>;
  private readonly pinDb: Database<string[], string>;
  /** object key → [access ms, namespace or undefined], waiting for the next flush. */
  private buffer = new Map<string, [number, string | undefined]>();
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly timer: NodeJS.Timeout;
  private readonly now: () => number;
  private readonly flushEntries: number;
  private readonly maxBuffered: number;
  private flushQueued = false;
  private closed = false;

  constructor(
    private readonly env: RootDatabase,
    options: LmdbIndexOptions,
  ) {
    this.health = new IndexHealth(options.log, options.onError);
    this.now = options.now ?? Date.now;
    this.flushEntries = options.flushEntries ?? 5000;
    this.maxBuffered = options.maxBuffered ?? 200_000;
    this.objects = env.openDB({ name: 'objects' });
    this.lru = env.openDB({ name: 'lru' });
    this.meta = env.openDB({ name: 'meta' });
    this.tags = env.openDB({ name: 'tags' });
    this.pinDb = env.openDB({ name: 'pins' });
    this.timer = setInterval(() => void this.flush(), options.flushIntervalMs ?? 1000);
    this.timer.unref();
  }

  get errors(): number {
    return this.health.errors;
  }

  /** Runs a write transaction; its promise never rejects (failures are counted). */
  private write<T>(op: IndexOp, action: () => T, fallback: T): Promise<T> {
    if (this.closed) return Promise.resolve(fallback);
    let p: Promise<T>;
    try {
      p = this.env.transaction(action).then(
        (v) => {
          this.health.ok();
          return v;
        },
        (err: unknown) => {
          this.health.fail(op, err);
          return fallback;
        },
      );
    } catch (err) {
      this.health.fail(op, err);
      return Promise.resolve(fallback);
    }
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
    return p;
  }

  /** Runs a read; undefined on failure. */
  private read<T>(action: () => T): T | undefined {
    if (this.closed) return undefined;
    try {
      return action();
    } catch (err) {
      this.health.fail('read', err);
      return undefined;
    }
  }

  /** Inside a write transaction: adds the deltas to the totals. */
  private addTotals(kind: ObjectKind, bytes: number, objects: number): void {
    const t = this.meta.get('totals') ?? { bs: 0, bo: 0, ms: 0, mo: 0 };
    if (kind === 'blob') {
      t.bs += bytes;
      t.bo += objects;
    } else {
      t.ms += bytes;
      t.mo += objects;
    }
    void this.meta.put('totals', t);
  }

  /** Inside a write transaction: writes a record, keeping lru and totals in step. */
  private putRecord(key: string, kind: ObjectKind, old: ObjectRecord | undefined, next: ObjectRecord): void {
    if (old) void this.lru.remove([old.a, key]);
    void this.objects.put(key, next);
    void this.lru.put([next.a, key], 1);
    this.addTotals(kind, next.s - (old?.s ?? 0), old ? 0 : 1);
  }

  async recordCommit(kind: ObjectKind, digest: DigestLike, size: number, namespace?: string, scope?: string): Promise<void> {
    const key = objectKey(kind, digestString(digest), scope);
    const at = this.now();
    await this.write(
      'write',
      () => {
        const old = this.objects.get(key);
        const n = old ? [...old.n] : [];
        if (namespace !== undefined && !n.includes(namespace)) n.push(namespace);
        this.putRecord(key, kind, old, { s: size, a: Math.max(at, old?.a ?? 0), n });
      },
      undefined,
    );
  }

  /**
   * Inserts an entry only when there is none (reconciliation: a file found without an entry).
   * Resolves with how many were inserted.
   */
  async insertMissing(entries: readonly IndexEntry[]): Promise<number> {
    return this.write(
      'write',
      () => {
        let added = 0;
        for (const e of entries) {
          const key = objectKey(e.kind, e.digest, e.scope);
          if (this.objects.get(key) !== undefined) continue;
          this.putRecord(key, e.kind, undefined, { s: e.size, a: e.lastAccess, n: [...e.namespaces] });
          added++;
        }
        return added;
      },
      0,
    );
  }

  touch(kind: ObjectKind, digest: DigestLike, namespace?: string, scope?: string): void {
    if (this.closed) return;
    const key = objectKey(kind, digestString(digest), scope);
    const had = this.buffer.get(key);
    if (had !== undefined) {
      // The hot path of a hit: update in place, no allocation.
      had[0] = this.now();
      if (namespace !== undefined) had[1] = namespace;
      return;
    }
    if (this.buffer.size >= this.maxBuffered) {
      this.droppedTouches++;
      return;
    }
    this.buffer.set(key, [this.now(), namespace]);
    if (this.buffer.size >= this.flushEntries && !this.flushQueued) {
      this.flushQueued = true;
      setImmediate(() => void this.flush());
    }
  }

  async remove(kind: ObjectKind, digest: DigestLike, scope?: string): Promise<boolean> {
    const key = objectKey(kind, digestString(digest), scope);
    this.buffer.delete(key);
    return this.write(
      'write',
      () => {
        const old = this.objects.get(key);
        if (!old) return false;
        void this.objects.remove(key);
        void this.lru.remove([old.a, key]);
        this.addTotals(kind, -old.s, -1);
        return true;
      },
      false,
    );
  }

  /**
   * Drops entries only if they are still the ones that were read (same last access and size):
   * reconciliation must not drop an entry a concurrent commit just rewrote. One transaction.
   */
  async removeIfUnchanged(entries: readonly IndexEntry[]): Promise<number> {
    if (entries.length === 0) return 0;
    return this.write(
      'write',
      () => {
        let removed = 0;
        for (const e of entries) {
          const key = objectKey(e.kind, e.digest, e.scope);
          const old = this.objects.get(key);
          if (!old || old.a !== e.lastAccess || old.s !== e.size) continue;
          void this.objects.remove(key);
          void this.lru.remove([old.a, key]);
          this.addTotals(e.kind, -old.s, -1);
          removed++;
        }
        return removed;
      },
      0,
    );
  }

  get(kind: ObjectKind, digest: DigestLike, scope?: string): IndexEntry | undefined {
    const key = objectKey(kind, digestString(digest), scope);
    return this.read(() => {
      const r = this.objects.get(key);
      return r ? entryOf(key, r) : undefined;
    });
  }

  totals(): IndexTotals {
    const t = this.read(() => this.meta.get('totals')) ?? { bs: 0, bo: 0, ms: 0, mo: 0 };
    return {
      blob: { bytes: t.bs, objects: t.bo },
      manifest: { bytes: t.ms, objects: t.mo },
      bytes: t.bs + t.ms,
      objects: t.bo + t.mo,
    };
  }

  lruCandidates(limit: number, cursor?: LruCursor): { entries: IndexEntry[]; cursor?: LruCursor } {
    return (
      this.read(() => {
        const entries: IndexEntry[] = [];
        let last: LruCursor | undefined;
        const start: LruKey | undefined = cursor ? [cursor.lastAccess, cursor.key] : undefined;
        for (const k of this.lru.getKeys({ start, limit: limit + (cursor ? 1 : 0) })) {
          const [a, key] = k;
          if (cursor && a === cursor.lastAccess && key === cursor.key) continue;
          last = { lastAccess: a, key };
          const r = this.objects.get(key);
          if (r) entries.push(entryOf(key, r));
          if (entries.length >= limit) break;
        }
        return { entries, cursor: last };
      }) ?? { entries: [] }
    );
  }

  scan(limit: number, afterKey?: string): { entries: IndexEntry[]; lastKey?: string } {
    return (
      this.read(() => {
        const entries: IndexEntry[] = [];
        let lastKey: string | undefined;
        for (const { key, value } of this.objects.getRange({ start: afterKey, limit: limit + (afterKey ? 1 : 0) })) {
          if (key === afterKey) continue;
          lastKey = key;
          entries.push(entryOf(key, value));
          if (entries.length >= limit) break;
        }
        return { entries, lastKey };
      }) ?? { entries: [] }
    );
  }

  entriesWithPrefix(kind: ObjectKind, digestPrefix: string, scope?: string): IndexEntry[] {
    const start = objectKey(kind, digestPrefix, scope);
    // The prefix's last character + 1 ends the range: every key starting with the prefix sorts before it.
    const end = prefixEnd(start);
    return this.read(() => Array.from(this.objects.getRange({ start, end }), ({ key, value }) => entryOf(key, value))) ?? [];
  }

  /** A skip scan: one lookup per scope and kind (jumps past each scope's range), never a walk of the entries. */
  scopes(): string[] {
    return (
      this.read(() => {
        const found = new Set<string>();
        for (const k of ['b', 'm']) {
          let start = `${k}@`;
          const end = `${k}A`; // '@' + 1
          for (;;) {
            const first = Array.from(this.objects.getKeys({ start, end, limit: 1 }))[0];
            if (first === undefined) break;
            const scope = first.slice(2, first.indexOf('/', 2));
            found.add(scope);
            start = prefixEnd(`${k}@${scope}/`);
          }
        }
        return [...found].sort();
      }) ?? []
    );
  }

  getTag(key: TagKey, acceptClass: string): TagAnswer | undefined {
    return this.read(() => this.tags.get(tagPrefix(key) + acceptClass));
  }

  async setTag(key: TagKey, acceptClass: string, answer: TagAnswer): Promise<void> {
    const k = tagPrefix(key) + acceptClass;
    const value: TagAnswer = { digest: answer.digest, mediaType: answer.mediaType, size: answer.size, checkedAt: answer.checkedAt };
    await this.write('write', () => void this.tags.put(k, value), undefined);
  }

  tagsFor(key: TagKey): Map<string, TagAnswer> {
    const prefix = tagPrefix(key);
    return (
      this.read(() => {
        const out = new Map<string, TagAnswer>();
        // SEP + 1 bounds the range to exactly this tag's keys.
        const end = prefix.slice(0, -1) + String.fromCharCode(SEP.charCodeAt(0) + 1);
        for (const { key: k, value } of this.tags.getRange({ start: prefix, end })) out.set(k.slice(prefix.length), value);
        return out;
      }) ?? new Map()
    );
  }

  async removeTag(key: TagKey): Promise<number> {
    const keys = [...this.tagsFor(key).keys()].map((a) => tagPrefix(key) + a);
    return this.write(
      'write',
      () => {
        for (const k of keys) void this.tags.remove(k);
        return keys.length;
      },
      0,
    );
  }

  /** Every stored tag answer (for the CLI): namespace, repository, tag, Accept class, answer. */
  allTags(): Array<{ key: TagKey; acceptClass: string; answer: TagAnswer }> {
    return (
      this.read(() => {
        const out: Array<{ key: TagKey; acceptClass: string; answer: TagAnswer }> = [];
        for (const { key, value } of this.tags.getRange({})) {
          const [namespace = '', repository = '', tag = '', acceptClass = ''] = key.split(SEP);
          out.push({ key: { namespace, repository, tag }, acceptClass, answer: value });
        }
        return out;
      }) ?? []
    );
  }

  async setPins(pins: ReadonlyMap<string, readonly string[]>): Promise<void> {
    await this.write(
      'write',
      () => {
        for (const k of this.pinDb.getKeys({})) if (!pins.has(k)) void this.pinDb.remove(k);
        for (const [d, refs] of pins) void this.pinDb.put(d, [...refs]);
      },
      undefined,
    );
  }

  isPinned(digest: DigestLike): boolean {
    const d = digestString(digest);
    return this.read(() => this.pinDb.get(d) !== undefined) ?? false;
  }

  pins(): Map<string, string[]> {
    return this.read(() => new Map(Array.from(this.pinDb.getRange({}), ({ key, value }) => [key, value]))) ?? new Map();
  }

  async flush(): Promise<void> {
    this.flushQueued = false;
    if (this.buffer.size > 0 && !this.closed) {
      const batch = this.buffer;
      this.buffer = new Map();
      await this.write(
        'flush',
        () => {
          for (const [key, [at, ns]] of batch) {
            const old = this.objects.get(key);
            // A touch of an unknown object (read from a file the index lost) waits for
            // reconciliation, which knows its size; a touch never creates an entry.
            if (!old) continue;
            const addNs = ns !== undefined && !old.n.includes(ns);
            if (at <= old.a && !addNs) continue;
            const n = addNs ? [...old.n, ns] : old.n;
            this.putRecord(key, kindOf(key), old, { s: old.s, a: Math.max(at, old.a), n });
          }
        },
        undefined,
      );
    }
    await Promise.allSettled([...this.inflight]);
  }

  /**
   * Checks that the key spaces agree (every object has its lru key and no other, totals equal
   * the sum of sizes). Returns the problems found; empty when consistent. O(entries): for tests
   * and `regmirror cache du --check`.
   */
  verify(): string[] {
    const problems: string[] = [];
    const sums = { bs: 0, bo: 0, ms: 0, mo: 0 };
    const expected = new Set<string>();
    for (const { key, value } of this.objects.getRange({})) {
      if (key[0] === 'b') {
        sums.bs += value.s;
        sums.bo++;
      } else {
        sums.ms += value.s;
        sums.mo++;
      }
      expected.add(`${value.a}|${key}`);
    }
    let lruCount = 0;
    for (const [a, key] of this.lru.getKeys({})) {
      lruCount++;
      if (!expected.has(`${a}|${key}`)) problems.push(`lru key without its object: ${a} ${key}`);
    }
    if (lruCount !== expected.size) problems.push(`lru has ${lruCount} keys for ${expected.size} objects`);
    const t = this.meta.get('totals') ?? { bs: 0, bo: 0, ms: 0, mo: 0 };
    if (t.bs !== sums.bs || t.bo !== sums.bo || t.ms !== sums.ms || t.mo !== sums.mo) {
      problems.push(`totals ${JSON.stringify(t)} differ from the entries ${JSON.stringify(sums)}`);
    }
    return problems;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    clearInterval(this.timer);
    await this.flush();
    this.closed = true;
    try {
      await this.env.close();
    } catch (err) {
      this.health.fail('close', err);
    }
  }
}
