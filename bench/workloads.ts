/**
 * The six workloads. Each warms every server up (and checks its answer) before measuring, then
 * measures `rounds` times, visiting the servers in turn within a round so that slow drifts of the
 * machine (other work, page cache) spread over all of them, in the opposite order every other round
 * (so that no server always follows the same one, and a drift within a round favours none); medians
 * are reported.
 */
import { open } from 'node:fs/promises';
import { delay, tmpDir } from '../test/harness/proc.js';
import { startRegistry } from '../test/harness/registry.js';
import { startS3Registry, type S3Registry } from '../test/harness/s3.js';
import type { BlobFile } from '../test/harness/oci.js';
import type { Relay } from '../test/harness/relay.js';
import { digestOf, fanOut, httpGet, wrk, type HttpResponse, type WrkResult } from './load.js';
import { cpuSecondsOf, MemSampler, stealPctBetween, stealReading, threadCpuSeconds } from './procstat.js';
import { MANIFEST_ACCEPT, seedBlobs, type WarmContent } from './seed.js';
import { startDistributionProxy, startNginxCache, startRegmirror, SERVER_LABEL, type BenchServer, type ServerId } from './servers.js';
import { median, MiB } from './stats.js';
import type { BenchParams, ColdRound, ColdRow, RangeRound, RangeRow, RpsRow, RssRow, ThroughputRow, UpstreamCount } from './types.js';

/** What every workload gets. */
export interface WorkloadContext {
  params: BenchParams;
  /** Running servers in display order (nginx static first when installed). */
  servers: BenchServer[];
  warm: WarmContent;
  /** The throttling relay in front of the upstream (the proxies' upstream). */
  relay: Relay;
  /** wrk's Lua hook. */
  wrkScript: string;
  /** CPUs wrk runs on while the servers are pinned (workloads 1–3); undefined: not pinned. */
  loadCpus?: string;
  /** build/bench/client.js */
  clientJs: string;
  /** build/src/cli/main.js */
  mainJs: string;
  /** Another build's main.js (`--regmirror-main`), run as `regmirror-before`. */
  beforeMainJs?: string;
  /** Progress messages. */
  log: (msg: string) => void;
  /** Notes for the report. */
  note: (msg: string) => void;
  /** Steal seen by the measurements of workloads 1–3 (see {@link BenchParams.maxStealPct}). */
  steal: StealTally;
  /** Pins a (restarted) server's processes as workloads 1–3 pin every server; undefined: not pinned. */
  pinServer?: (pids: number[]) => void;
}

/** What the hypervisor's steal did to the measurements. */
export interface StealTally {
  /** wrk measurements kept. */
  measurements: number;
  /** Of them, measured again at least once because of steal. */
  repeated: number;
  /** Kept with more steal than the limit (every try had more). */
  keptOver: number;
  /** Most steal in a kept measurement, %. */
  maxKeptPct: number;
}

/** The report's line about steal. */
export function stealNote(t: StealTally, limitPct: number, tries: number): string | undefined {
  if (t.measurements === 0) return undefined;
  const kept = t.keptOver > 0 ? `; ${t.keptOver} kept above it after ${tries} tries` : '';
  return (
    `Host steal (time the hypervisor gave the CPUs to other guests): ${t.repeated} of ${t.measurements} measurements of workloads 1–3 ` +
    `were measured again because more than ${limitPct} % of the CPU was stolen during them${kept}; most steal in a kept measurement ${t.maxKeptPct.toFixed(1)} %.`
  );
}

/** Servers that are caches of an upstream (everything but nginx static and the node floor). */
export function proxies(ctx: WorkloadContext): BenchServer[] {
  return ctx.servers.filter((s) => s.id !== 'nginx-static' && s.id !== 'node-floor');
}

/** Headers that differ per request or per connection, left out when comparing answers. */
const VOLATILE_HEADERS = new Set(['x-request-id', 'date', 'connection', 'keep-alive']);

/**
 * Notes (once per path) where the node floor's headers differ from regmirror's: the floor is only a
 * floor while it sends what regmirror sends.
 */
function compareFloorHeaders(ctx: WorkloadContext, path: string, answers: Map<ServerId, Record<string, string | string[] | undefined>>): void {
  const rm = answers.get('regmirror');
  const floor = answers.get('node-floor');
  if (!rm || !floor) return;
  const names = new Set([...Object.keys(rm), ...Object.keys(floor)].filter((k) => !VOLATILE_HEADERS.has(k)));
  const diff = [...names].filter((k) => String(rm[k]) !== String(floor[k])).map((k) => `${k}: regmirror ${JSON.stringify(rm[k])}, node floor ${JSON.stringify(floor[k])}`);
  if (diff.length > 0) ctx.note(`node floor's headers differ from regmirror's on GET ${path} (update bench/node-floor.ts): ${diff.join('; ')}.`);
  ctx.log(`${path}: node floor sends regmirror's headers${diff.length > 0 ? ` except ${diff.length}` : ''} (${[...names].sort().join(', ')})`);
}

/**
 * Waits until the relay has no exchange in flight and nothing changed for `quietMs` (distribution
 * keeps fetching in the background after answering).
 */
export async function settleRelay(relay: Relay, quietMs = 750, timeoutMs = 180_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let last = '';
  let since = performance.now();
  while (performance.now() < deadline) {
    const s = relay.stats();
    const key = `${s.log.length}/${s.bytes}/${s.log.filter((r) => !r.done).length}`;
    const busy = s.log.some((r) => !r.done);
    if (key !== last || busy) {
      last = key;
      since = performance.now();
    } else if (performance.now() - since >= quietMs) {
      return;
    }
    await delay(100);
  }
  throw new Error(`relay ${relay.url} did not settle within ${timeoutMs} ms`);
}

/** GETs and HEADs of `digest` at the relay since its last reset, and the body bytes they carried. */
export function upstreamCount(relay: Relay, digest: string): UpstreamCount {
  const hex = digest.slice('sha256:'.length);
  const recs = relay.stats().log.filter((r) => r.path.includes(hex));
  const gets = recs.filter((r) => r.method === 'GET');
  return {
    gets: gets.length,
    heads: recs.filter((r) => r.method === 'HEAD').length,
    bytes: recs.reduce((n, r) => n + r.bytes, 0),
    getS: Math.max(0, ...gets.map((r) => r.durationMs)) / 1000,
  };
}

/** wrk's CPUs, when the servers are pinned. */
function load(ctx: WorkloadContext): { cpus?: string } {
  return ctx.loadCpus === undefined ? {} : { cpus: ctx.loadCpus };
}

/** A wrk run with the server's CPU use over it. */
type Measured = WrkResult & { cpuPct: number; loopPct?: number; stealPct: number };

/** wrk against one server, with the server's CPU use (and regmirror's event-loop thread's) over the run. */
async function measure(
  ctx: WorkloadContext,
  server: BenchServer,
  path: string,
  connections: number,
  durationSec: number,
  headers: Record<string, string> = {},
): Promise<Measured> {
  const { maxStealPct, stealTries } = ctx.params;
  let best: Measured | undefined;
  let tries = 0;
  while (tries < stealTries) {
    tries += 1;
    const m = await measureOnce(ctx, server, path, connections, durationSec, headers);
    if (best === undefined || m.stealPct < best.stealPct) best = m;
    if (m.stealPct <= maxStealPct) break;
    if (tries < stealTries) ctx.log(`  ${server.id}: ${m.stealPct.toFixed(1)} % of the CPU stolen by the host during the run; measuring again`);
  }
  const t = ctx.steal;
  t.measurements += 1;
  if (tries > 1) t.repeated += 1;
  if (best!.stealPct > maxStealPct) t.keptOver += 1;
  t.maxKeptPct = Math.max(t.maxKeptPct, best!.stealPct);
  return best!;
}

async function measureOnce(ctx: WorkloadContext, server: BenchServer, path: string, connections: number, durationSec: number, headers: Record<string, string>): Promise<Measured> {
  const loop = server.eventLoopPid;
  const steal0 = stealReading();
  const cpu0 = cpuSecondsOf(server.pids());
  const loop0 = loop === undefined ? 0 : threadCpuSeconds(loop, loop);
  const r = await wrk({ url: server.url + path, connections, durationSec, script: ctx.wrkScript, headers, ...load(ctx) });
  const cpu1 = cpuSecondsOf(server.pids());
  const loop1 = loop === undefined ? 0 : threadCpuSeconds(loop, loop);
  const stealPct = stealPctBetween(steal0, stealReading());
  return { ...r, cpuPct: ((cpu1 - cpu0) / r.durationS) * 100, ...(loop === undefined ? {} : { loopPct: ((loop1 - loop0) / r.durationS) * 100 }), stealPct };
}

/** Median of the event-loop shares, when measured. */
function loopMedian(rs: Measured[]): { loopPct?: number } {
  const xs = rs.map((r) => r.loopPct).filter((x): x is number => x !== undefined);
  return xs.length > 0 ? { loopPct: median(xs) } : {};
}

/** Fetches `path` from every server and checks status and digest (this also fills the caches). */
async function checkBlob(ctx: WorkloadContext, path: string, blob: BlobFile): Promise<void> {
  const answers = new Map<ServerId, HttpResponse['headers']>();
  for (const s of ctx.servers) {
    const res = await httpGet(s.url + path);
    if (res.status !== 200 || res.body.length !== blob.size || digestOf(res.body) !== blob.digest) {
      throw new Error(`${s.id}: GET ${path} answered ${res.status} with ${res.body.length} bytes (${digestOf(res.body)}), expected ${blob.digest}`);
    }
    answers.set(s.id, res.headers);
  }
  await settleRelay(ctx.relay);
  // Compared on a second GET: regmirror's first answer came from a fill, the measured ones from its cache.
  const rm = ctx.servers.find((s) => s.id === 'regmirror');
  if (rm) answers.set('regmirror', (await httpGet(rm.url + path)).headers);
  compareFloorHeaders(ctx, path, answers);
}

/** The servers in the order round `round` (from 0) measures them: as started, reversed every other round. */
export function roundOrder<T>(servers: readonly T[], round: number): readonly T[] {
  return round % 2 === 0 ? servers : [...servers].reverse();
}

/**
 * Before round `round` (from 0): every {@link BenchParams.restartEvery} rounds, each restartable server is
 * started afresh, pinned like the others and warmed up again with `warmUp` before anything is measured.
 */
async function freshProcesses(ctx: WorkloadContext, round: number, warmUp: (s: BenchServer) => Promise<unknown>): Promise<void> {
  const every = ctx.params.restartEvery ?? 0;
  if (every <= 0 || round === 0 || round % every !== 0) return;
  const restarted: string[] = [];
  for (const s of ctx.servers) {
    if (!s.restart) continue;
    await s.restart();
    ctx.pinServer?.(s.pids());
    await warmUp(s);
    restarted.push(s.id);
  }
  await settleRelay(ctx.relay);
  if (restarted.length > 0) ctx.log(`round ${round + 1}: fresh processes of ${restarted.join(', ')}, warmed up`);
}

/** Workload 1 (and 6): warm 64 MiB blob throughput at each concurrency; peak RSS meanwhile. */
export async function warmBig(ctx: WorkloadContext): Promise<{ rows: ThroughputRow[]; rss: RssRow[] }> {
  const { params, warm } = ctx;
  const path = `/v2/${warm.repo}/blobs/${warm.big.digest}`;
  const samplers = new Map(ctx.servers.map((s) => [s.id, new MemSampler(() => s.pids()).start()]));
  try {
    ctx.log('w1: filling and checking the 64 MiB blob on every server');
    await checkBlob(ctx, path, warm.big);
    for (const m of samplers.values()) m.mark('fill');
    const warmUp = (s: BenchServer) => wrk({ url: s.url + path, connections: 4, durationSec: params.warmupSec, script: ctx.wrkScript, ...load(ctx) });
    for (const s of ctx.servers) await warmUp(s);
    await settleRelay(ctx.relay);
    for (const m of samplers.values()) m.mark('warm-up');
    const runs = new Map<string, Measured[]>();
    for (let round = 0; round < params.rounds; round++) {
      await freshProcesses(ctx, round, warmUp);
      for (const c of params.concurrencies) {
        for (const s of roundOrder(ctx.servers, round)) {
          const r = await measure(ctx, s, path, c, params.durationSec);
          samplers.get(s.id)?.mark(`round ${round + 1} c=${c}`);
          ctx.log(`w1: round ${round + 1} c=${c} ${s.id}: ${(r.bytesPerSec / 1e9).toFixed(2)} GB/s, cpu ${r.cpuPct.toFixed(0)}%${r.loopPct === undefined ? '' : ` (event loop ${r.loopPct.toFixed(0)}%)`}`);
          const key = `${s.id}/${c}`;
          runs.set(key, [...(runs.get(key) ?? []), r]);
        }
      }
    }
    const rows: ThroughputRow[] = [];
    for (const c of params.concurrencies) {
      for (const s of ctx.servers) {
        const rs = runs.get(`${s.id}/${c}`) ?? [];
        rows.push({
          server: s.id,
          concurrency: c,
          gbps: median(rs.map((r) => r.bytesPerSec / 1e9)),
          rounds: rs.map((r) => r.bytesPerSec / 1e9),
          cpuPct: median(rs.map((r) => r.cpuPct)),
          ...loopMedian(rs),
          errors: rs.reduce((n, r) => n + r.errors, 0),
        });
      }
    }
    const rss: RssRow[] = ctx.servers.map((s) => {
      const sampler = samplers.get(s.id);
      const peak = sampler?.stop();
      return {
        server: s.id,
        peakRssMiB: (peak?.peakRssKiB ?? 0) / 1024,
        hwmMiB: (peak?.hwmKiB ?? 0) / 1024,
        phases: (sampler?.phases() ?? []).map((p) => ({ phase: p.phase, peakRssMiB: p.peakRssKiB / 1024 })),
      };
    });
    return { rows, rss };
  } finally {
    for (const m of samplers.values()) m.stop();
  }
}

/** Requests/s workload over every server for one path (workloads 2 and 3). */
async function rpsWorkload(ctx: WorkloadContext, target: RpsRow['target'], path: string, headers: Record<string, string>): Promise<RpsRow[]> {
  const { params } = ctx;
  const warmUp = (s: BenchServer) => wrk({ url: s.url + path, connections: params.rpsConnections, durationSec: params.warmupSec, script: ctx.wrkScript, headers, ...load(ctx) });
  for (const s of ctx.servers) await warmUp(s);
  await settleRelay(ctx.relay);
  const runs = new Map<ServerId, Measured[]>();
  for (let round = 0; round < params.rounds; round++) {
    await freshProcesses(ctx, round, warmUp);
    for (const s of roundOrder(ctx.servers, round)) {
      const r = await measure(ctx, s, path, params.rpsConnections, params.durationSec, headers);
      ctx.log(`${target}: round ${round + 1} ${s.id}: ${r.rps.toFixed(0)} req/s, p99 ${r.p99Ms.toFixed(2)} ms, cpu ${r.cpuPct.toFixed(0)}%${r.loopPct === undefined ? '' : ` (event loop ${r.loopPct.toFixed(0)}%)`}`);
      runs.set(s.id, [...(runs.get(s.id) ?? []), r]);
    }
  }
  return ctx.servers.map((s) => {
    const rs = runs.get(s.id) ?? [];
    return {
      server: s.id,
      target,
      rps: median(rs.map((r) => r.rps)),
      p50Ms: median(rs.map((r) => r.p50Ms)),
      p99Ms: median(rs.map((r) => r.p99Ms)),
      roundsRps: rs.map((r) => r.rps),
      roundsP99Ms: rs.map((r) => r.p99Ms),
      cpuPct: median(rs.map((r) => r.cpuPct)),
      ...loopMedian(rs),
      errors: rs.reduce((n, r) => n + r.errors, 0),
    };
  });
}

/** Workload 2: warm 1 MiB blob, requests/s and p99. */
export async function warmSmall(ctx: WorkloadContext): Promise<RpsRow[]> {
  const path = `/v2/${ctx.warm.repo}/blobs/${ctx.warm.small.digest}`;
  ctx.log('w2: checking the 1 MiB blob on every server');
  await checkBlob(ctx, path, ctx.warm.small);
  return rpsWorkload(ctx, 'blob-1MiB', path, {});
}

/** Workload 3: warm manifest by tag (inside the tag TTL) and by digest. */
export async function warmManifests(ctx: WorkloadContext): Promise<RpsRow[]> {
  const m = ctx.warm.manifests[0];
  if (!m) throw new Error('w3: no manifest seeded');
  const headers = { Accept: MANIFEST_ACCEPT };
  const rows: RpsRow[] = [];
  for (const [target, ref] of [
    ['manifest-tag', m.tag],
    ['manifest-digest', m.digest],
  ] as const) {
    const path = `/v2/${m.repo}/manifests/${ref}`;
    const answers = new Map<ServerId, HttpResponse['headers']>();
    for (const s of ctx.servers) {
      const res = await httpGet(s.url + path, headers);
      if (res.status !== 200 || !res.body.equals(m.body)) {
        throw new Error(`${s.id}: GET ${path} answered ${res.status} with ${res.body.length} bytes, not the manifest (${m.body.length} bytes)`);
      }
      answers.set(s.id, res.headers);
    }
    compareFloorHeaders(ctx, path, answers);
    rows.push(...(await rpsWorkload(ctx, target, path, headers)));
  }
  return rows;
}

/** Workload 4: one cold client, then N cold clients at once, on fresh blobs behind the throttled upstream. */
export async function coldFanOut(ctx: WorkloadContext, blobs: BlobFile[], repo: string): Promise<ColdRow[]> {
  const { params, relay } = ctx;
  const servers = proxies(ctx);
  const rounds = new Map<ServerId, ColdRound[]>();
  const take = (): BlobFile => {
    const b = blobs.shift();
    if (!b) throw new Error('w4: ran out of cold blobs');
    return b;
  };
  await settleRelay(relay);
  for (let round = 0; round < params.rounds; round++) {
    for (const s of servers) {
      const one = take();
      relay.reset();
      const single = await fanOut(ctx.clientJs, { url: `${s.url}/v2/${repo}/blobs/${one.digest}`, clients: 1, hash: true });
      await settleRelay(relay);
      const c1 = single.clients[0];
      const singleOk = c1 !== undefined && c1.status === 200 && c1.digest === one.digest;
      const up1 = upstreamCount(relay, one.digest);

      const many = take();
      relay.reset();
      const fan = await fanOut(ctx.clientJs, { url: `${s.url}/v2/${repo}/blobs/${many.digest}`, clients: params.fanOutClients });
      await settleRelay(relay);
      const upN = upstreamCount(relay, many.digest);
      const ok = fan.clients.filter((c) => c.status === 200 && c.bytes === many.size && c.error === undefined).length;
      const r: ColdRound = {
        single: { ...up1, wallS: single.wallMs / 1000, ok: singleOk },
        fan: {
          ...upN,
          wallS: fan.wallMs / 1000,
          ok,
          firstByteS: Math.min(...fan.clients.map((c) => c.headersMs)) / 1000,
          medianFirstByteS: median(fan.clients.map((c) => c.headersMs)) / 1000,
        },
      };
      ctx.log(
        `w4: round ${round + 1} ${s.id}: 1 client ${r.single.wallS.toFixed(2)} s (${up1.gets} GET, ${(up1.bytes / MiB).toFixed(0)} MiB up); ` +
          `${params.fanOutClients} clients ${r.fan.wallS.toFixed(2)} s (longest upstream GET ${upN.getS.toFixed(2)} s; ${upN.gets} GET, ${upN.heads} HEAD, ${(upN.bytes / MiB).toFixed(0)} MiB up, ${ok} ok)`,
      );
      if (!singleOk) ctx.note(`${SERVER_LABEL[s.id]}: the single cold client got status ${c1?.status ?? 0} / ${c1?.digest ?? 'no body'} in round ${round + 1}`);
      rounds.set(s.id, [...(rounds.get(s.id) ?? []), r]);
    }
  }
  return servers.map((s) => {
    const rs = rounds.get(s.id) ?? [];
    const oneClientS = median(rs.map((r) => r.single.wallS));
    const fanOutS = median(rs.map((r) => r.fan.wallS));
    return {
      server: s.id,
      clients: params.fanOutClients,
      upstreamGets: median(rs.map((r) => r.fan.gets)),
      upstreamHeads: median(rs.map((r) => r.fan.heads)),
      upstreamBytes: median(rs.map((r) => r.fan.bytes)),
      oneClientS,
      fanOutS,
      fanOutUpstreamS: median(rs.map((r) => r.fan.getS)),
      ratio: median(rs.map((r) => r.fan.wallS / r.single.wallS)),
      clientsOk: Math.min(...rs.map((r) => r.fan.ok)),
      rounds: rs,
    };
  });
}

/** The ranges of workload 5: `count` ranges of `size` bytes spread evenly over the blob. */
export function spreadRanges(blobSize: number, count: number, size: number): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < count; i++) {
    const start = Math.floor(((i + 0.5) * blobSize) / count / 4096) * 4096;
    out.push([start, start + size - 1]);
  }
  return out;
}

/** Parts of a multipart/byteranges body: `[start, end, data]`. */
export function parseByteranges(body: Buffer, contentType: string): [number, number, Buffer][] | undefined {
  const m = /boundary="?([^";]+)"?/i.exec(contentType);
  if (!m || m[1] === undefined) return undefined;
  const delim = Buffer.from(`--${m[1]}`);
  const parts: [number, number, Buffer][] = [];
  let pos = body.indexOf(delim);
  while (pos >= 0) {
    const after = pos + delim.length;
    if (body.subarray(after, after + 2).toString() === '--') return parts;
    const headEnd = body.indexOf('\r\n\r\n', after);
    if (headEnd < 0) return undefined;
    const head = body.subarray(after, headEnd).toString('latin1');
    const cr = /content-range:\s*bytes (\d+)-(\d+)\/\d+/i.exec(head);
    if (!cr) return undefined;
    const start = Number(cr[1]);
    const end = Number(cr[2]);
    const dataStart = headEnd + 4;
    const data = body.subarray(dataStart, dataStart + (end - start + 1));
    parts.push([start, end, data]);
    pos = body.indexOf(delim, dataStart + data.length);
  }
  return undefined;
}

/** Checks a multi-range answer against the blob file. */
async function checkRangeAnswer(blob: BlobFile, ranges: [number, number][], status: number, contentType: string, body: Buffer): Promise<{ correct: boolean; detail: string }> {
  if (status === 200) {
    return { correct: false, detail: `200 with ${body.length === blob.size ? 'the whole blob' : `${body.length} bytes`}` };
  }
  if (status !== 206) return { correct: false, detail: `status ${status}` };
  const parts = parseByteranges(body, contentType);
  if (!parts) return { correct: false, detail: `206 ${contentType}, not a parsable multipart/byteranges body` };
  const fh = await open(blob.path, 'r');
  try {
    for (const [i, [start, end]] of ranges.entries()) {
      const part = parts[i];
      if (!part || part[0] !== start || part[1] !== end) return { correct: false, detail: `206 multipart: part ${i} is not bytes ${start}-${end}` };
      const want = Buffer.alloc(end - start + 1);
      await fh.read(want, 0, want.length, start);
      if (!want.equals(part[2])) return { correct: false, detail: `206 multipart: part ${i} has wrong bytes` };
    }
  } finally {
    await fh.close();
  }
  return { correct: parts.length === ranges.length, detail: `206 multipart, ${parts.length} parts` };
}

/** Options of workload 5 that depend on the run. */
export interface RangeWorkloadOptions {
  /** Which proxy kinds to run (those installed). */
  kinds: ServerId[];
}

/**
 * Workload 5: a multi-range GET on an uncached 64 MiB blob behind an S3-backed upstream; bytes the
 * S3 server sent. Starts its own S3 upstream and its own instance of each proxy.
 */
export async function multiRange(ctx: WorkloadContext, opts: RangeWorkloadOptions): Promise<RangeRow[]> {
  const { params } = ctx;
  const repo = 'bench/ranged';
  ctx.log(`w5: seeding ${params.rounds} blob(s) of ${params.bigSize / MiB} MiB into an S3-backed upstream`);
  const src = await startRegistry({ name: 's3-source' });
  const dir = await tmpDir('range-blobs-');
  const blobs = await seedBlobs(src.url, repo, dir, params.bigSize, params.rounds, true);
  let s3: S3Registry | undefined;
  const started: BenchServer[] = [];
  try {
    s3 = await startS3Registry({ from: src, name: 's3-upstream' });
    await src.stop();
    const upstream = s3.registry.url;
    for (const kind of opts.kinds) {
      if (kind === 'regmirror') started.push(await startRegmirror({ upstreamUrl: upstream, mainJs: ctx.mainJs, name: 'regmirror-s3' }));
      else if (kind === 'regmirror-before' && ctx.beforeMainJs) started.push(await startRegmirror({ upstreamUrl: upstream, mainJs: ctx.beforeMainJs, name: 'regmirror-before-s3', id: 'regmirror-before' }));
      else if (kind === 'distribution-proxy') started.push(await startDistributionProxy(upstream, 'distribution-proxy-s3'));
      else if (kind === 'nginx-cache') started.push(await startNginxCache({ originUrl: upstream, workers: params.nginxWorkers, name: 'nginx-cache-s3' }));
    }
    const relay = s3.s3.relay;
    const ranges = spreadRanges(params.bigSize, params.rangeCount, params.rangeSize);
    const header = `bytes=${ranges.map(([a, b]) => `${a}-${b}`).join(',')}`;
    const requested = ranges.reduce((n, [a, b]) => n + (b - a + 1), 0);
    const rounds = new Map<ServerId, RangeRound[]>();
    for (const blob of blobs) {
      for (const s of started) {
        await settleRelay(relay);
        s3.s3.reset();
        const res = await httpGet(`${s.url}/v2/${repo}/blobs/${blob.digest}`, { Range: header });
        await settleRelay(relay);
        const ct = String(res.headers['content-type'] ?? '');
        const check = await checkRangeAnswer(blob, ranges, res.status, ct, res.body);
        const r: RangeRound = {
          s3BlobBytes: s3.s3.blobBytes(),
          s3TotalBytes: s3.s3.bytesSent(),
          s3BlobRequests: s3.s3.presignedRequests().length,
          status: res.status,
          bodyBytes: res.body.length,
          ...check,
        };
        ctx.log(`w5: ${s.id}: ${r.s3BlobBytes} blob bytes from S3 in ${r.s3BlobRequests} request(s); client got ${r.detail}`);
        rounds.set(s.id, [...(rounds.get(s.id) ?? []), r]);
      }
    }
    return started.map((s) => {
      const rs = rounds.get(s.id) ?? [];
      return {
        server: s.id,
        requestedBytes: requested,
        s3BlobBytes: median(rs.map((r) => r.s3BlobBytes)),
        s3TotalBytes: median(rs.map((r) => r.s3TotalBytes)),
        rounds: rs,
      };
    });
  } finally {
    for (const s of started.reverse()) await s.stop();
    await s3?.stop();
    await src.stop();
  }
}
