/**
 * `regmirror cache du|ls|rm|gc`: inspect and prune a mirror's cache, also while a mirror serves
 * from the same directory.
 *
 * Why that is safe: the index is LMDB, opened by both processes; writes take LMDB's write lock
 * one short transaction at a time and readers see consistent snapshots, so neither process sees
 * the other half-way. A removal unlinks the file first, then drops the entry: a mirror streaming
 * that file keeps reading it through its open descriptor (Linux frees the inode on the last
 * close); a mirror about to open it gets ENOENT, which is a miss (refetched from the upstream).
 * Fills write under tmp/ and rename at the end; the CLI never touches tmp/. The CLI cannot see
 * which objects a mirror is reading; it evicts LRU-oldest, which a reader just touched is not.
 */
import { existsSync, readFileSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { parseSize } from '../config/size.js';
import { parseDigest, type Digest } from '../oci/digest.js';
import { isScopeName, Layout, type Scope } from '../store/layout.js';
import { Evictor } from '../store/index/evictor.js';
import { openLmdbIndex, type LmdbCacheIndex } from '../store/index/lmdb-index.js';
import { DEFAULT_MAX_SIZE, filesystemSpace, formatBytes, parseMaxSize, resolveCap, type MaxSize } from '../config/max-size.js';
import { parseImageReference } from '../config/pins.js';
import { OBJECT_KINDS, type IndexEntry, type ObjectKind } from '../store/index/types.js';

export const CACHE_USAGE = `Usage: regmirror cache COMMAND [options]

Commands:
  du                         size, objects, cap, free space, by namespace
  ls [--sort access|size] [--limit N]
                             cached objects, least recently used first (or largest first)
  rm REF|DIGEST [--force]    remove a digest (blob and/or manifest, every namespace's copy), or the
                             manifests a tag answer points at (and the tag answers); pinned ones
                             need --force
  gc [--to SIZE]             evict least recently used objects down to SIZE [the low watermark]

Options:
  --data-dir DIR             the mirror's data directory            (REGMIRROR_DATA_DIR) [./data]
  --config FILE              read dataDir, maxSize, evictLow from the mirror's config file
  --max-size SIZE|N%         the cap, for du and gc                 (REGMIRROR_MAX_SIZE) [80%]
  --json                     machine-readable output (du, ls)
  -h, --help

Safe while a mirror serves from the same directory.
`;

interface Settings {
  dataDir: string;
  maxSize: MaxSize;
  evictLow: number;
}

/** Reads the settings the cache commands need from flags, environment and the config file. */
function settings(values: { 'data-dir'?: string; config?: string; 'max-size'?: string }, env: NodeJS.ProcessEnv): Settings {
  let file: Record<string, unknown> = {};
  const configPath = values.config ?? env.REGMIRROR_CONFIG;
  if (configPath) {
    // Only the keys this command needs; the mirror validates the whole file when it starts.
    const doc: unknown = parseYaml(readFileSync(configPath, 'utf8')) ?? {};
    if (typeof doc !== 'object' || Array.isArray(doc)) throw new Error(`${configPath}: expected a YAML mapping at the top level`);
    file = doc as Record<string, unknown>;
  }
  const dataDir = values['data-dir'] ?? env.REGMIRROR_DATA_DIR ?? (typeof file.dataDir === 'string' ? file.dataDir : undefined) ?? './data';
  const rawMax = values['max-size'] ?? env.REGMIRROR_MAX_SIZE ?? (file.maxSize as string | number | undefined);
  const evictLow = typeof file.evictLow === 'number' ? file.evictLow : 0.8;
  return { dataDir: resolve(dataDir), maxSize: rawMax === undefined ? DEFAULT_MAX_SIZE : parseMaxSize(rawMax), evictLow };
}

function out(line = ''): void {
  process.stdout.write(line + '\n');
}

/** Runs `regmirror cache …`; resolves the exit code (0 ok, 1 failure, 2 usage). */
export async function run(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        'data-dir': { type: 'string' },
        config: { type: 'string' },
        'max-size': { type: 'string' },
        sort: { type: 'string' },
        limit: { type: 'string' },
        to: { type: 'string' },
        force: { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    process.stderr.write(`regmirror cache: ${(err as Error).message}\n\n${CACHE_USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command, ...args] = positionals;
  if (values.help || command === undefined) {
    process.stdout.write(CACHE_USAGE);
    return values.help ? 0 : 2;
  }
  if (!['du', 'ls', 'rm', 'gc'].includes(command)) {
    process.stderr.write(`regmirror cache: unknown command ${JSON.stringify(command)}\n\n${CACHE_USAGE}`);
    return 2;
  }
  let s: Settings;
  try {
    s = settings(values, env);
  } catch (err) {
    process.stderr.write(`regmirror cache: ${(err as Error).message}\n`);
    return 2;
  }
  if (!existsSync(s.dataDir)) {
    process.stderr.write(`regmirror cache: no data directory at ${s.dataDir}\n`);
    return 1;
  }
  let index: LmdbCacheIndex;
  try {
    index = openLmdbIndex({ dataDir: s.dataDir, log: { warn: (o, m) => process.stderr.write(`${m}: ${String((o as { err?: unknown }).err)}\n`), info: () => {} } });
  } catch (err) {
    process.stderr.write(`regmirror cache: cannot open the index in ${s.dataDir}: ${(err as Error).message}\n`);
    return 1;
  }
  try {
    const layout = new Layout(s.dataDir);
    switch (command) {
      case 'du':
        return await du(index, s, values.json === true);
      case 'ls':
        return ls(index, values.sort ?? 'access', values.limit, values.json === true);
      case 'rm':
        return await rm(index, layout, args, values.force === true);
      default:
        return await gc(index, layout, s, values.to);
    }
  } catch (err) {
    process.stderr.write(`regmirror cache ${command}: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await index.close();
  }
}

/** Every entry, page by page (the CLI may walk a 1 000 000-entry index). */
function* allEntries(index: LmdbCacheIndex): Generator<IndexEntry> {
  let after: string | undefined;
  for (;;) {
    const page = index.scan(10_000, after);
    yield* page.entries;
    if (!page.lastKey) return;
    after = page.lastKey;
  }
}

async function du(index: LmdbCacheIndex, s: Settings, json: boolean): Promise<number> {
  const totals = index.totals();
  const cap = await resolveCap(s.maxSize, s.dataDir);
  const fs = await filesystemSpace(s.dataDir);
  const byNamespace = new Map<string, { bytes: number; objects: number }>();
  for (const e of allEntries(index)) {
    for (const ns of e.namespaces.length > 0 ? e.namespaces : ['(unknown)']) {
      const t = byNamespace.get(ns) ?? { bytes: 0, objects: 0 };
      t.bytes += e.size;
      t.objects++;
      byNamespace.set(ns, t);
    }
  }
  const report = {
    dataDir: s.dataDir,
    bytes: totals.bytes,
    objects: totals.objects,
    blobs: totals.blob,
    manifests: totals.manifest,
    capBytes: cap,
    freeBytes: fs.free,
    filesystemBytes: fs.size,
    tags: index.allTags().length,
    pins: index.pins().size,
    byNamespace: Object.fromEntries([...byNamespace].sort((a, b) => b[1].bytes - a[1].bytes)),
  };
  if (json) {
    out(JSON.stringify(report, null, 2));
    return 0;
  }
  const pct = cap > 0 ? ` (${((100 * totals.bytes) / cap).toFixed(1)} % of the cap)` : '';
  out(`data dir   ${s.dataDir}`);
  out(`cached     ${formatBytes(totals.bytes)} in ${totals.objects} objects${pct}`);
  out(`  blobs      ${formatBytes(totals.blob.bytes)} in ${totals.blob.objects}`);
  out(`  manifests  ${formatBytes(totals.manifest.bytes)} in ${totals.manifest.objects}`);
  out(`cap        ${formatBytes(cap)}${s.maxSize.kind === 'percent' ? ` (${s.maxSize.percent} % of ${formatBytes(fs.size)})` : ''}`);
  out(`free       ${formatBytes(fs.free)} on the filesystem`);
  out(`tags       ${report.tags} answers, ${report.pins} pinned digests`);
  out('by namespace (an object served for several counts in each):');
  for (const [ns, t] of Object.entries(report.byNamespace)) out(`  ${ns.padEnd(24)} ${formatBytes(t.bytes).padStart(10)}  ${t.objects} objects`);
  return 0;
}

function ls(index: LmdbCacheIndex, sort: string, rawLimit: string | undefined, json: boolean): number {
  if (sort !== 'access' && sort !== 'size') throw new Error(`--sort must be access or size, not ${JSON.stringify(sort)}`);
  const limit = rawLimit === undefined ? 100 : Number(rawLimit);
  if (!Number.isSafeInteger(limit) || limit <= 0) throw new Error(`--limit must be a positive integer, not ${JSON.stringify(rawLimit)}`);
  let entries: IndexEntry[];
  if (sort === 'access') {
    entries = index.lruCandidates(limit).entries;
  } else {
    // Keep the largest `limit` while walking, so memory follows the limit, not the index.
    entries = [];
    for (const e of allEntries(index)) {
      entries.push(e);
      if (entries.length > limit * 2) entries = entries.sort((a, b) => b.size - a.size).slice(0, limit);
    }
    entries = entries.sort((a, b) => b.size - a.size).slice(0, limit);
  }
  if (json) {
    out(JSON.stringify(entries.map((e) => ({ ...e, pinned: index.isPinned(e.digest) }))));
    return 0;
  }
  out(`${'KIND'.padEnd(9)}${'SIZE'.padStart(10)}  ${'LAST ACCESS'.padEnd(24)}  DIGEST  NAMESPACES`);
  for (const e of entries) {
    const pin = index.isPinned(e.digest) ? ' (pinned)' : '';
    const own = e.scope !== undefined ? ' (isolated copy)' : '';
    out(`${e.kind.padEnd(9)}${formatBytes(e.size).padStart(10)}  ${new Date(e.lastAccess).toISOString().padEnd(24)}  ${e.digest}  ${e.namespaces.join(',')}${own}${pin}`);
  }
  return 0;
}

/** File first, then entry: the order the evictor uses (see evictor.ts). */
async function removeObject(index: LmdbCacheIndex, layout: Layout, kind: ObjectKind, d: Digest, scope: Scope): Promise<boolean> {
  const had = index.get(kind, d, scope) !== undefined;
  let removedFile = false;
  try {
    await unlink(kind === 'blob' ? layout.blob(d, scope) : layout.manifest(d, scope));
    removedFile = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await index.remove(kind, d, scope);
  return had || removedFile;
}

/** The shared trees and every namespace's own (isolateNamespaces), from the index and the disk. */
async function allScopes(index: LmdbCacheIndex, layout: Layout): Promise<Scope[]> {
  return [undefined, ...new Set([...index.scopes(), ...(await layout.scopesOnDisk())])];
}

async function rm(index: LmdbCacheIndex, layout: Layout, args: string[], force: boolean): Promise<number> {
  if (args.length !== 1 || !args[0]) throw new Error('rm takes one REF or DIGEST');
  const arg = args[0];
  // A digest names every copy of it; a tag answer's manifest is the shared copy or its namespace's own.
  const every = await allScopes(index, layout);
  const digests: Array<{ d: Digest; kinds: readonly ObjectKind[]; scopes: readonly Scope[] }> = [];
  let tagsRemoved = 0;
  const bare = parseDigest(arg);
  if (bare) {
    digests.push({ d: bare, kinds: OBJECT_KINDS, scopes: every });
  } else {
    const ref = parseImageReference(arg);
    if (ref.digest) {
      digests.push({ d: ref.digest, kinds: ['manifest'], scopes: ref.namespace === undefined || !isScopeName(ref.namespace) ? every : [undefined, ref.namespace] });
    } else {
      // Tag answers are stored under the upstream's repository name: `alpine` is `library/alpine` on Docker Hub.
      const repos = new Set([ref.repository, `library/${ref.repository}`]);
      const matches = index.allTags().filter((t) => repos.has(t.key.repository) && t.key.tag === ref.tag && (ref.namespace === undefined || t.key.namespace === ref.namespace));
      if (matches.length === 0) {
        process.stderr.write(`regmirror cache rm: no tag answer for ${arg} in the index\n`);
        return 1;
      }
      for (const m of matches) {
        const d = parseDigest(m.answer.digest);
        if (!d) continue;
        const known = digests.find((x) => x.d.value === d.value);
        if (!known) digests.push({ d, kinds: ['manifest'], scopes: [undefined, m.key.namespace] });
        else if (!known.scopes.includes(m.key.namespace)) known.scopes = [...known.scopes, m.key.namespace];
      }
      const pinnedTargets = digests.filter((x) => index.isPinned(x.d));
      if (pinnedTargets.length > 0 && !force) {
        process.stderr.write(`regmirror cache rm: ${arg} points at pinned ${pinnedTargets.map((x) => x.d.value).join(', ')}; use --force\n`);
        return 1;
      }
      const keys = new Map(matches.map((m) => [`${m.key.namespace}/${m.key.repository}:${m.key.tag}`, m.key]));
      for (const key of keys.values()) tagsRemoved += await index.removeTag(key);
    }
  }
  let removed = 0;
  for (const { d, kinds, scopes } of digests) {
    if (index.isPinned(d) && !force) {
      process.stderr.write(`regmirror cache rm: ${d.value} is pinned; use --force\n`);
      return 1;
    }
    for (const scope of scopes) {
      for (const kind of kinds) {
        if (await removeObject(index, layout, kind, d, scope)) {
          removed++;
          out(`removed ${kind} ${d.value}${scope === undefined ? '' : ` (${scope}'s copy)`}`);
        }
      }
    }
  }
  if (tagsRemoved > 0) out(`removed ${tagsRemoved} tag answers`);
  if (removed === 0 && tagsRemoved === 0) {
    process.stderr.write(`regmirror cache rm: ${arg} is not cached\n`);
    return 1;
  }
  return 0;
}

async function gc(index: LmdbCacheIndex, layout: Layout, s: Settings, to: string | undefined): Promise<number> {
  const cap = await resolveCap(s.maxSize, s.dataDir);
  const target = to !== undefined ? parseSize(to) : Math.floor(cap * s.evictLow);
  const before = index.totals().bytes;
  const evictor = new Evictor({ index, layout, cap: () => cap, low: Math.min(s.evictLow, 0.9) });
  const stats = await evictor.evictTo(target, 'gc');
  const after = index.totals().bytes;
  out(`evicted ${stats.evicted} objects, ${formatBytes(stats.bytes)}; cache ${formatBytes(before)} → ${formatBytes(after)} (target ${formatBytes(target)})`);
  if (stats.skipped > 0) out(`kept ${stats.skipped} pinned objects`);
  if (after > target) process.stderr.write(`regmirror cache gc: could not reach the target: what is left is pinned\n`);
  return after <= target ? 0 : 1;
}
