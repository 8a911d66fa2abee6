/** A hand-made SVG bar chart of the main figures (no dependencies): one panel per workload. */
import { SERVER_LABEL, type ServerId } from './servers.js';
import { MiB } from './stats.js';
import type { BenchResults } from './types.js';

/** Bar colours per server. */
const COLOR: Record<ServerId, string> = {
  'nginx-static': '#7f7f7f',
  'node-floor': '#9467bd',
  'regmirror-before': '#aec7e8',
  regmirror: '#1f77b4',
  'distribution-proxy': '#d62728',
  'nginx-cache': '#2ca02c',
};

interface Bar {
  label: string;
  value: number;
  server: ServerId;
}

interface Panel {
  title: string;
  unit: string;
  digits: number;
  bars: Bar[];
}

const WIDTH = 760;
const LABEL_W = 230;
const VALUE_W = 110;
const BAR_H = 14;
const GAP = 4;
const TITLE_H = 26;
const PANEL_GAP = 14;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function panels(res: BenchResults): Panel[] {
  const out: Panel[] = [];
  if (res.throughput.length > 0) {
    out.push({
      title: 'Warm 64 MiB blob: throughput (higher is better)',
      unit: 'GB/s',
      digits: 2,
      bars: res.throughput.map((r) => ({ label: `${SERVER_LABEL[r.server]} c=${r.concurrency}`, value: r.gbps, server: r.server })),
    });
  }
  const rpsTitles: [string, string][] = [
    ['blob-1MiB', 'Warm 1 MiB blob: requests/s'],
    ['manifest-tag', 'Warm manifest by tag: requests/s'],
    ['manifest-digest', 'Warm manifest by digest: requests/s'],
  ];
  for (const [target, title] of rpsTitles) {
    const rows = res.rps.filter((r) => r.target === target);
    if (rows.length > 0) {
      out.push({ title: `${title} (higher is better)`, unit: 'req/s', digits: 0, bars: rows.map((r) => ({ label: SERVER_LABEL[r.server], value: r.rps, server: r.server })) });
    }
  }
  if (res.cold.length > 0) {
    out.push({
      title: `Cold fan-out: ${res.params.fanOutClients} clients' wall time / one client's (lower is better)`,
      unit: '×',
      digits: 2,
      bars: res.cold.map((r) => ({ label: SERVER_LABEL[r.server], value: r.ratio, server: r.server })),
    });
    out.push({
      title: 'Cold fan-out: upstream MiB (lower is better)',
      unit: 'MiB',
      digits: 0,
      bars: res.cold.map((r) => ({ label: SERVER_LABEL[r.server], value: r.upstreamBytes / MiB, server: r.server })),
    });
  }
  if (res.range.length > 0) {
    out.push({
      title: 'Multi-range on an uncached blob: MiB read from S3 (lower is better)',
      unit: 'MiB',
      digits: 3,
      bars: res.range.map((r) => ({ label: SERVER_LABEL[r.server], value: r.s3BlobBytes / MiB, server: r.server })),
    });
  }
  if (res.rss.length > 0) {
    out.push({
      title: 'Peak RSS during workload 1 (lower is better)',
      unit: 'MiB',
      digits: 1,
      bars: res.rss.map((r) => ({ label: SERVER_LABEL[r.server], value: r.peakRssMiB, server: r.server })),
    });
  }
  const cluster = res.cluster ?? [];
  if (cluster.length > 0) {
    const n = res.params.clusterMirrors * res.params.clusterClientsPerMirror;
    const name = (r: (typeof cluster)[number]): string => (r.system === 'regmirror-one' ? 'regmirror alone' : `${SERVER_LABEL[r.server]} × ${r.members}`);
    out.push({
      title: `Cluster fan-out: ${n} clients' wall time / one client's (lower is better)`,
      unit: '×',
      digits: 2,
      bars: cluster.map((r) => ({ label: name(r), value: r.ratio, server: r.server })),
    });
    out.push({
      title: 'Cluster fan-out: upstream MiB (lower is better)',
      unit: 'MiB',
      digits: 0,
      bars: cluster.map((r) => ({ label: name(r), value: r.upstreamBytes / MiB, server: r.server })),
    });
  }
  const startup = res.startup ?? [];
  if (startup.length > 0) {
    out.push({
      title: 'regmirror start-up: spawn to listening (lower is better)',
      unit: 'ms',
      digits: 0,
      bars: startup.map((r) => ({ label: r.entries === 0 ? 'empty data dir' : `${r.entries} index entries`, value: r.listenMs, server: 'regmirror' as const })),
    });
  }
  return out;
}

/** Renders the chart. */
export function renderSvg(res: BenchResults): string {
  const ps = panels(res);
  const body: string[] = [];
  let y = 34;
  body.push(`<text x="10" y="20" font-size="15" font-weight="bold">${esc(`regmirror benchmark — ${res.startedAt} (${res.params.mode}, regmirror ${res.revision})`)}</text>`);
  const plotW = WIDTH - LABEL_W - VALUE_W - 20;
  for (const p of ps) {
    body.push(`<text x="10" y="${y + 16}" font-size="13" font-weight="bold">${esc(p.title)}</text>`);
    y += TITLE_H;
    const max = Math.max(...p.bars.map((b) => (Number.isFinite(b.value) ? b.value : 0)), 1e-9);
    for (const b of p.bars) {
      const v = Number.isFinite(b.value) ? b.value : 0;
      const w = Math.max(1, (v / max) * plotW);
      body.push(`<text x="${LABEL_W - 6}" y="${y + BAR_H - 3}" font-size="11" text-anchor="end">${esc(b.label)}</text>`);
      body.push(`<rect x="${LABEL_W}" y="${y}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${COLOR[b.server]}"/>`);
      const text = Number.isFinite(b.value) ? `${b.value.toFixed(p.digits)} ${p.unit}` : 'n/a';
      body.push(`<text x="${(LABEL_W + w + 4).toFixed(1)}" y="${y + BAR_H - 3}" font-size="11">${esc(text)}</text>`);
      y += BAR_H + GAP;
    }
    y += PANEL_GAP;
  }
  const height = y + 10;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif">\n` +
    `<rect width="100%" height="100%" fill="white"/>\n${body.join('\n')}\n</svg>\n`
  );
}
