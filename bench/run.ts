/**
 * `npm run bench [-- --quick] [-- --only w1,w4]`: regmirror against distribution's proxy mode,
 * nginx proxy_cache and nginx serving the files, on loopback. See bench/README.md.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cleanupAll, tmpDir } from '../test/harness/proc.js';
import { startRegistry } from '../test/harness/registry.js';
import { startRelay } from '../test/harness/relay.js';
import { writeWrkScript } from './load.js';
import { defaultPinning, pinProcesses, unpinProcesses } from './pin.js';
import { boostPriority, machineBusyPct } from './procstat.js';
import { checkTargets, num, renderMarkdown, targetSummary } from './report.js';
import { seedBlobs, seedWarm } from './seed.js';
import {
  haveCommand,
  nginxBinary,
  startDistributionProxy,
  startNginxCache,
  startNginxStatic,
  startNodeFloor,
  startRegmirror,
  SERVER_LABEL,
  type BenchServer,
  type ServerId,
  type SkippedServer,
} from './servers.js';
import { median, MiB, KiB } from './stats.js';
import { renderSvg } from './svg.js';
import type { BenchParams, BenchResults, MachineInfo } from './types.js';
import { clusterFanOut } from './workload-cluster.js';
import { startupWorkload } from './workload-startup.js';
import { coldFanOut, multiRange, settleRelay, stealNote, warmBig, warmManifests, warmSmall, type WorkloadContext } from './workloads.js';

const USAGE = `npm run bench [-- options]

  --quick             same workloads, 1 round of 1 s each (under 2 minutes)
  --only LIST         run only these workloads, e.g. w1,w4 (w6, RSS, comes with w1; w7 cluster fan-out,
                      w8 start-up with a big index); results go to *-partial.*
  --rounds N          rounds per figure (default 3, quick 1)
  --duration S        seconds per wrk measurement (default 3, quick 1)
  --nginx-workers N   worker_processes of both nginx peers (default 1)
  --startup-entries L index sizes of workload 8 (default 100000,1000000; quick 100000)
  --wait-idle         first wait (up to 5 minutes) until other work uses < 10 % of the machine
  --regmirror-main P  also run regmirror from another build (P = that checkout's build/src/cli/main.js)
                      as "regmirror (before)", beside this build's regmirror: a before/after in one sitting
  --servers LIST      start only these servers (regmirror always): nginx-static, node-floor,
                      regmirror-before, distribution-proxy, nginx-cache; the others are listed as skipped
  --concurrencies L   connections of workload 1 (default 1,4,16), e.g. 1 for a long one-connection sitting
  --restart-every N   start regmirror, regmirror before and the node floor afresh every N rounds of
                      workloads 1-3, warmed up again (default 1: every round; 0: never)
  --max-steal PCT     measure a wrk run of workloads 1-3 again (3 tries in all, the least-stolen kept)
                      when the hypervisor stole more than PCT % of the CPU during it (default 5; 100: off)
  --no-pin            do not pin (default on 2+ cores: the servers on CPU 0 and wrk on CPU 1 during w1-w3)
  --profile           run regmirror with --cpu-prof; profiles go to bench/results/profiles/
  --no-write          print the report without writing bench/results/
  -h, --help
`;

const WORKLOADS = ['w1', 'w2', 'w3', 'w4', 'w5', 'w7', 'w8'] as const;
type Workload = (typeof WORKLOADS)[number];

interface Cli {
  params: BenchParams;
  only: Set<Workload>;
  partial: boolean;
  profile: boolean;
  write: boolean;
  /** Seconds to wait for an idle machine before starting (0: do not wait). */
  waitIdleSec: number;
  /** Another build's main.js, run as `regmirror-before`. */
  beforeMainJs?: string;
  /** `--servers`: the servers to start (regmirror is always among them); undefined: all. */
  servers?: Set<ServerId>;
}

function parseCli(argv: string[]): Cli | undefined {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: 'boolean' },
      only: { type: 'string' },
      rounds: { type: 'string' },
      duration: { type: 'string' },
      'nginx-workers': { type: 'string' },
      'startup-entries': { type: 'string' },
      'regmirror-main': { type: 'string' },
      profile: { type: 'boolean' },
      'no-pin': { type: 'boolean' },
      'max-steal': { type: 'string' },
      'wait-idle': { type: 'boolean' },
      servers: { type: 'string' },
      'restart-every': { type: 'string' },
      concurrencies: { type: 'string' },
      'no-write': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return undefined;
  }
  const quick = values.quick === true;
  const int = (v: string | undefined, dflt: number, what: string): number => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${what} must be a positive integer, got ${JSON.stringify(v)}`);
    return n;
  };
  const pct = (v: string | undefined, dflt: number, what: string): number => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0 || n > 100) throw new Error(`${what} must be a percentage (0–100), got ${JSON.stringify(v)}`);
    return n;
  };
  const only = new Set<Workload>();
  for (const w of (values.only ?? WORKLOADS.join(',')).split(',').map((s) => s.trim().toLowerCase())) {
    if (w === 'w6') only.add('w1');
    else if ((WORKLOADS as readonly string[]).includes(w)) only.add(w as Workload);
    else throw new Error(`unknown workload ${JSON.stringify(w)} (w1…w8)`);
  }
  let servers: Set<ServerId> | undefined;
  if (values.servers !== undefined) {
    servers = new Set<ServerId>(['regmirror']);
    for (const id of values.servers.split(',').map((v) => v.trim())) {
      if (!(id in SERVER_LABEL)) throw new Error(`unknown server ${JSON.stringify(id)} (${Object.keys(SERVER_LABEL).join(', ')})`);
      servers.add(id as ServerId);
    }
    if (servers.has('regmirror-before') && values['regmirror-main'] === undefined) throw new Error('--servers regmirror-before needs --regmirror-main');
  }
  const params: BenchParams = {
    mode: quick ? 'quick' : 'full',
    rounds: int(values.rounds, quick ? 1 : 3, '--rounds'),
    durationSec: int(values.duration, quick ? 1 : 3, '--duration'),
    warmupSec: 1,
    restartEvery: values['restart-every'] === '0' ? 0 : int(values['restart-every'], 1, '--restart-every'),
    concurrencies: (values.concurrencies ?? '1,4,16').split(',').map((v) => int(v.trim(), 0, '--concurrencies')),
    rpsConnections: 16,
    fanOutClients: 20,
    throttleBytesPerSec: 100e6,
    bigSize: 64 * MiB,
    smallSize: 1 * MiB,
    rangeCount: 4,
    rangeSize: 4 * KiB,
    nginxWorkers: int(values['nginx-workers'], 1, '--nginx-workers'),
    clusterMirrors: 3,
    clusterClientsPerMirror: 10,
    ...(values['no-pin'] === true ? {} : pinning()),
    maxStealPct: pct(values['max-steal'], 5, '--max-steal'),
    stealTries: 3,
    startupEntries: (values['startup-entries'] ?? (quick ? '100000' : '100000,1000000')).split(',').map((v) => int(v.trim(), 0, '--startup-entries')),
  };
  return {
    params,
    only,
    partial: values.only !== undefined,
    profile: values.profile === true,
    write: values['no-write'] !== true,
    waitIdleSec: values['wait-idle'] === true ? 300 : 0,
    ...(values['regmirror-main'] !== undefined ? { beforeMainJs: resolve(values['regmirror-main']) } : {}),
    ...(servers !== undefined ? { servers } : {}),
  };
}

function pinning(): Pick<BenchParams, 'pin'> {
  const pin = defaultPinning();
  return pin === undefined ? {} : { pin };
}

function firstLine(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n')[0]?.trim() ?? '';
}

function machineInfo(): MachineInfo {
  let model = cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m?.[1]) model = m[1].trim();
  } catch {
    /* keep os.cpus() */
  }
  const nginx = nginxBinary();
  return {
    cores: cpus().length,
    model,
    memTotalMiB: totalmem() / MiB,
    node: process.version,
    kernel: release(),
    wrk: firstLine('wrk', ['-v']).replace(/\s+Copyright.*$/, ''),
    nginx: nginx ? firstLine(nginx, ['-v']) : 'nginx not installed',
    distribution: firstLine('docker-registry', ['--version']).replace('github.com/docker/distribution', 'distribution'),
    loadStart: loadavg()[0] ?? Number.NaN,
    loadEnd: Number.NaN,
    busyStartPct: Number.NaN,
    busyEndPct: Number.NaN,
  };
}

/** The checkout a built `build/src/cli/main.js` belongs to (git's top level, else three levels up). */
function checkoutOf(mainJs: string): string {
  const top = spawnSync('git', ['rev-parse', '--show-toplevel'], { cwd: dirname(mainJs), encoding: 'utf8' });
  return top.status === 0 && top.stdout.trim() !== '' ? top.stdout.trim() : resolve(dirname(mainJs), '..', '..', '..');
}

/** `git rev-parse --short HEAD`, with `+dirty` when src/ differs from it. */
function revision(repoRoot: string): string {
  const head = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' });
  if (head.status !== 0) return 'unknown';
  const dirty = spawnSync('git', ['status', '--porcelain', '--', 'src'], { cwd: repoRoot, encoding: 'utf8' });
  return `${head.stdout.trim()}${dirty.stdout.trim() !== '' ? '+dirty' : ''}`;
}

function stamp(d: Date): string {
  return d.toISOString().slice(0, 16).replace(':', '-');
}

/** Runs `f`, recording its duration in `timings[name]`. */
async function timed<T>(timings: Record<string, number>, name: string, f: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await f();
  } finally {
    timings[name] = (performance.now() - t0) / 1000;
  }
}

async function main(cli: Cli): Promise<BenchResults> {
  const { params, only } = cli;
  const started = new Date();
  const benchDir = dirname(fileURLToPath(import.meta.url));
  const repoRoot = resolve(benchDir, '..', '..');
  const mainJs = join(repoRoot, 'build', 'src', 'cli', 'main.js');
  const clientJs = join(benchDir, 'client.js');
  const floorJs = join(benchDir, 'node-floor.js');
  if (!existsSync(mainJs)) throw new Error(`${mainJs} is missing: run npm run build`);
  const before = cli.beforeMainJs;
  if (before !== undefined && !existsSync(before)) throw new Error(`--regmirror-main ${before} does not exist (build that checkout: npm run build)`);
  for (const [cmd, pkg] of [
    ['docker-registry', 'docker-registry'],
    ['wrk', 'wrk'],
  ] as const) {
    if (!haveCommand(cmd)) throw new Error(`${cmd} is not installed: apt-get install -y ${pkg}`);
  }
  const t0 = performance.now();
  const log = (msg: string): void => {
    process.stderr.write(`[bench ${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`);
  };
  const machine = machineInfo();
  const skipped: SkippedServer[] = [];
  const nginxInstalled = nginxBinary() !== undefined;
  if (!nginxInstalled) {
    for (const id of ['nginx-static', 'nginx-cache'] as const) skipped.push({ id, reason: 'nginx is not installed', install: 'apt-get install -y nginx-light' });
  }
  /** Whether server `id` is started: selected by `--servers` (default: all) and installed. */
  const runs = (id: ServerId): boolean => {
    if (cli.servers !== undefined && !cli.servers.has(id)) return false;
    return !(id === 'nginx-static' || id === 'nginx-cache') || nginxInstalled;
  };
  if (cli.servers !== undefined) {
    const left = (Object.keys(SERVER_LABEL) as ServerId[]).filter((id) => !cli.servers!.has(id) && (id !== 'regmirror-before' || before !== undefined));
    for (const id of left) if (!skipped.some((s) => s.id === id)) skipped.push({ id, reason: 'left out with --servers' });
  }
  const notes: string[] = [];
  const timings: Record<string, number> = {};
  const results: BenchResults = {
    startedAt: started.toISOString().replace(/\.\d+Z$/, 'Z'),
    revision: revision(repoRoot),
    ...(before !== undefined ? { before: { mainJs: before, revision: revision(checkoutOf(before)) } } : {}),
    params,
    machine,
    servers: [],
    skipped,
    throughput: [],
    rps: [],
    cold: [],
    range: [],
    rss: [],
    ...(only.has('w7') ? { cluster: [] } : {}),
    ...(only.has('w8') ? { startup: [] } : {}),
    notes,
    timings,
  };
  if (cli.waitIdleSec > 0) {
    const until = performance.now() + cli.waitIdleSec * 1000;
    for (;;) {
      const busy = await machineBusyPct(2000);
      if (busy < 10) break;
      if (performance.now() > until) {
        log(`the machine is still ${busy.toFixed(0)} % busy after ${cli.waitIdleSec} s; starting anyway`);
        break;
      }
      log(`waiting for an idle machine (${busy.toFixed(0)} % busy)`);
    }
  }
  machine.busyStartPct = await machineBusyPct();
  log(`${params.mode} run: ${machine.cores} cores, ${machine.model}; ${machine.busyStartPct.toFixed(0)} % of the machine busy with other work`);

  const work = await tmpDir('bench-');
  const upstream = await startRegistry({ name: 'upstream' });
  const relay = await startRelay({ target: upstream.url, bytesPerSecond: params.throttleBytesPerSec, name: 'throttle' });
  if (!(boostPriority(process.pid) && boostPriority(upstream.proc.pid))) {
    notes.push('Could not raise the priority of the harness (relay) and the upstream (not root?): on a small machine the throttled upstream may lose the CPU to the servers under test.');
  }
  const proxyKinds: ServerId[] = (['regmirror-before', 'regmirror', 'distribution-proxy', 'nginx-cache'] as const).filter((id) => (id !== 'regmirror-before' || before !== undefined) && runs(id));
  const coldRepo = 'bench/cold';
  const coldCount = only.has('w4') ? params.rounds * proxyKinds.length * 2 : 0;
  const clusterRepo = 'bench/cluster';
  // Workload 7: per round, a single-client blob and a fan-out blob for each of its three systems.
  const clusterCount = only.has('w7') ? params.rounds * 6 : 0;
  const { warm, cold, clusterBlobs } = await timed(timings, 'seed', async () => {
    log(`seeding the upstream: warm blobs, manifests, ${coldCount + clusterCount} cold ${params.bigSize / MiB} MiB blob(s)`);
    const w = await seedWarm(upstream.url, work, params.bigSize, params.smallSize);
    const c = await seedBlobs(upstream.url, coldRepo, work, params.bigSize, coldCount);
    const k = await seedBlobs(upstream.url, clusterRepo, work, params.bigSize, clusterCount);
    return { warm: w, cold: c, clusterBlobs: k };
  });

  const servers: BenchServer[] = await timed(timings, 'start', async () => {
    const out: BenchServer[] = [];
    if (runs('nginx-static')) out.push(await startNginxStatic({ blobs: [warm.big, warm.small], manifests: warm.manifests, workers: params.nginxWorkers }));
    if (runs('node-floor')) {
      const floor = await startNodeFloor({
        floorJs,
        blobs: [warm.big, warm.small].map((blob) => ({ repo: warm.repo, blob })),
        manifests: warm.manifests,
        namespace: 'docker.io',
      });
      out.push(floor);
    }
    if (before !== undefined && runs('regmirror-before')) out.push(await startRegmirror({ upstreamUrl: relay.url, mainJs: before, id: 'regmirror-before' }));
    const profDir = join(repoRoot, 'bench', 'results', 'profiles');
    if (cli.profile) mkdirSync(profDir, { recursive: true });
    out.push(await startRegmirror({ upstreamUrl: relay.url, mainJs, nodeArgs: cli.profile ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [] }));
    if (runs('distribution-proxy')) out.push(await startDistributionProxy(relay.url));
    if (runs('nginx-cache')) out.push(await startNginxCache({ originUrl: relay.url, workers: params.nginxWorkers }));
    return out;
  });
  results.servers = servers.map((s) => s.id);
  log(`servers: ${servers.map((s) => `${s.id} ${s.url}`).join(', ')}; upstream ${upstream.url} behind ${relay.url}`);

  const ctx: WorkloadContext = {
    params,
    servers,
    warm,
    relay,
    wrkScript: writeWrkScript(work),
    ...(params.pin !== undefined ? { loadCpus: params.pin.load } : {}),
    clientJs,
    mainJs,
    ...(before !== undefined ? { beforeMainJs: before } : {}),
    log,
    note: (msg) => notes.push(msg),
    steal: { measurements: 0, repeated: 0, keptOver: 0, maxKeptPct: 0 },
    ...(params.pin !== undefined ? { pinServer: (pids: number[]) => pinProcesses(pids, params.pin!.servers) } : {}),
  };

  const pinned = params.pin !== undefined && (only.has('w1') || only.has('w2') || only.has('w3'));
  const serverPids = (): number[] => servers.flatMap((s) => s.pids());
  if (pinned && params.pin) {
    pinProcesses(serverPids(), params.pin.servers);
    log(`servers pinned to CPU ${params.pin.servers}, wrk to CPU ${params.pin.load} for workloads 1-3`);
  }
  if (only.has('w1')) {
    const w1 = await timed(timings, 'w1+w6', () => warmBig(ctx));
    results.throughput = w1.rows;
    results.rss = w1.rss;
  }
  if (only.has('w2')) results.rps.push(...(await timed(timings, 'w2', () => warmSmall(ctx))));
  if (only.has('w3')) results.rps.push(...(await timed(timings, 'w3', () => warmManifests(ctx))));
  const steal = stealNote(ctx.steal, params.maxStealPct, params.stealTries);
  if (steal) notes.push(steal);
  if (pinned) {
    // The fills and fan-outs that follow involve the relay and the upstream: every process gets every core again.
    unpinProcesses(serverPids());
    delete ctx.loadCpus;
  }
  if (only.has('w4')) {
    relay.reset();
    results.cold = await timed(timings, 'w4', () => coldFanOut(ctx, cold, coldRepo));
    const dist = results.cold.find((r) => r.server === 'distribution-proxy');
    if (dist) {
      const r0 = dist.rounds[0];
      notes.push(
        `distribution proxy, one cold client: ${r0?.single.heads ?? '?'} HEAD + ${r0?.single.gets ?? '?'} GET upstream (${((r0?.single.bytes ?? 0) / MiB).toFixed(0)} MiB) ` +
          `for one ${params.bigSize / MiB} MiB blob: it streams the blob to the client and fetches it again in the background for its cache; ` +
          `with ${params.fanOutClients} clients each one re-streams from upstream (no single-flight).`,
      );
    }
    const ng = results.cold.find((r) => r.server === 'nginx-cache');
    if (ng) {
      notes.push(
        `nginx proxy_cache_lock: one client streams while the others wait for the lock, polling every 500 ms, and read only once the whole object is cached ` +
          `(median client got its headers after ${median(ng.rounds.map((r) => r.fan.medianFirstByteS)).toFixed(2)} s).`,
      );
    }
  }
  if (only.has('w5')) results.range = await timed(timings, 'w5', () => multiRange(ctx, { kinds: proxyKinds }));
  if (only.has('w7')) {
    await settleRelay(relay);
    relay.reset();
    results.cluster = await timed(timings, 'w7', () => clusterFanOut(ctx, clusterBlobs, clusterRepo));
    const dist = results.cluster.find((r) => r.system === 'distribution-proxies');
    const rm = results.cluster.find((r) => r.system === 'regmirror-cluster');
    if (rm) {
      notes.push(
        `Workload 7: the client process (one process, ${rm.clients} connections, every body sha256-hashed) used ${rm.clientCpuS.toFixed(2)} s of CPU ` +
          `over the regmirror cluster's ${rm.fanOutS.toFixed(2)} s fan-out, on a machine of ${machine.cores} cores that also runs the ${rm.members} members, the relay and the upstream.`,
      );
    }
    if (dist) {
      notes.push(
        `Workload 7: the ${dist.members} distribution proxies are independent (distribution has no cluster mode); each fetches per client ` +
          `(${num(dist.upstreamGets, 0)} GETs upstream for ${dist.clients} clients).`,
      );
    }
  }
  if (only.has('w8')) results.startup = await timed(timings, 'w8', () => startupWorkload(ctx));

  for (const s of [...servers].reverse()) await s.stop();
  if (cli.profile) notes.push(`regmirror CPU profile written to bench/results/profiles/ (open in Chrome DevTools or speedscope).`);
  machine.loadEnd = loadavg()[0] ?? Number.NaN;
  machine.busyEndPct = await machineBusyPct();
  if (machine.busyStartPct > 10 || machine.busyEndPct > 10) {
    notes.push(
      `The machine was not idle (${machine.busyStartPct.toFixed(0)} % of all cores busy with other work before the run, ${machine.busyEndPct.toFixed(0)} % after): ` +
        `figures are noisier than usual; compare ratios within this run.`,
    );
  }
  timings.total = (performance.now() - t0) / 1000;
  return results;
}

async function entry(): Promise<void> {
  let cli: Cli | undefined;
  try {
    cli = parseCli(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  if (!cli) return;
  let results: BenchResults | undefined;
  try {
    results = await main(cli);
  } catch (err) {
    process.stderr.write(`bench: failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  } finally {
    try {
      await cleanupAll();
    } catch (err) {
      process.stderr.write(`bench: cleanup: ${String(err)}\n`);
    }
  }
  if (!results) return;
  const md = renderMarkdown(results);
  process.stdout.write(`\n${md}`);
  process.stdout.write(`\n${targetSummary(checkTargets(results))}\n`);
  if (cli.write) {
    const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    const suffix = cli.partial ? '-partial' : cli.params.mode === 'quick' ? '-quick' : '';
    const base = `${stamp(new Date(results.startedAt))}${suffix}`;
    const files: [string, string][] = [
      [`${base}.md`, md],
      [`${base}.json`, `${JSON.stringify(results, null, 2)}\n`],
      [`${base}.svg`, renderSvg(results)],
    ];
    if (!cli.partial) {
      const latest = cli.params.mode === 'quick' ? 'latest-quick' : 'latest';
      files.push([`${latest}.md`, md], [`${latest}.json`, `${JSON.stringify(results, null, 2)}\n`], [`${latest}.svg`, renderSvg(results)]);
    }
    for (const [name, text] of files) writeFileSync(join(dir, name), text);
    process.stdout.write(`written: ${files.map(([n]) => `bench/results/${n}`).join(', ')}\n`);
  }
}

void entry();
