/**
 * A small, strict multipart/byteranges parser for tests only. It is written independently of
 * src/range (it must not import it) so that it can check the writer's output.
 *
 * Strict on purpose: no preamble, CRLF line endings, a close delimiter, and after it nothing but an
 * optional CRLF. Part bodies are found by searching for the delimiter (as real clients do), not by
 * trusting Content-Range.
 */

/** One parsed body part. */
export interface ParsedPart {
  /** The part's Content-Type value, if any. */
  contentType: string | undefined;
  /** The part's Content-Range value, if any. */
  contentRange: string | undefined;
  /** All header fields of the part, names lower-cased, in order. */
  headers: [string, string][];
  /** The part's data. */
  body: Buffer;
}

/** Extracts the boundary parameter of a multipart/byteranges Content-Type; throws otherwise. */
export function boundaryFromContentType(contentType: string): string {
  const semi = contentType.indexOf(';');
  const mediaType = (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  if (mediaType !== 'multipart/byteranges') throw new Error(`not multipart/byteranges: ${contentType}`);
  let boundary: string | undefined;
  let rest = semi < 0 ? '' : contentType.slice(semi + 1);
  while (rest.length > 0) {
    const m = /^\s*([^=;\s]+)\s*=\s*("((?:[^"\\]|\\.)*)"|[^;\s]*)\s*(;|$)/.exec(rest);
    if (m === null) throw new Error(`bad parameters in ${contentType}`);
    const name = m[1]!.toLowerCase();
    const value = m[3] !== undefined ? m[3].replace(/\\(.)/g, '$1') : m[2]!;
    if (name === 'boundary') {
      if (boundary !== undefined) throw new Error('duplicate boundary parameter');
      boundary = value;
    }
    rest = rest.slice(m[0].length);
  }
  if (boundary === undefined || boundary.length === 0 || boundary.length > 70) {
    throw new Error(`missing or bad boundary in ${contentType}`);
  }
  return boundary;
}

/**
 * Parses a complete multipart/byteranges body.
 *
 * @param contentType - the response Content-Type (gives the boundary).
 * @param body - the whole response body.
 */
export function parseByteranges(contentType: string, body: Buffer): ParsedPart[] {
  const boundary = boundaryFromContentType(contentType);
  const dash = Buffer.from(`--${boundary}`, 'latin1');
  const delim = Buffer.from(`\r\n--${boundary}`, 'latin1');
  const CRLF = Buffer.from('\r\n');
  const CRLFCRLF = Buffer.from('\r\n\r\n');

  if (!body.subarray(0, dash.length).equals(dash)) throw new Error('body does not start with the dash-boundary');
  let pos = dash.length;
  const parts: ParsedPart[] = [];
  for (;;) {
    // after a delimiter: either "--" (close) or CRLF then a part
    if (body.subarray(pos, pos + 2).toString('latin1') === '--') {
      pos += 2;
      const epilogue = body.subarray(pos);
      if (epilogue.length !== 0 && !epilogue.equals(CRLF)) {
        throw new Error(`unexpected ${epilogue.length} bytes after the close delimiter`);
      }
      break;
    }
    if (!body.subarray(pos, pos + 2).equals(CRLF)) throw new Error(`expected CRLF after delimiter at ${pos}`);
    pos += 2;
    const headEnd = body.indexOf(CRLFCRLF, pos);
    if (headEnd < 0) throw new Error(`unterminated part header section at ${pos}`);
    const headers: [string, string][] = [];
    const headText = body.subarray(pos, headEnd).toString('latin1');
    if (headText.length > 0) {
      for (const line of headText.split('\r\n')) {
        const colon = line.indexOf(':');
        if (colon <= 0) throw new Error(`bad part header line ${JSON.stringify(line)}`);
        const name = line.slice(0, colon);
        if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) throw new Error(`bad header name ${JSON.stringify(name)}`);
        headers.push([name.toLowerCase(), line.slice(colon + 1).trim()]);
      }
    }
    const dataStart = headEnd + 4;
    const next = body.indexOf(delim, dataStart);
    if (next < 0) throw new Error('missing delimiter after part data (no close delimiter)');
    const one = (n: string): string | undefined => {
      const found = headers.filter(([k]) => k === n);
      if (found.length > 1) throw new Error(`duplicate ${n} in a part`);
      return found[0]?.[1];
    };
    parts.push({
      contentType: one('content-type'),
      contentRange: one('content-range'),
      headers,
      body: Buffer.from(body.subarray(dataStart, next)),
    });
    pos = next + delim.length;
  }
  if (parts.length === 0) throw new Error('multipart body without parts');
  return parts;
}
