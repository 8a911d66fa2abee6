/**
 * Progress for logs (stdout is not a terminal: CI): one line per finished blob and image, one when
 * an image is resolved or fails, and a total line every `intervalMs`. Plain text, no control characters.
 */
import type { WarmEvent } from './events.js';
import { clean, eta, formatBytes, formatDuration, formatRate, shortDigest } from './format.js';
import { PeriodicTotals, type Output, type Reporter } from './reporter.js';
import { formatSummary, type Summary } from './summary.js';
import type { Warmer } from './walker.js';

/** `[  12.3s]` */
function stamp(ms: number): string {
  return `[${(ms / 1000).toFixed(1).padStart(6)}s]`;
}

/**
 * One total line: bytes, percent, rate, ETA, blobs and images. While images are still being resolved the
 * total is only what is known so far: no percent and no ETA then (not "0 B of 0 B, ETA 0s").
 */
export function totalLine(warmer: Warmer, rate: number): string {
  const t = warmer.totals();
  const imagesDone = warmer.images.filter((i) => i.status === 'done' || i.status === 'failed').length;
  const images = `images ${imagesDone}/${warmer.images.length}`;
  if (t.resolving > 0) {
    const known = t.total > 0 ? ` of ${formatBytes(t.total)} so far` : '';
    return `total: ${formatBytes(t.received)}${known} (${t.resolving} image${t.resolving === 1 ? '' : 's'} resolving), ${formatRate(rate)}, ETA ?; blobs ${t.blobsDone}/${t.blobs}; ${images}`;
  }
  const pct = t.total > 0 ? ` (${Math.floor((t.received / t.total) * 100)}%)` : '';
  const left = eta(t.total - t.received, rate);
  return `total: ${formatBytes(t.received)} of ${formatBytes(t.total)}${pct}, ${formatRate(rate)}, ETA ${left === undefined ? '?' : formatDuration(left)}; blobs ${t.blobsDone}/${t.blobs}; ${images}`;
}

export class LineProgress implements Reporter {
  private readonly periodic: PeriodicTotals;

  constructor(
    private readonly out: Output,
    private readonly warmer: Warmer,
    intervalMs: number,
  ) {
    this.periodic = new PeriodicTotals(warmer, intervalMs, (t, _totals, rate) => this.line(t, totalLine(warmer, rate)));
  }

  start(): void {
    this.periodic.start();
  }

  private line(t: number, text: string): void {
    this.out.write(`${stamp(t)} ${clean(text)}\n`);
  }

  event(e: WarmEvent): void {
    switch (e.type) {
      case 'image-start':
        this.line(e.t, `start ${e.ref}`);
        return;
      case 'image-resolved':
        this.line(e.t, `resolved ${e.ref} -> ${shortDigest(e.digest)} (${e.platforms.join(', ') || 'single manifest'}; ${e.manifests} manifest${e.manifests === 1 ? '' : 's'}, ${e.blobs} blobs, ${formatBytes(e.bytes)})`);
        return;
      case 'blob-done':
        this.line(e.t, `blob ${shortDigest(e.digest)} ${formatBytes(e.size)} in ${formatDuration(e.ms)}${e.ms > 0 ? ` (${formatRate((e.size * 1000) / e.ms)})` : ''} ${e.images.join(', ')}`);
        return;
      case 'blob-failed':
        this.line(e.t, `blob ${shortDigest(e.digest)} FAILED: ${e.error.message}`);
        return;
      case 'image-done':
        this.line(e.t, `done ${e.result.ref}: ${e.result.blobs} blobs, ${formatBytes(e.result.bytes)} in ${formatDuration(e.result.ms)}`);
        return;
      case 'image-failed':
        this.line(e.t, `FAILED ${e.result.ref}: ${e.result.error?.message ?? 'unknown error'}`);
        return;
    }
  }

  finish(summary: Summary): void {
    this.periodic.stop();
    const t = this.warmer.elapsed();
    const tot = this.warmer.totals();
    const avg = t > 0 ? (tot.received * 1000) / t : 0;
    this.line(t, totalLine(this.warmer, avg));
    this.out.write(`${formatSummary(summary).join('\n')}\n`);
  }
}
