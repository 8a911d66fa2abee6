/** `[NS=]URL` upstream specs as given by `--upstream`, `REGMIRROR_UPSTREAM` and the config file. */
import type { UpstreamConfig } from './types.js';

/** The registry host an upstream URL stands for when no namespace is given. */
export function namespaceOfUrl(url: string): string {
  const u = new URL(url);
  if (u.hostname === 'registry-1.docker.io' || u.hostname === 'index.docker.io') return 'docker.io';
  return u.host;
}

/** A parsed spec; `explicit` is false for a bare URL (which names the default upstream). */
export interface UpstreamSpec {
  upstream: UpstreamConfig;
  explicit: boolean;
}

/** Parses `NS=URL` or `URL`; throws a readable error otherwise. */
export function parseUpstreamSpec(spec: string): UpstreamSpec {
  const s = spec.trim();
  const eq = s.indexOf('=');
  const hasNs = eq > 0 && !s.slice(0, eq).includes('/');
  const ns = hasNs ? s.slice(0, eq).trim().toLowerCase() : undefined;
  const rawUrl = hasNs ? s.slice(eq + 1).trim() : s;
  let u: URL;
  try {
    u = new URL(rawUrl);
  } catch {
    throw new Error(`invalid upstream ${JSON.stringify(spec)}: expected [NS=]URL such as ghcr.io=https://ghcr.io`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`invalid upstream ${JSON.stringify(spec)}: scheme must be http or https`);
  if (u.username || u.password) throw new Error(`invalid upstream ${JSON.stringify(spec)}: put credentials in the config file, not the URL`);
  if (ns !== undefined && !/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d+)?$/.test(ns)) throw new Error(`invalid upstream namespace ${JSON.stringify(ns)}: expected a registry host such as ghcr.io`);
  const url = u.origin + u.pathname.replace(/\/+$/, '');
  const namespace = ns ?? namespaceOfUrl(url);
  return { upstream: { namespace, url, libraryPrefix: namespace === 'docker.io' }, explicit: ns !== undefined };
}

/** Resolves a list of specs to upstreams and the default namespace (the bare URL, else the first). */
export function resolveUpstreams(specs: string[]): { upstreams: UpstreamConfig[]; defaultNamespace: string } {
  if (specs.length === 0) throw new Error('no upstream configured');
  const upstreams: UpstreamConfig[] = [];
  let defaultNamespace: string | undefined;
  for (const spec of specs) {
    const { upstream, explicit } = parseUpstreamSpec(spec);
    if (upstreams.some((u) => u.namespace === upstream.namespace)) throw new Error(`upstream namespace ${upstream.namespace} is configured twice`);
    if (!explicit) {
      if (defaultNamespace !== undefined) throw new Error('more than one default upstream (a bare URL); name the others as NS=URL');
      defaultNamespace = upstream.namespace;
    }
    upstreams.push(upstream);
  }
  return { upstreams, defaultNamespace: defaultNamespace ?? upstreams[0]!.namespace };
}
