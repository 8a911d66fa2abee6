/**
 * regmirror as it is deployed: the built CLI (`node build/src/cli/main.js serve …`) in its own
 * process, with process metrics on and its JSON log captured. For tests that need the real thing
 * end to end (Prometheus scraping process_* metrics, start-up log lines).
 */
import { fileURLToPath } from 'node:url';
import { spawnProc, tmpDir, type Proc } from './proc.js';

/** The built CLI entry point (what the container image's ENTRYPOINT runs). */
export const CLI_PATH = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** A running mirror process. */
export interface MirrorProcess {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  /** `127.0.0.1:PORT` */
  readonly host: string;
  readonly dataDir: string;
  readonly proc: Proc;
  /** Every JSON log line so far, parsed. */
  logLines(): Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

/**
 * Starts `regmirror serve --listen 127.0.0.1:0 --data-dir TMP ARGS` and waits for its
 * "regmirror listening" line, which names the bound address.
 * @param args further `serve` flags, e.g. `['--upstream', 'docker.io=http://127.0.0.1:5001']`
 */
export async function startMirrorProcess(args: string[], env: NodeJS.ProcessEnv = {}): Promise<MirrorProcess> {
  const dataDir = await tmpDir('regmirror-proc-data-');
  const proc = await spawnProc(process.execPath, [CLI_PATH, 'serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir, ...args], {
    name: 'regmirror',
    env: { ...process.env, REGMIRROR_CONFIG: '', ...env },
  });
  const m = await proc.waitFor(/"address":"127\.0\.0\.1:(\d+)".*"msg":"regmirror listening/, { timeoutMs: 20_000 });
  const host = `127.0.0.1:${m[1]}`;
  const logLines = () =>
    proc
      .output('stdout')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return {
    url: `http://${host}`,
    host,
    dataDir,
    proc,
    logLines,
    stop: async () => {
      await proc.stop();
    },
  };
}
