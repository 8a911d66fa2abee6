/** Starts regmirror in-process on 127.0.0.1:0 with a temp data dir, for integration tests. */
import { join } from 'node:path';
import { pino } from 'pino';
import { Mirror } from '../../src/mirror.js';
import { buildConfig, type ConfigInput } from '../../src/config/load.js';
import type { MirrorConfig } from '../../src/config/types.js';
import { createLogger } from '../../src/log.js';
import { registerCleanup, tmpDir } from '../harness/proc.js';

export interface TestMirror {
  mirror: Mirror;
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** `127.0.0.1:PORT` */
  host: string;
  dataDir: string;
  /** The mirror's JSON log file. */
  logFile: string;
  /** Sum of a metric's values whose labels include `labels`. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  close(): Promise<void>;
}

/** Starts a mirror. `input` is merged over test defaults (listen 127.0.0.1:0, temp data dir, debug log to a file). */
export async function startMirror(input: ConfigInput, tweak?: (c: MirrorConfig) => void): Promise<TestMirror> {
  const dataDir = input.dataDir ?? (await tmpDir('regmirror-data-'));
  const config = buildConfig({ listen: '127.0.0.1:0', logLevel: 'debug', ...input, dataDir });
  tweak?.(config);
  const logFile = join(await tmpDir('regmirror-log-'), 'mirror.log');
  const logger = createLogger(config.logLevel, pino.destination({ dest: logFile, sync: true }));
  const mirror = await Mirror.create(config, { logger, processMetrics: false });
  const { port } = await mirror.listen('127.0.0.1', 0);
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await mirror.close();
  };
  registerCleanup('mirror', close);
  return {
    mirror,
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    dataDir,
    logFile,
    async metric(name, labels = {}) {
      const m = mirror.metrics.registry.getSingleMetric(name);
      if (!m) throw new Error(`no metric ${name}`);
      const { values } = await m.get();
      return values
        .filter((v) => {
          const mn = (v as { metricName?: string }).metricName;
          return mn === undefined || mn.endsWith('_count');
        })
        .filter((v) => Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want))
        .reduce((s, v) => s + v.value, 0);
    },
    close,
  };
}
