/**
 * containerd `hosts.toml` files for a mirror, and the plan that installs or removes them (pure: no
 * file system; containerd-hosts.ts reads the state and carries the plan out).
 *
 * One `<certs.d>/<registry>/hosts.toml` per registry: the mirror host(s) first with `pull` and
 * `resolve` (containerd adds `?ns=<registry>` to every request it sends them), then `server`, the
 * registry's own endpoint, which containerd falls back to when every mirror fails. A file that is
 * not ours is kept as `hosts.toml.regmirror-backup` and put back by `--remove`; a file of ours
 * carries {@link MARKER} on its first line, so it is never backed up and runs are idempotent.
 */

/** First line of every file this installer writes. */
export const MARKER = '# Written by regmirror containerd-hosts.';
/** The file containerd reads in each registry directory. */
export const HOSTS_FILE = 'hosts.toml';
/** Where a file that was there before ours is kept. */
export const BACKUP_FILE = 'hosts.toml.regmirror-backup';

/** A registry host as containerd names it (`docker.io`, `ghcr.io`, `registry.local:5000`). */
const REGISTRY_HOST = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?$/;

/** The registry's own endpoint: Docker Hub's API host for `docker.io`, else `https://HOST`. */
export function registryEndpoint(ns: string): string {
  return ns === 'docker.io' ? 'https://registry-1.docker.io' : `https://${ns}`;
}

/** One registry to point at the mirror. */
export interface RegistryTarget {
  /** The registry host, also the directory name under certs.d. */
  namespace: string;
  /** Where containerd goes when every mirror fails (the registry itself). */
  server: string;
}

/** Checks a registry host; throws a readable error. */
export function checkNamespace(ns: string): string {
  const v = ns.trim().toLowerCase();
  if (!REGISTRY_HOST.test(v)) throw new Error(`invalid registry ${JSON.stringify(ns)}: expected a registry host such as docker.io or ghcr.io`);
  return v;
}

/** Checks an http(s) base URL without credentials, query or path; returns its origin. */
export function checkBaseUrl(raw: string, what: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new Error(`invalid ${what} ${JSON.stringify(raw)}: expected a URL such as http://127.0.0.1:5000`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`invalid ${what} ${JSON.stringify(raw)}: scheme must be http or https`);
  if (u.username || u.password) throw new Error(`invalid ${what} ${JSON.stringify(raw)}: no credentials in the URL`);
  if ((u.pathname !== '/' && u.pathname !== '') || u.search || u.hash) throw new Error(`invalid ${what} ${JSON.stringify(raw)}: give only scheme, host and port`);
  return u.origin;
}

/** Parses `--registry NS` or `--registry NS=URL` (URL: the registry's own endpoint). */
export function parseRegistryArg(arg: string): RegistryTarget {
  const eq = arg.indexOf('=');
  const namespace = checkNamespace(eq < 0 ? arg : arg.slice(0, eq));
  const server = eq < 0 ? registryEndpoint(namespace) : checkBaseUrl(arg.slice(eq + 1).trim(), `server for ${namespace}`);
  return { namespace, server };
}

/** What goes into each file besides the registry. */
export interface HostsTomlOptions {
  /** Mirror base URLs, tried in this order before the registry itself. */
  mirrors: string[];
  /** containerd's connect timeout per mirror host, ms (containerd ≥ 1.7 reads it; 1.6 ignores it). */
  dialTimeoutMs: number;
}

function tomlString(s: string): string {
  // URLs and hosts are checked above; JSON's escaping is valid for TOML basic strings.
  return JSON.stringify(s);
}

/** The hosts.toml text for one registry. */
export function renderHostsToml(target: RegistryTarget, opts: HostsTomlOptions): string {
  if (opts.mirrors.length === 0) throw new Error('at least one mirror is needed');
  const lines = [
    MARKER,
    `# ${target.namespace}: through the mirror first (containerd adds ?ns=${target.namespace}), then the registry itself.`,
    `# \`regmirror containerd-hosts --remove\` puts back the file that was here before (${BACKUP_FILE}).`,
    `server = ${tomlString(target.server)}`,
    '',
  ];
  for (const m of opts.mirrors) {
    lines.push(
      `[host.${tomlString(m)}]`,
      '  capabilities = ["pull", "resolve"]',
      // A dead mirror then costs a pull this much before containerd moves on.
      `  dial_timeout = ${tomlString(`${Math.max(1, Math.round(opts.dialTimeoutMs))}ms`)}`,
      '',
    );
  }
  return lines.join('\n');
}

/** True for a file this installer wrote. */
export function isOurs(text: string | undefined): boolean {
  return text !== undefined && text.startsWith(MARKER);
}

/** What is on disk for one registry directory. */
export interface RegistryDirState {
  namespace: string;
  /** Content of hosts.toml, if there is one. */
  current?: string;
  /** Whether hosts.toml.regmirror-backup exists. */
  backup: boolean;
}

/** One step of a plan, for one registry directory. */
export type HostsAction =
  /** The file is already what it should be. */
  | { kind: 'unchanged'; namespace: string }
  /** Write ours (there was no file, or an older one of ours). */
  | { kind: 'write'; namespace: string; content: string }
  /** Move a file that is not ours to the backup, then write ours. */
  | { kind: 'backup-and-write'; namespace: string; content: string }
  /** Move the backup back over our file. */
  | { kind: 'restore'; namespace: string }
  /** Delete our file (nothing was there before it). */
  | { kind: 'delete'; namespace: string }
  /** A file that is not ours, and a backup of an older one: left alone (someone changed it after us). */
  | { kind: 'keep-foreign'; namespace: string };

/**
 * Plans an install: every `desired` registry gets `content`; directories that hold a file of ours
 * for a registry no longer desired are removed (their backup restored), so the result depends only
 * on the arguments, never on earlier runs.
 * @param desired registry → the file it should have.
 * @param state what each relevant directory holds (desired ones and any other with a file of ours or a backup).
 */
export function planInstall(desired: ReadonlyMap<string, string>, state: readonly RegistryDirState[]): HostsAction[] {
  const byNs = new Map(state.map((s) => [s.namespace, s]));
  const actions: HostsAction[] = [];
  for (const [namespace, content] of desired) {
    const s = byNs.get(namespace) ?? { namespace, backup: false };
    if (s.current === content) actions.push({ kind: 'unchanged', namespace });
    else if (s.current === undefined || isOurs(s.current)) actions.push({ kind: 'write', namespace, content });
    // A file that is not ours is the operator's current truth: it becomes the backup, replacing an older one.
    else actions.push({ kind: 'backup-and-write', namespace, content });
  }
  for (const s of state) {
    if (!desired.has(s.namespace)) actions.push(...planRemoveOne(s));
  }
  return actions.sort((a, b) => (a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : 0));
}

/** Plans `--remove`: every file of ours goes, every backup comes back. */
export function planRemove(state: readonly RegistryDirState[]): HostsAction[] {
  return state.flatMap(planRemoveOne).sort((a, b) => (a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : 0));
}

function planRemoveOne(s: RegistryDirState): HostsAction[] {
  const { namespace } = s;
  if (s.current === undefined) return s.backup ? [{ kind: 'restore', namespace }] : [];
  if (!isOurs(s.current)) return s.backup ? [{ kind: 'keep-foreign', namespace }] : [];
  return [s.backup ? { kind: 'restore', namespace } : { kind: 'delete', namespace }];
}
