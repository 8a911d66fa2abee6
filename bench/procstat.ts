/**
 * Memory and CPU of server processes, read from /proc (Linux only).
 *
 * RSS is `VmRSS` (resident now) and `VmHWM` (the resident high-water mark since the process
 * started) from `/proc/PID/status`; CPU is `utime + stime` from `/proc/PID/stat`, in seconds.
 * A server made of several processes (nginx master + workers) is the sum over its pids.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { setPriority } from 'node:os';

/** Clock ticks per second of `/proc/PID/stat` times (`getconf CLK_TCK`; 100 on Linux). */
const CLK_TCK = 100;

/** Memory of a set of processes, KiB. */
export interface MemSample {
  rssKiB: number;
  hwmKiB: number;
}

function statusField(pid: number, field: string): number {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Sum of VmRSS and of VmHWM over `pids` (gone processes count 0). */
export function memOf(pids: readonly number[]): MemSample {
  let rssKiB = 0;
  let hwmKiB = 0;
  for (const pid of pids) {
    rssKiB += statusField(pid, 'VmRSS');
    hwmKiB += statusField(pid, 'VmHWM');
  }
  return { rssKiB, hwmKiB };
}

/** Fields of /proc/PID/stat after the command name (index 0 is the state, field 3 in proc(5)). */
function statFields(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) used so far by `pids`. */
export function cpuSecondsOf(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const f = statFields(pid);
    if (!f) continue;
    // proc(5): utime is field 14, stime field 15; f[0] is field 3.
    ticks += Number(f[11] ?? 0) + Number(f[12] ?? 0);
  }
  return ticks / CLK_TCK;
}

/** CPU seconds (user + system) used so far by one thread `tid` of process `pid`. */
export function threadCpuSeconds(pid: number, tid: number): number {
  try {
    const text = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11] ?? 0) + Number(f[12] ?? 0)) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** Jiffies of the whole machine from /proc/stat: `[busy, total]`. */
function machineJiffies(): [number, number] {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return [total - idle, total];
}

/** Steal and total jiffies of the whole machine, from the first line of /proc/stat. */
export interface StealReading {
  steal: number;
  total: number;
}

/**
 * Steal time so far: on a virtual machine, time a vCPU was ready to run but the hypervisor ran another
 * guest. A measurement with much of it measures the host's other tenants, not the server under test.
 */
export function stealReading(text = readFileSync('/proc/stat', 'utf8')): StealReading {
  const line = text.split('\n')[0] ?? '';
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // proc(5): user nice system idle iowait irq softirq steal guest guest_nice; guest time is inside user.
  const total = v.slice(0, 8).reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
  return { steal: v[7] ?? 0, total };
}

/** Steal between two readings, % of all the machine's CPU time over that interval (0 when none passed). */
export function stealPctBetween(a: StealReading, b: StealReading): number {
  const total = b.total - a.total;
  return total > 0 ? ((b.steal - a.steal) / total) * 100 : 0;
}

/** Share of the machine's CPU time (all cores) that was busy over `ms` milliseconds, in %. */
export async function machineBusyPct(ms = 1000): Promise<number> {
  const [b0, t0] = machineJiffies();
  await new Promise((r) => setTimeout(r, ms));
  const [b1, t1] = machineJiffies();
  return t1 > t0 ? ((b1 - b0) / (t1 - t0)) * 100 : 0;
}

/** Pids whose parent is `ppid` (nginx workers of a master). */
export function childPids(ppid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const f = statFields(Number(name));
    if (f && Number(f[1]) === ppid) out.push(Number(name));
  }
  return out;
}

/** Peak memory seen by a {@link MemSampler}, KiB. */
export interface MemPeak {
  /** Largest summed VmRSS sampled. */
  peakRssKiB: number;
  /** Summed VmHWM at the last sample. */
  hwmKiB: number;
  samples: number;
}

/** Samples the summed VmRSS of a changing set of pids at a fixed interval. */
export class MemSampler {
  #timer: NodeJS.Timeout | undefined;
  #peak: MemPeak = { peakRssKiB: 0, hwmKiB: 0, samples: 0 };
  #phasePeak = 0;
  readonly #phases: { phase: string; peakRssKiB: number }[] = [];

  /**
   * @param pids - called at every sample (the set may change, e.g. nginx workers)
   * @param intervalMs - sampling period (default 50 ms)
   */
  constructor(
    readonly pids: () => number[],
    readonly intervalMs = 50,
  ) {}

  /** Starts sampling (takes one sample at once). */
  start(): this {
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), this.intervalMs);
    this.#timer.unref();
    return this;
  }

  /** Stops sampling and returns the peak. */
  stop(): MemPeak {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#sample();
    return { ...this.#peak };
  }

  /** Ends a phase: records the peak VmRSS sampled since the previous mark (or the start). */
  mark(phase: string): void {
    this.#sample();
    this.#phases.push({ phase, peakRssKiB: this.#phasePeak });
    this.#phasePeak = 0;
  }

  /** Peaks per phase, in the order marked. */
  phases(): { phase: string; peakRssKiB: number }[] {
    return [...this.#phases];
  }

  #sample(): void {
    const m = memOf(this.pids());
    this.#peak.samples += 1;
    this.#peak.peakRssKiB = Math.max(this.#peak.peakRssKiB, m.rssKiB);
    this.#phasePeak = Math.max(this.#phasePeak, m.rssKiB);
    this.#peak.hwmKiB = m.hwmKiB;
  }
}

/**
 * Raises the scheduling priority (nice `niceness`, default -10) of every thread of `pid`. Used for
 * the harness itself (the throttling relay runs on its event loop) and the upstream registry: they
 * stand for a remote registry and its link, and should not lose the CPU to the servers under test
 * and the load generator on a small machine. Needs root; returns false when it could not.
 */
export function boostPriority(pid: number, niceness = -10): boolean {
  let ok = true;
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return false;
  }
  for (const tid of tids) {
    try {
      setPriority(Number(tid), niceness);
    } catch {
      ok = false;
    }
  }
  return ok;
}
