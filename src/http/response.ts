/**
 * The server's response class. Headers every answer carries (request id, API version, namespace, and
 * `Connection: close` while draining) are kept as a flat list and written with the status line, in one go
 * with the answer's own headers: a small answer (a manifest) then costs one `writeHead` with an array, the
 * path Node serves fastest, instead of a dozen validated `setHeader` calls. Every way a response can start
 * (`writeHead`, `write`, `end`, `flushHeaders`) goes through `writeHead`, so no answer can miss them.
 */
import { ServerResponse, type IncomingMessage, type OutgoingHttpHeader, type OutgoingHttpHeaders } from 'node:http';

export class MirrorResponse<Request extends IncomingMessage = IncomingMessage> extends ServerResponse<Request> {
  /** Header names and values, alternating, to send with whatever the answer sets. */
  base: string[] | undefined;
  /** Called once, as the status line goes out (time to first byte). A shared function, not a closure per request. */
  onHead: ((this: MirrorResponse) => void) | undefined;
  /** The request pipeline's state for this response (read by its shared listeners); opaque here. */
  exchange: object | undefined;

  override writeHead(statusCode: number, reason?: string | OutgoingHttpHeaders | OutgoingHttpHeader[], headers?: OutgoingHttpHeaders | OutgoingHttpHeader[]): this {
    const onHead = this.onHead;
    if (onHead !== undefined) {
      this.onHead = undefined;
      onHead.call(this);
    }
    const base = this.base;
    if (base !== undefined) {
      this.base = undefined;
      const hasReason = typeof reason === 'string';
      const given = hasReason ? headers : reason;
      if (Array.isArray(given) && this.getHeaderNames().length === 0) {
        const all = base.concat(given as string[]);
        return hasReason ? super.writeHead(statusCode, reason, all) : super.writeHead(statusCode, all);
      }
      for (let i = 0; i < base.length; i += 2) if (!this.hasHeader(base[i]!)) this.setHeader(base[i]!, base[i + 1]!);
    }
    // ServerResponse.writeHead takes (code), (code, reason), (code, headers) or (code, reason, headers).
    return typeof reason === 'string' ? super.writeHead(statusCode, reason, headers) : super.writeHead(statusCode, reason);
  }
}
