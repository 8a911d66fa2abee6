/**
 * A private dockerd (Debian's docker.io, 20.10) as a `registry-mirrors` client: its own data root,
 * exec root and socket under a temp dir, vfs storage, no iptables and no bridge, and its own
 * containerd. Pulls of Docker Hub names (`app:v1` → `library/app`) go to the mirror first; on any
 * mirror error dockerd falls back to registry-1.docker.io (and only logs the mirror's error at info).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { registerCleanup, run, spawnProc, tmpDir, type Proc, type RunOutcome } from './proc.js';

/** Options for {@link startDockerd}. */
export interface DockerdOptions {
  /** `registry-mirrors` entries, e.g. `http://127.0.0.1:5000`. */
  mirrors: string[];
  /** Start timeout in ms (default 30000). */
  startTimeoutMs?: number;
}

/** A running private dockerd. */
export interface Dockerd {
  /** `unix:///…/docker.sock` for `docker -H`. */
  readonly host: string;
  readonly dir: string;
  readonly proc: Proc;
  /** Runs `docker -H HOST ARGS`; throws with the output on failure. */
  docker(args: string[], timeoutMs?: number): Promise<RunOutcome>;
  /** dockerd's log so far (its own and its containerd's). */
  log(): string;
  stop(): Promise<void>;
}

export async function startDockerd(opts: DockerdOptions): Promise<Dockerd> {
  const dir = await tmpDir('dockerd-');
  const host = `unix://${join(dir, 'docker.sock')}`;
  const args = [
    '--data-root', join(dir, 'root'),
    '--exec-root', join(dir, 'exec'),
    '--pidfile', join(dir, 'docker.pid'),
    '-H', host,
    '--storage-driver', 'vfs',
    '--iptables=false', '--ip6tables=false', '--bridge=none',
    '--log-level', 'info',
    ...opts.mirrors.flatMap((m) => ['--registry-mirror', m, '--insecure-registry', new URL(m).host]),
  ];
  const proc = await spawnProc('dockerd', args, { name: 'dockerd', logDir: dir, ready: /API listen on /, readyTimeoutMs: opts.startTimeoutMs ?? 30_000 });
  const docker = (a: string[], timeoutMs = 120_000) => run('docker', ['-H', host, ...a], { name: 'docker', timeoutMs });
  const stop = async (): Promise<void> => {
    // SIGTERM lets dockerd stop its containerd and remove its mounts; one it leaves behind
    // (exec-root/netns/default was seen after a kill) would keep the temp dir from being removed.
    await proc.stop({ graceMs: 15_000 });
    const left = readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[1] ?? '')
      .filter((m) => m.startsWith(`${dir}/`))
      .reverse();
    for (const m of left) spawnSync('umount', [m], { stdio: 'ignore' });
  };
  registerCleanup('dockerd', stop);
  return { host, dir, proc, docker, log: () => proc.output(), stop };
}
