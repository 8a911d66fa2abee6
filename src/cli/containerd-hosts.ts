/**
 * `regmirror containerd-hosts`: points a node's containerd at the mirror by writing one
 * `hosts.toml` per registry under its `config_path` (certs.d), and takes it back with `--remove`.
 * The Kubernetes DaemonSet runs it as an init container; see hosts-toml.ts for the file and the plan.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildConfig, readConfigFile, readEnv, type ConfigInput } from '../config/load.js';
import { parseDuration } from '../config/duration.js';
import {
  BACKUP_FILE,
  checkBaseUrl,
  HOSTS_FILE,
  isOurs,
  parseRegistryArg,
  planInstall,
  planRemove,
  registryEndpoint,
  renderHostsToml,
  type HostsAction,
  type RegistryDirState,
  type RegistryTarget,
} from './hosts-toml.js';

export const USAGE = `regmirror containerd-hosts — point containerd at a regmirror mirror

Usage:
  regmirror containerd-hosts --mirror URL [--mirror URL]... [--registry NS[=URL]]... [options]
  regmirror containerd-hosts --remove [--dir DIR]

Writes DIR/<registry>/hosts.toml for each registry: the mirror(s) first (pull, resolve), then the
registry itself as server. A file that was there is kept as ${BACKUP_FILE} and put back by
--remove. Running it again with the same arguments changes nothing.

Options:
  --mirror URL           mirror base URL, e.g. http://127.0.0.1:5000; repeatable, tried in order
  --registry NS[=URL]    a registry to route through the mirror, optionally with its own endpoint
                         (default endpoint: docker.io → https://registry-1.docker.io, else https://NS);
                         repeatable. Default: the namespaces of the mirror's configuration
                         (--config / REGMIRROR_CONFIG, REGMIRROR_UPSTREAM; embedded default docker.io)
  --config FILE          the mirror's YAML config, read for its upstream namespaces
  --dir DIR              containerd's registry config_path [/etc/containerd/certs.d]
  --dial-timeout DUR     how long containerd tries to connect to a mirror before the next host [200ms]
                         (containerd 1.7+; 1.6 ignores the setting)
  --remove               remove every file this command wrote under DIR and restore the backups
  -h, --help             show this help

containerd reads hosts.toml only when its CRI registry config has
  config_path = "/etc/containerd/certs.d"
(ctr and nerdctl: --hosts-dir). Files are read on every pull: no restart is needed.
`;

/** Parsed command line. */
interface Options {
  mirrors: string[];
  registries: RegistryTarget[];
  dir: string;
  dialTimeoutMs: number;
  remove: boolean;
}

class UsageError extends Error {}

function parse(argv: string[]): Options | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        mirror: { type: 'string', multiple: true },
        registry: { type: 'string', multiple: true },
        config: { type: 'string' },
        dir: { type: 'string' },
        'dial-timeout': { type: 'string' },
        remove: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  if (v.help) return 'help';
  const remove = v.remove ?? false;
  const mirrors = (v.mirror ?? []).map((m) => checkBaseUrl(m, 'mirror'));
  if (!remove && mirrors.length === 0) throw new UsageError('--mirror URL is required');
  if (new Set(mirrors).size !== mirrors.length) throw new UsageError('the same --mirror is given twice');
  let dialTimeoutMs = 200;
  if (v['dial-timeout'] !== undefined) {
    dialTimeoutMs = parseDuration(v['dial-timeout']);
    if (dialTimeoutMs < 1) throw new UsageError('--dial-timeout must be at least 1ms');
  }
  const registries = remove ? [] : v.registry?.length ? v.registry.map(parseRegistryArg) : configuredRegistries(v.config);
  const seen = new Set<string>();
  for (const r of registries) {
    if (seen.has(r.namespace)) throw new UsageError(`registry ${r.namespace} is given twice`);
    seen.add(r.namespace);
  }
  return { mirrors, registries, dir: v.dir ?? '/etc/containerd/certs.d', dialTimeoutMs, remove };
}

/**
 * The namespaces the mirror serves, from the same sources the mirror reads. `${VAR}` references
 * the installer has no value for (upstream credentials: an init container should not see them)
 * are read as a placeholder: only the upstream namespaces are used here.
 */
function configuredRegistries(configFlag: string | undefined): RegistryTarget[] {
  const env = readEnv();
  const file = configFlag ?? env.config;
  const placeholders = new Proxy(process.env, { get: (target, key) => (typeof key === 'string' ? (target[key] ?? 'unset') : undefined) });
  const layers: ConfigInput[] = [];
  if (file) layers.push(readConfigFile(file, placeholders));
  layers.push(env);
  const config = buildConfig(...layers);
  return config.upstreams.map((u) => ({ namespace: u.namespace, server: registryEndpoint(u.namespace) }));
}

function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The state of every registry directory that matters: the desired ones and any holding a file of ours or a backup. */
function readState(dir: string, desired: Iterable<string>): RegistryDirState[] {
  const names = new Set(desired);
  if (existsSync(dir)) {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (!e.isDirectory() || names.has(e.name)) continue;
      const current = readIfExists(join(dir, e.name, HOSTS_FILE));
      if (isOurs(current) || existsSync(join(dir, e.name, BACKUP_FILE))) names.add(e.name);
    }
  }
  return [...names].map((namespace) => {
    const current = readIfExists(join(dir, namespace, HOSTS_FILE));
    return { namespace, ...(current !== undefined ? { current } : {}), backup: existsSync(join(dir, namespace, BACKUP_FILE)) };
  });
}

/** Writes a file by rename, so containerd never reads half of it. */
function writeAtomic(path: string, content: string): void {
  const tmp = `${path}.regmirror-tmp`;
  writeFileSync(tmp, content, { mode: 0o644 });
  renameSync(tmp, path);
}

/** Carries out one step; returns the line to print. */
function apply(dir: string, a: HostsAction): string {
  const nsDir = join(dir, a.namespace);
  const file = join(nsDir, HOSTS_FILE);
  const backup = join(nsDir, BACKUP_FILE);
  switch (a.kind) {
    case 'unchanged':
      return `${a.namespace}: ${file} unchanged`;
    case 'write':
      mkdirSync(nsDir, { recursive: true });
      writeAtomic(file, a.content);
      return `${a.namespace}: wrote ${file}`;
    case 'backup-and-write':
      renameSync(file, backup);
      writeAtomic(file, a.content);
      return `${a.namespace}: wrote ${file} (the file that was there is kept as ${BACKUP_FILE})`;
    case 'restore':
      renameSync(backup, file);
      return `${a.namespace}: restored ${file} from ${BACKUP_FILE}`;
    case 'delete':
      unlinkSync(file);
      try {
        rmdirSync(nsDir);
      } catch {
        /* other files live there (certificates): keep the directory */
      }
      return `${a.namespace}: removed ${file}`;
    case 'keep-foreign':
      return `${a.namespace}: ${file} was changed by someone else since it was installed; left alone, and ${BACKUP_FILE} kept`;
  }
}

/** Runs the command; returns the exit code. */
export async function run(argv: string[]): Promise<number> {
  let opts: Options | 'help';
  try {
    opts = parse(argv);
  } catch (err) {
    process.stderr.write(`regmirror containerd-hosts: ${(err as Error).message}\n${err instanceof UsageError ? `\n${USAGE}` : ''}`);
    return err instanceof UsageError ? 2 : 1;
  }
  if (opts === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  try {
    const { dir } = opts;
    let actions: HostsAction[];
    if (opts.remove) {
      actions = planRemove(readState(dir, []));
    } else {
      const hostsOpts = { mirrors: opts.mirrors, dialTimeoutMs: opts.dialTimeoutMs };
      const desired = new Map(opts.registries.map((r) => [r.namespace, renderHostsToml(r, hostsOpts)]));
      actions = planInstall(desired, readState(dir, desired.keys()));
    }
    if (actions.length === 0) process.stdout.write(`nothing to do under ${dir}\n`);
    for (const a of actions) process.stdout.write(`${apply(dir, a)}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`regmirror containerd-hosts: ${(err as Error).message}\n`);
    return 1;
  }
}
