/** Shapes of the benchmark's parameters and results (also the JSON written next to the report). */
import type { ServerId, SkippedServer } from './servers.js';

/** Sizes, durations and counts of one run. */
export interface BenchParams {
  mode: 'quick' | 'full';
  /** Measured rounds per figure (medians are reported). */
  rounds: number;
  /** Length of one wrk measurement, s. */
  durationSec: number;
  /** Length of the wrk warm-up before measuring a server, s. */
  warmupSec: number;
  /**
   * Workloads 1–3 start every Node server (regmirror, regmirror before, the node floor) afresh every this
   * many rounds, each warmed up again before it is measured (0: never). One process of a program can be
   * 30 % faster than the next for its whole life (where its memory landed); fresh processes spread that
   * luck over the rounds instead of giving a whole sitting one draw. Optional: absent in older results.
   */
  restartEvery?: number;
  /** Concurrencies of the 64 MiB throughput workload. */
  concurrencies: number[];
  /** Connections for the requests/s workloads (1 MiB blob, manifests). */
  rpsConnections: number;
  /** Clients of the cold fan-out. */
  fanOutClients: number;
  /** Throttle of the relay in front of the upstream, bytes/s. */
  throttleBytesPerSec: number;
  bigSize: number;
  smallSize: number;
  /** Multi-range workload: number of ranges and bytes per range. */
  rangeCount: number;
  rangeSize: number;
  /** nginx `worker_processes` for both nginx peers. */
  nginxWorkers: number;
  /** Workload 7: mirrors in the cluster (and distribution proxies beside it), and clients per mirror. */
  clusterMirrors: number;
  clusterClientsPerMirror: number;
  /** Workload 8: index sizes the start-up is measured with. */
  startupEntries: number[];
  /**
   * CPUs (taskset lists) of the servers under test and of wrk during workloads 1–3; absent: not pinned
   * (`--no-pin`, one core, or no taskset).
   */
  pin?: { servers: string; load: string };
  /**
   * Workloads 1–3: a wrk measurement during which the hypervisor stole more than this share of the
   * machine's CPU time (%) is measured again, up to {@link BenchParams.stealTries} times in all, and the
   * try with the least steal is kept (`--max-steal`; 100: never measured again).
   */
  maxStealPct: number;
  /** Tries per measurement under {@link BenchParams.maxStealPct}. */
  stealTries: number;
}

/** The machine the figures come from. */
export interface MachineInfo {
  cores: number;
  model: string;
  memTotalMiB: number;
  node: string;
  kernel: string;
  wrk: string;
  nginx: string;
  distribution: string;
  /** 1-minute load average at start and end (other work on the machine skews figures). */
  loadStart: number;
  loadEnd: number;
  /** Busy share of all cores over 1 s before any server started and after all stopped, %. */
  busyStartPct: number;
  busyEndPct: number;
}

/** Workload 1: warm 64 MiB blob. */
export interface ThroughputRow {
  server: ServerId;
  concurrency: number;
  /** Median over rounds, GB/s (10^9 bytes). */
  gbps: number;
  rounds: number[];
  /** Server CPU time / wall time during the measurement, % of one core (median). */
  cpuPct: number;
  /** Node servers only: the event-loop (main) thread's share of that, % of one core (median). */
  loopPct?: number;
  errors: number;
}

/** Workloads 2 and 3: requests/s and latency. */
export interface RpsRow {
  server: ServerId;
  /** What was requested: `blob-1MiB`, `manifest-tag`, `manifest-digest`. */
  target: 'blob-1MiB' | 'manifest-tag' | 'manifest-digest';
  rps: number;
  p50Ms: number;
  p99Ms: number;
  roundsRps: number[];
  roundsP99Ms: number[];
  cpuPct: number;
  /** Node servers only: event-loop thread CPU, % of one core (median). */
  loopPct?: number;
  errors: number;
}

/** Upstream traffic for one blob, counted at the relay. */
export interface UpstreamCount {
  gets: number;
  heads: number;
  /** Body bytes the upstream sent for this blob. */
  bytes: number;
  /** Longest upstream GET of this blob (request to end of body), s. */
  getS: number;
}

/** One round of workload 4 for one server. */
export interface ColdRound {
  single: UpstreamCount & { wallS: number; ok: boolean };
  fan: UpstreamCount & { wallS: number; ok: number; firstByteS: number; medianFirstByteS: number };
}

/** Workload 4: cold fan-out (medians over rounds). */
/** What a fan-out workload measures (medians over rounds), for workloads 4 and 7 alike. */
export interface FanOutFigures {
  /** Clients in the fan-out (over all members, for workload 7). */
  clients: number;
  upstreamGets: number;
  upstreamHeads: number;
  upstreamBytes: number;
  oneClientS: number;
  fanOutS: number;
  /** Longest upstream GET during the fan-out (the fill's transfer), s. */
  fanOutUpstreamS: number;
  /** fanOutS / oneClientS. */
  ratio: number;
  /** Clients that got the whole, right body (minimum over rounds), of `clients`. */
  clientsOk: number;
}

export interface ColdRow extends FanOutFigures {
  server: ServerId;
  rounds: ColdRound[];
}

/** One round of workload 5 for one server. */
export interface RangeRound {
  s3BlobBytes: number;
  s3TotalBytes: number;
  s3BlobRequests: number;
  status: number;
  bodyBytes: number;
  /** True if the answer carried exactly the requested bytes (multipart checked against the blob). */
  correct: boolean;
  detail: string;
}

/** Workload 5: multi-range on an uncached blob behind S3 (medians over rounds). */
export interface RangeRow {
  server: ServerId;
  requestedBytes: number;
  s3BlobBytes: number;
  s3TotalBytes: number;
  rounds: RangeRound[];
}

/** One round of workload 7 for one system (a cluster of regmirrors, or distribution proxies side by side). */
export interface ClusterRound {
  /** One client on one member, on its own fresh blob (the baseline). */
  single: UpstreamCount & { wallS: number; ok: boolean };
  /** Every client of every member at once, on another fresh blob. */
  fan: UpstreamCount & {
    wallS: number;
    /** Clients whose body was complete, status 200 and hashed to the digest. */
    ok: number;
    /** The slowest client of each member, s (member order). */
    perMemberWallS: number[];
    /** CPU the client process used over the fan-out (30 sha256 streams), s. */
    clientCpuS: number;
    /** regmirror only: fills by origin over the members (`regmirror_cluster_fill_origins_total`), e.g. upstream 1, peer 2. */
    origins?: Record<string, number>;
  };
}

/**
 * The systems of workload 7: regmirror members of one cluster (coordinated by Redis), one regmirror
 * alone taking every client (the reference: what the machine does with that many clients and one
 * process), and distribution proxies side by side (independent: it has no cluster mode).
 */
export type ClusterSystem = 'regmirror-cluster' | 'regmirror-one' | 'distribution-proxies';

/** Workload 7: cluster fan-out (medians over rounds). */
export interface ClusterRow extends FanOutFigures {
  system: ClusterSystem;
  /** The kind of server (for colours and labels). */
  server: ServerId;
  members: number;
  clientsPerMember: number;
  clientCpuS: number;
  rounds: ClusterRound[];
}

/** One start of regmirror on a data dir with a big index (workload 8). */
export interface StartupRound {
  /** Spawn of the process to its `regmirror listening` log line, ms (node start-up included). */
  listenMs: number;
  /** Spawn to the first answer of `GET /v2/` (polled every 5 ms), ms. */
  readyMs: number;
  /** Spawn to the `cache index reconciled` log line, ms (reconciliation runs after listening, in the background). */
  reconciledMs: number;
  /** Reconciliation's own duration (its report), ms. */
  reconcileMs: number;
  /** What reconciliation did: files without entries indexed, entries without files dropped, temp files removed. */
  indexed: number;
  dropped: number;
  tmpRemoved: number;
  /** CPU time (user + system, all threads) the process had used when the listening line was seen, and when reconciled, ms: less sensitive to other work on the machine than the wall times. */
  cpuListenMs: number;
  cpuReconciledMs: number;
  /** VmRSS when the listening line was seen, MiB. */
  rssListenMiB: number;
  /** VmRSS, VmHWM and the file-backed part of VmRSS (LMDB's map) when reconciliation was done, MiB. */
  rssReconciledMiB: number;
  hwmMiB: number;
  rssFileMiB: number;
}

/** Workload 8: start-up with a big index (medians over rounds). */
export interface StartupRow {
  entries: number;
  /** Seeding the fixture (files and index, once per run), s. */
  seedS: number;
  /** Size of the index file, MiB. */
  indexMiB: number;
  listenMs: number;
  readyMs: number;
  reconciledMs: number;
  cpuListenMs: number;
  cpuReconciledMs: number;
  rssListenMiB: number;
  rssReconciledMiB: number;
  hwmMiB: number;
  rssFileMiB: number;
  rounds: StartupRound[];
}

/** Workload 6: memory during workload 1. */
export interface RssRow {
  server: ServerId;
  /** Largest sampled VmRSS (summed over processes), MiB. */
  peakRssMiB: number;
  /** VmHWM at the end of workload 1 (summed over processes), MiB. */
  hwmMiB: number;
  /** Peak sampled VmRSS per phase of workload 1 (fill and check, warm-up, each concurrency), MiB. */
  phases: { phase: string; peakRssMiB: number }[];
}

/** Everything a run produced. */
export interface BenchResults {
  startedAt: string;
  /** regmirror's git revision (`abc1234`, `+dirty` when src/ has uncommitted changes). */
  revision: string;
  /** The other build run as `regmirror-before` (`--regmirror-main`), when given. */
  before?: { mainJs: string; revision: string };
  params: BenchParams;
  machine: MachineInfo;
  /** Servers in display order that ran. */
  servers: ServerId[];
  skipped: SkippedServer[];
  throughput: ThroughputRow[];
  rps: RpsRow[];
  cold: ColdRow[];
  range: RangeRow[];
  rss: RssRow[];
  /** Workload 7 (absent in results written before it existed). */
  cluster?: ClusterRow[];
  /** Workload 8 (absent in results written before it existed). */
  startup?: StartupRow[];
  /** Observations worth reading next to the figures. */
  notes: string[];
  /** Seconds spent per phase. */
  timings: Record<string, number>;
}
