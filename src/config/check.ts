/**
 * Type checks for configuration values. A YAML file, the environment and programmatic callers can all
 * hand over a value of the wrong type (`abortOrphanedFills: "false"`, `listen: 5000`, `maxRanges: 1e400`);
 * each check throws a {@link ConfigError} naming the key, so the start stops with a message a person
 * can act on instead of a `TypeError` deep inside, or a silently truthy string.
 */
import { parseDuration } from './duration.js';
import { parseSize } from './size.js';

/** A configuration value that cannot be used. `key` is the dotted setting name (`limits.headersTimeout`). */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly key: string,
    /** The message without the key. */
    readonly detail: string,
  ) {
    super(`${key}: ${detail}`);
  }
}

/** How a wrong value is shown in a message: its type and a short rendering. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…` : v)}`;
  return `${typeof v} ${String(v)}`;
}

function fail(key: string, expected: string, v: unknown): never {
  throw new ConfigError(key, `expected ${expected}, got ${describe(v)}`);
}

/** A non-empty string. */
export function str(v: unknown, key: string): string {
  if (typeof v !== 'string') fail(key, 'a string', v);
  if (v.trim() === '') throw new ConfigError(key, 'must not be empty');
  return v;
}

/** A real boolean: YAML `true`/`false`, never a string (`"false"` would otherwise be truthy). */
export function bool(v: unknown, key: string): boolean {
  if (typeof v !== 'boolean') fail(key, 'a boolean (true or false, unquoted)', v);
  return v;
}

/** An integer in `[min, max]`. */
export function int(v: unknown, key: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) fail(key, 'an integer', v);
  if (v < min || v > max) throw new ConfigError(key, `must be between ${min} and ${max}, got ${v}`);
  return v;
}

/** A finite number `>= min`. */
export function num(v: unknown, key: string, min: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(key, 'a number', v);
  if (v < min) throw new ConfigError(key, `must be at least ${min}, got ${v}`);
  return v;
}

/** A duration (`500ms`, `30s`, `5m`, or a number of seconds), in milliseconds. */
export function duration(v: unknown, key: string): number {
  if (typeof v !== 'string' && typeof v !== 'number') fail(key, 'a duration such as 500ms, 30s or 5m', v);
  try {
    return parseDuration(v);
  } catch (err) {
    throw new ConfigError(key, (err as Error).message);
  }
}

/** A byte size (`64MiB`, `1GB`, or a number of bytes). */
export function size(v: unknown, key: string): number {
  if (typeof v !== 'string' && typeof v !== 'number') fail(key, 'a size such as 64MiB', v);
  try {
    return parseSize(v);
  } catch (err) {
    throw new ConfigError(key, (err as Error).message);
  }
}

/** A list of non-empty strings. */
export function strList(v: unknown, key: string): string[] {
  if (!Array.isArray(v)) fail(key, 'a list of strings', v);
  return v.map((x, i) => str(x, `${key}[${i}]`));
}

/** A mapping whose keys are all in `allowed` (any keys when it is undefined); returns it as a record. */
export function mapping(v: unknown, key: string, allowed?: ReadonlySet<string>): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) fail(key, 'a mapping', v);
  if (allowed) for (const k of Object.keys(v)) {
    if (!allowed.has(k)) throw new ConfigError(key, `unknown setting ${JSON.stringify(k)} (known: ${[...allowed].join(', ')})`);
  }
  return v as Record<string, unknown>;
}
