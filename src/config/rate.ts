/** Transfer rates in config: `50MB/s`, `8MiB/s`, `20MB` (per second implied), bytes per second as a number; 0 or `unlimited` turns a limit off. */
import { parseSize } from './size.js';

/** Parses a rate into bytes per second (0 = unlimited); throws on anything else. */
export function parseRate(value: string | number): number {
  if (typeof value === 'number') return parseSize(value);
  const v = value.trim();
  if (/^(unlimited|none|off)$/i.test(v)) return 0;
  const m = /^(.*?)(?:\s*\/\s*s(?:ec)?)?$/i.exec(v);
  try {
    return parseSize(m![1]!);
  } catch {
    throw new Error(`invalid rate: ${JSON.stringify(value)} (use e.g. 50MB/s, 8MiB/s, or unlimited)`);
  }
}
