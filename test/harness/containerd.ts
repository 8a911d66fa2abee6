/**
 * A private containerd (1.6) for tests, and `ctr` helpers to pull through a mirror configured in a
 * `hosts.toml` dir (`--hosts-dir`). `ctr content fetch` does the registry HTTP itself (client side)
 * and stores the content through the daemon. containerd adds `?ns=<registry host>` to every
 * request it sends to a mirror host.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, spawnProc, tmpDir, type Proc, type RunOutcome } from './proc.js';

/** A running private containerd. */
export interface Containerd {
  /** gRPC socket (`ctr --address`). */
  readonly sock: string;
  /** Temp dir holding config, root, state and socket. */
  readonly dir: string;
  readonly root: string;
  readonly state: string;
  readonly configFile: string;
  readonly proc: Proc;
  /** Stops the daemon (SIGTERM, then SIGKILL). */
  stop(): Promise<void>;
}

/** Options for {@link startContainerd}. */
export interface ContainerdOptions {
  /** Start timeout in ms (default 15000). */
  startTimeoutMs?: number;
}

/** Plugins that need privileges, kernel modules or special filesystems (they only add noise). */
const DISABLED_PLUGINS = [
  'io.containerd.grpc.v1.cri',
  'io.containerd.snapshotter.v1.aufs',
  'io.containerd.snapshotter.v1.btrfs',
  'io.containerd.snapshotter.v1.zfs',
  'io.containerd.snapshotter.v1.devmapper',
];

function tomlString(s: string): string {
  return JSON.stringify(s);
}

/**
 * Starts `containerd --config CONF` with root, state, gRPC/ttrpc sockets and the `opt` plugin dir
 * under a temp dir, and waits for "containerd successfully booted".
 */
export async function startContainerd(opts: ContainerdOptions = {}): Promise<Containerd> {
  const dir = await tmpDir('containerd-');
  const root = join(dir, 'root');
  const state = join(dir, 'state');
  const sock = join(dir, 'c.sock');
  const configFile = join(dir, 'config.toml');
  const config = [
    'version = 2',
    `root = ${tomlString(root)}`,
    `state = ${tomlString(state)}`,
    `disabled_plugins = [${DISABLED_PLUGINS.map(tomlString).join(', ')}]`,
    '',
    '[grpc]',
    `  address = ${tomlString(sock)}`,
    '[ttrpc]',
    `  address = ${tomlString(`${sock}.ttrpc`)}`,
    '[debug]',
    '  address = ""',
    '  level = "info"',
    '[metrics]',
    '  address = ""',
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = ${tomlString(join(dir, 'opt'))}`,
    '',
  ].join('\n');
  writeFileSync(configFile, config);
  const proc = await spawnProc('containerd', ['--config', configFile], {
    name: 'containerd',
    logDir: dir,
    ready: /containerd successfully booted/,
    readyTimeoutMs: opts.startTimeoutMs ?? 15_000,
  });
  return {
    sock,
    dir,
    root,
    state,
    configFile,
    proc,
    stop: async () => {
      await proc.stop();
    },
  };
}

/** Options for {@link writeHostsToml}. */
export interface HostsTomlOptions {
  /** Capabilities of the mirror host(s) (default `["pull", "resolve"]`). */
  capabilities?: string[];
  /** Add `skip_verify = true` (only matters for https mirrors). */
  skipVerify?: boolean;
}

/**
 * Writes `<dir>/<registryHost>/hosts.toml` with `server = serverUrl` and one
 * `[host."<mirror>"]` section per mirror URL (`http://` mirrors are plain HTTP).
 * @param dir - the `--hosts-dir` (e.g. `CERTS`)
 * @param registryHost - the registry the image names refer to, e.g. `docker.io`
 * @param serverUrl - the registry's own endpoint, e.g. `https://registry-1.docker.io`
 * @param mirrorUrl - mirror base URL(s), e.g. `http://127.0.0.1:5000`, tried in order
 * @returns the file's path
 */
export function writeHostsToml(
  dir: string,
  registryHost: string,
  serverUrl: string,
  mirrorUrl: string | string[],
  opts: HostsTomlOptions = {},
): string {
  const hostDir = join(dir, registryHost);
  mkdirSync(hostDir, { recursive: true });
  const caps = opts.capabilities ?? ['pull', 'resolve'];
  const lines = [`server = ${tomlString(serverUrl)}`, ''];
  for (const m of Array.isArray(mirrorUrl) ? mirrorUrl : [mirrorUrl]) {
    lines.push(`[host.${tomlString(m)}]`, `  capabilities = [${caps.map(tomlString).join(', ')}]`);
    if (opts.skipVerify) lines.push('  skip_verify = true');
    lines.push('');
  }
  const file = join(hostDir, 'hosts.toml');
  writeFileSync(file, lines.join('\n'));
  return file;
}

/** Options for {@link ctrFetch}. */
export interface CtrFetchOptions {
  /** containerd gRPC socket. */
  sock: string;
  /** `--hosts-dir` holding `<registry host>/hosts.toml`. */
  hostsDir: string;
  /** Image reference, e.g. `docker.io/library/app:v1`. */
  ref: string;
  /** containerd namespace (default `test`). */
  ns?: string;
  /** `--platform` (e.g. `linux/arm64`). */
  platform?: string;
  /** `--all-platforms`. */
  allPlatforms?: boolean;
  /** `--user user:password`. */
  user?: string;
  /** `--http-dump`: log every request/response (on stderr). */
  httpDump?: boolean;
  /** Timeout in ms (default 120000). */
  timeoutMs?: number;
  /** Accept a failure (returns the outcome instead of throwing). */
  allowFailure?: boolean;
}

/**
 * Runs `ctr --address SOCK -n NS content fetch --hosts-dir DIR REF` (ctr 1.6 accepts `--hosts-dir`
 * on `content fetch` as well as on `images pull`).
 */
export async function ctrFetch(opts: CtrFetchOptions): Promise<RunOutcome> {
  return run(
    'ctr',
    [
      '--address', opts.sock,
      '-n', opts.ns ?? 'test',
      'content', 'fetch',
      '--hosts-dir', opts.hostsDir,
      ...(opts.platform ? ['--platform', opts.platform] : []),
      ...(opts.allPlatforms ? ['--all-platforms'] : []),
      ...(opts.user ? ['--user', opts.user] : []),
      ...(opts.httpDump ? ['--http-dump'] : []),
      opts.ref,
    ],
    { name: 'ctr-fetch', timeoutMs: opts.timeoutMs ?? 120_000, allowFailure: opts.allowFailure ?? false },
  );
}

/** One row of `ctr content ls`. */
export interface ContentEntry {
  digest: string;
  /** Size as ctr prints it (e.g. `1.049MB`). */
  sizeText: string;
  /** `sizeText` in bytes (approximate: ctr rounds to 4 significant digits). */
  size: number;
}

/** Lists the content store of a namespace (`ctr content ls`). */
export async function ctrContentList(sock: string, ns = 'test'): Promise<ContentEntry[]> {
  const res = await run('ctr', ['--address', sock, '-n', ns, 'content', 'ls'], { name: 'ctr-content-ls', timeoutMs: 30_000 });
  const out: ContentEntry[] = [];
  for (const line of res.stdout.split('\n').slice(1)) {
    const [digest, sizeText = ''] = line.trim().split(/\s+/);
    if (digest?.startsWith('sha256:')) out.push({ digest, sizeText, size: parseHumanSize(sizeText) });
  }
  return out;
}

function parseHumanSize(s: string): number {
  const m = /^([\d.]+)\s*([kKMGTP]?i?B)$/.exec(s);
  if (!m) return Number.NaN;
  const unit = m[2] ?? 'B';
  const binary = unit.includes('i');
  const pow = 'BKMGTP'.indexOf((unit[0] ?? 'B').toUpperCase());
  return Math.round(Number(m[1]) * (binary ? 1024 : 1000) ** Math.max(0, pow));
}
