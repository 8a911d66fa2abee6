/**
 * Load generation, always outside the process of the server under test and outside the harness's
 * event loop: `wrk` (one thread, keep-alive connections, a Lua `done` hook printing exact counts
 * and latency percentiles) for throughput and requests/s, and client.ts in a child process for the
 * cold fan-out. `httpGet` is a plain in-harness request for warm-ups and checks.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { run } from '../test/harness/proc.js';
import type { FanOutReport, FanOutRequest } from './client.js';

/** Lua hook: wrk's summary as one JSON line (latencies in µs). */
const WRK_LUA = `done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%.0f,"bytes":%.0f,"duration_us":%.0f,"p50_us":%.0f,"p99_us":%.0f,"max_us":%.0f,' ..
    '"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f}\\n',
    summary.requests, summary.bytes, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
`;

/** Writes the Lua hook into `dir` once; returns its path. */
export function writeWrkScript(dir: string): string {
  const path = join(dir, 'summary.lua');
  writeFileSync(path, WRK_LUA);
  return path;
}

/** Options for {@link wrk}. */
export interface WrkOptions {
  url: string;
  connections: number;
  durationSec: number;
  /** The Lua hook from {@link writeWrkScript}. */
  script: string;
  /** wrk threads (default 1: the machine's other core is the server's). */
  threads?: number;
  headers?: Record<string, string>;
  /** Per-request timeout (default 30 s). */
  timeoutSec?: number;
  /** Runs wrk on these CPUs (a taskset list); default: wherever the scheduler puts it. */
  cpus?: string;
}

/** What wrk measured. */
export interface WrkResult {
  requests: number;
  /** Bytes read (headers and bodies). */
  bytes: number;
  durationS: number;
  rps: number;
  bytesPerSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Socket errors, timeouts and non-2xx/3xx answers. */
  errors: number;
}

interface WrkJson {
  requests: number;
  bytes: number;
  duration_us: number;
  p50_us: number;
  p99_us: number;
  max_us: number;
  connect: number;
  read: number;
  write: number;
  status: number;
  timeout: number;
}

/** Runs wrk and parses its summary. Throws if it fails or reports no request. */
export async function wrk(opts: WrkOptions): Promise<WrkResult> {
  const threads = Math.min(opts.threads ?? 1, opts.connections);
  const args = [
    `-t${threads}`,
    `-c${opts.connections}`,
    `-d${opts.durationSec}s`,
    `--timeout`,
    `${opts.timeoutSec ?? 30}s`,
    '-s',
    opts.script,
  ];
  for (const [k, v] of Object.entries(opts.headers ?? {})) args.push('-H', `${k}: ${v}`);
  args.push(opts.url);
  const [cmd, argv] = opts.cpus === undefined ? ['wrk', args] : ['taskset', ['-c', opts.cpus, 'wrk', ...args]];
  const res = await run(cmd, argv, { name: 'wrk', timeoutMs: (opts.durationSec + (opts.timeoutSec ?? 30) + 30) * 1000 });
  const line = res.stdout.split('\n').find((l) => l.startsWith('WRKJSON '));
  if (!line) throw new Error(`wrk printed no summary:\n${res.output}`);
  const j = JSON.parse(line.slice('WRKJSON '.length)) as WrkJson;
  const durationS = j.duration_us / 1e6;
  return {
    requests: j.requests,
    bytes: j.bytes,
    durationS,
    rps: j.requests / durationS,
    bytesPerSec: j.bytes / durationS,
    p50Ms: j.p50_us / 1000,
    p99Ms: j.p99_us / 1000,
    maxMs: j.max_us / 1000,
    errors: j.connect + j.read + j.write + j.status + j.timeout,
  };
}

/** Runs client.ts (built as `clientJs`) in a child process. */
export async function fanOut(clientJs: string, req: FanOutRequest): Promise<FanOutReport> {
  const res = await run(process.execPath, [clientJs, JSON.stringify(req)], { name: 'fanout', timeoutMs: (req.timeoutMs ?? 300_000) + 30_000 });
  const line = res.stdout.split('\n').find((l) => l.startsWith('{'));
  if (!line) throw new Error(`fan-out client printed nothing:\n${res.output}`);
  return JSON.parse(line) as FanOutReport;
}

/** A whole response. */
export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** `GET url` (or `method`) in this process, body buffered. */
export function httpGet(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent: false, timeout: 300_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout: ${method} ${url}`)));
    req.on('error', reject);
    req.end();
  });
}

/** `sha256:<hex>` of `buf`. */
export function digestOf(buf: Buffer): string {
  return `sha256:${createHash('sha256').update(buf).digest('hex')}`;
}
