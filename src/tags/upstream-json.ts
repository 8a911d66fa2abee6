/**
 * Reads a small JSON answer of an upstream (a tag list, a referrers index) into memory, bounded: an
 * upstream that sends more than the limit, or something that is not JSON, is an unusable upstream
 * answer (503), never a crash or an unbounded buffer.
 */
import { UpstreamUnavailable } from '../oci/errors.js';
import type { Upstream, UpstreamResponse } from '../upstream/client.js';
import { readBounded } from '../upstream/body.js';
import type { Metrics } from '../metrics.js';

/** Reads and parses an upstream JSON body of at most `maxBytes`. `what` names it in errors (`tags list`). */
export async function readUpstreamJson(res: UpstreamResponse, upstream: Upstream, opts: { maxBytes: number; what: string; kind: string; metrics: Metrics }): Promise<{ json: unknown; bytes: Buffer }> {
  const { maxBytes, what } = opts;
  const tooLarge = () => new UpstreamUnavailable(`the upstream ${what} is larger than ${maxBytes} bytes`, { upstream: upstream.namespace, reason: 'oversize', detail: { limit: maxBytes } });
  const bytes = await readBounded(res, upstream, { maxBytes, what, tooLarge });
  const size = bytes.length;
  opts.metrics.upstreamBytes.inc({ upstream: upstream.namespace, kind: opts.kind }, size);
  try {
    return { json: JSON.parse(bytes.toString('utf8')) as unknown, bytes };
  } catch {
    throw new UpstreamUnavailable(`the upstream sent a ${what} that is not JSON`, { upstream: upstream.namespace, reason: 'invalid-json' });
  }
}
