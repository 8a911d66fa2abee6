/**
 * A private redis-server on a free TCP port of 127.0.0.1, without persistence.
 */
import { connect } from 'node:net';
import { freePort, spawnProc, tmpDir, type Proc } from './proc.js';

/** A running redis-server. */
export interface RedisServer {
  /** `redis://127.0.0.1:PORT` */
  readonly url: string;
  readonly port: number;
  readonly proc: Proc;
  /** Stops the server (SIGTERM, then SIGKILL). */
  stop(): Promise<void>;
}

/** Options for {@link startRedis}. */
export interface RedisOptions {
  /** Extra `--option value` arguments (e.g. `['--maxmemory', '10mb']`). */
  extraArgs?: string[];
  /** Start timeout in ms (default 10000). */
  startTimeoutMs?: number;
}

/**
 * Starts `redis-server --port N --bind 127.0.0.1 --save "" --appendonly no` in a temp dir and waits
 * for "Ready to accept connections". Retries on another port if the chosen one was taken.
 */
export async function startRedis(opts: RedisOptions = {}): Promise<RedisServer> {
  const dir = await tmpDir('redis-');
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const proc = await spawnProc(
      'redis-server',
      [
        '--port', String(port),
        '--bind', '127.0.0.1',
        '--save', '',
        '--appendonly', 'no',
        '--dir', dir,
        '--daemonize', 'no',
        '--protected-mode', 'yes',
        ...(opts.extraArgs ?? []),
      ],
      { name: 'redis', logDir: dir },
    );
    try {
      await proc.waitFor(/Ready to accept connections/, { timeoutMs: opts.startTimeoutMs ?? 10_000 });
      return {
        url: `redis://127.0.0.1:${port}`,
        port,
        proc,
        stop: async () => {
          await proc.stop();
        },
      };
    } catch (err) {
      lastErr = err;
      await proc.stop({ graceMs: 1000 });
      if (!/Address already in use/.test(proc.output())) throw err;
    }
  }
  throw lastErr;
}

/** A decoded RESP reply. */
export type RespValue = string | number | null | Error | RespValue[];

/**
 * Sends one command over a fresh TCP connection and returns the decoded reply
 * (e.g. `await redisCommand(url, 'PING')` → `'PONG'`). For tests; not a client library.
 */
export async function redisCommand(url: string, ...args: (string | number)[]): Promise<RespValue> {
  const u = new URL(url);
  const payload = `*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(String(a))}\r\n${String(a)}\r\n`).join('');
  return new Promise<RespValue>((resolve, reject) => {
    const sock = connect(Number(u.port), u.hostname);
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`redis ${String(args[0])}: no reply within 5000 ms`));
    }, 5000);
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const parsed = parseResp(buf, 0);
      if (parsed) {
        clearTimeout(timer);
        sock.end();
        resolve(parsed.value);
      }
    });
    sock.write(payload);
  });
}

function parseResp(buf: Buffer, pos: number): { value: RespValue; next: number } | undefined {
  const eol = buf.indexOf('\r\n', pos);
  if (eol < 0) return undefined;
  const type = String.fromCharCode(buf[pos] ?? 0);
  const line = buf.toString('utf8', pos + 1, eol);
  switch (type) {
    case '+':
      return { value: line, next: eol + 2 };
    case '-':
      return { value: new Error(line), next: eol + 2 };
    case ':':
      return { value: Number(line), next: eol + 2 };
    case '$': {
      const len = Number(line);
      if (len < 0) return { value: null, next: eol + 2 };
      if (buf.length < eol + 2 + len + 2) return undefined;
      return { value: buf.toString('utf8', eol + 2, eol + 2 + len), next: eol + 2 + len + 2 };
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return { value: null, next: eol + 2 };
      const out: RespValue[] = [];
      let next = eol + 2;
      for (let i = 0; i < n; i++) {
        const item = parseResp(buf, next);
        if (!item) return undefined;
        out.push(item.value);
        next = item.next;
      }
      return { value: out, next };
    }
    default:
      throw new Error(`bad RESP reply: ${buf.toString('utf8', pos, Math.min(buf.length, pos + 80))}`);
  }
}
