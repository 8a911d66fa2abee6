/**
 * The request pipeline: request id and logging, `/metrics` and `/healthz`, route, upstream selection
 * (containerd's `?ns=`, a registry-host path prefix, else the default), grammar checks, handler, errors.
 */
import { randomBytes } from 'node:crypto';
import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Mirror } from '../mirror.js';
import { RegistryError } from './errors.js';
import { checkName } from './grammar.js';
import { looksLikeRegistryHost, parseRoute, type Route } from './route.js';
import type { RepoContext, RequestContext } from './context.js';
import { sendBuffer, sendError } from './respond.js';
import { handleManifest } from './manifests.js';
import { handleBlob } from './blobs.js';
import { handleReferrers, handleTagsList } from './passthrough.js';

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

const TRACK = Symbol('regmirror.request');
type TrackedResponse = ServerResponse & { [TRACK]?: { mirror: Mirror; ctx: RequestContext; started: number; firstByte: boolean } };

const protoWriteHead = ServerResponse.prototype.writeHead;
/**
 * Observes time to first byte. Every response passes through writeHead once (end, write and
 * flushHeaders call it implicitly), so an own-property override sees the status line go out.
 * A module-level function: no closure per request.
 */
function writeHeadObservingTtfb(this: TrackedResponse, ...args: unknown[]): ServerResponse {
  const t = this[TRACK];
  if (t && !t.firstByte) {
    t.firstByte = true;
    t.mirror.metrics.ttfb.observe({ kind: t.ctx.kind, cache: t.ctx.cache }, (performance.now() - t.started) / 1000);
  }
  return Reflect.apply(protoWriteHead, this, args) as ServerResponse;
}

/** Counts and logs a finished (or aborted) response. A module-level listener: no closure per request. */
function onResponseClose(this: TrackedResponse): void {
  const t = this[TRACK];
  if (!t) return;
  this[TRACK] = undefined;
  const { mirror, ctx, started } = t;
  const ms = performance.now() - started;
  const status = this.statusCode;
  mirror.metrics.requests.inc({ kind: ctx.kind, method: ctx.req.method ?? '-', status: String(status) });
  mirror.metrics.requestDuration.observe({ kind: ctx.kind, cache: ctx.cache }, ms / 1000);
  if ((ctx.kind !== 'other' || status >= 400) && mirror.log.isLevelEnabled('info')) {
    const path = ctx.req.url ?? '/';
    const e = ctx.error;
    ctx.log.info({ method: ctx.req.method, path: path.slice(0, 512), status, ms: Math.round(ms * 100) / 100, bytes: ctx.bytes, cache: ctx.cache, aborted: !this.writableFinished || undefined, error: e?.code, reason: e?.reason }, 'request');
  }
}

/** Answers one HTTP request. Never throws. */
export async function handleRequest(mirror: Mirror, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = performance.now();
  const id = requestId(req);
  const rawUrl = req.url ?? '/';
  const q = rawUrl.indexOf('?');
  const path = q < 0 ? rawUrl : rawUrl.slice(0, q);
  let log: RequestContext['log'] | undefined;
  const ctx: RequestContext = {
    id,
    get log() {
      return (log ??= mirror.log.child({ reqId: id }));
    },
    req,
    res,
    head: req.method === 'HEAD',
    query: q < 0 ? NO_QUERY : new URLSearchParams(rawUrl.slice(q + 1)),
    kind: 'other',
    cache: '-',
    bytes: 0,
  };
  res.setHeader('x-request-id', id);
  res.setHeader('docker-distribution-api-version', 'registry/2.0');
  (res as TrackedResponse)[TRACK] = { mirror, ctx, started, firstByte: false };
  res.writeHead = writeHeadObservingTtfb as ServerResponse['writeHead'];
  res.on('close', onResponseClose);
  try {
    if (path === '/metrics' && req.method === 'GET') {
      ctx.kind = 'other';
      const text = await mirror.metrics.registry.metrics();
      sendBuffer(ctx, 200, Buffer.from(text), { 'content-type': mirror.metrics.registry.contentType });
      return;
    }
    if (path === '/healthz' && (req.method === 'GET' || req.method === 'HEAD')) {
      sendBuffer(ctx, 200, Buffer.from('{"status":"ok"}\n'), { 'content-type': 'application/json' });
      return;
    }
    const route = parseRoute(path);
    await dispatch(mirror, ctx, route);
  } catch (err) {
    sendError(ctx, err);
  }
}

async function dispatch(mirror: Mirror, ctx: RequestContext, route: Route): Promise<void> {
  const method = ctx.req.method ?? '';
  const readOnly = method === 'GET' || method === 'HEAD';
  switch (route.kind) {
    case 'base':
      ctx.kind = 'base';
      if (!readOnly) throw new RegistryError('UNSUPPORTED', { method });
      sendBuffer(ctx, 200, Buffer.from('{}'), { 'content-type': 'application/json' });
      return;
    case 'catalog':
      throw new RegistryError('UNSUPPORTED', undefined, { message: 'this mirror does not list repositories' });
    case 'upload':
      throw new RegistryError('UNSUPPORTED', undefined, { message: 'this mirror is pull-only' });
    default:
      break;
  }
  ctx.kind = route.kind === 'manifest' ? 'manifest' : route.kind === 'blob' ? 'blob' : route.kind === 'tags' ? 'tags' : 'referrers';
  if (!readOnly) throw new RegistryError('UNSUPPORTED', { method }, { message: 'this mirror is pull-only' });
  const repo = resolveRepository(mirror, ctx, route.name);
  switch (route.kind) {
    case 'manifest':
      return handleManifest(mirror, repo, route.reference);
    case 'blob':
      return handleBlob(mirror, repo, route.digest);
    case 'tags':
      return handleTagsList(mirror, repo);
    case 'referrers':
      return handleReferrers(mirror, repo, route.digest);
  }
}

/**
 * Picks the upstream for a request: `?ns=<registry host>` (containerd), else a first path segment that is a
 * registry host (podman-style `mirror/ghcr.io/org/app`), else the default upstream. A registry that is not
 * configured is an error, never a silent fallback to another upstream.
 */
export function resolveRepository(mirror: Mirror, ctx: RequestContext, name: string): RepoContext {
  const notConfigured = (host: string) =>
    new RegistryError('NAME_UNKNOWN', { registry: host.slice(0, 255), configured: [...mirror.upstreams.keys()] }, { message: `registry ${host.slice(0, 255)} is not configured on this mirror` });
  let namespace = mirror.config.defaultNamespace;
  let clientName = name;
  const via: RepoContext['via'] = {};
  const ns = ctx.query.get('ns');
  if (ns !== null) {
    namespace = ns.toLowerCase();
    if (!mirror.upstreams.has(namespace)) throw notConfigured(ns);
    via.ns = namespace;
  } else {
    const slash = name.indexOf('/');
    const first = slash > 0 ? name.slice(0, slash) : '';
    if (first && looksLikeRegistryHost(first)) {
      namespace = first.toLowerCase();
      if (!mirror.upstreams.has(namespace)) throw notConfigured(first);
      clientName = name.slice(slash + 1);
      via.prefix = first;
    }
  }
  checkName(clientName);
  const upstream = mirror.upstreams.get(namespace)!;
  ctx.res.setHeader('oci-namespace', upstream.namespace);
  return Object.assign(ctx, { upstream, clientName, repository: upstream.repository(clientName), via });
}
