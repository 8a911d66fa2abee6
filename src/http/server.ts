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
import { looksLikeRegistryHost, parseRoute, type Route } from './route.js';
import type { RepoContext, RequestContext } from './context.js';
import { sendBuffer, sendError } from './respond.js';
import type { ReadinessCheck } from './readiness.js';

/** The handlers of the registry API routes. */
export interface RegistryRoutes {
  manifest(ctx: RepoContext, reference: string): Promise<void>;
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
  const given = req.headers['x-request-id'];
  if (typeof given === 'string' && REQUEST_ID.test(given)) return given;
  return `${ID_PREFIX}${(++idCounter).toString(36)}`;
}
const NO_QUERY = new URLSearchParams();
const HEALTHY = Buffer.from('{"status":"ok"}\n');
const EMPTY_JSON = Buffer.from('{}');

const TRACK = Symbol('regmirror.request');
type TrackedResponse = MirrorResponse & { [TRACK]?: { deps: PipelineDeps; ctx: RequestContext; started: number } };

/** Observes time to first byte as the status line goes out. A module-level function: no closure per request. */
function observeTtfb(this: TrackedResponse): void {
  const t = this[TRACK];
  if (t) t.deps.metrics.ttfb.observe({ kind: t.ctx.kind, cache: t.ctx.cache }, (performance.now() - t.started) / 1000);
}

/** Counts and logs a finished (or aborted) response. A module-level listener: no closure per request. */
function onResponseClose(this: TrackedResponse): void {
  const t = this[TRACK];
  if (!t) return;
  this[TRACK] = undefined;
  const { deps, ctx, started } = t;
  const ms = performance.now() - started;
  const status = this.statusCode;
  deps.metrics.requests.inc({ kind: ctx.kind, method: ctx.req.method ?? '-', status: String(status) });
  deps.metrics.requestDuration.observe({ kind: ctx.kind, cache: ctx.cache }, ms / 1000);
  if (deps.onError && (status >= 400 || ctx.failure)) deps.onError({ status, code: ctx.failure?.code, reason: ctx.failure?.reason, method: ctx.req.method ?? '-', url: ctx.req.url ?? '/' });
  if ((ctx.kind !== 'other' || status >= 400) && deps.log.isLevelEnabled('info')) {
    const path = ctx.req.url ?? '/';
    const f = ctx.failure;
    ctx.log.info(
      { method: ctx.req.method, path: path.slice(0, 512), status, ms: Math.round(ms * 100) / 100, bytes: ctx.bytes, cache: ctx.cache, aborted: !this.writableFinished || undefined, error: f?.code, kind: f?.kind, reason: f?.reason },
      'request',
    );
  }
}

/** Builds the function that answers one HTTP request. It never throws. */
export function requestPipeline(deps: PipelineDeps): (req: IncomingMessage, res: MirrorResponse) => Promise<void> {
  return async (req, res) => {
    const started = performance.now();
    const id = requestId(req);
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const path = q < 0 ? rawUrl : rawUrl.slice(0, q);
    let log: Logger | undefined;
    const ctx: RequestContext = {
      id,
      get log() {
        return (log ??= deps.log.child({ reqId: id }));
      },
      req,
      res,
      head: req.method === 'HEAD',
      query: q < 0 ? NO_QUERY : new URLSearchParams(rawUrl.slice(q + 1)),
      kind: 'other',
      cache: '-',
      bytes: 0,
    };
    res.base = ['x-request-id', id, 'docker-distribution-api-version', 'registry/2.0'];
    if (deps.draining()) res.base.push('connection', 'close');
    (res as TrackedResponse)[TRACK] = { deps, ctx, started };
    res.onHead = observeTtfb;
    res.on('close', onResponseClose);
    try {
      if (path === '/metrics' && req.method === 'GET') {
        const text = await deps.metrics.registry.metrics();
        sendBuffer(ctx, 200, Buffer.from(text), { 'content-type': deps.metrics.registry.contentType });
        return;
      }
      if (path === '/healthz' && (req.method === 'GET' || req.method === 'HEAD')) {
        sendBuffer(ctx, 200, HEALTHY, { 'content-type': 'application/json' });
        return;
      }
      if (path === '/readyz' && (req.method === 'GET' || req.method === 'HEAD')) {
        const r = await deps.readiness.check();
        sendBuffer(ctx, r.ready ? 200 : 503, Buffer.from(`${JSON.stringify({ status: r.status, ...r.detail })}\n`), { 'content-type': 'application/json', 'cache-control': 'no-store' });
        return;
      }
      if ((path === '/' || path === '/status.json') && deps.status && (req.method === 'GET' || req.method === 'HEAD')) {
        await deps.status(ctx, path === '/' ? 'page' : 'json');
        return;
      }
      if (deps.internal && path.startsWith('/_regmirror/')) {
        await deps.internal(ctx, path);
        return;
      }
      await dispatch(deps, ctx, parseRoute(path));
    } catch (err) {
      sendError(ctx, err);
    }
  };
}

async function dispatch(deps: PipelineDeps, ctx: RequestContext, route: Route): Promise<void> {
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
  return Object.assign(ctx, { upstream, clientName, repository, via });
}
