/** Durations in config: `500ms`, `30s`, `5m`, `2h`, `1d`, or a bare number of seconds. */
const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses a duration into milliseconds; throws on anything else. */
export function parseDuration(value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new Error(`invalid duration: ${value}`);
    return value * 1000;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(value);
  if (!m) throw new Error(`invalid duration: ${JSON.stringify(value)} (use e.g. 500ms, 30s, 5m, 2h)`);
  return Math.round(Number(m[1]) * UNITS[m[2] ?? 's']!);
}
