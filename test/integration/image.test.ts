/**
 * The container recipe (issue 12, item 7). No base image can be pulled here, so `docker build`
 * cannot run; this checks what a build depends on: every COPY source exists and is inside the
 * build context (not dropped by .dockerignore), while data/, node_modules, build and .git are
 * kept out; the stages are Node ≥ 22; the final user is numeric and not root; the ENTRYPOINT is the
 * package's bin; and the HEALTHCHECK script, laid out as in the image, follows the configured
 * port against a real mirror process. docker-compose.yml only mounts files that exist.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { cleanupAll, freePort, run, tmpDir } from '../harness/proc.js';
import { startMirrorProcess } from '../harness/mirror-proc.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const dockerfile = () => readFileSync(join(ROOT, 'deploy/Dockerfile'), 'utf8');

/** .dockerignore patterns as Docker reads them (no negations used here). */
function ignored(path: string): boolean {
  const patterns = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  return patterns.some((p) => {
    const re = new RegExp(`^${p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}(/.*)?$`);
    return re.test(path);
  });
}

describe('deploy/Dockerfile and docker-compose.yml', () => {
  after(cleanupAll);

  test('every COPY source exists and is in the build context; data, node_modules, build and .git are not', () => {
    const sources = dockerfile()
      .split('\n')
      .filter((l) => l.startsWith('COPY ') && !l.includes('--from='))
      .flatMap((l) => l.slice(5).trim().split(/\s+/).slice(0, -1));
    assert.ok(sources.length >= 5, sources.join(' '));
    for (const s of sources) {
      assert.ok(existsSync(join(ROOT, s)), `${s} exists`);
      assert.ok(!ignored(s), `${s} is not excluded by .dockerignore`);
    }
    for (const p of ['data', 'data/blobs/sha256/x', 'node_modules', 'node_modules/undici/index.js', 'build', 'build/src/cli/main.js', '.git', '.git/HEAD', 'test/unit/x.ts', 'x.log']) {
      assert.ok(ignored(p), `${p} is excluded`);
    }
  });

  test('Node ≥ 22 stages, a numeric non-root user, the package bin as ENTRYPOINT, a HEALTHCHECK', () => {
    const text = dockerfile();
    const image = /^ARG NODE_IMAGE=node:(\d+)-/m.exec(text);
    assert.ok(image && Number(image[1]) >= 22, 'Node 22 or later');
    const froms = text.split('\n').filter((l) => l.startsWith('FROM '));
    assert.equal(froms.length, 2, 'multi-stage');
    for (const f of froms) assert.match(f, /^FROM \$\{NODE_IMAGE\}/);
    const users = text.split('\n').filter((l) => l.startsWith('USER '));
    assert.deepEqual(users, ['USER 1000:1000']);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    const entry = JSON.parse(/^ENTRYPOINT (.*)$/m.exec(text)![1]!) as string[];
    assert.deepEqual(entry, ['node', `/app/${pkg.bin.regmirror}`]);
    assert.match(text, /^HEALTHCHECK .* CMD \["node", "\/app\/healthcheck\.mjs"\]$/m);
    assert.match(text, /^COPY deploy\/healthcheck\.mjs \.\/healthcheck\.mjs$/m, 'the script lands where HEALTHCHECK runs it');
  });

  test('the HEALTHCHECK script, laid out as in the image, probes the configured port', async () => {
    // /app/healthcheck.mjs beside /app/build and /app/node_modules, as the image has them.
    const app = await tmpDir('image-app-');
    copyFileSync(join(ROOT, 'deploy/healthcheck.mjs'), join(app, 'healthcheck.mjs'));
    symlinkSync(join(ROOT, 'build'), join(app, 'build'));
    symlinkSync(join(ROOT, 'node_modules'), join(app, 'node_modules'));
    copyFileSync(join(ROOT, 'package.json'), join(app, 'package.json'));
    const mirror = await startMirrorProcess(['--upstream', `docker.io=http://127.0.0.1:${await freePort()}`]);
    const port = mirror.host.split(':')[1]!;
    const cfg = join(app, 'config.yml');
    writeFileSync(cfg, `listen: 0.0.0.0:${port}\ndataDir: ${mirror.dataDir}\n`);
    const check = (env: NodeJS.ProcessEnv) =>
      run(process.execPath, [join(app, 'healthcheck.mjs')], { name: 'healthcheck', cwd: app, env: { ...process.env, REGMIRROR_LISTEN: '', ...env }, allowFailure: true, timeoutMs: 20_000 });
    assert.equal((await check({ REGMIRROR_CONFIG: cfg })).code, 0, 'healthy on the port the file names');
    assert.equal((await check({ REGMIRROR_CONFIG: cfg, REGMIRROR_LISTEN: `127.0.0.1:${await freePort()}` })).code, 1, 'REGMIRROR_LISTEN overrides the file, and nothing listens there');
    await mirror.stop();
    assert.equal((await check({ REGMIRROR_CONFIG: cfg })).code, 1, 'unhealthy once the mirror is gone');
  });

  test('docker-compose.yml: the mirror, Redis, Prometheus with the rules, Grafana with the dashboard; every mounted file exists', () => {
    const compose = parseYaml(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')) as { services: Record<string, { volumes?: string[]; build?: { dockerfile: string } }> };
    assert.deepEqual(Object.keys(compose.services).sort(), ['grafana', 'prometheus', 'redis', 'regmirror']);
    assert.equal(compose.services.regmirror?.build?.dockerfile, 'deploy/Dockerfile');
    const mounts = Object.values(compose.services).flatMap((s) => s.volumes ?? []).filter((v) => v.startsWith('./'));
    for (const v of mounts) assert.ok(existsSync(join(ROOT, v.split(':')[0]!)), `${v}: the host path exists`);
    assert.ok(mounts.some((v) => v.startsWith('./deploy/prometheus/alerts.yml:')), 'Prometheus gets the alert rules');
    assert.ok(mounts.some((v) => v.startsWith('./deploy/grafana/regmirror.json:')), 'Grafana gets the dashboard');
    const prom = parseYaml(readFileSync(join(ROOT, 'deploy/prometheus/prometheus.yml'), 'utf8')) as { rule_files: string[]; scrape_configs: Array<{ static_configs: Array<{ targets: string[] }> }> };
    assert.deepEqual(prom.rule_files, ['/etc/prometheus/alerts.yml']);
    assert.deepEqual(prom.scrape_configs[0]?.static_configs[0]?.targets, ['regmirror:5000']);
    const dashProvider = readFileSync(join(ROOT, 'deploy/grafana/provisioning/dashboards/regmirror.yml'), 'utf8');
    assert.match(dashProvider, /path: \/var\/lib\/grafana\/dashboards/);
  });
});
