/** A whole `regmirror warm` run: images in, reporter fed, summary out. */
import { MirrorClient } from './client.js';
import type { ImageResult } from './events.js';
import { countersOf, diffCounters, type MirrorCounters } from './mirror-metrics.js';
import type { Platform } from './platform.js';
import { Pool } from './pool.js';
import type { Reporter } from './reporter.js';
import type { Summary } from './summary.js';
import { Warmer } from './walker.js';

/** Options for {@link warmImages}. */
export interface RunOptions {
  mirror: string;
  platforms: Platform[] | 'all';
  /** Blob transfers at once (manifest requests get as many slots of their own, at least 2). */
  concurrency: number;
  /** Builds the progress display once the warmer exists. */
  reporter: (warmer: Warmer) => Reporter;
}

async function counters(client: MirrorClient): Promise<MirrorCounters | Error> {
  const text = await client.metricsText();
  return text instanceof Error ? text : countersOf(text);
}

/** Warms every image (all at once; transfers bounded by the pool) and returns the summary. */
export async function warmImages(images: string[], opts: RunOptions): Promise<Summary> {
  const manifestSlots = Math.max(2, opts.concurrency);
  const client = new MirrorClient(opts.mirror, { connections: opts.concurrency + manifestSlots });
  try {
    const pools = { blobs: new Pool(opts.concurrency), manifests: new Pool(manifestSlots) };
    let reporter: Reporter | undefined;
    const warmer = new Warmer(client, pools, (e) => reporter?.event(e), { platforms: opts.platforms });
    reporter = opts.reporter(warmer);
    const before = await counters(client);
    reporter.start();
    const results: ImageResult[] = await Promise.all(images.map((i) => warmer.warm(i)));
    const after = await counters(client);
    let mirrorCounters: Summary['mirrorCounters'];
    if (before instanceof Error) mirrorCounters = { error: `GET ${client.base}/metrics: ${before.message}` };
    else if (after instanceof Error) mirrorCounters = { error: `GET ${client.base}/metrics: ${after.message}` };
    else mirrorCounters = diffCounters(before, after);
    const done = [...warmer.blobs.values()].filter((b) => b.status === 'done');
    const failures = results.filter((r) => !r.ok).map((r) => ({ input: r.input, ref: r.ref, kind: r.error?.kind ?? 'mirror', message: r.error?.message ?? 'unknown error' }));
    const summary: Summary = {
      type: 'summary',
      ok: failures.length === 0,
      mirror: client.base,
      images: { total: results.length, ok: results.length - failures.length, failed: failures.length },
      blobs: done.length,
      bytes: done.reduce((s, b) => s + b.size, 0),
      manifests: results.reduce((s, r) => s + r.manifests, 0),
      ms: Math.round(warmer.elapsed()),
      results,
      mirrorCounters,
      failures,
    };
    reporter.finish(summary);
    return summary;
  } finally {
    await client.close();
  }
}
