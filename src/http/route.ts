/**
 * Maps a request path to what it asks for. Repository names contain `/`, so the endpoint suffix
 * (`/manifests/<ref>`, `/blobs/<digest>`, `/tags/list`, `/referrers/<digest>`) is matched from the right.
 * Nothing is decoded: no valid name, tag or digest contains `%`, so percent-encoded tricks
 * (`%2e%2e`, `%2f`) simply fail the grammar.
 */
import { NotFound } from '../oci/errors.js';

/** A parsed request target. `name` is what the client sent (namespace prefix included). */
export type Route = Readonly<
  | { kind: 'base' }
  | { kind: 'manifest'; name: string; reference: string }
  | { kind: 'blob'; name: string; digest: string }
  | { kind: 'tags'; name: string }
  | { kind: 'referrers'; name: string; digest: string }
  | { kind: 'upload'; name: string }
  | { kind: 'catalog' }
>;

const SUFFIXES: Array<[string, (name: string, rest: string) => Route | undefined]> = [
  ['/manifests/', (name, rest) => (rest && !rest.includes('/') ? { kind: 'manifest', name, reference: rest } : undefined)],
  ['/blobs/uploads', (name, rest) => (rest === '' || rest.startsWith('/') ? { kind: 'upload', name } : undefined)],
  ['/blobs/', (name, rest) => (rest && !rest.includes('/') ? { kind: 'blob', name, digest: rest } : undefined)],
  ['/referrers/', (name, rest) => (rest && !rest.includes('/') ? { kind: 'referrers', name, digest: rest } : undefined)],
];

/**
 * Routes of paths seen before: clients pull the same manifests and blobs over and over. Only routes that
 * parsed are kept (bounded, cleared when full), and a route is never changed once made, so a cached one is
 * what parsing would give. The strings in it are then the same objects from one request to the next, so the
 * maps they key downstream (the manifest and tag caches, the name grammar's) find their hash already made.
 */
const routes = new Map<string, Route>();
const ROUTES_MAX = 4096;

/** {@link parseRoute}, remembered for paths seen before. */
export function routeOf(pathname: string): Route {
  let route = routes.get(pathname);
  if (route === undefined) {
    route = parseRoute(pathname);
    if (routes.size >= ROUTES_MAX) routes.clear();
    routes.set(pathname, route);
  }
  return route;
}

/** Parses the path of a `/v2/...` request; throws {@link NotFound} (`route`) for paths outside the API. */
export function parseRoute(pathname: string): Route {
  if (pathname === '/v2' || pathname === '/v2/') return { kind: 'base' };
  if (!pathname.startsWith('/v2/')) throw new NotFound('route', 'not found', { detail: { path: pathname.slice(0, 200) } });
  const p = pathname.slice(3); // keeps the leading '/'
  // The two routes a pull is made of, first: a suffix whose rest has no '/' is the last one in the path, so
  // this is the answer the general search below would give.
  const m = p.lastIndexOf('/manifests/');
  if (m > 0) {
    const rest = p.slice(m + 11);
    if (rest !== '' && !rest.includes('/')) return { kind: 'manifest', name: p.slice(1, m), reference: rest };
  }
  const b = p.lastIndexOf('/blobs/');
  if (b > 0) {
    const rest = p.slice(b + 7);
    if (rest !== '' && rest !== 'uploads' && !rest.includes('/')) return { kind: 'blob', name: p.slice(1, b), digest: rest };
  }
  if (p === '/_catalog') return { kind: 'catalog' };
  if (p.endsWith('/tags/list')) return { kind: 'tags', name: p.slice(1, -'/tags/list'.length) };
  let best: { at: number; route: Route } | undefined;
  for (const [suffix, make] of SUFFIXES) {
    const at = p.lastIndexOf(suffix);
    if (at <= 0) continue;
    const route = make(p.slice(1, at), p.slice(at + suffix.length));
    if (route && (!best || at > best.at)) best = { at, route };
  }
  if (!best) throw new NotFound('route', 'not found', { detail: { path: pathname.slice(0, 200) } });
  return best.route;
}

/** True when a first path segment names a registry host rather than a repository component
 * (docker's rule: it contains `.` or `:`, or is `localhost`). */
export function looksLikeRegistryHost(segment: string): boolean {
  if (!(segment.includes('.') || segment.includes(':') || segment === 'localhost')) return false;
  return HOST_RE.test(segment);
}

const LABEL = '[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?';
const HOST_RE = new RegExp(`^(?:${LABEL}(?:\\.${LABEL})*|\\[[0-9a-fA-F:.]+\\])(?::[0-9]{1,5})?$`);
