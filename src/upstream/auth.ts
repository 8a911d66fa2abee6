/**
 * Upstream authentication: the Bearer token dance of the distribution token spec (anonymous or with
 * Basic credentials at the realm), plain Basic, or a pre-issued token. Tokens are cached per
 * (realm, service, scope) until shortly before they expire; concurrent requests share one token fetch.
 */
import { LRUCache } from 'lru-cache';
import { UpstreamUnavailable } from '../oci/errors.js';
import type { Credentials } from '../config/types.js';
import { parseChallenges } from './challenge.js';
import { errorForUpstreamStatus } from './status.js';

/** Sends one token request; the client supplies it so that metrics, timeouts and the dispatcher are shared. */
export type TokenFetcher = (url: URL, headers: Record<string, string>) => Promise<{ status: number; body: string }>;

interface CachedToken {
  header: string;
  expiresAt: number;
}

type Scheme = { type: 'bearer'; realm: string; service: string | undefined } | { type: 'basic' };

/** Where the mirror's own credentials may go. */
export interface RealmPolicy {
  /**
   * True when Basic credentials may be sent to this token realm. The client allows https realms and
   * realms on the upstream's own host; any other realm (plain http elsewhere) gets an anonymous token
   * request, so a challenge cannot make the mirror send its password in the clear to a host it never
   * configured.
   */
  credentialsAllowed(realm: URL): boolean;
  /** Called once per realm whose token requests go without credentials. */
  onWithheld?(realm: URL): void;
}

/** Seconds a token is assumed valid when the server does not say (distribution token spec). */
const DEFAULT_EXPIRES_IN = 60;

export class UpstreamAuth {
  private scheme: Scheme | undefined;
  private readonly tokens = new LRUCache<string, CachedToken>({ max: 10_000 });
  private readonly repoScopes = new LRUCache<string, string>({ max: 10_000 });
  private readonly inflight = new Map<string, Promise<CachedToken>>();
  /** Realms (origins) already reported as getting no credentials. */
  private readonly withheld = new Set<string>();

  constructor(
    private readonly namespace: string,
    private readonly credentials: Credentials | undefined,
    private readonly fetchToken: TokenFetcher,
    private readonly realms: RealmPolicy = { credentialsAllowed: (realm) => realm.protocol === 'https:' },
    private readonly now: () => number = Date.now,
  ) {}

  private basic(): string | undefined {
    const c = this.credentials;
    if (!c || !('username' in c)) return undefined;
    return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
  }

  /** The Authorization header to send for `repository` before any challenge, if one is known. */
  async header(repository: string): Promise<string | undefined> {
    if (this.credentials && 'token' in this.credentials) return `Bearer ${this.credentials.token}`;
    const s = this.scheme;
    if (!s) return undefined;
    if (s.type === 'basic') return this.basic();
    const scope = this.repoScopes.get(repository) ?? `repository:${repository}:pull`;
    return (await this.token(s.realm, s.service, scope, false)).header;
  }

  /**
   * Handles a 401: learns the scheme from the challenge and returns the header to retry with,
   * or undefined when the mirror has nothing better to offer (the 401 stands).
   */
  async afterChallenge(wwwAuthenticate: string | string[] | undefined, repository: string): Promise<string | undefined> {
    if (this.credentials && 'token' in this.credentials) return undefined;
    const challenges = parseChallenges(wwwAuthenticate);
    const bearer = challenges.find((c) => c.scheme === 'bearer' && c.params.realm);
    if (bearer) {
      const realm = bearer.params.realm!;
      const service = bearer.params.service;
      this.scheme = { type: 'bearer', realm, service };
      const scope = bearer.params.scope ?? `repository:${repository}:pull`;
      this.repoScopes.set(repository, scope);
      return (await this.token(realm, service, scope, true)).header;
    }
    if (challenges.some((c) => c.scheme === 'basic')) {
      this.scheme = { type: 'basic' };
      return this.basic();
    }
    return undefined;
  }

  private async token(realm: string, service: string | undefined, scope: string, force: boolean): Promise<CachedToken> {
    const key = `${realm}\u0000${service ?? ''}\u0000${scope}`;
    if (!force) {
      const t = this.tokens.get(key);
      if (t && t.expiresAt > this.now()) return t;
    }
    let p = this.inflight.get(key);
    if (!p) {
      p = this.requestToken(realm, service, scope).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    const t = await p;
    this.tokens.set(key, t);
    return t;
  }

  private async requestToken(realm: string, service: string | undefined, scope: string): Promise<CachedToken> {
    let url: URL;
    try {
      url = new URL(realm);
      if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('bad scheme');
    } catch {
      throw new UpstreamUnavailable('the upstream challenge names an invalid token realm', { upstream: this.namespace, reason: 'token-realm' });
    }
    if (service) url.searchParams.set('service', service);
    for (const s of scope.split(' ').filter(Boolean)) url.searchParams.append('scope', s);
    const headers: Record<string, string> = { accept: 'application/json' };
    const basic = this.basic();
    if (basic && this.realms.credentialsAllowed(url)) headers.authorization = basic;
    else if (basic && !this.withheld.has(url.origin)) {
      if (this.withheld.size < 1000) this.withheld.add(url.origin);
      this.realms.onWithheld?.(url);
    }
    const started = this.now();
    const res = await this.fetchToken(url, headers);
    if (res.status !== 200) throw errorForUpstreamStatus(res.status, 'token', this.namespace, res.body);
    let parsed: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      parsed = JSON.parse(res.body) as typeof parsed;
    } catch {
      throw new UpstreamUnavailable('the token server answered with invalid JSON', { upstream: this.namespace, reason: 'token-json' });
    }
    const value = typeof parsed.token === 'string' && parsed.token ? parsed.token : typeof parsed.access_token === 'string' ? parsed.access_token : '';
    if (!value) throw new UpstreamUnavailable('the token server answered without a token', { upstream: this.namespace, reason: 'token-missing' });
    const expiresIn = typeof parsed.expires_in === 'number' && parsed.expires_in > 0 ? parsed.expires_in : DEFAULT_EXPIRES_IN;
    const margin = Math.min(30, expiresIn * 0.2);
    return { header: `Bearer ${value}`, expiresAt: started + (expiresIn - margin) * 1000 };
  }
}
