/**
 * The request pipeline: request id and logging, `/metrics`, `/healthz`, `/readyz` and the status page (`/`, `/status.json`), route, upstream selection
 * (containerd's `?ns=`, a registry-host path prefix, else the default), grammar checks, handler, errors.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { MirrorResponse } from './response.js';
import { InvalidInput, NotFound, Unsupported } from '../oci/errors.js';
import { checkName, MAX_NAME_LENGTH } from '../oci/names.js';
import type { Namespaces } from '../upstream/namespaces.js';
import type { Metrics } from '../metrics.js';
import type { Logger } from '../log.js';
import { looksLikeRegistryHost, routeOf, type Route } from './route.js';
import type { RepoContext, RequestContext } from './context.js';
import { sendBuffer, sendError } from './respond.js';
import { requestHeader } from './raw-headers.js';
import type { ReadinessCheck } from './readiness.js';

/** The handlers of the registry API routes. */
export interface RegistryRoutes {
  /** May answer synchronously (a hit from memory). */
  manifest(ctx: RepoContext, reference: string): Promise<void> | void;
  blob(ctx: RepoContext, digest: string): Promise<void>;
  tagsList(ctx: RepoContext): Promise<void>;
  referrers(ctx: RepoContext, digest: string): Promise<void>;
}

/** What the request pipeline needs. */
export interface PipelineDeps {
  routes: RegistryRoutes;
  namespaces: Namespaces;
  metrics: Metrics;
  log: Logger;
  readiness: ReadinessCheck;
  /** Mirror-internal endpoints under `/_regmirror/` (cluster mode's peer endpoint), answered before the registry routes. */
  internal?: (ctx: RequestContext, path: string) => Promise<void>;
  /** True once the mirror is draining: every answer closes its connection. */
  draining: () => boolean;
  /** `GET /` (the status page) and `GET /status.json`; absent: both are 404. */
  status?: (ctx: RequestContext, what: 'page' | 'json') => Promise<void>;
  /** Told about every failed request (the status page's recent errors). */
  onError?: (e: { status: number; code?: string | undefined; reason?: string | undefined; method: string; url: string }) => void;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** Request ids: a random per-process prefix and a counter (unique, and cheap on the hot path). */
const ID_PREFIX = randomBytes(4).toString('hex');
let idCounter = 0;

function requestId(req: IncomingMessage): string {
  const given = requestHeader(req, 'x-request-id');
  if (typeof given === 'string' && REQUEST_ID.test(given)) return given;
  return `${ID_PREFIX}${(++idCounter).toString(36)}`;
}
const NO_QUERY = new URLSearchParams();
const HEALTHY = Buffer.from('{"status":"ok"}\n');
const EMPTY_JSON = Buffer.from('{}');

/**
 * One request's state: the handlers' context, and what the close listener needs. A class, so that every
 * request has the same shape and the logger is made only when a line is written (no closure per request).
 */
class Exchange implements RepoContext {
  head: boolean;
  query: URLSearchParams;
  kind: RequestContext['kind'] = 'other';
  cache = '-';
  bytes = 0;
  failure: RequestContext['failure'] = undefined;
  // Set by resolveRepository for the registry routes.
  upstream!: RepoContext['upstream'];
  clientName = '';
  repository = '';
  via: RepoContext['via'] = {};
  private logger: Logger | undefined = undefined;

  constructor(
    readonly deps: PipelineDeps,
    readonly id: string,
    readonly req: IncomingMessage,
    readonly res: MirrorResponse,
    readonly started: number,
    rawQuery: string | undefined,
  ) {
    this.head = req.method === 'HEAD';
    this.query = rawQuery === undefined ? NO_QUERY : new URLSearchParams(rawQuery);
  }

  get log(): Logger {
    return (this.logger ??= this.deps.log.child({ reqId: this.id }));
  }
}

/** Observes time to first byte as the status line goes out. A module-level function: no closure per request. */
function observeTtfb(this: MirrorResponse): void {
  const x = this.exchange as Exchange | undefined;
  if (x) x.deps.metrics.firstByte(x.kind, x.cache, (performance.now() - x.started) / 1000);
}

/** Counts and logs a finished (or aborted) response. A module-level listener: no closure per request. */
function onResponseClose(this: MirrorResponse): void {
  const ctx = this.exchange as Exchange | undefined;
  if (!ctx) return;
  this.exchange = undefined;
  const { deps, started } = ctx;
  const ms = performance.now() - started;
  const status = this.statusCode;
  const method = ctx.req.method ?? '-';
  deps.metrics.requestDone(ctx.kind, method, status, ctx.cache, ms / 1000);
  if (deps.onError && (status >= 400 || ctx.failure)) deps.onError({ status, code: ctx.failure?.code, reason: ctx.failure?.reason, method, url: ctx.req.url ?? '/' });
  if ((ctx.kind !== 'other' || status >= 400) && deps.log.isLevelEnabled('info')) {
    const path = ctx.req.url ?? '/';
    const f = ctx.failure;
    ctx.log.info(
      { method: ctx.req.method, path: path.slice(0, 512), status, ms: Math.round(ms * 100) / 100, bytes: ctx.bytes, cache: ctx.cache, aborted: !this.writableFinished || undefined, error: f?.code, kind: f?.kind, reason: f?.reason },
      'request',
    );
  }
}

/** Builds the function that answers one HTTP request. It never throws, and its promise (if any) never rejects. */
export function requestPipeline(deps: PipelineDeps): (req: IncomingMessage, res: MirrorResponse) => Promise<void> | void {
  return (req, res) => {
    const started = performance.now();
    const id = requestId(req);
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const path = q < 0 ? rawUrl : rawUrl.slice(0, q);
    const ctx = new Exchange(deps, id, req, res, started, q < 0 ? undefined : rawUrl.slice(q + 1));
    res.base = ['x-request-id', id, 'docker-distribution-api-version', 'registry/2.0'];
    if (deps.draining()) res.base.push('connection', 'close');
    res.exchange = ctx;
    res.onHead = observeTtfb;
    res.on('close', onResponseClose);
    try {
      // The registry API first: a hit from memory is answered without a single await.
      const done = path.startsWith('/v2') ? dispatch(deps, ctx, routeOf(path)) : endpoint(deps, ctx, path);
      if (done !== undefined) return done.catch((err: unknown) => sendError(ctx, err));
    } catch (err) {
      sendError(ctx, err);
    }
  };
}

/** The mirror's own endpoints (`/metrics`, `/healthz`, `/readyz`, the status page, `/_regmirror/`); anything else is 404. */
async function endpoint(deps: PipelineDeps, ctx: RequestContext, path: string): Promise<void> {
  const method = ctx.req.method;
  if (path === '/metrics' && method === 'GET') {
    const text = await deps.metrics.registry.metrics();
    sendBuffer(ctx, 200, Buffer.from(text), { 'content-type': deps.metrics.registry.contentType });
    return;
  }
  if (path === '/healthz' && (method === 'GET' || method === 'HEAD')) {
    sendBuffer(ctx, 200, HEALTHY, { 'content-type': 'application/json' });
    return;
  }
  if (path === '/readyz' && (method === 'GET' || method === 'HEAD')) {
    const r = await deps.readiness.check();
    sendBuffer(ctx, r.ready ? 200 : 503, Buffer.from(`${JSON.stringify({ status: r.status, ...r.detail })}\n`), { 'content-type': 'application/json', 'cache-control': 'no-store' });
    return;
  }
  if ((path === '/' || path === '/status.json') && deps.status && (method === 'GET' || method === 'HEAD')) {
    await deps.status(ctx, path === '/' ? 'page' : 'json');
    return;
  }
  if (deps.internal && path.startsWith('/_regmirror/')) {
    await deps.internal(ctx, path);
    return;
  }
  throw new NotFound('route', 'not found', { detail: { path: path.slice(0, 200) } });
}

/** Routes a registry API request to its handler; throws (synchronously) what it rejects before the handler runs. */
function dispatch(deps: PipelineDeps, ctx: RequestContext, route: Route): Promise<void> | void {
  const method = ctx.req.method ?? '';
  const readOnly = method === 'GET' || method === 'HEAD';
  switch (route.kind) {
    case 'base':
      ctx.kind = 'base';
      if (!readOnly) throw new Unsupported('the operation is unsupported', { method });
      sendBuffer(ctx, 200, EMPTY_JSON, { 'content-type': 'application/json' });
      return;
    case 'catalog':
      throw new Unsupported('this mirror does not list repositories');
    case 'upload':
      throw new Unsupported('this mirror is pull-only');
    default:
      break;
  }
  ctx.kind = route.kind === 'manifest' ? 'manifest' : route.kind === 'blob' ? 'blob' : route.kind === 'tags' ? 'tags' : 'referrers';
  if (!readOnly) throw new Unsupported('this mirror is pull-only', { method });
  const repo = resolveRepository(deps.namespaces, ctx, route.name);
  switch (route.kind) {
    case 'manifest':
      return deps.routes.manifest(repo, route.reference);
    case 'blob':
      return deps.routes.blob(repo, route.digest);
    case 'tags':
      return deps.routes.tagsList(repo);
    case 'referrers':
      return deps.routes.referrers(repo, route.digest);
  }
}

/**
 * Picks the upstream for a request: `?ns=<registry host>` (containerd), else a first path segment that is a
 * registry host (podman-style `mirror/ghcr.io/org/app`), else the default upstream. A registry that is not
 * configured is an error, never a silent fallback to another upstream.
 */
export function resolveRepository(namespaces: Namespaces, ctx: RequestContext, name: string): RepoContext {
  const notConfigured = (host: string) =>
    new NotFound('name', `registry ${host.slice(0, 255)} is not configured on this mirror`, { detail: { registry: host.slice(0, 255), configured: namespaces.names() }, reason: 'namespace' });
  let upstream = namespaces.default;
  let clientName = name;
  const via: RepoContext['via'] = {};
  const ns = ctx.query.get('ns');
  if (ns !== null) {
    const u = namespaces.get(ns.toLowerCase());
    if (!u) throw notConfigured(ns);
    upstream = u;
    via.ns = u.namespace;
  } else {
    const slash = name.indexOf('/');
    const first = slash > 0 ? name.slice(0, slash) : '';
    if (first && looksLikeRegistryHost(first)) {
      const u = namespaces.get(first.toLowerCase());
      if (!u) throw notConfigured(first);
      upstream = u;
      clientName = name.slice(slash + 1);
      via.prefix = first;
    }
  }
  checkName(clientName);
  ctx.res.base?.push('oci-namespace', upstream.namespace);
  const repository = upstream.repository(clientName);
  // `library/` can push a valid name over the limit: no such repository can exist upstream, so it is not asked.
  if (repository.length > MAX_NAME_LENGTH) throw new InvalidInput('name', 'repository name too long', { name: repository.slice(0, 300) });
  const r = ctx as RepoContext;
  r.upstream = upstream;
  r.clientName = clientName;
  r.repository = repository;
  r.via = via;
  return r;
}
