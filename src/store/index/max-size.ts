/**
 * The cache cap: `maxSize` is bytes (`10GB`, `512MiB`, `1073741824`) or a share of the filesystem
 * that holds the data dir (`80%`). A share is resolved against the filesystem's size each time
 * it is asked (a volume can be grown under a running mirror).
 */
import { statfs } from 'node:fs/promises';
import { parseSize } from '../../config/size.js';

/** A parsed `maxSize`. */
export type MaxSize = { kind: 'bytes'; bytes: number } | { kind: 'percent'; percent: number };

/** The default cap: 80 % of the data dir's filesystem (room for logs, other files, one big fill). */
export const DEFAULT_MAX_SIZE: MaxSize = { kind: 'percent', percent: 80 };

/** Parses `maxSize`; throws a clear error for anything else. */
export function parseMaxSize(value: string | number): MaxSize {
  if (typeof value === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(value);
    if (m) {
      const percent = Number(m[1]);
      if (!(percent > 0 && percent <= 100)) throw new Error(`invalid maxSize: ${JSON.stringify(value)} (a share must be above 0 % and at most 100 %)`);
      return { kind: 'percent', percent };
    }
  }
  let bytes: number;
  try {
    bytes = parseSize(value);
  } catch {
    throw new Error(`invalid maxSize: ${JSON.stringify(value)} (use bytes like 10GB, 512MiB, or a share like 80%)`);
  }
  if (bytes <= 0) throw new Error(`invalid maxSize: ${JSON.stringify(value)} (must be above 0)`);
  return { kind: 'bytes', bytes };
}

/** Size and free space of the filesystem holding `dir`, bytes (free = available to us, not root). */
export async function filesystemSpace(dir: string): Promise<{ size: number; free: number }> {
  const s = await statfs(dir);
  return { size: s.blocks * s.bsize, free: s.bavail * s.bsize };
}

/** The cap in bytes for `dir`. */
export async function resolveCap(max: MaxSize, dir: string): Promise<number> {
  if (max.kind === 'bytes') return max.bytes;
  const { size } = await filesystemSpace(dir);
  return Math.floor((size * max.percent) / 100);
}

/** Formats bytes for people: `1.5 GiB`. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}
