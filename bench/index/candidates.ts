/**
 * Measures the index library candidates on the cache index's workload (issue 10):
 *
 *   insert   1 000 000 entries (digest, size, lastAccess, kind, namespaces) in batches of 10 000
 *   touch    10 000 random accesses in one batch (the batched last-access writer)
 *   lru      select the 1 000 LRU-oldest entries (what the evictor asks)
 *   open     open an existing 1 000 000-entry index in a fresh process and answer one get + one lru
 *   size     bytes on disk of the index directory
 *   RSS      VmHWM of the process doing the work (each phase runs in its own child process)
 *
 *   node build/bench/index/candidates.js [--entries N] [--only sqlite,lmdb,level,log]
 *
 * Every candidate keeps a secondary order by last access, because the evictor's query must not be
 * a full scan: SQLite has an index on `last_access`; LMDB and LevelDB keep a second key space
 * `(lastAccess, digest)` updated in the same transaction / batch; the append-only log keeps
 * everything in memory and sorts on demand (that is its nature).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, readFileSync, readdirSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

interface Entry {
  digest: string;
  size: number;
  lastAccess: number;
  kind: number;
  namespaces: string;
}

/** A candidate behind the same five operations. */
interface Candidate {
  insert(batch: Entry[]): Promise<void> | void;
  touch(digests: string[], at: number): Promise<void> | void;
  lru(limit: number): Promise<string[]> | string[];
  get(digest: string): Promise<unknown> | unknown;
  close(): Promise<void> | void;
}

const BASE_TIME = 1_700_000_000_000;

/** Deterministic, well-spread 64-hex digest for entry i (random-looking like real digests). */
function digestOf(i: number): string {
  let out = 'sha256:';
  let x = (i + 1) * 0x9e3779b1;
  for (let k = 0; k < 8; k++) {
    x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
    x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
    x ^= x >>> 16;
    out += (x >>> 0).toString(16).padStart(8, '0');
    x += k + i;
  }
  return out;
}

function entryOf(i: number): Entry {
  return {
    digest: digestOf(i),
    size: 1000 + ((i * 7919) % 100_000_000),
    lastAccess: BASE_TIME + i,
    kind: i % 10 === 0 ? 1 : 0,
    namespaces: i % 3 === 0 ? 'docker.io,ghcr.io' : 'docker.io',
  };
}

/*
 * better-sqlite3 and classic-level are not dependencies of regmirror (they lost, see RESULTS.md);
 * install them without saving to rerun this bench:
 *   npm install --no-save better-sqlite3@12 classic-level@3
 * The specifiers are variables so that tsc does not need them; the shapes below are what we use.
 */
interface SqliteStatement {
  run(...args: unknown[]): unknown;
  all(...args: unknown[]): unknown[];
  get(...args: unknown[]): unknown;
  pluck(): SqliteStatement;
}
interface SqliteDatabase {
  pragma(source: string): unknown;
  exec(source: string): void;
  prepare(source: string): SqliteStatement;
  transaction<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void;
  close(): void;
}
type LevelOp = { type: 'put'; key: string; value: string } | { type: 'del'; key: string };
interface LevelDatabase {
  open(): Promise<void>;
  batch(ops: LevelOp[]): Promise<void>;
  getMany(keys: string[]): Promise<Array<string | undefined>>;
  keys(options: { gt: string; lt: string; limit: number }): { all(): Promise<string[]> };
  get(key: string): Promise<string | undefined>;
  close(): Promise<void>;
}

async function optional<T>(name: string): Promise<T> {
  const specifier = name;
  try {
    return (await import(specifier)) as T;
  } catch (err) {
    throw new Error(`${name} is not installed (npm install --no-save ${name}): ${(err as Error).message}`);
  }
}

/** Padded hex so that LevelDB's bytewise order is numeric order. */
function timeKey(t: number): string {
  return t.toString(16).padStart(12, '0');
}

async function openSqlite(dir: string): Promise<Candidate> {
  const { default: Database } = await optional<{ default: new (path: string) => SqliteDatabase }>('better-sqlite3');
  const db = new Database(join(dir, 'index.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(`CREATE TABLE IF NOT EXISTS objects (
    digest TEXT PRIMARY KEY, kind INTEGER NOT NULL, size INTEGER NOT NULL,
    last_access INTEGER NOT NULL, namespaces TEXT NOT NULL) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS objects_lru ON objects(last_access);`);
  const ins = db.prepare('INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?)');
  const upd = db.prepare('UPDATE objects SET last_access = ? WHERE digest = ?');
  const lru = db.prepare('SELECT digest FROM objects ORDER BY last_access LIMIT ?').pluck();
  const get = db.prepare('SELECT * FROM objects WHERE digest = ?');
  const insertMany = db.transaction((batch: Entry[]) => {
    for (const e of batch) ins.run(e.digest, e.kind, e.size, e.lastAccess, e.namespaces);
  });
  const touchMany = db.transaction((digests: string[], at: number) => {
    for (const d of digests) upd.run(at, d);
  });
  return {
    insert: (b) => insertMany(b),
    touch: (d, at) => touchMany(d, at),
    lru: (n) => lru.all(n) as string[],
    get: (d) => get.get(d),
    close: () => {
      db.close();
    },
  };
}

async function openLmdb(dir: string): Promise<Candidate> {
  const { open } = await import('lmdb');
  const env = open({ path: join(dir, 'index.mdb'), maxDbs: 4 });
  const objects = env.openDB<Entry, string>({ name: 'objects' });
  const order = env.openDB<null, [number, string]>({ name: 'lru' });
  return {
    insert: (batch) =>
      env.transaction(() => {
        for (const e of batch) {
          void objects.put(e.digest, e);
          void order.put([e.lastAccess, e.digest], null);
        }
      }),
    touch: (digests, at) =>
      env.transaction(() => {
        for (const d of digests) {
          const e = objects.get(d);
          if (!e) continue;
          void order.remove([e.lastAccess, d]);
          void objects.put(d, { ...e, lastAccess: at });
          void order.put([at, d], null);
        }
      }),
    lru: (n) => Array.from(order.getKeys({ limit: n }), (k) => k[1]),
    get: (d) => objects.get(d),
    close: () => env.close(),
  };
}

async function openLevel(dir: string): Promise<Candidate> {
  const { ClassicLevel } = await optional<{ ClassicLevel: new (path: string) => LevelDatabase }>('classic-level');
  const db = new ClassicLevel(join(dir, 'index.level'));
  await db.open();
  return {
    insert: async (batch) => {
      const ops: LevelOp[] = [];
      for (const e of batch) {
        ops.push({ type: 'put', key: `o!${e.digest}`, value: JSON.stringify(e) });
        ops.push({ type: 'put', key: `a!${timeKey(e.lastAccess)}!${e.digest}`, value: '' });
      }
      await db.batch(ops);
    },
    touch: async (digests, at) => {
      const olds = await db.getMany(digests.map((d) => `o!${d}`));
      const ops: LevelOp[] = [];
      for (let i = 0; i < digests.length; i++) {
        const raw = olds[i];
        if (raw === undefined) continue;
        const e = JSON.parse(raw) as Entry;
        ops.push({ type: 'del', key: `a!${timeKey(e.lastAccess)}!${e.digest}` });
        ops.push({ type: 'put', key: `o!${e.digest}`, value: JSON.stringify({ ...e, lastAccess: at }) });
        ops.push({ type: 'put', key: `a!${timeKey(at)}!${e.digest}`, value: '' });
      }
      await db.batch(ops);
    },
    lru: async (n) => (await db.keys({ gt: 'a!', lt: 'a"', limit: n }).all()).map((k) => k.slice(k.lastIndexOf('!') + 1)),
    get: (d) => db.get(`o!${d}`),
    close: () => db.close(),
  };
}

/** The simplest durable log: one JSON line per write, replayed into a Map at open. */
async function openLog(dir: string): Promise<Candidate> {
  const path = join(dir, 'index.log');
  const map = new Map<string, Entry>();
  try {
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      if (!line) continue;
      const r = JSON.parse(line) as Entry | { t: string; at: number };
      if ('t' in r) {
        const e = map.get(r.t);
        if (e) e.lastAccess = r.at;
      } else map.set(r.digest, r);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const fd = openSync(path, 'a');
  return {
    insert: (batch) => {
      writeSync(fd, batch.map((e) => JSON.stringify(e)).join('\n') + '\n');
      for (const e of batch) map.set(e.digest, e);
    },
    touch: (digests, at) => {
      writeSync(fd, digests.map((d) => JSON.stringify({ t: d, at })).join('\n') + '\n');
      for (const d of digests) {
        const e = map.get(d);
        if (e) e.lastAccess = at;
      }
    },
    lru: (n) => [...map.values()].sort((a, b) => a.lastAccess - b.lastAccess).slice(0, n).map((e) => e.digest),
    get: (d) => map.get(d),
    close: () => closeSync(fd),
  };
}

const OPENERS: Record<string, (dir: string) => Promise<Candidate>> = {
  sqlite: openSqlite,
  lmdb: openLmdb,
  level: openLevel,
  log: openLog,
};

function dirBytes(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const s = statSync(join(dir, name));
    // Allocated blocks, not the apparent size: LMDB's map file is sparse.
    if (s.isFile()) total += s.blocks * 512;
  }
  return total;
}

function hwmKiB(): number {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : 0;
}

function ms(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** Child: one phase of one candidate, prints one JSON line. */
async function child(name: string, phase: string, dir: string, entries: number): Promise<void> {
  const opener = OPENERS[name];
  if (!opener) throw new Error(`unknown candidate ${name}`);
  const out: Record<string, number> = {};
  if (phase === 'build') {
    const db = await opener(dir);
    let t0 = process.hrtime.bigint();
    const BATCH = 10_000;
    for (let i = 0; i < entries; i += BATCH) {
      const batch: Entry[] = [];
      for (let j = i; j < Math.min(entries, i + BATCH); j++) batch.push(entryOf(j));
      await db.insert(batch);
    }
    out.insertMs = ms(t0);
    const touched: string[] = [];
    for (let k = 1; k <= 10_000; k++) touched.push(digestOf((k * 104_729) % entries));
    t0 = process.hrtime.bigint();
    await db.touch(touched, BASE_TIME + entries + 1);
    out.touchMs = ms(t0);
    t0 = process.hrtime.bigint();
    const oldest = await db.lru(1000);
    out.lruMs = ms(t0);
    // The oldest entry must be entry 0 unless touched: a wrong answer is a failed candidate.
    if (oldest.length !== 1000 || oldest[0] !== digestOf(0)) throw new Error(`${name}: wrong LRU answer`);
    await db.close();
    out.buildHwmKiB = hwmKiB();
    out.fileBytes = dirBytes(dir);
  } else {
    const t0 = process.hrtime.bigint();
    const db = await opener(dir);
    const got = await db.get(digestOf(entries - 1));
    const oldest = await db.lru(1000);
    out.openMs = ms(t0);
    if (!got || oldest.length !== 1000) throw new Error(`${name}: wrong answer after reopen`);
    out.openHwmKiB = hwmKiB();
    await db.close();
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

function runChild(name: string, phase: string, dir: string, entries: number): Record<string, number> {
  const self = fileURLToPath(import.meta.url);
  const r = spawnSync(process.execPath, [self, '--child', name, phase, dir, String(entries)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${name} ${phase} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as Record<string, number>;
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === '--child') {
    await child(argv[1] ?? '', argv[2] ?? '', argv[3] ?? '', Number(argv[4]));
    return;
  }
  let entries = 1_000_000;
  let only = Object.keys(OPENERS);
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--entries') entries = Number(argv[++i]);
    else if (argv[i] === '--only') only = (argv[++i] ?? '').split(',');
  }
  const rows: string[] = [];
  rows.push(`entries: ${entries}, node ${process.version}`);
  rows.push('| candidate | insert (s) | touch 10k (ms) | LRU 1000 (ms) | open + get + LRU (ms) | size on disk (MiB) | build RSS peak (MiB) | open RSS peak (MiB) |');
  rows.push('|---|---|---|---|---|---|---|---|');
  for (const name of only) {
    const dir = mkdtempSync(join(tmpdir(), `idx-bench-${name}-`));
    try {
      const b = runChild(name, 'build', dir, entries);
      const o = runChild(name, 'open', dir, entries);
      const row = `| ${name} | ${((b.insertMs ?? 0) / 1000).toFixed(1)} | ${(b.touchMs ?? 0).toFixed(0)} | ${(b.lruMs ?? 0).toFixed(1)} | ${(o.openMs ?? 0).toFixed(0)} | ${((b.fileBytes ?? 0) / 2 ** 20).toFixed(0)} | ${((b.buildHwmKiB ?? 0) / 1024).toFixed(0)} | ${((o.openHwmKiB ?? 0) / 1024).toFixed(0)} |`;
      rows.push(row);
      process.stderr.write(`${row}\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const text = rows.join('\n') + '\n';
  process.stdout.write(text);
}

await main(process.argv.slice(2));
