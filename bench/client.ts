/**
 * Fan-out client, run as its own process by load.ts so that its reads do not share an event loop
 * with the harness (which also runs the throttling relay).
 *
 * `node build/bench/client.js '<json FanOutRequest>'` opens one connection per client, sends every
 * GET at once (`Connection: close`), reads each answer to its end and prints one JSON line
 * ({@link FanOutReport}) on stdout.
 *
 * It reads raw sockets into one reused buffer per connection (`onread`) and parses the HTTP/1.1
 * response itself (Content-Length, chunked, or until close): node:http allocates a buffer per chunk
 * and was twice as slow as curl here, which made the client the bottleneck of a 20 × 64 MiB
 * fan-out on 2 cores.
 */
import { createHash, type Hash } from 'node:crypto';
import { connect } from 'node:net';

/** What to fetch. */
export interface FanOutRequest {
  url: string;
  /** Spread the clients over these URLs instead (client i asks `urls[i % urls.length]`): one fan-out over several servers. */
  urls?: string[];
  clients: number;
  headers?: Record<string, string>;
  /** Hash every body (sha256) and report it. */
  hash?: boolean;
  /** Give up on a request after this many ms (default 300000). */
  timeoutMs?: number;
}

/** One client's outcome. */
export interface ClientOutcome {
  status: number;
  /** Body bytes (after chunked decoding). */
  bytes: number;
  /** Time to the end of the response headers, ms since the common start. */
  headersMs: number;
  /** Time to the end of the body, ms since the common start. */
  endMs: number;
  /** `sha256:<hex>` of the body when hashing. */
  digest?: string;
  error?: string;
  /** The URL this client asked (with `urls`). */
  url?: string;
}

/** Printed on stdout. */
export interface FanOutReport {
  clients: ClientOutcome[];
  /** Start of the requests to the end of the last body, ms. */
  wallMs: number;
  /** CPU time this client process used over the fan-out (user + system), s: near the wall time, the client was the limit. */
  cpuS: number;
}

const HEADER_END = Buffer.from('\r\n\r\n');

/** Incremental decoder of a chunked body; feeds decoded bytes to `sink`. */
class ChunkedDecoder {
  #state: 'size' | 'data' | 'crlf' | 'done' = 'size';
  #line = '';
  #left = 0;
  constructor(private readonly sink: (b: Buffer) => void) {}

  get done(): boolean {
    return this.#state === 'done';
  }

  push(buf: Buffer): void {
    let i = 0;
    while (i < buf.length && this.#state !== 'done') {
      if (this.#state === 'size') {
        const nl = buf.indexOf(10, i);
        if (nl < 0) {
          this.#line += buf.subarray(i).toString('latin1');
          return;
        }
        this.#line += buf.subarray(i, nl).toString('latin1');
        i = nl + 1;
        const size = parseInt(this.#line.trim().split(';')[0] ?? '', 16);
        this.#line = '';
        if (!Number.isFinite(size)) throw new Error('bad chunk size');
        if (size === 0) this.#state = 'done';
        else {
          this.#left = size;
          this.#state = 'data';
        }
      } else if (this.#state === 'data') {
        const n = Math.min(this.#left, buf.length - i);
        this.sink(buf.subarray(i, i + n));
        this.#left -= n;
        i += n;
        if (this.#left === 0) {
          this.#state = 'crlf';
          this.#left = 2;
        }
      } else {
        const n = Math.min(this.#left, buf.length - i);
        this.#left -= n;
        i += n;
        if (this.#left === 0) this.#state = 'size';
      }
    }
  }
}

function one(req: FanOutRequest, url: URL, t0: number): Promise<ClientOutcome> {
  return new Promise((resolve) => {
    const out: ClientOutcome = { status: 0, bytes: 0, headersMs: Number.NaN, endMs: Number.NaN };
    const hash: Hash | undefined = req.hash ? createHash('sha256') : undefined;
    let head: Buffer = Buffer.alloc(0);
    let inBody = false;
    let length = -1;
    let chunked: ChunkedDecoder | undefined;
    let finished = false;
    const body = (b: Buffer): void => {
      out.bytes += b.length;
      hash?.update(b);
    };
    const finish = (error?: string): void => {
      if (finished) return;
      finished = true;
      out.endMs = performance.now() - t0;
      if (error !== undefined) out.error = error;
      if (hash) out.digest = `sha256:${hash.digest('hex')}`;
      sock.destroy();
      resolve(out);
    };
    const complete = (): boolean => (chunked ? chunked.done : length >= 0 && out.bytes >= length);
    const onData = (data: Buffer): void => {
      if (!inBody) {
        head = Buffer.concat([head, data]);
        const i = head.indexOf(HEADER_END);
        if (i < 0) return;
        const lines = head.subarray(0, i).toString('latin1').split('\r\n');
        out.status = Number(lines[0]?.split(' ')[1] ?? 0);
        out.headersMs = performance.now() - t0;
        for (const l of lines.slice(1)) {
          const c = l.indexOf(':');
          const k = l.slice(0, c).trim().toLowerCase();
          const v = l.slice(c + 1).trim();
          if (k === 'content-length') length = Number(v);
          if (k === 'transfer-encoding' && v.toLowerCase().includes('chunked')) chunked = new ChunkedDecoder(body);
        }
        inBody = true;
        const rest = Buffer.from(head.subarray(i + HEADER_END.length));
        head = Buffer.alloc(0);
        if (chunked) chunked.push(rest);
        else body(rest);
      } else if (chunked) {
        chunked.push(data);
      } else {
        body(data);
      }
      if (complete()) finish();
    };
    const sock = connect({
      host: url.hostname,
      port: Number(url.port || 80),
      onread: {
        buffer: Buffer.allocUnsafe(1 << 20),
        callback: (n: number, buf: Uint8Array): boolean => {
          try {
            onData(Buffer.from(buf.buffer, buf.byteOffset, n));
          } catch (err) {
            finish((err as Error).message);
          }
          return true;
        },
      },
    });
    sock.setTimeout(req.timeoutMs ?? 300_000, () => finish('timeout'));
    sock.on('error', (err) => finish(err.message));
    sock.on('end', () => finish(complete() || (length < 0 && !chunked && inBody) ? undefined : 'connection closed early'));
    sock.on('close', () => finish(complete() ? undefined : 'connection closed early'));
    sock.on('connect', () => {
      const headers = Object.entries(req.headers ?? {})
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join('');
      sock.write(`GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\n${headers}Connection: close\r\n\r\n`);
    });
  });
}

async function main(): Promise<void> {
  const arg = process.argv[2];
  if (arg === undefined) throw new Error('usage: client.js <json>');
  const req = JSON.parse(arg) as FanOutRequest;
  const urls = (req.urls ?? [req.url]).map((u) => new URL(u));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const clients = await Promise.all(
    Array.from({ length: req.clients }, async (_, i) => {
      const url = urls[i % urls.length] as URL;
      const out = await one(req, url, t0);
      return req.urls ? { ...out, url: url.href } : out;
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  const report: FanOutReport = { clients, wallMs: Math.max(...clients.map((c) => c.endMs)), cpuS: (cpu.user + cpu.system) / 1e6 };
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`client: ${String(err)}\n`);
  process.exitCode = 1;
});
