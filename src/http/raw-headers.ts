/**
 * Reading a request header without `req.headers`: Node builds that object lazily, on first access, from
 * every raw header line. A warm manifest answer needs one or two headers, so the hot path reads them from
 * `rawHeaders` and never pays for the object. Values of repeated lines are joined with ", ", as Node joins
 * them for these headers.
 */
import type { IncomingMessage } from 'node:http';

/** The value of header `name` (lower case), undefined when absent. */
export function requestHeader(req: IncomingMessage, name: string): string | undefined {
  const raw = req.rawHeaders;
  let value: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!;
    if (k.length === name.length && (k === name || k.toLowerCase() === name)) value = value === undefined ? raw[i + 1]! : `${value}, ${raw[i + 1]!}`;
  }
  return value;
}
