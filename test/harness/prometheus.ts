/**
 * A real Prometheus server for tests (Debian's `prometheus`), scraping targets on loopback every
 * second and evaluating rule files, with an HTTP API client; and `promtool`.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, run, spawnProc, tmpDir, type Proc, type RunOutcome } from './proc.js';

/** Options for {@link startPrometheus}. */
export interface PrometheusOptions {
  /** `host:port` targets of one job (default job name `regmirror`). */
  targets: string[];
  /** Job name (default `regmirror`). */
  job?: string;
  /** Rule files (absolute paths) loaded by the server. */
  ruleFiles?: string[];
  /** Scrape and rule evaluation interval (default `1s`). */
  interval?: string;
}

/** One series of an instant vector answer. */
export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

/** A running Prometheus. */
export interface Prometheus {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  readonly proc: Proc;
  /**
   * Runs an instant query. Throws (with Prometheus' error, e.g. a parse error) unless the API
   * answers `status: success`. Scalars and strings come back as one sample without labels.
   */
  query(expr: string): Promise<PromSample[]>;
  /** Waits until every target has been scraped successfully at least `count` more times from now. */
  waitForScrapes(count?: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

interface ApiAnswer {
  status: 'success' | 'error';
  error?: string;
  errorType?: string;
  data?: { resultType: string; result: unknown };
}

/** Starts `prometheus` with a generated config on 127.0.0.1 and waits until it is ready. */
export async function startPrometheus(opts: PrometheusOptions): Promise<Prometheus> {
  const dir = await tmpDir('prometheus-');
  const port = await freePort();
  const interval = opts.interval ?? '1s';
  const config = {
    global: { scrape_interval: interval, evaluation_interval: interval, scrape_timeout: interval },
    rule_files: opts.ruleFiles ?? [],
    scrape_configs: [{ job_name: opts.job ?? 'regmirror', metrics_path: '/metrics', static_configs: [{ targets: opts.targets }] }],
  };
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const proc = await spawnProc(
    'prometheus',
    [`--config.file=${configFile}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=info'],
    { name: 'prometheus', logDir: dir, ready: /Server is ready to receive web requests/, readyTimeoutMs: 30_000 },
  );
  const url = `http://127.0.0.1:${port}`;

  const api = async (path: string): Promise<ApiAnswer> => {
    const res = await fetch(`${url}${path}`);
    return (await res.json()) as ApiAnswer;
  };

  const query = async (expr: string): Promise<PromSample[]> => {
    const a = await api(`/api/v1/query?query=${encodeURIComponent(expr)}`);
    if (a.status !== 'success' || !a.data) throw new Error(`query failed (${a.errorType ?? '?'}): ${a.error ?? 'no data'}\n  ${expr}`);
    const { resultType, result } = a.data;
    if (resultType === 'vector') return result as PromSample[];
    if (resultType === 'scalar' || resultType === 'string') return [{ metric: {}, value: result as [number, string] }];
    throw new Error(`unexpected result type ${resultType} for ${expr}`);
  };

  const lastScrapes = async (): Promise<number[]> => {
    const a = await api('/api/v1/targets?state=active');
    const targets = (a.data as unknown as { activeTargets: Array<{ health: string; lastScrape: string }> } | undefined)?.activeTargets ?? [];
    return targets.map((t) => (t.health === 'up' ? Date.parse(t.lastScrape) : 0));
  };

  const waitForScrapes = async (count = 1, timeoutMs = 30_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    const from = Date.now();
    let seen = 0;
    let last = 0;
    while (Date.now() < deadline) {
      const scrapes = await lastScrapes();
      const oldest = scrapes.length === opts.targets.length ? Math.min(...scrapes) : 0;
      if (oldest > from && oldest !== last) {
        last = oldest;
        if (++seen >= count) return;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`prometheus: targets not scraped ${count} times within ${timeoutMs} ms\n${proc.tail(20)}`);
  };

  return {
    url,
    proc,
    query,
    waitForScrapes,
    stop: async () => {
      await proc.stop();
    },
  };
}

/** Runs `promtool ARGS` (in `cwd`); throws with its output on failure. */
export function promtool(args: string[], cwd?: string): Promise<RunOutcome> {
  return run('promtool', args, { name: 'promtool', timeoutMs: 60_000, ...(cwd ? { cwd } : {}) });
}
