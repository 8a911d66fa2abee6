/**
 * The mirror as a child process, for the fault suite: a crash is an exit the test sees, SIGTERM and
 * kill -9 are real signals, and the mirror's RSS can be read from /proc. Settings beyond the flags go
 * in a YAML config file (JSON is YAML), so the fault tests exercise the real start path.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { freePort, spawnProc, tmpDir, type Proc } from '../harness/proc.js';

/** The compiled CLI (this file compiles to build/test/integration/). */
export const MAIN_JS = new URL('../../src/cli/main.js', import.meta.url).pathname;

/** Options for {@link startChild}. */
export interface ChildOptions {
  /** `--upstream` specs, e.g. `docker.io=http://127.0.0.1:5001`. */
  upstreams: string[];
  /** Data dir (default: a fresh temp dir). */
  dataDir?: string;
  /** Settings written to the config file (`limits`, `credentials`, `redis` …). */
  config?: Record<string, unknown>;
  /** Listen port (default: a free one). */
  port?: number;
  /** Log level (default info: one line per request). */
  logLevel?: string;
  /** Extra environment. */
  env?: Record<string, string>;
  /** Working directory of the child (default: the test's). */
  cwd?: string;
  /** Resolve once started, without waiting for the "listening" line (for a start that must fail). */
  noWait?: boolean;
}

/** A running mirror child. */
export interface ChildMirror {
  proc: Proc;
  url: string;
  port: number;
  dataDir: string;
  configFile: string;
  /** VmRSS of the child in KiB (0 once it has exited). */
  rssKiB(): number;
  /** The /metrics text. */
  metrics(): Promise<string>;
}

/** Starts `node build/src/cli/main.js serve` and waits for "regmirror listening". */
export async function startChild(opts: ChildOptions): Promise<ChildMirror> {
  const dataDir = opts.dataDir ?? (await tmpDir('fault-data-'));
  const port = opts.port ?? (await freePort());
  const configFile = join(await tmpDir('fault-cfg-'), 'config.yml');
  writeFileSync(configFile, JSON.stringify(opts.config ?? {}, null, 2));
  const args = [MAIN_JS, 'serve', '--config', configFile, '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--log-level', opts.logLevel ?? 'info'];
  for (const u of opts.upstreams) args.push('--upstream', u);
  const proc = await spawnProc(process.execPath, args, {
    name: 'mirror',
    env: { ...process.env, ...(opts.env ?? {}) },
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    ...(opts.noWait ? {} : { ready: /regmirror listening/, readyTimeoutMs: 20_000 }),
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    proc,
    url,
    port,
    dataDir,
    configFile,
    rssKiB: () => {
      try {
        const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${proc.pid}/status`, 'utf8'));
        return Number(m?.[1] ?? 0);
      } catch {
        return 0;
      }
    },
    metrics: () =>
      new Promise((resolve, reject) => {
        const req = httpRequest(`${url}/metrics`, { agent: false }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => resolve(text));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end();
      }),
  };
}

/** Sum of a metric's samples (optionally only those whose label set contains `labelText`, e.g. `reason="disk"`). */
export function metricValue(text: string, name: string, labelText = ''): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || line.startsWith('#')) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    if (labelText && !rest.includes(labelText)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
