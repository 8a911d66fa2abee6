/**
 * A real upstream registry for tests: Debian's `docker-registry` (CNCF distribution 2.8).
 *
 * Access log format on this machine (stdout; distribution uses gorilla's CombinedLoggingHandler):
 * `127.0.0.1 - - [22/Nov/2026:05:02:51 +0000] "GET /v2/foo/manifests/x HTTP/1.1" 404 91 "" "curl/7.88.1"`
 * The byte count is what the handler wrote: a manifest HEAD shows the manifest size (net/http
 * drops the body), a blob HEAD 0, an aborted transfer the bytes written before the error; a 307
 * redirect (s3 driver) shows 0. A line is written when the
 * handler returns, just after the client has the response: call {@link Registry.settle} before
 * asserting on counts. The application log (logrus, `level=info msg=...`) goes to stderr.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnProc, tmpDir, type Proc } from './proc.js';

/** What a request was for, derived from its path. */
export type RequestKind = 'base' | 'manifest' | 'blob' | 'upload' | 'tags' | 'referrers' | 'catalog' | 'other';

/** One parsed access-log line. */
export interface AccessEntry {
  method: string;
  /** Request URI as logged, including any query string (e.g. `?ns=docker.io`). */
  path: string;
  /** `path` without the query string. */
  pathname: string;
  status: number;
  /** Response body bytes written by the handler (see module doc for HEAD). */
  bytes: number;
  userAgent: string;
  kind: RequestKind;
  /** Repository name for manifest/blob/upload/tags/referrers requests. */
  repo?: string;
  /** Tag or digest for manifest/blob/referrers requests. */
  reference?: string;
}

/** `auth.token` section of distribution's config (see tokenserver.ts). */
export interface TokenAuthConfig {
  realm: string;
  service: string;
  issuer: string;
  rootcertbundle: string;
}

/** distribution's s3 storage driver options (see s3.ts). */
export interface S3DriverConfig {
  accesskey: string;
  secretkey: string;
  region: string;
  regionendpoint: string;
  bucket: string;
  secure?: boolean;
  v4auth?: boolean;
  forcepathstyle?: boolean;
  rootdirectory?: string;
  chunksize?: number;
  [key: string]: string | number | boolean | undefined;
}

/** Options for {@link startRegistry}. */
export interface RegistryOptions {
  /** Filesystem storage root (default: a fresh temp dir). Ignored with `s3`. */
  dataDir?: string;
  /** Listen port (default 0: an ephemeral port chosen by the registry). */
  port?: number;
  /** Token auth (`auth: {token: …}`). */
  auth?: TokenAuthConfig;
  /** Basic auth with an htpasswd file (bcrypt entries) instead of token auth. */
  htpasswd?: { realm: string; path: string };
  /** distribution's pull-through proxy mode. The remote must be reachable at start. */
  proxy?: { remoteurl: string; username?: string; password?: string };
  /** Use the s3 storage driver instead of the filesystem. */
  s3?: S3DriverConfig;
  /** Maintenance read-only mode: pushes answer 405/503, pulls work. */
  readOnly?: boolean;
  /** Disable storage redirects (only meaningful with s3). Default false: blob GETs answer 307. */
  disableRedirect?: boolean;
  /** Extra config merged over the generated one (objects merge deeply). */
  extraConfig?: Record<string, unknown>;
  /** Variables removed from the registry's environment. */
  unsetEnv?: string[];
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Label for logs (default `registry`). */
  name?: string;
  /** Start timeout in ms (default 15000). */
  startTimeoutMs?: number;
}

/** A running registry. */
export interface Registry {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  readonly port: number;
  /** `127.0.0.1:PORT` (what skopeo and image references use). */
  readonly host: string;
  /** Filesystem storage root (a temp dir even with s3, where it is unused). */
  readonly dataDir: string;
  /** The generated config file. */
  readonly configFile: string;
  /** The current process (changes on restart). */
  readonly proc: Proc;
  /** Access-log entries since start or the last `resetLog()`, oldest first. */
  accessLog(): AccessEntry[];
  /** Forgets the entries seen so far. */
  resetLog(): void;
  /**
   * Waits until every request answered so far is in the access log (sends a marker request and
   * waits for its line; marker lines are not reported).
   */
  settle(timeoutMs?: number): Promise<void>;
  /** Waits until an entry matching `pred` is logged (past or future, since the last reset). */
  waitForAccess(pred: (e: AccessEntry) => boolean, timeoutMs?: number): Promise<AccessEntry>;
  /** Waits until `count` entries since the last reset match `pred`; resolves with them. */
  waitForCount(pred: (e: AccessEntry) => boolean, count: number, timeoutMs?: number): Promise<AccessEntry[]>;
  /** Stops the process (SIGTERM, then SIGKILL); storage is kept. */
  stop(): Promise<void>;
  /** Starts it again on the same port and storage (stopping it first if running). */
  restart(): Promise<void>;
}

const ACCESS_RE = /^(\S+) \S+ (\S+) \[([^\]]+)\] "(\S+) (\S+) [^"]*" (\d{3}) (\d+|-) "([^"]*)" "([^"]*)"$/;
const MARKER = '__harness_settle';

/** Classifies a registry API path (without query). */
export function classifyPath(pathname: string): Pick<AccessEntry, 'kind' | 'repo' | 'reference'> {
  if (pathname === '/v2/' || pathname === '/v2') return { kind: 'base' };
  if (pathname === '/v2/_catalog') return { kind: 'catalog' };
  let m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(pathname);
  if (m) return { kind: 'manifest', repo: m[1], reference: decodeURIComponent(m[2] ?? '') };
  m = /^\/v2\/(.+)\/blobs\/uploads\/?.*$/.exec(pathname);
  if (m) return { kind: 'upload', repo: m[1] };
  m = /^\/v2\/(.+)\/blobs\/([^/]+)$/.exec(pathname);
  if (m) return { kind: 'blob', repo: m[1], reference: decodeURIComponent(m[2] ?? '') };
  m = /^\/v2\/(.+)\/tags\/list$/.exec(pathname);
  if (m) return { kind: 'tags', repo: m[1] };
  m = /^\/v2\/(.+)\/referrers\/([^/]+)$/.exec(pathname);
  if (m) return { kind: 'referrers', repo: m[1], reference: decodeURIComponent(m[2] ?? '') };
  return { kind: 'other' };
}

/** Parses one distribution access-log line, or returns undefined for other lines. */
export function parseAccessLine(line: string): AccessEntry | undefined {
  const m = ACCESS_RE.exec(line);
  if (!m) return undefined;
  const path = m[5] ?? '';
  const q = path.indexOf('?');
  const pathname = q >= 0 ? path.slice(0, q) : path;
  return {
    method: m[4] ?? '',
    path,
    pathname,
    status: Number(m[6]),
    bytes: m[7] === '-' ? 0 : Number(m[7]),
    userAgent: m[9] ?? '',
    ...classifyPath(pathname),
  };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function deepMerge(base: Record<string, unknown>, extra: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(extra)) {
    const b = out[k];
    out[k] = isPlainObject(b) && isPlainObject(v) ? deepMerge(b, v) : v;
  }
  return out;
}

function buildConfig(opts: RegistryOptions, dataDir: string, port: number, secret: string): Record<string, unknown> {
  const storage: Record<string, unknown> = {
    delete: { enabled: true },
    maintenance: {
      uploadpurging: { enabled: false },
      readonly: { enabled: opts.readOnly === true },
    },
  };
  if (opts.s3) {
    storage.s3 = Object.fromEntries(Object.entries(opts.s3).filter(([, v]) => v !== undefined));
    storage.redirect = { disable: opts.disableRedirect === true };
  } else {
    storage.filesystem = { rootdirectory: dataDir };
    if (opts.disableRedirect) storage.redirect = { disable: true };
  }
  const config: Record<string, unknown> = {
    version: 0.1,
    log: { level: 'info', formatter: 'text', accesslog: { disabled: false } },
    storage,
    http: { addr: `127.0.0.1:${port}`, secret },
  };
  if (opts.auth) config.auth = { token: { ...opts.auth } };
  else if (opts.htpasswd) config.auth = { htpasswd: { ...opts.htpasswd } };
  if (opts.proxy) config.proxy = { ...opts.proxy };
  return opts.extraConfig ? deepMerge(config, opts.extraConfig) : config;
}

/**
 * Starts `docker-registry serve CONFIG` on 127.0.0.1 and waits for `listening on 127.0.0.1:PORT`.
 * The config is written as JSON (valid YAML). Stopped by `cleanupAll()`.
 */
export async function startRegistry(opts: RegistryOptions = {}): Promise<Registry> {
  const name = opts.name ?? 'registry';
  const workDir = await tmpDir(`${name}-`);
  const dataDir = opts.dataDir ?? join(workDir, 'data');
  mkdirSync(dataDir, { recursive: true });
  const configFile = join(workDir, 'config.yml');
  const secret = randomBytes(16).toString('hex');
  let port = opts.port ?? 0;
  let entries: AccessEntry[] = [];
  let markerSeq = 0;
  /** Pending waits; `check` runs after every new access line (markers included) and returns true when done. */
  const waiters = new Set<{ check: (e: AccessEntry) => boolean }>();
  let proc: Proc | undefined;

  const onLine = (line: string, stream: 'stdout' | 'stderr'): void => {
    if (stream !== 'stdout') return;
    const e = parseAccessLine(line);
    if (!e) return;
    if (!e.path.includes(MARKER)) entries.push(e);
    for (const w of waiters) {
      if (w.check(e)) waiters.delete(w);
    }
  };

  const start = async (): Promise<void> => {
    writeFileSync(configFile, JSON.stringify(buildConfig(opts, dataDir, port, secret), null, 2));
    const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env };
    const p = await spawnProc('docker-registry', ['serve', configFile], {
      name,
      env,
      unsetEnv: opts.unsetEnv,
      logDir: workDir,
    });
    p.onLine(onLine);
    try {
      const m = await p.waitFor(/listening on 127\.0\.0\.1:(\d+)/, { timeoutMs: opts.startTimeoutMs ?? 15_000 });
      port = Number(m[1]);
    } catch (err) {
      await p.stop({ graceMs: 1000 });
      throw err;
    }
    proc = p;
  };

  /** Resolves when `done()` (evaluated now and after every access line) returns a value. */
  const waitUntil = <T>(what: string, done: (e: AccessEntry | undefined) => T | undefined, timeoutMs: number): Promise<T> => {
    const now = done(undefined);
    if (now !== undefined) return Promise.resolve(now);
    return new Promise<T>((resolve, reject) => {
      const w = {
        check: (e: AccessEntry): boolean => {
          const v = done(e);
          if (v === undefined) return false;
          clearTimeout(timer);
          resolve(v);
          return true;
        },
      };
      const timer = setTimeout(() => {
        waiters.delete(w);
        reject(new Error(`${name}: ${what} not seen within ${timeoutMs} ms\n--- last lines ---\n${proc?.tail(20) ?? ''}`));
      }, timeoutMs);
      waiters.add(w);
    });
  };

  const waitForAccess = (pred: (e: AccessEntry) => boolean, timeoutMs = 10_000): Promise<AccessEntry> =>
    waitUntil('matching access-log entry', (e) => (e === undefined ? entries.find(pred) : pred(e) ? e : undefined), timeoutMs);

  const waitForCount = (pred: (e: AccessEntry) => boolean, count: number, timeoutMs = 10_000): Promise<AccessEntry[]> =>
    waitUntil(
      `${count} matching access-log entries`,
      () => {
        const found = entries.filter(pred);
        return found.length >= count ? found : undefined;
      },
      timeoutMs,
    );

  await start();

  const reg: Registry = {
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    get host() {
      return `127.0.0.1:${port}`;
    },
    dataDir,
    configFile,
    get proc(): Proc {
      if (!proc) throw new Error(`${name} not started`);
      return proc;
    },
    accessLog: () => [...entries],
    resetLog: () => {
      entries = [];
    },
    settle: async (timeoutMs = 10_000) => {
      const marker = `${MARKER}=${++markerSeq}`;
      const seen = waitForAccess((e) => e.path.includes(marker), timeoutMs);
      const res = await fetch(`http://127.0.0.1:${port}/v2/?${marker}`);
      await res.arrayBuffer();
      await seen;
    },
    waitForAccess,
    waitForCount,
    stop: async () => {
      await proc?.stop();
    },
    restart: async () => {
      await proc?.stop();
      await start();
    },
  };
  return reg;
}

/** Counts entries matching every given field (e.g. `{method: 'GET', kind: 'blob', status: 200}`). */
export function countAccess(entries: readonly AccessEntry[], filter: Partial<AccessEntry>): number {
  return entries.filter((e) =>
    (Object.keys(filter) as (keyof AccessEntry)[]).every((k) => filter[k] === undefined || e[k] === filter[k]),
  ).length;
}

/** Sums the `bytes` of entries matching `filter`. */
export function sumBytes(entries: readonly AccessEntry[], filter: Partial<AccessEntry> = {}): number {
  return entries
    .filter((e) => (Object.keys(filter) as (keyof AccessEntry)[]).every((k) => filter[k] === undefined || e[k] === filter[k]))
    .reduce((n, e) => n + e.bytes, 0);
}
