/** Numbers for people: sizes, rates, durations. */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** `1.5 MiB`, `812 B`. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '?';
  let i = 0;
  let v = n;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ${UNITS[i]}`;
}

/** `3.2 MiB/s`. */
export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(Math.round(bytesPerSecond))}/s`;
}

/** `850ms`, `12.3s`, `4m05s`, `1h02m`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  if (ms === 0) return '0s';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** A short digest for lines: `sha256:0123456789ab`. */
export function shortDigest(d: string): string {
  const i = d.indexOf(':');
  return i >= 0 ? d.slice(0, i + 13) : d.slice(0, 12);
}

/**
 * Transfer rate over a sliding window, so a stall shows as a falling rate and the ETA follows
 * what the link does now rather than since the start.
 */
export class RateMeter {
  private readonly samples: Array<{ t: number; bytes: number }> = [];
  constructor(private readonly windowMs = 5000) {}

  /** Records the cumulative byte count at time `t` (ms). */
  sample(t: number, bytes: number): void {
    this.samples.push({ t, bytes });
    while (this.samples.length > 2 && this.samples[0]!.t < t - this.windowMs) this.samples.shift();
  }

  /** Bytes per second over the window (0 until two samples). */
  rate(): number {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.t <= first.t) return 0;
    return ((last.bytes - first.bytes) * 1000) / (last.t - first.t);
  }
}

/** ETA in ms for `remaining` bytes at `rate` B/s (undefined when unknown). */
export function eta(remaining: number, rate: number): number | undefined {
  if (remaining <= 0) return 0;
  if (rate <= 0) return undefined;
  return (remaining / rate) * 1000;
}

/**
 * Removes control characters (ESC, CR, BEL…) from text that came from elsewhere (error messages from
 * the mirror, references from a LIST file): CI logs must not get them, and a terminal must not obey them.
 */
export function clean(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ');
}
