/**
 * The client side of mirror-to-mirror transfers: a blob (or its tail, `Range: bytes=N-`) from a peer's
 * `GET /_regmirror/peer/blobs/<digest>`, over undici with short connect and body-idle deadlines, so a
 * dead peer is noticed quickly and the fill moves on. The bytes are not trusted: the local fill hashes
 * them like an upstream's.
 */
import { Agent, request } from 'undici';
import type { Digest } from '../oci/digest.js';
import { guardedConnect } from '../upstream/h1-guard.js';

/** The path of the peer endpoint for a digest. */
export const PEER_PREFIX = '/_regmirror/peer/blobs/';
/**
 * Request header asking for a committed copy only (a directory entry claims one): a peer that has only a
 * fill in flight answers a miss, so two mirrors can never end up reading each other's fills in a circle.
 */
export const COMMITTED_ONLY = 'x-regmirror-committed-only';

/** Why a peer transfer failed, as a metric label. */
export type PeerFailureReason = 'connect' | 'status' | 'miss' | 'body' | 'short-body' | 'digest-mismatch' | 'content-range';

/** A peer transfer that failed. */
export class PeerError extends Error {
  constructor(readonly peer: string, readonly reason: PeerFailureReason, message: string, cause?: unknown) {
    super(`peer ${peer}: ${message}`, { cause });
    this.name = 'PeerError';
  }
}

/** An open peer body from `start`. */
export interface PeerBody {
  /** Size of the whole blob, when the peer said. */
  size: number | undefined;
  chunks: AsyncIterable<Uint8Array>;
  destroy(err?: Error): void;
}

/** Options of {@link PeerClient}. */
export interface PeerClientOptions {
  /** Shared secret sent as `Authorization: Bearer` (config `cluster.token`). */
  token: string | undefined;
  /** Longest pause between two body chunks before the peer counts as dead, ms. */
  bodyIdleMs: number;
  /** TCP connect deadline, ms. */
  connectMs?: number;
}

export class PeerClient {
  private readonly agent: Agent;

  constructor(private readonly opts: PeerClientOptions) {
    this.agent = new Agent({ connect: guardedConnect({ timeout: opts.connectMs ?? 1000 }), headersTimeout: 30_000, bodyTimeout: opts.bodyIdleMs, keepAliveTimeout: 10_000 });
  }

  /** Opens `digest` at `peer` from byte `start`. Throws a {@link PeerError}. */
  async open(peer: string, digest: Digest, start: number, signal: AbortSignal, committedOnly = false): Promise<PeerBody> {
    const headers: Record<string, string> = {};
    if (committedOnly) headers[COMMITTED_ONLY] = '1';
    if (this.opts.token) headers.authorization = `Bearer ${this.opts.token}`;
    if (start > 0) headers.range = `bytes=${start}-`;
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(`${peer}${PEER_PREFIX}${digest.value}`, { method: 'GET', headers, signal, dispatcher: this.agent });
    } catch (err) {
      throw new PeerError(peer, 'connect', (err as Error).message, err);
    }
    const fail = async (reason: PeerFailureReason, msg: string): Promise<never> => {
      await res.body.dump().catch(() => undefined);
      throw new PeerError(peer, reason, msg);
    };
    if (res.statusCode === 404) return fail('miss', 'does not have the blob');
    const len = Number(res.headers['content-length']);
    const length = Number.isSafeInteger(len) && len >= 0 ? len : undefined;
    if (start === 0) {
      if (res.statusCode !== 200) return fail('status', `answered ${res.statusCode}`);
      return { size: length, chunks: res.body, destroy: (e) => res.body.destroy(e) };
    }
    if (res.statusCode !== 206) return fail('status', `answered ${res.statusCode} to a range request`);
    const cr = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String(res.headers['content-range'] ?? ''));
    if (!cr || Number(cr[1]) !== start) return fail('content-range', `answered Content-Range ${String(res.headers['content-range'])} for bytes=${start}-`);
    const size = cr[3] === '*' ? undefined : Number(cr[3]);
    return { size, chunks: res.body, destroy: (e) => res.body.destroy(e) };
  }

  async close(): Promise<void> {
    await this.agent.close().catch(() => undefined);
  }
}
