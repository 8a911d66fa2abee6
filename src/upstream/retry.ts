/**
 * An undici interceptor (`dispatcher.compose(retryUnanswered(...))`): a GET or HEAD whose connection drops
 * before any answer began is sent once more, on another connection. This is the keep-alive race every
 * proxy meets: the upstream (or a load balancer in front of it) closes an idle connection just as the
 * mirror reuses it, and the request fails with `ECONNRESET` or "other side closed" though the upstream
 * is fine. Without the retry, that one request would be a 503 to the client (or a stale tag answer).
 *
 * Deliberately narrower than undici's own `interceptors.retry`, which also resumes a body that broke
 * mid-way with a Range request and retries on statuses: a broken blob body must fail its fill (the
 * client's stream is already under way, and the fill's verification decides what is kept), and a 429 or
 * 503 from the upstream is an answer to pass on (with its Retry-After), not to repeat. So: only errors of
 * a dropped connection, only before the status line, only idempotent methods without a body, once, and
 * never after the caller aborted. Refused connections, DNS failures and timeouts are not retried: the
 * upstream is down or slow, and the mirror answers from its cache (stale-if-error) sooner without a wait.
 */
import type { Dispatcher } from 'undici';
import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';

/** Error codes of a connection that dropped (as opposed to one never made, or a timeout). */
export const DROPPED_CONNECTION_CODES: ReadonlySet<string> = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);

/** Options of {@link retryUnanswered}. */
export interface RetryUnansweredOptions {
  /** Told about each retry (metrics, a log line), with the error of the attempt that dropped. */
  onRetry?: (opts: Dispatcher.DispatchOptions, err: Error & { code?: string }) => void;
}

/** The interceptor: see the module comment. */
export function retryUnanswered(options: RetryUnansweredOptions = {}): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (opts, handler) => {
    const method = opts.method;
    const retriable = (method === 'GET' || method === 'HEAD') && (opts.body === undefined || opts.body === null);
    return dispatch(opts, retriable ? new UnansweredRetry(dispatch, opts, handler, options.onRetry) : handler);
  };
}

/**
 * Forwards the caller's abort, pause and resume to whichever attempt is running: the caller is given this
 * controller once, at the first attempt's start.
 */
class AttemptController implements Dispatcher.DispatchController {
  target: Dispatcher.DispatchController | undefined;
  private abortReason: Error | null = null;

  get aborted(): boolean {
    return this.abortReason !== null || (this.target?.aborted ?? false);
  }
  get paused(): boolean {
    return this.target?.paused ?? false;
  }
  get reason(): Error | null {
    return this.abortReason ?? this.target?.reason ?? null;
  }
  abort(reason: Error): void {
    this.abortReason = reason;
    this.target?.abort(reason);
  }
  pause(): void {
    this.target?.pause();
  }
  resume(): void {
    this.target?.resume();
  }
}

/** One request's handler across its (at most two) attempts. */
class UnansweredRetry implements Dispatcher.DispatchHandler {
  private readonly controller = new AttemptController();
  private started = false;
  private answered = false;
  private retried = false;

  constructor(
    private readonly dispatch: Dispatcher.Dispatch,
    private readonly opts: Dispatcher.DispatchOptions,
    private readonly handler: Dispatcher.DispatchHandler,
    private readonly onRetry: RetryUnansweredOptions['onRetry'],
  ) {}

  onRequestStart(controller: Dispatcher.DispatchController, context: unknown): void {
    this.controller.target = controller;
    // An abort that came between the attempts reaches the new one at once.
    const pending = this.controller.reason;
    if (pending !== null && !controller.aborted) controller.abort(pending);
    if (this.started) return;
    this.started = true;
    this.handler.onRequestStart?.(this.controller, context);
  }

  onRequestUpgrade(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, socket: Duplex): void {
    this.handler.onRequestUpgrade?.(this.controller, statusCode, headers, socket);
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    this.answered = true;
    this.handler.onResponseStart?.(this.controller, statusCode, headers, statusMessage);
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.handler.onResponseData?.(this.controller, chunk);
  }

  onResponseEnd(_controller: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    this.handler.onResponseEnd?.(this.controller, trailers);
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    const code = (err as Error & { code?: unknown }).code;
    if (!this.answered && !this.retried && !this.controller.aborted && typeof code === 'string' && DROPPED_CONNECTION_CODES.has(code)) {
      this.retried = true;
      this.onRetry?.(this.opts, err as Error & { code: string });
      try {
        this.dispatch(this.opts, this);
        return;
      } catch (again) {
        err = again instanceof Error ? again : err;
      }
    }
    this.handler.onResponseError?.(this.controller, err);
  }
}
