/**
 * Progress on a terminal: one live bar per image and a total line (bytes, rate, ETA), redrawn in
 * place about ten times a second. Events worth keeping (failures) are printed above the bars.
 * {@link renderFrame} is pure (state and width in, lines out) so it is tested without a terminal.
 */
import type { WarmEvent } from './events.js';
import { clean, eta, formatBytes, formatDuration, formatRate, RateMeter } from './format.js';
import type { Output, Reporter } from './reporter.js';
import { formatSummary, type Summary } from './summary.js';
import type { ImageProgress, Warmer } from './walker.js';

/** One bar's data. */
export interface BarRow {
  label: string;
  status: ImageProgress['status'] | 'total';
  received: number;
  total: number;
  /** Bytes per second now. */
  rate: number;
  /** The total row: images still being resolved, so `total` is not final yet (no percent, no ETA). */
  resolving?: number;
}

const FULL = '█';
const EMPTY = '░';

function bar(received: number, total: number, width: number): string {
  const frac = total > 0 ? Math.min(1, received / total) : 0;
  const n = Math.round(frac * width);
  return FULL.repeat(n) + EMPTY.repeat(width - n);
}

function fit(s: string, width: number): string {
  if (s.length <= width) return s.padEnd(width);
  return `…${s.slice(s.length - width + 1)}`;
}

/** Whether the row's total is not final yet (images still being resolved): no percent, no ETA. */
function stillResolving(row: BarRow): boolean {
  return row.resolving !== undefined && row.resolving > 0;
}

/** The text after a row's bar: bytes, rate and ETA while fetching, else the state. */
export function rowTail(row: BarRow): string {
  if (row.status === 'resolving') return 'resolving…';
  if (row.status === 'failed') return 'FAILED';
  if (row.status === 'done') return `${formatBytes(row.total)} done`;
  if (stillResolving(row)) return `${formatBytes(row.received)}/${row.total > 0 ? `${formatBytes(row.total)}+` : '?'} ${formatRate(row.rate)} ETA ? (${row.resolving} resolving)`;
  const left = eta(row.total - row.received, row.rate);
  return `${formatBytes(row.received)}/${formatBytes(row.total)} ${formatRate(row.rate)} ETA ${left === undefined ? '?' : formatDuration(left)}`;
}

/**
 * Renders one bar row in `width - 1` columns or fewer (a full-width line wraps on some terminals, and
 * a wrapped line breaks redrawing in place). Rows of one frame get the same `labelWidth` and
 * `tailWidth`, so their bars line up.
 */
export function renderRow(row: BarRow, width: number, labelWidth: number, tailWidth?: number): string {
  const partial = stillResolving(row);
  const pct = row.total > 0 && !partial ? `${Math.floor((Math.min(row.received, row.total) / row.total) * 100)}%`.padStart(4) : '   -';
  const tail = rowTail(row);
  const tw = Math.max(tail.length, tailWidth ?? 0);
  const usable = Math.max(20, width - 1);
  const label = fit(clean(row.label), Math.min(labelWidth, Math.max(8, usable - tw - 12)));
  const barWidth = Math.max(5, Math.min(30, usable - label.length - pct.length - tw - 3));
  return `${label} ${bar(row.received, partial ? 0 : row.total, barWidth)} ${pct} ${tail}`.slice(0, usable);
}

/**
 * The frame: image rows (running ones first when they do not all fit in `maxRows - 1`, with a line
 * counting the rest) and the total row last.
 */
export function renderFrame(rows: BarRow[], total: BarRow, width: number, maxRows: number): string[] {
  const room = Math.max(1, maxRows - 2);
  let shown = rows;
  let hidden = 0;
  if (rows.length > room) {
    const active = rows.filter((r) => r.status === 'fetching' || r.status === 'resolving');
    const rest = rows.filter((r) => r.status !== 'fetching' && r.status !== 'resolving');
    shown = [...active, ...rest.slice(-Math.max(0, room - active.length))].slice(0, room);
    hidden = rows.length - shown.length;
  }
  const labelWidth = Math.max(5, ...shown.map((r) => r.label.length), total.label.length);
  const tailWidth = Math.max(...[...shown, total].map((r) => rowTail(r).length));
  const lines = shown.map((r) => renderRow(r, width, labelWidth, tailWidth));
  if (hidden) lines.push(`  … ${hidden} more image${hidden > 1 ? 's' : ''}`.slice(0, Math.max(20, width - 1)));
  lines.push(renderRow(total, width, labelWidth, tailWidth));
  return lines;
}

/** A terminal as the TTY reporter needs it. */
export interface Terminal extends Output {
  columns?: number;
  rows?: number;
}

export class TtyProgress implements Reporter {
  private timer: NodeJS.Timeout | undefined;
  private drawn = 0;
  private readonly meters = new Map<ImageProgress, RateMeter>();
  private readonly totalMeter = new RateMeter();

  constructor(
    private readonly term: Terminal,
    private readonly warmer: Warmer,
    private readonly frameMs = 100,
  ) {}

  start(): void {
    this.term.write('\x1b[?25l');
    this.draw();
    this.timer = setInterval(() => this.draw(), this.frameMs);
    this.timer.unref();
  }

  /** Erases the bars drawn last (the cursor is left where they started). */
  private erase(): void {
    if (this.drawn > 0) this.term.write(`\x1b[${this.drawn}A\r\x1b[J`);
    this.drawn = 0;
  }

  private rows(): { rows: BarRow[]; total: BarRow } {
    const t = this.warmer.elapsed();
    const rows = this.warmer.images.map((img): BarRow => {
      let m = this.meters.get(img);
      if (!m) this.meters.set(img, (m = new RateMeter()));
      const received = img.blobs.reduce((s, b) => s + b.received, 0);
      m.sample(t, received);
      return { label: img.ref, status: img.status, received, total: img.total, rate: m.rate() };
    });
    const totals = this.warmer.totals();
    this.totalMeter.sample(t, totals.received);
    const label = `total (${totals.blobsDone}/${totals.blobs} blobs)`;
    return { rows, total: { label, status: 'total', received: totals.received, total: totals.total, rate: this.totalMeter.rate(), resolving: totals.resolving } };
  }

  private draw(): void {
    const { rows, total } = this.rows();
    const lines = renderFrame(rows, total, this.term.columns || 80, this.term.rows || 24);
    this.erase();
    this.term.write(`${lines.join('\n')}\n`);
    this.drawn = lines.length;
  }

  event(e: WarmEvent): void {
    if (e.type === 'image-failed') {
      this.erase();
      this.term.write(`FAILED ${clean(e.result.ref)}: ${clean(e.result.error?.message ?? 'unknown error')}\n`);
      this.draw();
    }
  }

  finish(summary: Summary): void {
    if (this.timer) clearInterval(this.timer);
    this.draw();
    this.term.write(`\x1b[?25h${formatSummary(summary).join('\n')}\n`);
  }

  /** Gives the cursor back (on Ctrl-C). */
  abort(): void {
    if (this.timer) clearInterval(this.timer);
    this.term.write('\x1b[?25h\n');
  }
}
