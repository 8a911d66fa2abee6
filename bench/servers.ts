/**
 * Starting and stopping the servers under test, each as its own process on 127.0.0.1 with its
 * state in a temp dir. Every start waits until `GET /v2/` answers (any status) and is undone by
 * `cleanupAll()` from test/harness/proc.ts (also on SIGINT or a crash).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, linkSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { freePort, spawnProc, tmpDir, delay, type Proc } from '../test/harness/proc.js';
import type { BlobFile } from '../test/harness/oci.js';
import { childPids } from './procstat.js';
import { cacheConfig, staticConfig } from './nginx.js';
import type { FloorConfig } from './node-floor.js';
import type { SeededManifest } from './seed.js';

/** The servers compared. `regmirror-before` is regmirror from another build (`--regmirror-main`). */
export type ServerId = 'nginx-static' | 'node-floor' | 'regmirror-before' | 'regmirror' | 'distribution-proxy' | 'nginx-cache';

/** Display names. */
export const SERVER_LABEL: Record<ServerId, string> = {
  'nginx-static': 'nginx static',
  'node-floor': 'node floor',
  'regmirror-before': 'regmirror (before)',
  regmirror: 'regmirror',
  'distribution-proxy': 'distribution proxy',
  'nginx-cache': 'nginx proxy_cache',
};

/** A running server under test. */
export interface BenchServer {
  readonly id: ServerId;
  readonly url: string;
  /** Processes whose memory and CPU are this server's (nginx: master and workers). */
  pids(): number[];
  /** The server's output log. */
  readonly logFile: string;
  /** For the Node servers: the process whose main thread is the event loop (its tid is the pid). */
  readonly eventLoopPid?: number;
  stop(): Promise<void>;
  /**
   * Stops the process and starts a fresh one on the same port with the same data (regmirror keeps its
   * data directory, so its cache stays warm on disk). Absent for servers the bench does not restart.
   */
  restart?(): Promise<void>;
}

/** A peer that could not be run here. */
export interface SkippedServer {
  id: ServerId;
  reason: string;
  /** Command that installs it (absent when it was left out on purpose). */
  install?: string;
}

/** The nginx binary, if installed. */
export function nginxBinary(): string | undefined {
  if (existsSync('/usr/sbin/nginx')) return '/usr/sbin/nginx';
  const r = spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' });
  const p = r.stdout.trim();
  return r.status === 0 && p !== '' ? p : undefined;
}

/** True if `cmd` is on PATH. */
export function haveCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v '${cmd}'`], { stdio: 'ignore' }).status === 0;
}

/** One `GET url`; resolves with the status (0 on a connection error). */
function probe(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { method: 'GET', timeout: 1000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
    req.end();
  });
}

/**
 * Polls `GET <url>/v2/` until it gets an HTTP answer. If the process exits first or `timeoutMs`
 * passes, stops the process and throws with its log tail.
 */
export async function waitReady(url: string, proc: Proc, timeoutMs = 15_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (!proc.running) throw new Error(`${proc.name} exited (${JSON.stringify(proc.exitInfo)}) before answering ${url}/v2/\n${proc.tail(20)}`);
    if ((await probe(`${url}/v2/`)) !== 0) return;
    await delay(50);
  }
  await proc.stop({ graceMs: 1000 });
  throw new Error(`${proc.name} did not answer ${url}/v2/ within ${timeoutMs} ms\n${proc.tail(20)}`);
}

/** Runs `start(port)` with fresh free ports until one works (another process may grab a port). */
async function withFreePort<T>(start: (port: number) => Promise<T>, attempts = 3): Promise<T> {
  let last: unknown;
  for (let i = 0; i < attempts; i++) {
    try {
      return await start(await freePort());
    } catch (err) {
      last = err;
    }
  }
  throw last instanceof Error ? last : new Error(String(last));
}

function asServer(id: ServerId, url: string, proc: Proc, pids: () => number[] = () => [proc.pid]): BenchServer {
  return {
    id,
    url,
    pids,
    logFile: proc.logFile,
    stop: async () => {
      await proc.stop();
    },
  };
}

/**
 * A Node server (regmirror or the floor) that can be restarted: `spawn` starts one process of it on the
 * server's port. `pids()`, `eventLoopPid` and `logFile` follow the current process.
 */
async function restartable(id: ServerId, url: string, spawn: () => Promise<Proc>): Promise<BenchServer> {
  let proc = await spawn();
  await waitReady(url, proc);
  return {
    id,
    url,
    pids: () => [proc.pid],
    get logFile() {
      return proc.logFile;
    },
    get eventLoopPid() {
      return proc.pid;
    },
    stop: async () => {
      await proc.stop();
    },
    restart: async () => {
      await proc.stop();
      proc = await spawn();
      await waitReady(url, proc);
    },
  };
}

/** Options for {@link startRegmirror}. */
export interface RegmirrorOptions {
  /** Upstream base URL, mapped as `docker.io=URL`. */
  upstreamUrl: string;
  /** `build/src/cli/main.js`. */
  mainJs: string;
  /** Extra node flags (e.g. `--cpu-prof`). */
  nodeArgs?: string[];
  /** Label in logs. */
  name?: string;
  /** `regmirror-before` for the build given with `--regmirror-main` (default `regmirror`). */
  id?: 'regmirror' | 'regmirror-before';
  /**
   * Cluster mode: `--redis URL --advertise <own URL>`, with `REGMIRROR_CLUSTER_TOKEN` set to `token`
   * (the same for every member, as a deployment would have it).
   */
  cluster?: { redisUrl: string; token: string };
}

/** Starts `node build/src/cli/main.js serve …` as its own process (log level warn). */
export async function startRegmirror(opts: RegmirrorOptions): Promise<BenchServer> {
  const id = opts.id ?? 'regmirror';
  const name = opts.name ?? id;
  const dir = await tmpDir(`${name}-`);
  return withFreePort(async (port) => {
    const url = `http://127.0.0.1:${port}`;
    const cluster = opts.cluster ? ['--redis', opts.cluster.redisUrl, '--advertise', url] : [];
    const env = opts.cluster ? { ...process.env, REGMIRROR_CLUSTER_TOKEN: opts.cluster.token } : process.env;
    const spawn = (): Promise<Proc> => spawnProc(
      process.execPath,
      [
        ...(opts.nodeArgs ?? []),
        opts.mainJs,
        'serve',
        '--listen',
        `127.0.0.1:${port}`,
        '--upstream',
        `docker.io=${opts.upstreamUrl}`,
        '--data-dir',
        join(dir, 'data'),
        '--log-level',
        'warn',
        ...cluster,
      ],
      { name, logDir: dir, cwd: dir, env },
    );
    return restartable(id, url, spawn);
  });
}

/** Options for {@link startNodeFloor}. */
export interface NodeFloorOptions {
  /** build/bench/node-floor.js */
  floorJs: string;
  blobs: { repo: string; blob: BlobFile }[];
  manifests: SeededManifest[];
  /** OCI-Namespace value: regmirror's default namespace (`docker.io`). */
  namespace: string;
}

/** Starts the node floor (bench/node-floor.ts) serving the warm content, as its own process. */
export async function startNodeFloor(opts: NodeFloorOptions): Promise<BenchServer> {
  const dir = await tmpDir('node-floor-');
  return withFreePort(async (port) => {
    const config: FloorConfig = {
      host: '127.0.0.1',
      port,
      namespace: opts.namespace,
      manifests: opts.manifests.map((m) => ({ repo: m.repo, tag: m.tag, digest: m.digest, mediaType: m.mediaType, bodyBase64: m.body.toString('base64') })),
      blobs: opts.blobs.map(({ repo, blob }) => ({ repo, digest: blob.digest, path: blob.path })),
    };
    const conf = join(dir, 'floor.json');
    writeFileSync(conf, JSON.stringify(config));
    const url = `http://127.0.0.1:${port}`;
    return restartable('node-floor', url, () => spawnProc(process.execPath, [opts.floorJs, conf], { name: 'node-floor', logDir: dir, cwd: dir }));
  });
}

/**
 * Starts distribution (`docker-registry serve`) in proxy mode with filesystem storage; the remote
 * must already answer (it exits at start otherwise). Request logging is off (log level warn, no
 * access log), as for the other servers.
 */
export async function startDistributionProxy(remoteUrl: string, name = 'distribution-proxy'): Promise<BenchServer> {
  const dir = await tmpDir(`${name}-`);
  return withFreePort(async (port) => {
    const conf = join(dir, 'config.yml');
    const config = {
      version: 0.1,
      log: { level: 'warn', formatter: 'text', accesslog: { disabled: true } },
      storage: { filesystem: { rootdirectory: join(dir, 'data') }, delete: { enabled: true } },
      http: { addr: `127.0.0.1:${port}`, secret: randomBytes(16).toString('hex') },
      proxy: { remoteurl: remoteUrl },
    };
    writeFileSync(conf, JSON.stringify(config, null, 2));
    const proc = await spawnProc('docker-registry', ['serve', conf], { name, logDir: dir });
    const url = `http://127.0.0.1:${port}`;
    await waitReady(url, proc);
    return asServer('distribution-proxy', url, proc);
  });
}

async function startNginx(id: ServerId, name: string, config: (prefix: string, port: number) => string, prep?: (prefix: string) => void): Promise<BenchServer> {
  const bin = nginxBinary();
  if (!bin) throw new Error('nginx is not installed (apt-get install -y nginx-light)');
  const prefix = await tmpDir(`${name}-`);
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(prefix, 'tmp', d), { recursive: true });
  prep?.(prefix);
  return withFreePort(async (port) => {
    const conf = join(prefix, 'nginx.conf');
    writeFileSync(conf, config(prefix, port));
    const proc = await spawnProc(bin, ['-p', prefix, '-c', conf, '-e', join(prefix, 'error.log'), '-g', 'daemon off;'], { name, logDir: prefix });
    const url = `http://127.0.0.1:${port}`;
    await waitReady(url, proc);
    // Workers of this master, looked up again at most once a second.
    let cached: number[] = [];
    let at = 0;
    const pids = (): number[] => {
      if (performance.now() - at > 1000) {
        cached = childPids(proc.pid);
        at = performance.now();
      }
      return [proc.pid, ...cached];
    };
    return asServer(id, url, proc, pids);
  });
}

/** Options for {@link startNginxCache}. */
export interface NginxCacheOptions {
  /** Upstream base URL (http://127.0.0.1:PORT). */
  originUrl: string;
  workers: number;
  name?: string;
}

/** Starts nginx as a proxy_cache pull-through cache in front of `originUrl`. */
export async function startNginxCache(opts: NginxCacheOptions): Promise<BenchServer> {
  const origin = new URL(opts.originUrl);
  return startNginx('nginx-cache', opts.name ?? 'nginx-cache', (prefix, port) =>
    cacheConfig({ prefix, port, workers: opts.workers, origin: { host: origin.hostname, port: Number(origin.port) } }),
  );
}

/** Options for {@link startNginxStatic}. */
export interface NginxStaticOptions {
  blobs: BlobFile[];
  manifests: SeededManifest[];
  workers: number;
}

/** Hard-links (or copies) `from` to `to`. */
function linkOrCopy(from: string, to: string): void {
  try {
    linkSync(from, to);
  } catch {
    copyFileSync(from, to);
  }
}

/** Starts nginx serving the given blobs and manifests from files named by digest (and tag). */
export async function startNginxStatic(opts: NginxStaticOptions): Promise<BenchServer> {
  return startNginx(
    'nginx-static',
    'nginx-static',
    (prefix, port) => staticConfig({ prefix, port, workers: opts.workers, root: join(prefix, 'root') }),
    (prefix) => {
      const blobs = join(prefix, 'root', 'blobs');
      const manifests = join(prefix, 'root', 'manifests');
      mkdirSync(blobs, { recursive: true });
      mkdirSync(manifests, { recursive: true });
      for (const b of opts.blobs) linkOrCopy(b.path, join(blobs, b.digest));
      for (const m of opts.manifests) {
        writeFileSync(join(manifests, m.digest), m.body);
        writeFileSync(join(manifests, m.tag), m.body);
      }
    },
  );
}
