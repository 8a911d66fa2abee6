/**
 * What the mirror itself says it did during the run, from its Prometheus counters read before and
 * after: requests answered from cache vs upstream, bytes served from cache vs fetched upstream, and
 * upstream requests. These are mirror-wide: other clients pulling at the same time are counted too.
 * Nothing is added to the server for this; a mirror without `/metrics` gives no split.
 */

/** One sample line: name, labels, value. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format (the subset prom-client writes: no timestamps needed). */
export function parsePrometheus(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    const value = Number(m[4]);
    if (Number.isFinite(value)) out.push({ name: m[1]!, labels, value });
  }
  return out;
}

function sum(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
}

/** The counters warm reports. */
export interface MirrorCounters {
  blobHits: number;
  blobMisses: number;
  manifestHits: number;
  manifestMisses: number;
  /** Body bytes the mirror served from committed cache files. */
  bytesFromCache: number;
  /** Body bytes served from fills in flight or passed through (i.e. fetched upstream). */
  bytesFromUpstream: number;
  upstreamRequests: number;
  upstreamBytes: number;
}

/** Reads the counters from a `/metrics` text. */
export function countersOf(text: string): MirrorCounters {
  const s = parsePrometheus(text);
  return {
    blobHits: sum(s, 'regmirror_cache_hits_total', { kind: 'blob' }),
    blobMisses: sum(s, 'regmirror_cache_misses_total', { kind: 'blob' }),
    manifestHits: sum(s, 'regmirror_cache_hits_total', { kind: 'manifest' }),
    manifestMisses: sum(s, 'regmirror_cache_misses_total', { kind: 'manifest' }),
    bytesFromCache: sum(s, 'regmirror_bytes_served_total', { source: 'cache' }),
    bytesFromUpstream: sum(s, 'regmirror_bytes_served_total', { source: 'fill' }) + sum(s, 'regmirror_bytes_served_total', { source: 'upstream' }),
    upstreamRequests: sum(s, 'regmirror_upstream_requests_total'),
    upstreamBytes: sum(s, 'regmirror_upstream_bytes_total'),
  };
}

/** `after - before`, field by field. */
export function diffCounters(before: MirrorCounters, after: MirrorCounters): MirrorCounters {
  const out = { ...after };
  for (const k of Object.keys(out) as Array<keyof MirrorCounters>) out[k] = after[k] - before[k];
  return out;
}
