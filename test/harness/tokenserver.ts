/**
 * A small Docker token-auth server (the `realm` of `WWW-Authenticate: Bearer …`) for tests, so a
 * real distribution registry can run with `auth: token`.
 *
 * distribution 2.8 (registry/auth/token/token.go) accepts an RS256 JWT whose header has either
 * `x5c` (a chain verified against `rootcertbundle`) or `kid` = the libtrust key id of a key in a
 * root certificate: base32 of the first 240 bits of SHA-256 of the DER SubjectPublicKeyInfo, in 12
 * groups of 4 joined by `:`. Both modes are supported here (`keyMode`). It allows 60 s of clock
 * leeway on `exp`/`nbf`, so a token stays valid upstream 60 s past `expires_in` unless
 * `strictExpiry` is set.
 */
import { createHash, createPrivateKey, createPublicKey, createSign, randomUUID, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { listenLoopback, registerCleanup, run, tmpDir } from './proc.js';
import type { TokenAuthConfig } from './registry.js';

/** Options for {@link startTokenServer}. */
export interface TokenServerOptions {
  /** `service` (and token `aud`), default `registry.test`. */
  service?: string;
  /** `iss`, default `regmirror-harness`. */
  issuer?: string;
  /** Accepted Basic credentials (username → password). */
  users?: Record<string, string>;
  /** Refuse anonymous token requests with 401 (default false: anonymous gets `anonymousActions`). */
  requireCredentials?: boolean;
  /** Actions granted to anonymous requests (default `['pull']`). */
  anonymousActions?: string[];
  /** Actions granted to authenticated users (default `['pull', 'push', 'delete']`). */
  userActions?: string[];
  /** `expires_in` in seconds (default 300). */
  expiresIn?: number;
  /** Set `exp` 60 s early so distribution's 60 s leeway ends exactly at `expires_in`. */
  strictExpiry?: boolean;
  /** How the JWT names its key: `kid` (libtrust id, default) or `x5c` (certificate chain). */
  keyMode?: 'kid' | 'x5c';
}

/** One request the token server answered. */
export interface TokenRequest {
  method: string;
  /** Authenticated user, or undefined for anonymous. */
  user?: string;
  service?: string;
  /** Requested scopes, as sent (e.g. `repository:library/alpine:pull`). */
  scopes: string[];
  status: number;
  /** Value of the `User-Agent` header. */
  userAgent?: string;
}

/** Granted access entry of a token. */
export interface AccessClaim {
  type: string;
  name: string;
  actions: string[];
}

/** A running token server. */
export interface TokenServer {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  /** `http://127.0.0.1:PORT/token` */
  readonly realm: string;
  readonly service: string;
  readonly issuer: string;
  /** PEM certificate (the registry's `rootcertbundle`). */
  readonly certFile: string;
  /** PEM private key. */
  readonly keyFile: string;
  /** libtrust key id of the signing key. */
  readonly kid: string;
  /** The registry's `auth.token` config for this server. */
  registryAuth(): TokenAuthConfig;
  /** Requests answered since start or `reset()`. */
  requests(): TokenRequest[];
  /** Forgets recorded requests. */
  reset(): void;
  /** Changes `expires_in` for tokens issued from now on. */
  setExpiresIn(seconds: number): void;
  /** Signs a token directly (for tests that craft their own). */
  issue(sub: string, access: AccessClaim[], expiresIn?: number): string;
  /** Stops the server. */
  close(): Promise<void>;
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function base32(data: Buffer): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of data) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/** libtrust key id of a public key: base32(sha256(DER SPKI)[:30]) in groups of 4 joined by `:`. */
export function libtrustKeyId(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  const s = base32(createHash('sha256').update(der).digest().subarray(0, 30));
  return (s.match(/.{1,4}/g) ?? []).join(':');
}

/** Splits `type:name:actions` where name may contain `:` (host:port). */
export function parseScope(scope: string): AccessClaim | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last <= first) return undefined;
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope.slice(last + 1).split(',').filter(Boolean),
  };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Generates an RSA key and a self-signed certificate with the `openssl` CLI and starts the token
 * server on 127.0.0.1:0. `GET /token?service=&scope=` (and OAuth2 `POST /token` with
 * `grant_type=password`) answer `{token, access_token, expires_in, issued_at}`.
 */
export async function startTokenServer(opts: TokenServerOptions = {}): Promise<TokenServer> {
  const dir = await tmpDir('token-');
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  await run(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=regmirror-harness-token'],
    { name: 'openssl', timeoutMs: 30_000 },
  );
  const privateKey = createPrivateKey(readFileSync(keyFile));
  const kid = libtrustKeyId(createPublicKey(privateKey));
  const certDer = certPemToDer(readFileSync(certFile, 'utf8'));
  const service = opts.service ?? 'registry.test';
  const issuer = opts.issuer ?? 'regmirror-harness';
  const users = opts.users ?? {};
  const anonymousActions = opts.anonymousActions ?? ['pull'];
  const userActions = opts.userActions ?? ['pull', 'push', 'delete'];
  let expiresIn = opts.expiresIn ?? 300;
  let log: TokenRequest[] = [];

  const issue = (sub: string, access: AccessClaim[], ttl = expiresIn): string => {
    const now = Math.floor(Date.now() / 1000);
    const header =
      opts.keyMode === 'x5c' ? { typ: 'JWT', alg: 'RS256', x5c: [certDer.toString('base64')] } : { typ: 'JWT', alg: 'RS256', kid };
    const claims = {
      iss: issuer,
      sub,
      aud: service,
      exp: now + ttl - (opts.strictExpiry ? 60 : 0),
      nbf: now - 1,
      iat: now,
      jti: randomUUID(),
      access,
    };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = createSign('RSA-SHA256').update(signingInput).sign(privateKey);
    return `${signingInput}.${b64url(sig)}`;
  };

  const reply = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
    const buf = Buffer.from(JSON.stringify(body));
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': String(buf.length), ...headers });
    res.end(buf);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const rec: TokenRequest = { method: req.method ?? '', scopes: [], status: 0, userAgent: req.headers['user-agent'] };
    log.push(rec);
    const finish = (status: number, body: unknown, headers?: Record<string, string>): void => {
      rec.status = status;
      reply(res, status, body, headers);
    };
    if (url.pathname !== '/token') return finish(404, { error: 'not_found' });
    let user: string | undefined;
    let password: string | undefined;
    let params = url.searchParams;
    if (req.method === 'POST') {
      params = new URLSearchParams(await readBody(req));
      const grant = params.get('grant_type');
      if (grant !== 'password') return finish(400, { error: 'unsupported_grant_type' });
      user = params.get('username') ?? undefined;
      password = params.get('password') ?? undefined;
    } else if (req.method !== 'GET') {
      return finish(405, { error: 'method_not_allowed' });
    }
    const authz = req.headers.authorization;
    if (req.method === 'GET' && authz?.startsWith('Basic ')) {
      const decoded = Buffer.from(authz.slice(6), 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      user = colon >= 0 ? decoded.slice(0, colon) : decoded;
      password = colon >= 0 ? decoded.slice(colon + 1) : '';
    }
    rec.service = params.get('service') ?? undefined;
    rec.scopes = params.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
    const challenge = { 'WWW-Authenticate': `Basic realm="${service}"` };
    if (user !== undefined) {
      if (users[user] === undefined || users[user] !== password) return finish(401, { errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] }, challenge);
      rec.user = user;
    } else if (opts.requireCredentials) {
      return finish(401, { errors: [{ code: 'UNAUTHORIZED', message: 'credentials required' }] }, challenge);
    }
    if (rec.service !== undefined && rec.service !== service) return finish(400, { error: 'invalid_request', error_description: `unknown service ${rec.service}` });
    const allowed = rec.user !== undefined ? userActions : anonymousActions;
    const access: AccessClaim[] = [];
    for (const s of rec.scopes) {
      const parsed = parseScope(s);
      if (!parsed) continue;
      const actions = parsed.actions.filter((a) => allowed.includes(a) || (a === '*' && allowed.includes('delete')));
      access.push({ ...parsed, actions });
    }
    const token = issue(rec.user ?? '', access);
    const issuedAt = new Date().toISOString();
    finish(200, { token, access_token: token, expires_in: expiresIn, issued_at: issuedAt });
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) reply(res, 500, { error: String(err) });
      else res.destroy();
    });
  });
  const port = await listenLoopback(server);
  const close = async (): Promise<void> => {
    if (!server.listening) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  registerCleanup(`token server :${port}`, close);
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    realm: `${url}/token`,
    service,
    issuer,
    certFile,
    keyFile,
    kid,
    registryAuth: () => ({ realm: `${url}/token`, service, issuer, rootcertbundle: certFile }),
    requests: () => [...log],
    reset: () => {
      log = [];
    },
    setExpiresIn: (s: number) => {
      expiresIn = s;
    },
    issue,
    close,
  };
}

function certPemToDer(pem: string): Buffer {
  const m = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(pem);
  if (!m?.[1]) throw new Error('no certificate in PEM');
  return Buffer.from(m[1].replace(/\s+/g, ''), 'base64');
}
