/**
 * CPU pinning for the warm workloads (1–3). On a small machine wrk and the server under test share the
 * cores with the scheduler moving both around; one server's figure then depends on where wrk happened to
 * run. Pinned, every server gets the same core (and the load generator another one), which is also the
 * most a single-threaded server (regmirror, the node floor, nginx with one worker) can use.
 */
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';

/** taskset CPU lists for the servers under test and for wrk. */
export interface Pinning {
  servers: string;
  load: string;
}

/** The default pinning: servers on CPU 0, wrk on CPU 1; none on a machine of one core or without taskset. */
export function defaultPinning(): Pinning | undefined {
  if (cpus().length < 2) return undefined;
  const probe = spawnSync('taskset', ['-p', String(process.pid)], { encoding: 'utf8' });
  return probe.status === 0 ? { servers: '0', load: '1' } : undefined;
}

/** Sets the CPUs of every thread of `pids` (threads they start later inherit them). Throws when taskset fails. */
export function pinProcesses(pids: readonly number[], cpuList: string): void {
  for (const pid of pids) {
    const r = spawnSync('taskset', ['-a', '-p', '-c', cpuList, String(pid)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`taskset -a -p -c ${cpuList} ${pid} failed: ${(r.stderr || r.stdout || '').trim()}`);
  }
}

/** Gives every thread of `pids` all CPUs again (for the workloads that measure fills and fan-out). */
export function unpinProcesses(pids: readonly number[]): void {
  pinProcesses(pids, `0-${cpus().length - 1}`);
}
