/** What a handler knows about the request it answers. */
import type { IncomingMessage } from 'node:http';
import type { MirrorResponse } from './response.js';
import type { Logger } from '../log.js';
import type { Kind } from '../metrics.js';
import type { Upstream } from '../upstream/client.js';

export interface RequestContext {
  id: string;
  log: Logger;
  req: IncomingMessage;
  res: MirrorResponse;
  /** True for HEAD: headers as for GET, no body. */
  head: boolean;
  query: URLSearchParams;
  kind: Kind;
  /** Cache outcome for logs and metrics (hit, miss, stale, joined, ...). */
  cache: string;
  /** Body bytes sent, counted by the senders. */
  bytes: number;
  /** The failure this request was answered with, for the request log: registry code, domain kind, and a reason a person can act on. */
  failure?: { code: string; kind: string; reason: string };
}

/** A request resolved to an upstream repository. */
export interface RepoContext extends RequestContext {
  upstream: Upstream;
  /** The repository name as the client wrote it, without any registry-host prefix. */
  clientName: string;
  /** The repository name upstream (Docker Hub: `library/` added). */
  repository: string;
  /** How the client addressed the upstream, to rebuild links it can follow: `ns` query or path prefix. */
  via: { ns?: string; prefix?: string };
}
