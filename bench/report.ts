/**
 * The markdown report: machine, targets met by regmirror, one table per workload with ratios
 * against nginx static, the node floor and regmirror (and regmirror before, when it ran), notes and
 * timings.
 */
import { SERVER_LABEL, type ServerId } from './servers.js';
import { KiB, median, medianInterval, MiB, ratio } from './stats.js';
import type { BenchResults, FanOutFigures, RpsRow, ThroughputRow } from './types.js';
import { RECONCILE_WORK } from './index/work.js';

/** One target (of issue 5 or 8) and whether regmirror meets it. */
export interface TargetCheck {
  /** The issue that set it. */
  issue: number;
  target: string;
  /** What was measured, in words. */
  figure: string;
  /** undefined when it could not be judged (a peer or workload missing). */
  met: boolean | undefined;
}

/** `n` with `digits` decimals, or an en dash when missing. */
export function num(n: number | undefined, digits = 2): string {
  return n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(digits);
}

/** Fills by origin, `upstream 1, peer 2` (workload 7), or an en dash when not measured. */
export function formatOrigins(o: Record<string, number> | undefined): string {
  return o === undefined ? '–' : Object.entries(o).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
}

/** `1.23×`, or an en dash when missing. */
export function times(r: number): string {
  return Number.isFinite(r) ? `${r.toFixed(2)}×` : '–';
}

function label(id: ServerId): string {
  return SERVER_LABEL[id];
}

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

function tput(res: BenchResults, server: ServerId, c: number): number | undefined {
  return res.throughput.find((r) => r.server === server && r.concurrency === c)?.gbps;
}

function rpsOf(res: BenchResults, server: ServerId, target: RpsRow['target']): RpsRow | undefined {
  return res.rps.find((r) => r.server === server && r.target === target);
}

/**
 * `a` against `b` as the median of their per-round ratios: each round measures every server back to back,
 * so a slow spell of the machine (a neighbour on the host) falls on both sides of one ratio instead of on
 * one side of a ratio of medians. Falls back to the ratio of the medians when the rounds do not pair up.
 */
export function pairedRatio(a: { median?: number; rounds?: number[] }, b: { median?: number; rounds?: number[] }): number {
  const rs = roundRatios(a, b);
  return rs.length > 0 ? median(rs) : ratio(a.median, b.median);
}

/** `a`'s rounds over `b`'s, round by round; empty when the rounds do not pair up. */
export function roundRatios(a: { rounds?: number[] }, b: { rounds?: number[] }): number[] {
  const ra = a.rounds ?? [];
  const rb = b.rounds ?? [];
  return ra.length > 0 && ra.length === rb.length ? ra.map((x, i) => ratio(x, rb[i])) : [];
}

/** A paired comparison: the median of the per-round ratios and its 95 % interval (when there are rounds enough). */
export interface PairedFigure {
  ratio: number;
  interval?: [number, number];
}

/**
 * Whether `f` shows regmirror measurably worse than the other side: the whole 95 % interval of the median
 * per-round ratio lies below 1. Without an interval (fewer than 6 rounds) the point figure decides.
 */
export function measurablyWorse(f: PairedFigure): boolean {
  return f.interval !== undefined ? f.interval[1] < 1 : f.ratio < 1;
}

function paired(a: { median?: number; rounds?: number[] }, b: { median?: number; rounds?: number[] }): PairedFigure {
  const interval = medianInterval(roundRatios(a, b));
  return { ratio: pairedRatio(a, b), ...(interval !== undefined ? { interval } : {}) };
}

/** The paired comparison of two servers' req/s on one target. */
function rpsFigure(res: BenchResults, a: ServerId, b: ServerId, target: RpsRow['target']): PairedFigure {
  const ra = rpsOf(res, a, target);
  const rb = rpsOf(res, b, target);
  return paired({ median: ra?.rps, rounds: ra?.roundsRps }, { median: rb?.rps, rounds: rb?.roundsRps });
}

/** The paired ratio of two servers' req/s on one target. */
function rpsPaired(res: BenchResults, a: ServerId, b: ServerId, target: RpsRow['target']): number {
  return rpsFigure(res, a, b, target).ratio;
}

/** The paired comparison of two servers' 64 MiB throughput at one concurrency. */
function tputFigure(res: BenchResults, a: ServerId, b: ServerId, c: number): PairedFigure {
  const row = (id: ServerId): ThroughputRow | undefined => res.throughput.find((r) => r.server === id && r.concurrency === c);
  const ra = row(a);
  const rb = row(b);
  return paired({ median: ra?.gbps, rounds: ra?.rounds }, { median: rb?.gbps, rounds: rb?.rounds });
}

/** `0.99× (0.96–1.02)`: a paired figure with its 95 % interval when it has one. */
function figureText(f: PairedFigure): string {
  return f.interval !== undefined ? `${times(f.ratio)} (${num(f.interval[0])}–${num(f.interval[1])})` : times(f.ratio);
}

/** `regmirror meets 6 of 8 targets; misses: …`. */
export function targetSummary(checks: TargetCheck[]): string {
  const missed = checks.filter((c) => c.met === false);
  return `regmirror meets ${checks.filter((c) => c.met === true).length} of ${checks.length} targets` + (missed.length > 0 ? `; misses: ${missed.map((c) => c.target).join('; ')}` : '');
}

/** Judges regmirror against the issue's targets. */
export function checkTargets(res: BenchResults): TargetCheck[] {
  const out: TargetCheck[] = [];
  const cs = res.params.concurrencies;
  if (res.throughput.length > 0) {
    const rs = cs.map((c) => ratio(tput(res, 'regmirror', c), tput(res, 'nginx-static', c)));
    out.push({
      issue: 5,
      target: 'warm 64 MiB ≥ 0.9× nginx static',
      figure: cs.map((c, i) => `c=${c}: ${times(rs[i] ?? Number.NaN)}`).join(', '),
      met: rs.every(Number.isFinite) ? rs.every((r) => r >= 0.9) : undefined,
    });
  }
  const small = ratio(rpsOf(res, 'regmirror', 'blob-1MiB')?.rps, rpsOf(res, 'nginx-static', 'blob-1MiB')?.rps);
  if (res.rps.some((r) => r.target === 'blob-1MiB')) {
    out.push({ issue: 5, target: 'warm 1 MiB ≥ 0.8× nginx static (req/s)', figure: times(small), met: Number.isFinite(small) ? small >= 0.8 : undefined });
  }
  if (res.rps.some((r) => r.target !== 'blob-1MiB')) {
    const tag = ratio(rpsOf(res, 'regmirror', 'manifest-tag')?.rps, rpsOf(res, 'nginx-cache', 'manifest-tag')?.rps);
    const dig = ratio(rpsOf(res, 'regmirror', 'manifest-digest')?.rps, rpsOf(res, 'nginx-cache', 'manifest-digest')?.rps);
    out.push({
      issue: 5,
      target: 'warm manifests ≥ 0.5× nginx proxy_cache (req/s)',
      figure: `by tag ${times(tag)}, by digest ${times(dig)}`,
      met: Number.isFinite(tag) && Number.isFinite(dig) ? tag >= 0.5 && dig >= 0.5 : undefined,
    });
  }
  const cold = res.cold.find((r) => r.server === 'regmirror');
  if (cold) {
    out.push({
      issue: 5,
      target: `cold fan-out (${cold.clients} clients): 1 upstream GET and ≤ 1.2× one cold client`,
      figure: `${num(cold.upstreamGets, 0)} GET, ${times(cold.ratio)} (${num(cold.fanOutS)} s vs ${num(cold.oneClientS)} s), ${cold.clientsOk}/${cold.clients} clients ok`,
      met: cold.upstreamGets === 1 && cold.ratio <= 1.2 && cold.clientsOk === cold.clients,
    });
  }
  const range = res.range.find((r) => r.server === 'regmirror');
  if (range) {
    const allowed = range.requestedBytes + 64 * KiB;
    const correct = range.rounds.every((r) => r.correct);
    out.push({
      issue: 5,
      target: 'multi-range bytes from S3 ≤ requested + 64 KiB',
      figure: `${range.s3BlobBytes} B for ${range.requestedBytes} B requested (limit ${allowed} B)${correct ? '' : '; answer NOT correct'}`,
      met: range.s3BlobBytes <= allowed && correct,
    });
  }
  const rss = res.rss.find((r) => r.server === 'regmirror');
  if (rss) {
    out.push({ issue: 5, target: 'RSS ≤ 150 MiB during workload 1', figure: `peak ${num(rss.peakRssMiB, 1)} MiB (VmHWM ${num(rss.hwmMiB, 1)} MiB)`, met: rss.peakRssMiB <= 150 });
  }
  const cluster = res.cluster?.find((r) => r.system === 'regmirror-cluster');
  if (cluster) {
    const clients = cluster.clients;
    out.push({
      issue: 11,
      target: `cluster fan-out (${cluster.members} mirrors × ${cluster.clientsPerMember} clients): 1 upstream GET, every body verified`,
      figure: `${num(cluster.upstreamGets, 0)} GET, ${cluster.clientsOk}/${clients} clients ok, ${times(cluster.ratio)} one cold client (${num(cluster.fanOutS)} s vs ${num(cluster.oneClientS)} s)`,
      met: cluster.upstreamGets === 1 && cluster.clientsOk === clients,
    });
  }
  if (res.startup && res.startup.length > 0) {
    // Judged on the big indexes; the empty data dir is shown as what node and regmirror cost alone.
    const rows = res.startup;
    const big = rows.filter((r) => r.entries > 0);
    out.push({
      issue: 10,
      target: `start-up with a big index: listening within ${STARTUP_BUDGET_MS / 1000} s of the spawn`,
      figure: rows.map((r) => `${r.entries === 0 ? 'empty data dir' : `${r.entries} entries`}: ${num(r.listenMs, 0)} ms (CPU ${num(r.cpuListenMs, 0)} ms)`).join(', '),
      met: judged(big.map((r) => r.listenMs), (ms) => ms <= STARTUP_BUDGET_MS),
    });
  }
  out.push(...floorTargets(res));
  return out;
}

/** Issue 10's budget from process start to listening, however big the index. */
const STARTUP_BUDGET_MS = 2000;

/** Whether every value passes `ok`; undefined when a value is missing (NaN) or there is none. */
function judged(values: number[], ok: (v: number) => boolean): boolean | undefined {
  return values.length > 0 && values.every(Number.isFinite) ? values.every(ok) : undefined;
}

/** Issue 8's targets: regmirror against the node floor, and against regmirror before the change, as paired ratios ({@link pairedRatio}). */
function floorTargets(res: BenchResults): TargetCheck[] {
  const out: TargetCheck[] = [];
  const cs = res.params.concurrencies;
  const hasBefore = res.servers.includes('regmirror-before');
  const hasManifests = res.rps.some((r) => r.target !== 'blob-1MiB');
  if (hasManifests) {
    // Judged on the median per-round ratio; the 95 % interval, when there is one, is shown beside it.
    const tag = rpsFigure(res, 'regmirror', 'node-floor', 'manifest-tag');
    const dig = rpsFigure(res, 'regmirror', 'node-floor', 'manifest-digest');
    out.push({ issue: 8, target: 'warm manifests ≥ 0.8× node floor (req/s, by tag and by digest)', figure: `by tag ${figureText(tag)}, by digest ${figureText(dig)}`, met: judged([tag.ratio, dig.ratio], (r) => r >= 0.8) });
  }
  if (res.throughput.length > 0) {
    const fs = cs.map((c) => tputFigure(res, 'regmirror', 'node-floor', c));
    out.push({
      issue: 8,
      target: 'warm 64 MiB ≥ 0.95× node floor at every concurrency',
      figure: cs.map((c, i) => `c=${c}: ${fs[i] ? figureText(fs[i]) : '–'}`).join(', '),
      met: judged(fs.map((f) => f.ratio), (r) => r >= 0.95),
    });
  }
  if (res.rps.some((r) => r.target === 'blob-1MiB')) {
    const rm = rpsOf(res, 'regmirror', 'blob-1MiB')?.rps;
    const vsBefore = rpsPaired(res, 'regmirror', 'regmirror-before', 'blob-1MiB');
    const vsFloor = times(rpsPaired(res, 'regmirror', 'node-floor', 'blob-1MiB'));
    out.push({
      issue: 8,
      target: 'warm 1 MiB not below regmirror before the change (req/s)',
      figure: hasBefore
        ? `${times(vsBefore)} regmirror (before) (${num(rm, 0)} vs ${num(rpsOf(res, 'regmirror-before', 'blob-1MiB')?.rps, 0)} req/s); ${vsFloor} node floor`
        : `no regmirror (before) in this run (give --regmirror-main); ${num(rm, 0)} req/s, ${vsFloor} node floor`,
      met: hasBefore ? judged([vsBefore], (r) => r >= 1) : undefined,
    });
  }
  if (hasBefore && (res.throughput.length > 0 || res.rps.length > 0)) {
    const figures: [string, PairedFigure][] = [
      ...cs.map((c): [string, PairedFigure] => [`64 MiB c=${c}`, tputFigure(res, 'regmirror', 'regmirror-before', c)]),
      ...(['blob-1MiB', 'manifest-tag', 'manifest-digest'] as const).map((t): [string, PairedFigure] => [
        t === 'blob-1MiB' ? '1 MiB' : t.replace('manifest-', 'manifest by '),
        rpsFigure(res, 'regmirror', 'regmirror-before', t),
      ]),
    ].filter(([, f]) => Number.isFinite(f.ratio));
    const withIntervals = figures.some(([, f]) => f.interval !== undefined);
    out.push({
      issue: 8,
      target: withIntervals
        ? 'no warm figure worse than regmirror (before), same sitting (worse: the 95 % interval of the median per-round ratio, in parentheses, lies below 1)'
        : 'no warm figure worse than regmirror (before), same sitting',
      figure: figures.map(([k, f]) => `${k} ${figureText(f)}`).join(', '),
      met: figures.length > 0 ? figures.every(([, f]) => !measurablyWorse(f)) : undefined,
    });
  }
  return out;
}

const CPU_HEADER = 'server CPU % (event loop)';

/** `132 (95)`: the server's CPU and, for the Node servers, the event-loop thread's, % of one core. */
function cpuCell(r: { cpuPct: number; loopPct?: number } | undefined): string {
  if (!r) return '–';
  return r.loopPct === undefined ? num(r.cpuPct, 0) : `${num(r.cpuPct, 0)} (${num(r.loopPct, 0)})`;
}

/** The servers ratios are given against, in column order: those that ran. */
function baselines(res: BenchResults, ids: ServerId[]): ServerId[] {
  return ids.filter((id) => res.servers.includes(id));
}

function throughputSection(res: BenchResults): string {
  const cs = res.params.concurrencies;
  const bases = baselines(res, ['nginx-static', 'node-floor', 'regmirror', 'regmirror-before']);
  const rows = res.servers.map((s) => {
    const g = cs.map((c) => tput(res, s, c));
    const vs = bases.map((b) => cs.map((c) => times(ratio(tput(res, s, c), tput(res, b, c)))).join(' / '));
    const cpu = cs.map((c) => cpuCell(res.throughput.find((r: ThroughputRow) => r.server === s && r.concurrency === c)));
    const errors = res.throughput.filter((r) => r.server === s).reduce((n, r) => n + r.errors, 0);
    return [label(s), ...g.map((x) => num(x)), ...vs, cpu.join(' / '), String(errors)];
  });
  return table(['server', ...cs.map((c) => `GB/s c=${c}`), ...bases.map((b) => `× ${label(b)}`), CPU_HEADER, 'errors'], rows);
}

function rpsSection(res: BenchResults, targets: RpsRow['target'][]): string {
  const bases = baselines(res, ['nginx-static', 'node-floor', ...(targets[0] === 'blob-1MiB' ? [] : (['nginx-cache'] as const)), 'regmirror', 'regmirror-before']);
  const rows: string[][] = [];
  for (const t of targets) {
    for (const s of res.servers) {
      const r = rpsOf(res, s, t);
      if (!r) continue;
      const base = (id: ServerId): string => times(ratio(r.rps, rpsOf(res, id, t)?.rps));
      rows.push([label(s), t.replace('manifest-', 'by '), num(r.rps, 0), num(r.p50Ms), num(r.p99Ms), ...bases.map(base), cpuCell(r), String(r.errors)]);
    }
  }
  const header = ['server', 'what', 'req/s', 'p50 ms', 'p99 ms', ...bases.map((b) => `× ${label(b)}`), CPU_HEADER, 'errors'];
  return table(header, rows);
}

/** The cells workloads 4 and 7 share: upstream requests and bytes, wall times, and the ratios. */
function fanOutCells(r: FanOutFigures, regmirror: FanOutFigures | undefined): string[] {
  return [
    num(r.upstreamGets, 0),
    num(r.upstreamHeads, 0),
    num(r.upstreamBytes / MiB, 0),
    num(r.oneClientS),
    num(r.fanOutS),
    num(r.fanOutUpstreamS),
    times(r.ratio),
    times(ratio(r.fanOutS, regmirror?.fanOutS)),
  ];
}

function coldSection(res: BenchResults): string {
  const rm = res.cold.find((r) => r.server === 'regmirror');
  const rows = res.cold.map((r) => [
    label(r.server),
    ...fanOutCells(r, rm),
    `${num(median(r.rounds.map((x) => x.fan.firstByteS)))} / ${num(median(r.rounds.map((x) => x.fan.medianFirstByteS)))}`,
    `${r.clientsOk}/${r.clients}`,
  ]);
  return table(
    ['server', 'upstream GETs', 'upstream HEADs', 'upstream MiB', '1 client s', `${res.params.fanOutClients} clients s`, 'longest upstream GET s', `${res.params.fanOutClients} vs 1`, 'wall × regmirror', 'headers s (first / median client)', 'clients ok'],
    rows,
  );
}

function rangeSection(res: BenchResults): string {
  const rm = res.range.find((r) => r.server === 'regmirror');
  const rows = res.range.map((r) => [
    label(r.server),
    String(r.requestedBytes),
    String(r.s3BlobBytes),
    num(r.s3BlobBytes / MiB),
    String(r.s3BlobBytes - r.requestedBytes),
    times(ratio(r.s3BlobBytes, rm?.s3BlobBytes)),
    [...new Set(r.rounds.map((x) => x.detail))].join('; '),
  ]);
  return table(['server', 'requested B', 'S3 blob B', 'S3 MiB', 'excess B', '× regmirror', 'client got'], rows);
}

function clusterSection(res: BenchResults): string {
  const rows = res.cluster ?? [];
  const rm = rows.find((r) => r.system === 'regmirror-cluster');
  const name = (r: (typeof rows)[number]): string =>
    r.system === 'regmirror-cluster' ? `regmirror cluster (${r.members} members, Redis)` : r.system === 'regmirror-one' ? `regmirror alone (all ${r.clients} clients)` : `${label(r.server)} × ${r.members} (independent)`;
  const body = rows.map((r) => {
    const origins = r.rounds.map((x) => formatOrigins(x.fan.origins));
    return [
      name(r),
      ...fanOutCells(r, rm),
      r.rounds.map((x) => x.fan.perMemberWallS.map((v) => num(v)).join(' / ')).join('; '),
      num(r.clientCpuS),
      r.system === 'regmirror-cluster' ? [...new Set(origins)].join('; ') : '–',
      `${r.clientsOk}/${r.clients}`,
    ];
  });
  const n = res.params.clusterMirrors * res.params.clusterClientsPerMirror;
  return table(
    ['system', 'upstream GETs', 'upstream HEADs', 'upstream MiB', '1 client s', `${n} clients s`, 'longest upstream GET s', `${n} vs 1`, 'wall × regmirror cluster', 'slowest client per member s', 'client CPU s', 'fills from', 'clients ok (sha256)'],
    body,
  );
}

function startupSection(res: BenchResults): string {
  const rows = (res.startup ?? []).map((r) => [
    r.entries === 0 ? '0 (empty data dir)' : String(r.entries),
    r.entries === 0 ? '–' : num(r.indexMiB, 0),
    r.entries === 0 ? '–' : num(r.seedS, 1),
    num(r.listenMs, 0),
    num(r.readyMs, 0),
    num(r.cpuListenMs, 0),
    num(r.reconciledMs / 1000, 1),
    num(r.cpuReconciledMs / 1000, 1),
    [...new Set(r.rounds.map((x) => `${x.indexed} / ${x.dropped} / ${x.tmpRemoved}`))].join('; '),
    num(r.rssListenMiB, 0),
    `${num(r.rssReconciledMiB, 0)} (${num(r.rssFileMiB, 0)})`,
    num(r.hwmMiB, 0),
  ]);
  return table(
    ['index entries', 'index MiB', 'seed s (not timed)', 'listening ms', 'GET /v2/ answered ms', 'CPU ms to listening', 'reconciled s', 'CPU s to reconciled', 'indexed / dropped / tmp removed', 'RSS listening MiB', 'RSS reconciled MiB (file-backed)', 'VmHWM MiB'],
    rows,
  );
}

/** Peak RSS by phase of workload 1, the rounds of one concurrency merged: `fill 70 · c=1 95 · …`. */
function phaseSummary(phases: { phase: string; peakRssMiB: number }[]): string {
  const merged = new Map<string, number>();
  for (const p of phases) {
    const key = p.phase.replace(/^round \d+ /, '');
    merged.set(key, Math.max(merged.get(key) ?? 0, p.peakRssMiB));
  }
  return [...merged].map(([k, v]) => `${k} ${v.toFixed(0)}`).join(' · ');
}

function rssSection(res: BenchResults): string {
  const of = (id: ServerId): number | undefined => res.rss.find((r) => r.server === id)?.peakRssMiB;
  const rows = res.rss.map((r) => [
    label(r.server),
    num(r.peakRssMiB, 1),
    num(r.hwmMiB, 1),
    times(ratio(r.peakRssMiB, of('nginx-static'))),
    times(ratio(r.peakRssMiB, of('regmirror'))),
    phaseSummary(r.phases),
  ]);
  return table(['server', 'peak RSS MiB', 'VmHWM MiB', '× nginx static', '× regmirror', 'peak MiB by phase'], rows);
}

/** Renders the whole report. */
export function renderMarkdown(res: BenchResults): string {
  const m = res.machine;
  const p = res.params;
  const parts: string[] = [];
  parts.push(`# regmirror benchmark — ${res.startedAt} (${p.mode}, regmirror ${res.revision}${res.before ? `, regmirror (before) ${res.before.revision}` : ''})`);
  parts.push(
    [
      `Machine: ${m.cores} cores, ${m.model}, ${Math.round(m.memTotalMiB / 1024)} GiB; Linux ${m.kernel}; Node ${m.node}; ` +
        `${m.nginx}; ${m.distribution}; ${m.wrk}. Other work on the machine: ${num(m.busyStartPct, 0)} % of all cores busy before the servers started, ` +
        `${num(m.busyEndPct, 0)} % after they stopped; load average (1 min) ${num(m.loadStart)} at start, ${num(m.loadEnd)} at end.`,
      '',
      `Parameters: ${p.rounds} round(s) of ${p.durationSec} s per figure after ${p.warmupSec} s of warm-up, medians; ` +
        ((p.restartEvery ?? 0) > 0 ? `workloads 1-3 start the Node servers (regmirror, regmirror before, the node floor) afresh every ${p.restartEvery} round(s), warmed up again; ` : '') +
        `wrk with 1 thread; ${p.rpsConnections} connections for req/s; blobs of ${p.bigSize / MiB} MiB and ${p.smallSize / MiB} MiB; ` +
        `upstream throttled to ${p.throttleBytesPerSec / 1e6} MB/s for the proxies; nginx with ${p.nginxWorkers} worker(s); ` +
        `multi-range: ${p.rangeCount} × ${p.rangeSize / KiB} KiB. All servers are separate processes on 127.0.0.1; logging off ` +
        `(regmirror at warn, distribution at warn without access log, nginx without access log). ` +
        `Server CPU is summed over the server's processes and threads, % of one core; for the Node servers the event-loop (main) thread's share is in parentheses. ` +
        (p.pin !== undefined
          ? `Workloads 1-3: every server pinned to CPU ${p.pin.servers} and wrk to CPU ${p.pin.load} (taskset). `
          : 'Not pinned to CPUs. ') +
        `The targets of issue 8 are medians of per-round ratios (every round measures each server back to back, in the opposite order every other round); the tables show medians of each server's rounds.`,
      '',
      `node floor: a bare node:http server (bench/node-floor.ts) with regmirror's server options, answering the warm manifests from memory with regmirror's ` +
        `bytes and headers, and the blobs from their files with regmirror's read loop (two reused 1 MiB buffers, positional reads, each write awaited); ` +
        `nothing else per request. regmirror keeps blobs of up to 1 MiB in memory after their first hit, so in workload 2 it does not read the file the floor reads.` +
        (res.before ? ` regmirror (before): ${res.before.mainJs} (${res.before.revision}), same options, in the same rounds.` : ''),
    ].join('\n'),
  );
  if (res.skipped.length > 0) {
    parts.push(`Skipped: ${res.skipped.map((s) => `${label(s.id)} (${s.reason}${s.install !== undefined ? `; \`${s.install}\`` : ''})`).join('; ')}.`);
  }
  const checks = checkTargets(res);
  if (checks.length > 0) {
    parts.push('## Targets (regmirror)');
    parts.push(table(['issue', 'target', 'measured', 'met'], checks.map((c) => [`#${c.issue}`, c.target, c.figure, c.met === undefined ? 'n/a' : c.met ? 'yes' : '**no**'])));
  }
  if (res.throughput.length > 0) {
    parts.push('## 1. Warm 64 MiB blob: throughput');
    parts.push(throughputSection(res));
  }
  if (res.rps.some((r) => r.target === 'blob-1MiB')) {
    parts.push(`## 2. Warm 1 MiB blob: requests/s (${p.rpsConnections} connections)`);
    parts.push(rpsSection(res, ['blob-1MiB']));
  }
  if (res.rps.some((r) => r.target !== 'blob-1MiB')) {
    parts.push(`## 3. Warm manifest by tag (inside the TTL) and by digest (${p.rpsConnections} connections)`);
    parts.push(rpsSection(res, ['manifest-tag', 'manifest-digest']));
  }
  if (res.cold.length > 0) {
    parts.push(`## 4. Cold fan-out: ${p.fanOutClients} clients at once on one uncached ${p.bigSize / MiB} MiB blob, upstream at ${p.throttleBytesPerSec / 1e6} MB/s`);
    parts.push('Upstream figures are for the fan-out blob, counted at the throttling relay (a fresh blob per server and round).');
    parts.push(coldSection(res));
  }
  if (res.range.length > 0) {
    parts.push(`## 5. Multi-range GET (${p.rangeCount} × ${p.rangeSize / KiB} KiB) on an uncached ${p.bigSize / MiB} MiB blob behind an S3-backed upstream`);
    parts.push('S3 blob bytes: bodies of presigned blob GETs the S3 server sent (after the registry\'s 307), including background fetches.');
    parts.push(rangeSection(res));
  }
  if (res.rss.length > 0) {
    parts.push('## 6. Memory during workload 1 (sampled every 50 ms; nginx: master + workers)');
    parts.push(rssSection(res));
  }
  if (res.cluster && res.cluster.length > 0) {
    parts.push(
      `## 7. Cluster fan-out: ${p.clusterMirrors} mirrors × ${p.clusterClientsPerMirror} clients at once on one uncached ${p.bigSize / MiB} MiB blob, upstream at ${p.throttleBytesPerSec / 1e6} MB/s`,
    );
    parts.push(
      `regmirror: ${p.clusterMirrors} processes with \`--redis\` (one redis-server) and their own \`--advertise\` URL and data dir; distribution: ${p.clusterMirrors} proxies side by side; ` +
        `"regmirror alone": the run's standalone regmirror taking all ${p.clusterMirrors * p.clusterClientsPerMirror} clients (a reference: what one process and this machine do with that many clients). ` +
        `"1 client": one cold client on the first member, on its own fresh blob, in the same round. All ${p.clusterMirrors * p.clusterClientsPerMirror} clients run in one client process ` +
        `and sha256 every body (so does the single client). Upstream figures are for the fan-out blob, counted at the throttling relay once it settled. ` +
        `"fills from": where each member's fill read from (\`regmirror_cluster_fill_origins_total\`).`,
    );
    parts.push(clusterSection(res));
  }
  if (res.startup && res.startup.length > 0) {
    parts.push('## 8. Start-up with a big index');
    parts.push(
      `\`regmirror serve\` on a data dir with N (empty) blob files and N index entries, plus ${RECONCILE_WORK.filesWithoutEntries} files without entries, ` +
        `${RECONCILE_WORK.entriesWithoutFiles} entries without files and ${RECONCILE_WORK.tmpLeftovers} old temp files added before each start (bench/index/fixture.ts; ` +
        `the temp files are removed before listening, the rest by reconciliation); the first row is an empty data dir, for what node and regmirror cost without an index. ` +
        `Times from the spawn (node's own start-up included) to the \`regmirror listening\` log line, to the first answer of \`GET /v2/\`, and to the ` +
        `\`cache index reconciled\` line (reconciliation runs in the background after listening), and the CPU time the process had used by then ` +
        `(user + system, all threads; on a busy machine a steadier figure than the wall times). RSS when listening, and once reconciled (file-backed: LMDB's map, reclaimable). ` +
        `The fixture was just written: a warm restart (page cache not dropped).`,
    );
    parts.push(startupSection(res));
  }
  if (res.notes.length > 0) {
    parts.push('## Notes');
    parts.push(res.notes.map((n) => `- ${n}`).join('\n'));
  }
  parts.push('## Timings');
  parts.push(Object.entries(res.timings).map(([k, v]) => `${k} ${v.toFixed(1)} s`).join(', ') + '.');
  return parts.join('\n\n') + '\n';
}
