/** The end of a run: a table per image, the totals, and the mirror's own account from `/metrics`. */
import type { ImageResult } from './events.js';
import { clean, formatBytes, formatDuration, formatRate } from './format.js';
import type { MirrorCounters } from './mirror-metrics.js';

/** Everything `regmirror warm` found, for people (formatted) and machines (`--json`). */
export interface Summary {
  type: 'summary';
  ok: boolean;
  mirror: string;
  images: { total: number; ok: number; failed: number };
  /** Distinct blobs fetched in this run (a blob shared by two images counts once). */
  blobs: number;
  /** Bytes of those blobs. */
  bytes: number;
  /** Manifests fetched by digest (summed over images). */
  manifests: number;
  ms: number;
  results: ImageResult[];
  /** The mirror's counters over the run, or why they are not known. */
  mirrorCounters: MirrorCounters | { error: string };
  failures: Array<{ input: string; ref: string; kind: string; message: string }>;
}

/** Pads cells to a table with two spaces between columns. */
export function table(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd());
}

/** The summary as text lines (no control characters). */
export function formatSummary(s: Summary): string[] {
  const rows = [['IMAGE', 'PLATFORMS', 'MANIFESTS', 'BLOBS', 'SIZE', 'TIME', 'RESULT']];
  for (const r of s.results) {
    rows.push([
      clean(r.ref),
      r.platforms.join(',') || '-',
      String(r.manifests),
      String(r.blobs),
      formatBytes(r.bytes),
      formatDuration(r.ms),
      r.ok ? (r.warnings.length ? `ok (${r.warnings.length} warning${r.warnings.length > 1 ? 's' : ''})` : 'ok') : `FAILED (${r.error?.kind ?? 'error'})`,
    ]);
  }
  const out = ['', 'Summary', ...table(rows).map((l) => `  ${l}`), ''];
  const rate = s.ms > 0 ? formatRate((s.bytes * 1000) / s.ms) : '-';
  out.push(`  images: ${s.images.ok} warmed, ${s.images.failed} failed, of ${s.images.total}`);
  out.push(`  blobs: ${s.blobs} (${formatBytes(s.bytes)}) in ${formatDuration(s.ms)} (${rate})`);
  const c = s.mirrorCounters;
  if ('error' in c) {
    out.push(`  from cache vs upstream: unknown (${clean(c.error)})`);
  } else {
    out.push(`  from cache vs upstream (mirror /metrics, all its clients during the run):`);
    out.push(`    blobs:     ${c.blobHits} from cache, ${c.blobMisses} from upstream`);
    out.push(`    manifests: ${c.manifestHits} from cache, ${c.manifestMisses} from upstream`);
    out.push(`    bytes:     ${formatBytes(c.bytesFromCache)} from cache, ${formatBytes(c.bytesFromUpstream)} from upstream (${c.upstreamRequests} upstream requests, ${formatBytes(c.upstreamBytes)} received)`);
  }
  for (const r of s.results) for (const w of r.warnings) out.push(`  warning: ${clean(r.ref)}: ${clean(w)}`);
  if (s.failures.length) {
    out.push('', `FAILED: ${s.failures.length} image${s.failures.length > 1 ? 's' : ''}:`);
    for (const f of s.failures) out.push(`  ${clean(f.input)}: ${clean(f.message)}`);
  }
  return out;
}
