/**
 * Builds a {@link MirrorConfig} from its sources. Precedence, highest first:
 * command-line flags, `REGMIRROR_*` environment variables, the YAML config file, embedded defaults.
 *
 * Every value of every source is type-checked against one table of settings ({@link SETTINGS}); a value of
 * the wrong type, an unknown key (at any depth) or an empty credential stops the start with a
 * {@link ConfigError} naming the key. Nested sections (`limits`, `trust`, `redis`) merge key by key across
 * sources, so an environment variable can override one limit of a file's `limits:` block.
 */
import { parseMaxSize, type MaxSize } from './max-size.js';
import { parsePins, type PinSpec } from './pins.js';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { defaultConfig } from './defaults.js';
import { ConfigError, bool, describe, duration, int, mapping, num, size, str, strList } from './check.js';
import { parseRate } from './rate.js';
import { resolveUpstreams } from './upstream-spec.js';
import type { Credentials, MirrorConfig } from './types.js';

export { ConfigError } from './check.js';

/** `limits:` as a source states it (durations as `60s`/`500ms` or seconds, sizes as `256MiB` or bytes). */
export interface LimitsInput {
  headersTimeout?: string | number;
  keepAliveTimeout?: string | number;
  writeIdleTimeout?: string | number;
  maxConnections?: number;
  transferBufferBudget?: string | number;
  shutdownTimeout?: string | number;
}

/** `trust:` as a source states it. */
export interface TrustInput {
  allowRedirectHosts?: string[];
  allowPrivateRedirects?: boolean;
}

/** `redis:` as a mapping (`redis: redis://…` is short for `redis: {url: redis://…}`). */
export interface RedisInput {
  url?: string;
  timeout?: string | number;
  breaker?: { failures?: number; cooldown?: string | number };
}

/** `cluster:` as a source states it. */
export interface ClusterInput {
  advertise?: string;
  token?: string;
}

/** Settings as one source states them, before validation. Every field is optional. */
export interface ConfigInput {
  /** `HOST:PORT`, `:PORT`, `[v6]:PORT`, or a bare port number (then the host is 0.0.0.0). */
  listen?: string | number;
  dataDir?: string;
  upstreams?: string[];
  /** Namespaces whose upstream is a mirror (a regional regmirror) to be sent `?ns=`; `'*'` for all. */
  mirrorUpstreams?: string[];
  tagTtl?: string | number;
  logLevel?: string;
  redis?: string | RedisInput;
  /** Credentials by upstream namespace (file only: secrets do not belong on a command line). */
  credentials?: Record<string, Credentials>;
  manifestMemory?: string | number;
  blobMemory?: string | number;
  blobMemoryMaxItem?: string | number;
  maxManifestSize?: string | number;
  /** Upstream connect timeout. */
  connectTimeout?: string | number;
  /** Upstream response-headers timeout (the client-side one is `limits.headersTimeout`). */
  headersTimeout?: string | number;
  bodyIdleTimeout?: string | number;
  revalidateTimeout?: string | number;
  maxConcurrentFills?: number;
  fillQueueTimeout?: string | number;
  abortOrphanedFills?: boolean;
  maxRanges?: number;
  rangeFillOnMiss?: boolean;
  rangeParallelism?: number;
  rangeFillAfterMisses?: number;
  maxRangeAmplification?: number;
  negativeTtl?: string | number;
  isolateNamespaces?: boolean;
  /** The cache's cap: bytes (`50GiB`) or a share of the data dir's filesystem (`80%`). */
  maxSize?: string | number;
  evictHigh?: number;
  evictLow?: number;
  /** Images never evicted and fetched at start: references, or `{ref, platforms}`. */
  pin?: unknown;
  limits?: LimitsInput;
  trust?: TrustInput;
  /** Overall upstream bandwidth cap, e.g. `50MB/s` (default unlimited). */
  maxBandwidth?: string | number;
  /** Bandwidth caps of single upstreams by namespace, e.g. `{docker.io: 20MB/s}`. */
  upstreamBandwidth?: Record<string, string | number>;
  cluster?: ClusterInput;
}

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

/** Parses `HOST:PORT`, `:PORT`, `PORT` or `[v6]:PORT`. */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*))?:?(\d+)$/.exec(value.trim());
  const port = Number(m?.[3]);
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid listen address ${JSON.stringify(value)}: expected HOST:PORT`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

/** `listen`: a HOST:PORT string, or a port number (YAML `listen: 5000` means 0.0.0.0:5000). */
function listenValue(v: unknown, key: string): { host: string; port: number } {
  if (typeof v === 'number') return { host: '0.0.0.0', port: int(v, key, 0, 65535) };
  if (typeof v !== 'string') throw new ConfigError(key, `expected a HOST:PORT string or a port number, got ${v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v}`);
  try {
    return parseListen(v);
  } catch (err) {
    throw new ConfigError(key, (err as Error).message);
  }
}

function logLevelValue(v: unknown, key: string): string {
  const level = str(v, key);
  if (!LOG_LEVELS.has(level)) throw new ConfigError(key, `invalid log level ${JSON.stringify(level)}: one of ${[...LOG_LEVELS].join(', ')}`);
  return level;
}

function redisUrlValue(v: unknown, key: string): string {
  const url = str(v, key);
  if (!/^rediss?:\/\/[^/\s]/.test(url)) throw new ConfigError(key, `invalid redis URL ${JSON.stringify(url)}: expected redis://HOST:PORT`);
  return url;
}

function upstreamsValue(v: unknown, key: string): ReturnType<typeof resolveUpstreams> {
  const specs = strList(v, key);
  try {
    return resolveUpstreams(specs);
  } catch (err) {
    throw new ConfigError(key, (err as Error).message);
  }
}

/** `mirrorUpstreams`: namespaces (or `*`), lowercased; checked against the upstreams when applied. */
function namespaceList(v: unknown, key: string): string[] {
  return strList(v, key).map((n) => n.trim().toLowerCase());
}

/**
 * Marks the named upstreams as mirrors. The setting runs after `upstreams` (table order), so every name is
 * checked against the upstreams configured by whichever source: a typo must fail at start, since a
 * regional tier asked without `?ns=` would answer from its default registry.
 */
function applyMirrorUpstreams(c: MirrorConfig, names: string[]): void {
  for (const [i, ns] of names.entries()) {
    if (ns === '*') {
      for (const u of c.upstreams) u.mirror = true;
      continue;
    }
    const u = c.upstreams.find((x) => x.namespace === ns);
    if (!u) throw new ConfigError(`mirrorUpstreams[${i}]`, `${ns} is not a configured upstream (${c.upstreams.map((x) => x.namespace).join(', ')}); use * for all`);
    u.mirror = true;
  }
}

/** A redirect host: `host` or `host:port`, lowercased. */
function hostList(v: unknown, key: string): string[] {
  return strList(v, key).map((h, i) => {
    const host = h.trim().toLowerCase();
    if (!/^(\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9.-]*[a-z0-9])?)(:\d{1,5})?$/.test(host)) {
      throw new ConfigError(`${key}[${i}]`, `expected a host or host:port such as cdn.example.com, got ${JSON.stringify(h)}`);
    }
    return host;
  });
}

function rateValue(v: unknown, key: string): number {
  if (typeof v !== 'string' && typeof v !== 'number') throw new ConfigError(key, `expected a rate such as 50MB/s, got ${describe(v)}`);
  try {
    return parseRate(v);
  } catch (err) {
    throw new ConfigError(key, (err as Error).message);
  }
}

/** `upstreamBandwidth`: namespace → rate (namespaces are checked against the upstreams in buildConfig). */
function rateMap(v: unknown, key: string): Record<string, number> {
  const m = mapping(v, key);
  return Object.fromEntries(Object.entries(m).map(([ns, r]) => [ns, rateValue(r, `${key}.${ns}`)]));
}

/** `maxSize`: bytes or `N%` of the data dir's filesystem. */
function maxSizeValue(v: unknown, key: string): MaxSize {
  if (typeof v !== 'string' && typeof v !== 'number') throw new ConfigError(key, `expected a size such as 50GiB or a share such as 80%, got ${describe(v)}`);
  try {
    return parseMaxSize(v);
  } catch (err) {
    throw new ConfigError(key, (err as Error).message);
  }
}

/** A fraction in (0, 1]. */
function fraction(v: unknown, key: string): number {
  if (typeof v !== 'number' || !(v > 0 && v <= 1)) throw new ConfigError(key, `expected a number between 0 and 1, got ${describe(v)}`);
  return v;
}

/** `pin:` image references (checked here; resolved to digests at start). */
function pinValue(v: unknown, key: string): PinSpec[] {
  try {
    return parsePins(v);
  } catch (err) {
    throw new ConfigError(key, (err as Error).message);
  }
}

/** `cluster.advertise`: an http(s) base URL without a path, as the other mirrors reach this one. */
function advertiseValue(v: unknown, key: string): string {
  const raw = str(v, key).trim();
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ConfigError(key, `invalid URL ${JSON.stringify(raw)}: expected http://HOST:PORT`);
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || (u.pathname !== '/' && u.pathname !== '') || u.search || u.username) {
    throw new ConfigError(key, `expected http://HOST:PORT (no path, query or credentials), got ${JSON.stringify(raw)}`);
  }
  return `${u.protocol}//${u.host}`;
}

/** One setting: where it lives (dotted path), how its value is checked, where it goes. */
interface Setting {
  path: string;
  apply: (c: MirrorConfig, v: unknown, key: string) => void;
  check: (v: unknown, key: string) => unknown;
}

function setting<T>(path: string, read: (v: unknown, key: string) => T, apply: (c: MirrorConfig, v: T) => void): Setting {
  return { path, check: read, apply: (c, v, key) => apply(c, read(v, key)) };
}

/** Every setting a source can state, by its YAML path. Credentials are handled on their own. */
const SETTINGS: readonly Setting[] = [
  setting('listen', listenValue, (c, v) => (c.listen = v)),
  setting('dataDir', str, (c, v) => (c.dataDir = v)),
  setting('upstreams', upstreamsValue, (c, v) => Object.assign(c, v)),
  setting('mirrorUpstreams', namespaceList, applyMirrorUpstreams),
  setting('tagTtl', duration, (c, v) => (c.tagTtlMs = v)),
  setting('logLevel', logLevelValue, (c, v) => (c.logLevel = v)),
  setting('redis.url', redisUrlValue, (c, v) => (c.redisUrl = v)),
  setting('redis.timeout', duration, (c, v) => (c.redis.timeoutMs = v)),
  setting('redis.breaker.failures', (v, k) => int(v, k, 1), (c, v) => (c.redis.breaker.failureThreshold = v)),
  setting('redis.breaker.cooldown', duration, (c, v) => (c.redis.breaker.cooldownMs = v)),
  setting('manifestMemory', size, (c, v) => (c.manifestMemoryBytes = v)),
  setting('blobMemory', size, (c, v) => (c.blobMemoryBytes = v)),
  setting('blobMemoryMaxItem', size, (c, v) => (c.blobMemoryItemBytes = v)),
  setting('maxManifestSize', size, (c, v) => (c.maxManifestBytes = v)),
  setting('connectTimeout', duration, (c, v) => (c.upstreamTimeouts.connectMs = v)),
  setting('headersTimeout', duration, (c, v) => (c.upstreamTimeouts.headersMs = v)),
  setting('bodyIdleTimeout', duration, (c, v) => (c.upstreamTimeouts.bodyIdleMs = v)),
  setting('revalidateTimeout', duration, (c, v) => (c.upstreamTimeouts.revalidateMs = v)),
  setting('maxConcurrentFills', (v, k) => int(v, k, 1), (c, v) => (c.fill.maxConcurrent = v)),
  setting('fillQueueTimeout', duration, (c, v) => (c.fill.queueTimeoutMs = v)),
  setting('abortOrphanedFills', bool, (c, v) => (c.fill.abortWhenOrphaned = v)),
  setting('maxRanges', (v, k) => int(v, k, 1), (c, v) => (c.range.maxRanges = v)),
  setting('rangeFillOnMiss', bool, (c, v) => (c.range.fillOnMiss = v)),
  setting('rangeParallelism', (v, k) => int(v, k, 1), (c, v) => (c.range.upstreamParallelism = v)),
  setting('rangeFillAfterMisses', (v, k) => int(v, k, 0), (c, v) => (c.range.fillAfterMisses = v)),
  setting('maxRangeAmplification', (v, k) => num(v, k, 1), (c, v) => (c.range.maxAmplification = v)),
  setting('negativeTtl', duration, (c, v) => (c.negativeTtlMs = v)),
  setting('isolateNamespaces', bool, (c, v) => (c.isolateNamespaces = v)),
  setting('maxSize', maxSizeValue, (c, v) => (c.cache.maxSize = v)),
  setting('evictHigh', (v, k) => fraction(v, k), (c, v) => (c.cache.evictHigh = v)),
  setting('evictLow', (v, k) => fraction(v, k), (c, v) => (c.cache.evictLow = v)),
  setting('pin', pinValue, (c, v) => (c.cache.pins = v)),
  setting('limits.headersTimeout', positiveDuration, (c, v) => (c.limits.headersTimeoutMs = v)),
  setting('limits.keepAliveTimeout', positiveDuration, (c, v) => (c.limits.keepAliveTimeoutMs = v)),
  setting('limits.writeIdleTimeout', positiveDuration, (c, v) => (c.limits.writeIdleTimeoutMs = v)),
  setting('limits.maxConnections', (v, k) => int(v, k, 1), (c, v) => (c.limits.maxConnections = v)),
  setting('limits.transferBufferBudget', (v, k) => positive(size(v, k), k), (c, v) => (c.limits.transferBufferBytes = v)),
  setting('limits.shutdownTimeout', duration, (c, v) => (c.limits.shutdownTimeoutMs = v)),
  setting('trust.allowRedirectHosts', hostList, (c, v) => (c.trust.allowRedirectHosts = v)),
  setting('trust.allowPrivateRedirects', bool, (c, v) => (c.trust.allowPrivateRedirects = v)),
  setting('maxBandwidth', rateValue, (c, v) => (c.bandwidth.overall = v)),
  setting('upstreamBandwidth', rateMap, (c, v) => (c.bandwidth.perUpstream = v)),
  setting('cluster.advertise', advertiseValue, (c, v) => (c.cluster.advertise = v)),
  setting('cluster.token', str, (c, v) => (c.cluster.token = v)),
];

/** A client limit of 0 would switch the protection off (Node reads 0 as "no timeout"): refuse it. */
function positive(n: number, key: string): number {
  if (n <= 0) throw new ConfigError(key, 'must be greater than 0 (a limit of 0 would turn the protection off)');
  return n;
}

function positiveDuration(v: unknown, key: string): number {
  return positive(duration(v, key), key);
}

/** Allowed child keys of every section path ('' is the top level), derived from {@link SETTINGS}. */
const SECTIONS: ReadonlyMap<string, ReadonlySet<string>> = (() => {
  const out = new Map<string, Set<string>>([['', new Set(['credentials'])]]);
  for (const s of SETTINGS) {
    const parts = s.path.split('.');
    for (let i = 0; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('.');
      let set = out.get(parent);
      if (!set) out.set(parent, (set = new Set()));
      set.add(parts[i]!);
    }
  }
  return out;
})();

/** The value at a dotted path of a source, or undefined. */
function at(layer: object, path: string): unknown {
  let v: unknown = layer;
  for (const p of path.split('.')) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[p];
  }
  return v;
}

/** `redis: URL` is short for `redis: {url: URL}`. */
function normalize(layer: object): Record<string, unknown> {
  const l = layer as Record<string, unknown>;
  return typeof l.redis === 'string' ? { ...l, redis: { url: l.redis } } : l;
}

/** Checks the shape of every section (unknown keys at any depth) of a normalized source. */
function checkSections(v: unknown, path: string): void {
  const allowed = SECTIONS.get(path);
  if (!allowed) return;
  const key = path || 'config';
  const m = path === '' ? (v as Record<string, unknown>) : mapping(v, key, allowed);
  for (const [k, child] of Object.entries(m)) {
    // `config` is the file path readEnv reports beside the settings, not a setting.
    if (child === undefined || (path === '' && k === 'config')) continue;
    if (path === '' && !allowed.has(k)) throw new ConfigError(k, 'unknown setting');
    const childPath = path ? `${path}.${k}` : k;
    if (SECTIONS.has(childPath)) checkSections(child, childPath);
  }
}

const CREDENTIAL_KEYS = new Set(['username', 'password', 'token']);

/** Checks credentials: `{username, password}` or `{token}`, none of them empty. */
function parseCredentials(raw: unknown): Record<string, Credentials> {
  if (raw === undefined) return {};
  const all = mapping(raw, 'credentials');
  const out: Record<string, Credentials> = {};
  for (const [ns, c] of Object.entries(all)) {
    const key = `credentials.${ns}`;
    const o = mapping(c, key, CREDENTIAL_KEYS);
    if (o.token !== undefined) {
      if (o.username !== undefined || o.password !== undefined) throw new ConfigError(key, 'give username and password, or token, not both');
      out[ns] = { token: str(o.token, `${key}.token`) };
    } else if (o.username !== undefined || o.password !== undefined) {
      if (o.username === undefined || o.password === undefined) throw new ConfigError(key, `${o.username === undefined ? 'username' : 'password'} is missing`);
      out[ns] = { username: str(o.username, `${key}.username`), password: str(o.password, `${key}.password`) };
    } else throw new ConfigError(key, 'needs username and password, or token');
  }
  return out;
}

/**
 * Type-checks one source completely (every key, every section, credentials) without merging it.
 * @throws ConfigError naming the first bad key
 */
export function checkInput(layer: object): void {
  const l = normalize(layer);
  checkSections(l, '');
  for (const s of SETTINGS) {
    const v = at(l, s.path);
    if (v !== undefined) s.check(v, s.path);
  }
  parseCredentials(l.credentials);
}

/** Replaces `${NAME}` in every string of a parsed YAML document; an unset variable is an error. */
function expandEnv(value: unknown, env: NodeJS.ProcessEnv, where: string): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => {
      const v = env[name];
      if (v === undefined) throw new Error(`${where}: environment variable ${name} is not set`);
      return v;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => expandEnv(v, env, `${where}[${i}]`));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, expandEnv(v, env, `${where}.${k}`)]));
  }
  return value;
}

/** Reads a YAML config file into a {@link ConfigInput}, expanding `${ENV}` references and checking every value. */
export function readConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): ConfigInput {
  const text = readFileSync(path, 'utf8');
  const doc: unknown = parseYaml(text) ?? {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new Error(`${path}: expected a YAML mapping at the top level`);
  for (const key of Object.keys(doc as object)) {
    if (!SECTIONS.get('')!.has(key)) throw new Error(`${path}: unknown setting ${JSON.stringify(key)}`);
  }
  const expanded = expandEnv(doc, env, path) as Record<string, unknown>;
  try {
    checkInput(expanded);
    return { ...(expanded as ConfigInput), credentials: parseCredentials(expanded.credentials) };
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(err.key, `${err.detail} (in ${path})`);
    throw err;
  }
}

/** Environment variables holding a setting, with the kind of value they carry. */
const ENV_VARS: ReadonlyArray<[string, string, 'string' | 'int' | 'bool']> = [
  ['REGMIRROR_LISTEN', 'listen', 'string'],
  ['REGMIRROR_DATA_DIR', 'dataDir', 'string'],
  ['REGMIRROR_TAG_TTL', 'tagTtl', 'string'],
  ['REGMIRROR_LOG_LEVEL', 'logLevel', 'string'],
  ['REGMIRROR_REDIS_URL', 'redis.url', 'string'],
  ['REGMIRROR_REDIS_TIMEOUT', 'redis.timeout', 'string'],
  ['REGMIRROR_NEGATIVE_TTL', 'negativeTtl', 'string'],
  ['REGMIRROR_MAX_SIZE', 'maxSize', 'string'],
  ['REGMIRROR_ISOLATE_NAMESPACES', 'isolateNamespaces', 'bool'],
  ['REGMIRROR_CLIENT_HEADERS_TIMEOUT', 'limits.headersTimeout', 'string'],
  ['REGMIRROR_KEEPALIVE_TIMEOUT', 'limits.keepAliveTimeout', 'string'],
  ['REGMIRROR_WRITE_IDLE_TIMEOUT', 'limits.writeIdleTimeout', 'string'],
  ['REGMIRROR_MAX_CONNECTIONS', 'limits.maxConnections', 'int'],
  ['REGMIRROR_TRANSFER_BUFFER_BUDGET', 'limits.transferBufferBudget', 'string'],
  ['REGMIRROR_SHUTDOWN_TIMEOUT', 'limits.shutdownTimeout', 'string'],
  ['REGMIRROR_MAX_BANDWIDTH', 'maxBandwidth', 'string'],
  ['REGMIRROR_ADVERTISE', 'cluster.advertise', 'string'],
  ['REGMIRROR_CLUSTER_TOKEN', 'cluster.token', 'string'],
];

function setAt(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let o = target;
  for (const p of parts.slice(0, -1)) o = (o[p] ??= {}) as Record<string, unknown>;
  o[parts[parts.length - 1]!] = value;
}

/** Reads `REGMIRROR_*` environment variables; integers and booleans are parsed strictly, naming the variable. */
export function readEnv(env: NodeJS.ProcessEnv = process.env): ConfigInput & { config?: string } {
  const out: Record<string, unknown> = {};
  const s = (k: string) => (env[k] !== undefined && env[k] !== '' ? env[k] : undefined);
  const cfg = s('REGMIRROR_CONFIG');
  if (cfg) out.config = cfg;
  for (const [name, path, kind] of ENV_VARS) {
    const v = s(name);
    if (v === undefined) continue;
    if (kind === 'string') setAt(out, path, v);
    else if (kind === 'int') {
      if (!/^\s*\d+\s*$/.test(v)) throw new ConfigError(name, `expected an integer, got ${JSON.stringify(v)}`);
      setAt(out, path, Number(v));
    } else {
      const b = v.trim().toLowerCase();
      if (!['true', 'false', '1', '0', 'yes', 'no'].includes(b)) throw new ConfigError(name, `expected true or false, got ${JSON.stringify(v)}`);
      setAt(out, path, b === 'true' || b === '1' || b === 'yes');
    }
  }
  const up = s('REGMIRROR_UPSTREAM');
  if (up) out.upstreams = up.split(/[\s,]+/).filter(Boolean);
  const mirrors = s('REGMIRROR_MIRROR_UPSTREAMS');
  if (mirrors) out.mirrorUpstreams = mirrors.split(/[\s,]+/).filter(Boolean);
  return out as ConfigInput & { config?: string };
}

/**
 * Merges sources over the defaults and validates the result.
 * @param layers sources from lowest to highest precedence (file, env, flags).
 * @throws ConfigError naming the key of the first value that cannot be used
 */
export function buildConfig(...layers: ConfigInput[]): MirrorConfig {
  const normalized = layers.map((l) => {
    checkInput(l);
    return normalize(l);
  });
  const c = defaultConfig();
  for (const s of SETTINGS) {
    for (let i = normalized.length - 1; i >= 0; i--) {
      const v = at(normalized[i]!, s.path);
      if (v === undefined) continue;
      s.apply(c, v, s.path);
      break;
    }
  }
  const creds: Record<string, Credentials> = Object.assign({}, ...normalized.map((l) => parseCredentials(l.credentials)));
  for (const ns of Object.keys(creds)) {
    const u = c.upstreams.find((x) => x.namespace === ns);
    if (!u) throw new ConfigError(`credentials.${ns}`, `credentials given for ${ns}, which is not a configured upstream (${c.upstreams.map((x) => x.namespace).join(', ')})`);
    u.credentials = creds[ns]!;
  }
  for (const ns of Object.keys(c.bandwidth.perUpstream)) {
    if (!c.upstreams.some((x) => x.namespace === ns)) throw new ConfigError(`upstreamBandwidth.${ns}`, `a limit given for ${ns}, which is not a configured upstream (${c.upstreams.map((x) => x.namespace).join(', ')})`);
  }
  if (c.cluster.advertise !== undefined && !c.redisUrl) throw new ConfigError('cluster.advertise', 'cluster mode coordinates through Redis: set redis.url (--redis) as well');
  if (c.cluster.token !== undefined && c.cluster.advertise === undefined) throw new ConfigError('cluster.token', 'a cluster token without cluster.advertise (--advertise) does nothing');
  return c;
}
