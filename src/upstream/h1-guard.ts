/**
 * A connector for every undici dispatcher of ours, guarding against a crash in undici 7's HTTP/1 parser.
 *
 * When a response that ends its connection (`Connection: close`, HTTP/1.0, a body delimited by EOF) has its
 * last bytes arrive while the parser is paused by backpressure (the fill had not taken the previous chunk
 * yet), the socket's `'end'` reaches undici's handler, which asserts the parser is not paused and throws
 * from inside the event handler: an uncaught exception, the process dies (nodejs/undici#5360, fixed only in
 * undici 8, which needs Node 22.19). A draining regmirror answers peers with `Connection: close`, so a
 * rolling restart of a cluster crashed the members filling from the one going down; any upstream behind a
 * proxy that closes connections could do the same.
 *
 * The guard listens for `'end'` before undici does (its listeners are added after the connector returns)
 * and resumes a paused parser. At EOF no more bytes can arrive, so this reads nothing new: the parser only
 * completes the message from the bytes it already holds (the body keeps them until the fill takes them).
 * When the message cannot complete (its body was cut short), or the resume fails (a different undici),
 * the socket is destroyed with an error, so the request fails instead of the process.
 */
import type { Socket } from 'node:net';
import { buildConnector } from 'undici';

/** The part of undici's HTTP/1 parser the guard touches. */
interface PausableParser {
  paused: boolean;
  /** Of the response being parsed; 0 once it completed. */
  statusCode: number;
  resume(): void;
}

let parserKey: symbol | undefined;

/** undici keeps the parser on the socket under a private symbol named `parser`. */
function parserOf(socket: Socket): PausableParser | undefined {
  parserKey ??= Object.getOwnPropertySymbols(socket).find((s) => s.description === 'parser');
  if (parserKey === undefined) return undefined;
  const p = (socket as unknown as Record<symbol, unknown>)[parserKey];
  return p && typeof p === 'object' && typeof (p as PausableParser).resume === 'function' ? (p as PausableParser) : undefined;
}

/** Resumes the parser of a socket that ended while paused (see the module comment). */
export function onSocketEnd(socket: Socket): void {
  const parser = parserOf(socket);
  if (!parser || parser.paused !== true) return;
  try {
    parser.resume();
  } catch (err) {
    fail(socket, parser, err);
    return;
  }
  // Still paused with a response open: its body was cut short and the reader has not caught up (the parser
  // re-pauses on the empty rest). The request must fail; undici's handler must not see a paused parser.
  if (parser.paused && parser.statusCode) fail(socket, parser, undefined);
}

function fail(socket: Socket, parser: PausableParser, cause: unknown): void {
  // With `paused` false undici's own 'end' handler finishes the (still paused, so inert) parser without
  // asserting; the socket's error then fails the request.
  parser.paused = false;
  socket.destroy(new Error('the connection ended before the response did', cause === undefined ? undefined : { cause }));
}

/** `inner` with the guard on every socket it connects. */
export function guardedConnector(inner: buildConnector.connector): buildConnector.connector {
  return (options, callback) =>
    inner(options, (...args) => {
      const socket = args[1];
      if (socket) socket.on('end', () => onSocketEnd(socket));
      callback(...args);
    });
}

/** undici's own connector for `options`, guarded. */
export function guardedConnect(options: buildConnector.BuildOptions): buildConnector.connector {
  return guardedConnector(buildConnector(options));
}
