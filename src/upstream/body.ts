/** Reading a small upstream body (a manifest, a tag list) into memory, bounded. */
import { MirrorError, UpstreamUnavailable } from '../oci/errors.js';
import { contentLength, type Upstream, type UpstreamResponse } from './client.js';

/**
 * Reads at most `maxBytes` of `res`; more (announced or sent) throws `tooLarge()` and drops the body; a body
 * that fails midway is {@link UpstreamUnavailable} (`what` names it in the message).
 */
export async function readBounded(res: UpstreamResponse, upstream: Upstream, opts: { maxBytes: number; what: string; tooLarge: () => MirrorError }): Promise<Buffer> {
  const drop = () => {
    res.body.on('error', () => undefined);
    res.body.destroy();
  };
  const declared = contentLength(res);
  if (declared !== undefined && declared > opts.maxBytes) {
    drop();
    throw opts.tooLarge();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > opts.maxBytes) {
        drop();
        throw opts.tooLarge();
      }
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    if (err instanceof MirrorError) throw err;
    throw new UpstreamUnavailable(`the upstream ${opts.what} body failed`, { upstream: upstream.namespace, reason: 'body', cause: err });
  }
  return Buffer.concat(chunks, size);
}
