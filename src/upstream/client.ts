/**
 * One upstream registry: sends requests with keep-alive (undici), authenticates (see auth.ts),
 * follows redirects by hand (never carrying Authorization to another origin), asks for identity
 * encoding so bytes match their digest, and turns transport failures into {@link UpstreamUnavailable}.
 *
 * Every host the upstream names — a redirect's Location, a token realm elsewhere — is reached through
 * a second dispatcher whose connector applies the trust policy (trust.ts) to the addresses it connects
 * to. Both dispatchers are composed with {@link retryUnanswered} (retry.ts): a GET or HEAD whose connection
 * dropped before any answer (the keep-alive race) is sent once more. The redirect loop stays our own rather than undici's `interceptors.redirect`: that interceptor has
 * no per-hop hook (so no refusal with a reason, no log line naming the refused host), hides hops from
 * the per-request metrics, answers the last 3xx as if final when hops run out, and would send the
 * first hop through the unpoliced dispatcher's pools; the policy itself does live in undici's parts
 * (a custom `connect` built with `buildConnector` and a checking `lookup`).
 */
import { Agent, request, type Dispatcher } from 'undici';
import { guardedConnect, guardedConnector } from './h1-guard.js';
import type { TrustPolicy } from '../config/types.js';
import { addressRefusal, UpstreamTrust } from './trust.js';
import type { IncomingHttpHeaders } from 'node:http';
import { UpstreamUnavailable, type MirrorError } from '../oci/errors.js';
import type { UpstreamConfig, UpstreamTimeouts } from '../config/types.js';
import type { Metrics } from '../metrics.js';
import type { Logger } from '../log.js';
import { UpstreamAuth } from './auth.js';
import { errorForUpstreamStatus, type UpstreamKind } from './status.js';
import type { UpstreamObserver } from './observer.js';
import { retryUnanswered } from './retry.js';

/** Redirect hops followed before giving up (containerd uses 10 as well). */
export const MAX_REDIRECTS = 10;
/** Bytes of an upstream error body read for its message. */
const MAX_ERROR_BODY = 16 * 1024;

const USER_AGENT = 'regmirror/0.1 (+pull-through cache)';

/** A request to an upstream. */
export interface UpstreamRequest {
  kind: UpstreamKind;
  method: 'GET' | 'HEAD';
  /** The upstream repository (after `library/` mapping); it decides the auth scope. */
  repository: string;
  /** Path (and query) under the upstream URL, starting with `/v2/`. */
  path: string;
  /** Extra headers (Accept, Range). Never the client's Authorization. */
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** A final (non-redirect) upstream answer. The caller must consume or destroy `body`. */
export interface UpstreamResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Dispatcher.ResponseData['body'];
  /** The URL that answered (after redirects). */
  url: string;
}

/** Shared dependencies of every upstream. */
export interface UpstreamDeps {
  /** The keep-alive dispatcher for the configured upstream origins (shared by every upstream). */
  dispatcher: Dispatcher;
  timeouts: UpstreamTimeouts;
  /** Where the upstream may send the mirror (redirect targets, token realms on other hosts). */
  trust: TrustPolicy;
  metrics: Metrics;
  log: Logger;
  /** Told about every answer and transport failure (the status page's upstream health). */
  observer?: UpstreamObserver;
}

/** Creates the keep-alive dispatcher shared by all upstreams. */
export function createDispatcher(timeouts: UpstreamTimeouts, trust?: UpstreamTrust): Agent {
  const connect = { timeout: timeouts.connectMs };
  return new Agent({
    connect: trust ? guardedConnector(trust.connector(connect)) : guardedConnect(connect),
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 600_000,
    headersTimeout: timeouts.headersMs,
    bodyTimeout: timeouts.bodyIdleMs,
    connections: 128,
  });
}

function header(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/** An answer's Content-Length when it sent a valid one. */
export function contentLength(res: UpstreamResponse): number | undefined {
  const raw = res.headers['content-length'];
  if (raw === undefined || !/^\d{1,16}$/.test(raw)) return undefined;
  const n = Number(raw);
  return Number.isSafeInteger(n) ? n : undefined;
}

export class Upstream {
  readonly namespace: string;
  private readonly base: URL;
  private readonly auth: UpstreamAuth;
  private readonly trust: UpstreamTrust;
  /** For hosts the upstream names (redirect targets, token realms elsewhere): connects only where {@link trust} allows. */
  private readonly named: Agent;
  /** {@link UpstreamDeps.dispatcher} and {@link named}, each composed with the retry of a dropped, unanswered request. */
  private readonly toUpstream: Dispatcher;
  private readonly toNamed: Dispatcher;
  /** The "answers like a mirror" hint was logged. */
  private hinted = false;

  constructor(readonly config: UpstreamConfig, private readonly deps: UpstreamDeps) {
    this.namespace = config.namespace;
    this.base = new URL(config.url);
    this.trust = new UpstreamTrust(this.base, deps.trust);
    this.named = createDispatcher(deps.timeouts, this.trust);
    const retry = retryUnanswered({
      onRetry: (opts, err) => {
        deps.metrics.upstreamRetries.inc({ upstream: this.namespace, reason: err.code ?? 'unknown' });
        // The origin, never the path: presigned URLs carry secrets.
        deps.log.info({ upstream: this.namespace, origin: String(opts.origin ?? ''), method: opts.method, error: err.code }, 'upstream connection dropped before an answer; sending the request once more');
      },
    });
    this.toUpstream = deps.dispatcher.compose(retry);
    this.toNamed = this.named.compose(retry);
    this.auth = new UpstreamAuth(config.namespace, config.credentials, (url, headers) => this.tokenRequest(url, headers), {
      credentialsAllowed: (realm) => realm.protocol === 'https:' || this.trust.isUpstreamHost(realm),
      onWithheld: (realm) => deps.log.warn({ upstream: this.namespace, realm: realm.origin }, 'token realm is neither https nor on the upstream host; asking it for a token without credentials'),
    });
  }

  /** Releases the connections to hosts the upstream named. */
  async close(): Promise<void> {
    await this.named.close().catch(() => undefined);
  }

  /** The upstream's name for a repository the client asked for (Docker Hub: `alpine` → `library/alpine`). */
  repository(clientName: string): string {
    return this.config.libraryPrefix && !clientName.includes('/') ? `library/${clientName}` : clientName;
  }

  /** True when this upstream is a mirror of several registries (a regional regmirror): it is told the namespace. */
  get isMirror(): boolean {
    return this.config.mirror === true;
  }

  private url(path: string): URL {
    const u = new URL(this.base.href.replace(/\/$/, '') + path);
    // Appended, not `searchParams.set`: re-serializing would re-encode the query the caller built.
    if (this.isMirror) u.search = `${u.search ? `${u.search}&` : '?'}ns=${encodeURIComponent(this.namespace)}`;
    return u;
  }

  /**
   * A mirror upstream names the registry it answered for in `OCI-Namespace` (regmirror and containerd's
   * convention). One that answered for another registry than asked (it ignored `?ns=`, or routes it
   * elsewhere) would hand us another registry's content under this name: refused. A plain upstream that
   * sends the header is probably a mirror configured as a registry: said once, behaviour unchanged, since
   * guessing would send `?ns=` to a registry nobody declared a mirror.
   */
  private checkNamespace(headers: IncomingHttpHeaders): void {
    const echoed = header(headers, 'oci-namespace')?.trim().toLowerCase();
    if (echoed === undefined || echoed === '') return;
    if (this.isMirror) {
      if (echoed !== this.namespace) {
        throw new UpstreamUnavailable(`the mirror upstream answered for ${echoed.slice(0, 255)}, not ${this.namespace}`, { upstream: this.namespace, reason: 'namespace-mismatch', detail: { asked: this.namespace, answered: echoed.slice(0, 255) } });
      }
    } else if (!this.hinted) {
      this.hinted = true;
      this.deps.log.warn({ upstream: this.namespace, url: this.base.origin, ociNamespace: echoed.slice(0, 255) }, 'the upstream answers like a mirror (OCI-Namespace); if it serves several registries, declare it with mirrorUpstreams (--mirror-upstream) so namespaces pass through as ?ns=');
    }
  }

  private async send(kind: UpstreamKind, method: 'GET' | 'HEAD', url: URL, headers: Record<string, string>, signal?: AbortSignal): Promise<Dispatcher.ResponseData> {
    const { metrics } = this.deps;
    try {
      const res = await request(url, {
        // The configured upstream origin is trusted as configured; anything else it names goes through the policy.
        dispatcher: url.origin === this.base.origin ? this.toUpstream : this.toNamed,
        method,
        headers,
        ...(signal ? { signal } : {}),
      });
      metrics.upstreamRequests.inc({ upstream: this.namespace, kind, method, status: String(res.statusCode) });
      // Docker Hub reports the pull budget on every answer, HEAD included (which costs no pull).
      metrics.observeRateLimit(this.namespace, res.headers);
      this.deps.observer?.answered(this.namespace, kind, res.statusCode, res.headers);
      return res;
    } catch (err) {
      metrics.upstreamRequests.inc({ upstream: this.namespace, kind, method, status: 'error' });
      this.deps.observer?.failed(this.namespace, kind, err);
      if (signal?.aborted) {
        const reason: unknown = signal.reason;
        // A deadline of the mirror's own (AbortSignal.timeout) is an unavailable upstream; a client that left is not.
        if (reason instanceof DOMException && reason.name === 'TimeoutError') {
          throw new UpstreamUnavailable('the upstream registry did not answer in time', { upstream: this.namespace, reason: 'timeout', cause: err });
        }
        throw err;
      }
      const refused = addressRefusal(err);
      if (refused) {
        // Name the host, never the path or query: presigned URLs carry secrets.
        this.deps.log.warn({ upstream: this.namespace, host: refused.host, address: refused.address, class: refused.addressClass }, 'refused a host the upstream named: not a trusted address');
        throw new UpstreamUnavailable('the upstream sent the mirror to an address it does not trust', { upstream: this.namespace, reason: 'redirect-refused', detail: { host: refused.host }, cause: err });
      }
      const e = err as Error & { code?: string };
      throw new UpstreamUnavailable('the upstream registry is unreachable', { upstream: this.namespace, reason: e.code ?? 'transport', detail: { error: e.code ?? e.message }, cause: err });
    }
  }

  /** Sends a request, answering auth challenges once and following redirects. */
  async request(req: UpstreamRequest): Promise<UpstreamResponse> {
    let url = this.url(req.path);
    let authorization = await this.auth.header(req.repository);
    let challenged = false;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const headers: Record<string, string> = { 'user-agent': USER_AGENT, 'accept-encoding': 'identity', ...req.headers };
      const sameOrigin = url.origin === this.base.origin;
      if (authorization && sameOrigin) headers.authorization = authorization;
      const res = await this.send(req.kind, req.method, url, headers, req.signal);
      const status = res.statusCode;
      if (status === 401 && sameOrigin && !challenged) {
        challenged = true;
        const retry = await this.auth.afterChallenge(res.headers['www-authenticate'], req.repository);
        if (retry !== undefined) {
          await res.body.dump();
          authorization = retry;
          hop--;
          continue;
        }
      }
      const location = header(res.headers, 'location');
      if ([301, 302, 303, 307, 308].includes(status) && location) {
        await res.body.dump();
        try {
          url = new URL(location, url);
        } catch {
          throw new UpstreamUnavailable('the upstream sent an invalid redirect', { upstream: this.namespace, reason: 'invalid-redirect' });
        }
        const why = this.trust.refuseScheme(url);
        if (why) {
          this.deps.log.warn({ upstream: this.namespace, scheme: url.protocol, host: url.host }, 'refused a redirect: not http(s)');
          throw new UpstreamUnavailable('the upstream redirected to an unsupported scheme', { upstream: this.namespace, reason: 'redirect-refused', detail: { why } });
        }
        continue;
      }
      if (sameOrigin) {
        try {
          this.checkNamespace(res.headers);
        } catch (err) {
          // dump, not destroy: a destroyed body would emit an error nobody listens to.
          void res.body.dump().catch(() => undefined);
          throw err;
        }
      }
      return { status, headers: res.headers, body: res.body, url: url.href };
    }
    throw new UpstreamUnavailable(`the upstream redirected more than ${MAX_REDIRECTS} times`, { upstream: this.namespace, reason: 'redirect-loop' });
  }

  /** Reads (a bounded part of) an error answer and turns it into a domain error. */
  async error(res: UpstreamResponse, kind: UpstreamKind): Promise<MirrorError> {
    let body = '';
    try {
      for await (const chunk of res.body) {
        body += (chunk as Buffer).toString('utf8');
        if (body.length > MAX_ERROR_BODY) break;
      }
    } catch {
      /* the status is what matters */
    } finally {
      res.body.destroy();
    }
    const err = errorForUpstreamStatus(res.status, kind, this.namespace, body, header(res.headers, 'retry-after'));
    this.deps.log.debug({ upstream: this.namespace, status: res.status, kind, error: err.kind }, 'upstream error');
    return err;
  }

  private async tokenRequest(url: URL, headers: Record<string, string>): Promise<{ status: number; body: string }> {
    const res = await this.send('token', 'GET', url, { 'user-agent': USER_AGENT, ...headers });
    let body = '';
    let size = 0;
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > 1024 * 1024) {
        res.body.destroy();
        throw new UpstreamUnavailable('the token server answer is too large', { upstream: this.namespace, reason: 'token-oversize' });
      }
      body += (chunk as Buffer).toString('utf8');
    }
    return { status: res.statusCode, body };
  }
}
