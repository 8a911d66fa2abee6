// The image's HEALTHCHECK: GET /healthz on the address the mirror listens on, read with the mirror's
// own config loader (file < REGMIRROR_* < nothing else), so a changed port is followed.
import { buildConfig, readConfigFile, readEnv } from './build/src/config/load.js';

const env = readEnv();
const layers = [];
if (env.config) layers.push(readConfigFile(env.config));
layers.push(env);
const { host, port } = buildConfig(...layers).listen;
const target = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host;
try {
  const res = await fetch(`http://${target}:${port}/healthz`, { signal: AbortSignal.timeout(4000) });
  process.exit(res.ok ? 0 : 1);
} catch {
  process.exit(1);
}
