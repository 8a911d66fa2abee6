/**
 * Builds a {@link MirrorConfig} from its sources. Precedence, highest first:
 * command-line flags, `REGMIRROR_*` environment variables, the YAML config file, embedded defaults.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { defaultConfig } from './defaults.js';
import { parseDuration } from './duration.js';
import { parseSize } from './size.js';
import { resolveUpstreams } from './upstream-spec.js';
import type { Credentials, MirrorConfig } from './types.js';

/** Settings as one source states them, before validation. Every field is optional. */
export interface ConfigInput {
  listen?: string;
  dataDir?: string;
  upstreams?: string[];
  tagTtl?: string | number;
  logLevel?: string;
  redis?: string;
  /** Credentials by upstream namespace (file only: secrets do not belong on a command line). */
  credentials?: Record<string, Credentials>;
  manifestMemory?: string | number;
  blobMemory?: string | number;
  blobMemoryMaxItem?: string | number;
  maxManifestSize?: string | number;
  connectTimeout?: string | number;
  headersTimeout?: string | number;
  bodyIdleTimeout?: string | number;
  revalidateTimeout?: string | number;
  maxConcurrentFills?: number;
  fillQueueTimeout?: string | number;
  abortOrphanedFills?: boolean;
  maxRanges?: number;
  rangeFillOnMiss?: boolean;
  rangeParallelism?: number;
}

const FILE_KEYS = new Set<string>([
  'listen', 'dataDir', 'upstreams', 'tagTtl', 'logLevel', 'redis', 'credentials', 'manifestMemory', 'blobMemory', 'blobMemoryMaxItem', 'maxManifestSize',
  'connectTimeout', 'headersTimeout', 'bodyIdleTimeout', 'revalidateTimeout', 'maxConcurrentFills', 'fillQueueTimeout', 'abortOrphanedFills',
  'maxRanges', 'rangeFillOnMiss', 'rangeParallelism',
]);

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

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

function parseCredentials(raw: unknown, file: string): Record<string, Credentials> {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`${file}: credentials must be a map of namespace → {username, password} or {token}`);
  const out: Record<string, Credentials> = {};
  for (const [ns, c] of Object.entries(raw as Record<string, unknown>)) {
    const o = (c ?? {}) as Record<string, unknown>;
    if (typeof o.token === 'string' && o.token) out[ns] = { token: o.token };
    else if (typeof o.username === 'string' && typeof o.password === 'string') out[ns] = { username: o.username, password: o.password };
    else throw new Error(`${file}: credentials for ${ns} need username and password, or token`);
  }
  return out;
}

/** Reads a YAML config file into a {@link ConfigInput}, expanding `${ENV}` references. */
export function readConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): ConfigInput {
  const text = readFileSync(path, 'utf8');
  const doc: unknown = parseYaml(text) ?? {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new Error(`${path}: expected a YAML mapping at the top level`);
  for (const key of Object.keys(doc as object)) {
    if (!FILE_KEYS.has(key)) throw new Error(`${path}: unknown setting ${JSON.stringify(key)}`);
  }
  const expanded = expandEnv(doc, env, path) as Record<string, unknown>;
  const { credentials, upstreams, ...rest } = expanded;
  if (upstreams !== undefined && (!Array.isArray(upstreams) || !upstreams.every((u) => typeof u === 'string'))) {
    throw new Error(`${path}: upstreams must be a list of "[NS=]URL" strings`);
  }
  return { ...(rest as ConfigInput), ...(upstreams ? { upstreams: upstreams as string[] } : {}), credentials: parseCredentials(credentials, path) };
}

/** Reads `REGMIRROR_*` environment variables. */
export function readEnv(env: NodeJS.ProcessEnv = process.env): ConfigInput & { config?: string } {
  const out: ConfigInput & { config?: string } = {};
  const s = (k: string) => (env[k] !== undefined && env[k] !== '' ? env[k] : undefined);
  if (s('REGMIRROR_CONFIG')) out.config = s('REGMIRROR_CONFIG');
  if (s('REGMIRROR_LISTEN')) out.listen = s('REGMIRROR_LISTEN');
  if (s('REGMIRROR_DATA_DIR')) out.dataDir = s('REGMIRROR_DATA_DIR');
  if (s('REGMIRROR_TAG_TTL')) out.tagTtl = s('REGMIRROR_TAG_TTL');
  if (s('REGMIRROR_LOG_LEVEL')) out.logLevel = s('REGMIRROR_LOG_LEVEL');
  if (s('REGMIRROR_REDIS_URL')) out.redis = s('REGMIRROR_REDIS_URL');
  const up = s('REGMIRROR_UPSTREAM');
  if (up) out.upstreams = up.split(/[\s,]+/).filter(Boolean);
  return out;
}

/** Parses `HOST:PORT`, `:PORT`, `PORT` or `[v6]:PORT`. */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*))?:?(\d+)$/.exec(value.trim());
  const port = Number(m?.[3]);
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid listen address ${JSON.stringify(value)}: expected HOST:PORT`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

function posInt(v: number | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isSafeInteger(v) || v < 1) throw new Error(`${name} must be a positive integer`);
  return v;
}

/**
 * Merges sources over the defaults and validates the result.
 * @param layers sources from lowest to highest precedence (file, env, flags).
 */
export function buildConfig(...layers: ConfigInput[]): MirrorConfig {
  const c = defaultConfig();
  const get = <K extends keyof ConfigInput>(k: K): ConfigInput[K] | undefined => {
    for (let i = layers.length - 1; i >= 0; i--) {
      const v = layers[i]![k];
      if (v !== undefined) return v;
    }
    return undefined;
  };
  const listen = get('listen');
  if (listen !== undefined) c.listen = parseListen(listen);
  c.dataDir = get('dataDir') ?? c.dataDir;
  const specs = get('upstreams');
  if (specs !== undefined) Object.assign(c, resolveUpstreams(specs));
  const creds: Record<string, Credentials> = Object.assign({}, ...layers.map((l) => l.credentials ?? {}));
  for (const ns of Object.keys(creds)) {
    const u = c.upstreams.find((x) => x.namespace === ns);
    if (!u) throw new Error(`credentials given for ${ns}, which is not a configured upstream (${c.upstreams.map((x) => x.namespace).join(', ')})`);
    u.credentials = creds[ns]!;
  }
  const ttl = get('tagTtl');
  if (ttl !== undefined) c.tagTtlMs = parseDuration(ttl);
  const level = get('logLevel');
  if (level !== undefined) {
    if (!LOG_LEVELS.has(level)) throw new Error(`invalid log level ${JSON.stringify(level)}: one of ${[...LOG_LEVELS].join(', ')}`);
    c.logLevel = level;
  }
  const redis = get('redis');
  if (redis !== undefined) {
    if (!/^rediss?:\/\//.test(redis)) throw new Error(`invalid redis URL ${JSON.stringify(redis)}: expected redis://HOST:PORT`);
    c.redisUrl = redis;
  }
  const mm = get('manifestMemory');
  if (mm !== undefined) c.manifestMemoryBytes = parseSize(mm);
  const bm = get('blobMemory');
  if (bm !== undefined) c.blobMemoryBytes = parseSize(bm);
  const bmi = get('blobMemoryMaxItem');
  if (bmi !== undefined) c.blobMemoryItemBytes = parseSize(bmi);
  const mms = get('maxManifestSize');
  if (mms !== undefined) c.maxManifestBytes = parseSize(mms);
  const ct = get('connectTimeout');
  if (ct !== undefined) c.upstreamTimeouts.connectMs = parseDuration(ct);
  const ht = get('headersTimeout');
  if (ht !== undefined) c.upstreamTimeouts.headersMs = parseDuration(ht);
  const bt = get('bodyIdleTimeout');
  if (bt !== undefined) c.upstreamTimeouts.bodyIdleMs = parseDuration(bt);
  const rt = get('revalidateTimeout');
  if (rt !== undefined) c.upstreamTimeouts.revalidateMs = parseDuration(rt);
  c.fill.maxConcurrent = posInt(get('maxConcurrentFills'), 'maxConcurrentFills') ?? c.fill.maxConcurrent;
  const fq = get('fillQueueTimeout');
  if (fq !== undefined) c.fill.queueTimeoutMs = parseDuration(fq);
  c.fill.abortWhenOrphaned = get('abortOrphanedFills') ?? c.fill.abortWhenOrphaned;
  c.range.maxRanges = posInt(get('maxRanges'), 'maxRanges') ?? c.range.maxRanges;
  c.range.fillOnMiss = get('rangeFillOnMiss') ?? c.range.fillOnMiss;
  c.range.upstreamParallelism = posInt(get('rangeParallelism'), 'rangeParallelism') ?? c.range.upstreamParallelism;
  return c;
}
