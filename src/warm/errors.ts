/** Why warming an image failed, in words a CI log reader can act on. */

/**
 * - `reference`: the IMAGE argument cannot be parsed.
 * - `not-found`: the mirror (its upstream) does not have the tag, manifest or blob.
 * - `mirror`: the mirror answered with another error (4xx/5xx), e.g. an unconfigured registry.
 * - `unreachable`: no HTTP answer from the mirror (refused, reset, timeout).
 * - `verify`: bytes that do not match their digest or size.
 * - `invalid`: a manifest that cannot be walked (bad JSON, unknown media type, too large).
 * - `platform`: an index without the requested platform.
 */
export type WarmErrorKind = 'reference' | 'not-found' | 'mirror' | 'unreachable' | 'verify' | 'invalid' | 'platform';

/** A failure while warming, with a kind for machines and a message for people. */
export class WarmError extends Error {
  override readonly name = 'WarmError';
  constructor(
    readonly kind: WarmErrorKind,
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** True for failures a retry may cure (transport errors, 429, 502/503/504). */
  get transient(): boolean {
    return this.kind === 'unreachable' || (this.kind === 'mirror' && this.status !== undefined && [429, 502, 503, 504].includes(this.status));
  }
}

/** Turns anything thrown into a {@link WarmError}. */
export function asWarmError(err: unknown): WarmError {
  if (err instanceof WarmError) return err;
  const e = err as { name?: string; message?: string; code?: string };
  if (e?.name === 'ReferenceError' || e?.name === 'PlatformError') return new WarmError(e.name === 'PlatformError' ? 'platform' : 'reference', e.message ?? String(err));
  return new WarmError('unreachable', e?.code ? `${e.code}: ${e.message ?? ''}`.trim() : (e?.message ?? String(err)), undefined, { cause: err });
}
