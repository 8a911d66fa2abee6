/**
 * A registry client for one mirror, over plain HTTP(S) with undici: the requests a pulling client
 * makes (manifests by tag with a given Accept, manifests and blobs by digest), addressed the way
 * containerd addresses a mirror (`?ns=<registry host>` on every request), plus the mirror's
 * `/metrics` text. Bytes are checked against their digest here, as a client would.
 */
import { createHash } from 'node:crypto';
import { Agent, request, type Dispatcher } from 'undici';
import { guardedConnect } from '../upstream/h1-guard.js';
import type { Digest } from '../oci/digest.js';
import { WarmError } from './errors.js';

/** A repository on a registry, as the mirror is asked for it. */
export interface RepoTarget {
  registry: string;
  repository: string;
}

/** A manifest answer (HEAD: `bytes` is empty). */
export interface ManifestAnswer {
  status: number;
  digest: string | undefined;
  mediaType: string;
  size: number | undefined;
  bytes: Buffer;
}

/** Options for {@link MirrorClient}. */
export interface MirrorClientOptions {
  /** Connections to the mirror at most (default 8); set it to the warm concurrency. */
  connections?: number;
  /** Attempts per request for transient failures (default 3). */
  attempts?: number;
  /** Largest manifest accepted (default 4 MiB, as distribution). */
  maxManifestBytes?: number;
  /** Idle time allowed while headers or body bytes are awaited (default 300 s: a mirror may be filling a big blob slowly). */
  timeoutMs?: number;
}

const USER_AGENT = 'regmirror-warm';

function header(h: Dispatcher.ResponseData['headers'], name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** See the module comment. */
export class MirrorClient {
  readonly base: string;
  private readonly agent: Agent;
  private readonly attempts: number;
  private readonly maxManifestBytes: number;

  constructor(mirrorUrl: string, opts: MirrorClientOptions = {}) {
    let u: URL;
    try {
      u = new URL(mirrorUrl);
    } catch {
      throw new WarmError('reference', `invalid mirror URL ${JSON.stringify(mirrorUrl)}: expected http://HOST:PORT`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new WarmError('reference', `invalid mirror URL ${JSON.stringify(mirrorUrl)}: scheme must be http or https`);
    this.base = u.origin + u.pathname.replace(/\/+$/, '');
    const timeout = opts.timeoutMs ?? 300_000;
    this.agent = new Agent({ connect: guardedConnect({}), connections: opts.connections ?? 8, headersTimeout: timeout, bodyTimeout: timeout });
    this.attempts = Math.max(1, opts.attempts ?? 3);
    this.maxManifestBytes = opts.maxManifestBytes ?? 4 * 2 ** 20;
  }

  /** The URL of a repository endpoint with the `ns` query. */
  url(target: RepoTarget, suffix: string): string {
    return `${this.base}/v2/${target.repository}/${suffix}?ns=${encodeURIComponent(target.registry)}`;
  }

  /** HEAD or GET a manifest by tag or digest with the given Accept header lines. */
  async manifest(target: RepoTarget, reference: string, method: 'GET' | 'HEAD', accept: string | readonly string[]): Promise<ManifestAnswer> {
    const what = `${target.registry}/${target.repository}${reference.includes(':') ? '@' : ':'}${reference}`;
    return this.retry(async () => {
      const res = await this.send(this.url(target, `manifests/${reference}`), method, { accept: [...(typeof accept === 'string' ? [accept] : accept)] });
      if (res.statusCode !== 200) throw await this.fail(res, `manifest ${what}`);
      const size = Number(header(res.headers, 'content-length'));
      const bytes = method === 'HEAD' ? (await res.body.dump(), Buffer.alloc(0)) : await this.readBounded(res, what);
      return {
        status: res.statusCode,
        digest: header(res.headers, 'docker-content-digest'),
        mediaType: (header(res.headers, 'content-type') ?? '').split(';')[0]!.trim(),
        size: Number.isFinite(size) ? size : undefined,
        bytes,
      };
    });
  }

  /**
   * GETs a blob and discards it while hashing: resolves with its size once the bytes match `digest`
   * (and `size`, when given). `onBytes` gets each chunk's length (negative to undo a failed attempt);
   * `keep`, when given, receives the chunks (for small blobs that are read, like image configs).
   */
  async blob(target: RepoTarget, digest: Digest, size: number | undefined, onBytes: (n: number) => void, keep?: Buffer[]): Promise<number> {
    return this.retry(async () => {
      const res = await this.send(this.url(target, `blobs/${digest.value}`), 'GET', {});
      if (res.statusCode !== 200) throw await this.fail(res, `blob ${digest.value}`);
      const hash = createHash(digest.algorithm);
      let n = 0;
      keep?.splice(0);
      try {
        for await (const chunk of res.body as AsyncIterable<Buffer>) {
          hash.update(chunk);
          n += chunk.length;
          keep?.push(chunk);
          onBytes(chunk.length);
          if (size !== undefined && n > size) throw new WarmError('verify', `blob ${digest.value}: more than the ${size} bytes its descriptor gives`);
        }
      } catch (err) {
        onBytes(-n);
        res.body.destroy();
        if (err instanceof WarmError) throw err;
        throw new WarmError('unreachable', `blob ${digest.value}: the transfer broke after ${n} bytes (${(err as Error).message})`, undefined, { cause: err });
      }
      const got = `${digest.algorithm}:${hash.digest('hex')}`;
      if (got !== digest.value || (size !== undefined && n !== size)) {
        onBytes(-n);
        throw new WarmError('verify', `blob ${digest.value}: the mirror sent ${n} bytes hashing to ${got}${size !== undefined ? ` (descriptor: ${size} bytes)` : ''}`);
      }
      return n;
    });
  }

  /** The mirror's Prometheus text, or an Error saying why there is none. */
  async metricsText(): Promise<string | Error> {
    try {
      const res = await this.send(`${this.base}/metrics`, 'GET', {});
      if (res.statusCode !== 200) {
        await res.body.dump();
        return new Error(`GET /metrics answered ${res.statusCode}`);
      }
      return await res.body.text();
    } catch (err) {
      return err as Error;
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  private async send(url: string, method: 'GET' | 'HEAD', headers: Record<string, string | string[]>): Promise<Dispatcher.ResponseData> {
    try {
      return await request(url, { method, dispatcher: this.agent, headers: { 'user-agent': USER_AGENT, 'accept-encoding': 'identity', ...headers } });
    } catch (err) {
      const e = err as { code?: string; message?: string };
      throw new WarmError('unreachable', `mirror ${this.base} did not answer: ${e.code ?? ''} ${e.message ?? ''}`.replace(/\s+/g, ' ').trim(), undefined, { cause: err });
    }
  }

  private async retry<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!(err instanceof WarmError) || !err.transient || attempt >= this.attempts) throw err;
        await sleep(500 * 3 ** (attempt - 1));
      }
    }
  }

  private async readBounded(res: Dispatcher.ResponseData, what: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of res.body as AsyncIterable<Buffer>) {
      n += c.length;
      if (n > this.maxManifestBytes) {
        res.body.destroy();
        throw new WarmError('invalid', `manifest ${what} is larger than ${this.maxManifestBytes} bytes`);
      }
      chunks.push(c);
    }
    return Buffer.concat(chunks);
  }

  /** A WarmError for a non-200 answer, with the registry error code and message when there is a body. */
  private async fail(res: Dispatcher.ResponseData, what: string): Promise<WarmError> {
    let detail = '';
    try {
      const text = (await res.body.text()).slice(0, 4096);
      const parsed = JSON.parse(text) as { errors?: Array<{ code?: string; message?: string }> };
      const first = parsed.errors?.[0];
      if (first) detail = `${first.code ?? ''}${first.message ? `: ${first.message}` : ''}`;
    } catch {
      /* HEAD answers and non-JSON bodies carry no detail */
    }
    const status = res.statusCode;
    const notConfigured = /NAME_UNKNOWN.*not configured/i.test(detail);
    const kind = status === 404 && !notConfigured ? 'not-found' : 'mirror';
    const what2 = kind === 'not-found' ? 'not found' : notConfigured ? 'the mirror has no upstream for this registry' : 'the mirror answered with an error';
    return new WarmError(kind, `${what}: ${what2} (HTTP ${status}${detail ? ` ${detail}` : ''})`, status);
  }
}
