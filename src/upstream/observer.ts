/** The hook through which an upstream client reports each answer and each transport failure (status page health). */
import type { IncomingHttpHeaders } from 'node:http';
import type { UpstreamKind } from './status.js';

/** Told about every upstream exchange; must be cheap and never throw. */
export interface UpstreamObserver {
  /** An upstream answered (any status, redirect hops and token requests included). */
  answered(namespace: string, kind: UpstreamKind, status: number, headers: IncomingHttpHeaders): void;
  /** A request to the upstream failed before an answer (transport error, timeout, abort). */
  failed(namespace: string, kind: UpstreamKind, err: unknown): void;
}
