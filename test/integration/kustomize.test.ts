/**
 * The Kubernetes manifests (issue 12, item 2): every kustomize base under deploy/kubernetes renders
 * with `kubectl kustomize`, every object validates offline against the Kubernetes API schemas
 * (kubernetes-models), the workloads hold what a platform team requires (non-root, read-only root
 * filesystem, probes on /healthz and /readyz, resources, config from a ConfigMap, credentials from a
 * Secret, selectors that select), and the DaemonSet's init container is the containerd-hosts
 * installer: its arguments, run with the built CLI against a temp certs.d and the rendered
 * ConfigMap, write the hosts.toml files the mirror's namespaces need.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import * as core from 'kubernetes-models/v1';
import * as apps from 'kubernetes-models/apps/v1';
import * as policy from 'kubernetes-models/policy/v1';
import { cleanupAll, requireCommands, run, tmpDir } from '../harness/proc.js';
import { CLI_PATH } from '../harness/mirror-proc.js';

const KUSTOMIZE_ROOT = fileURLToPath(new URL('../../../deploy/kubernetes/', import.meta.url));
const DOCKERFILE = fileURLToPath(new URL('../../../deploy/Dockerfile', import.meta.url));
const BASES = ['node-local', 'regional', 'examples/two-tier'];

/** Just enough of the object shapes to check them (the schemas check the rest). */
interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  ports?: Array<{ name?: string; containerPort: number }>;
  envFrom?: Array<{ secretRef?: { name: string; optional?: boolean } }>;
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean; capabilities?: { drop?: string[]; add?: string[] } };
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}
interface PodSpec {
  hostNetwork?: boolean;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
  tolerations?: Array<{ operator?: string; key?: string }>;
  initContainers?: Container[];
  containers: Container[];
  volumes?: Array<{ name: string; configMap?: { name: string }; hostPath?: { path: string }; emptyDir?: object }>;
}
interface Workload extends Obj {
  spec: { selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: PodSpec }; volumeClaimTemplates?: Array<{ metadata: { name: string } }> };
}

type ModelClass = new (data: unknown) => { validate(): void };
const GROUPS: Record<string, Record<string, unknown>> = { v1: core, 'apps/v1': apps, 'policy/v1': policy };

async function render(base: string): Promise<Obj[]> {
  const res = await run('kubectl', ['kustomize', join(KUSTOMIZE_ROOT, base)], { name: 'kustomize', timeoutMs: 60_000 });
  return parseAllDocuments(res.stdout)
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null);
}

function validate(o: Obj): string | undefined {
  const Model = GROUPS[o.apiVersion]?.[o.kind] as ModelClass | undefined;
  if (!Model) return `${o.apiVersion} ${o.kind} ${o.metadata.name}: no schema known to the test`;
  try {
    new Model(o).validate();
    return undefined;
  } catch (err) {
    return `${o.kind}/${o.metadata.name}: ${(err as Error).message}`;
  }
}

function workloads(objs: Obj[]): Workload[] {
  return objs.filter((o): o is Workload => ['Deployment', 'StatefulSet', 'DaemonSet'].includes(o.kind));
}

function find<T extends Obj>(objs: Obj[], kind: string, name?: string): T {
  const o = objs.find((x) => x.kind === kind && (name === undefined || x.metadata.name === name));
  assert.ok(o, `a ${kind}${name ? ` ${name}` : ''} in the render`);
  return o as T;
}

/** The image's ENTRYPOINT (exec form), which Kubernetes runs with a container's `args`. */
function imageEntrypoint(): string[] {
  const line = readFileSync(DOCKERFILE, 'utf8').split('\n').find((l) => l.startsWith('ENTRYPOINT '));
  assert.ok(line, 'the Dockerfile has an ENTRYPOINT');
  return JSON.parse(line.slice('ENTRYPOINT '.length)) as string[];
}

describe('kustomize bases', () => {
  after(cleanupAll);

  test('every base renders and every object validates against the Kubernetes API schemas', async (t) => {
    requireCommands('kubectl');
    const dirs = readdirSync(KUSTOMIZE_ROOT, { withFileTypes: true }).filter((e) => e.isDirectory() && e.name !== 'examples').map((e) => e.name);
    assert.deepEqual(dirs.sort(), ['node-local', 'regional'], 'the bases this test knows');
    for (const base of BASES) {
      await t.test(base, async () => {
        const objs = await render(base);
        assert.ok(objs.length >= 3);
        assert.deepEqual(objs.map(validate).filter(Boolean), [], 'schema violations');
        for (const o of objs) if (o.kind !== 'Namespace') assert.equal(o.metadata.namespace, 'regmirror', `${o.kind}/${o.metadata.name} namespaced`);
        // Something validation cannot see: a broken negative case proves the validator rejects.
        assert.ok(validate({ ...find(objs, 'ConfigMap'), data: { 'config.yml': 42 } as unknown as Record<string, string> }), 'a wrong type is rejected');
      });
    }
  });

  test('workloads: non-root, read-only root fs, probes, resources, ConfigMap and Secret, selectors that select', async () => {
    for (const base of BASES) {
      const objs = await render(base);
      const configMaps = new Set(objs.filter((o) => o.kind === 'ConfigMap').map((o) => o.metadata.name));
      for (const w of workloads(objs)) {
        const where = `${base}: ${w.kind}/${w.metadata.name}`;
        const pod = w.spec.template.spec;
        for (const [k, v] of Object.entries(w.spec.selector.matchLabels)) assert.equal(w.spec.template.metadata.labels[k], v, `${where}: selector matches the pod labels`);
        assert.equal(pod.securityContext?.runAsNonRoot, true, `${where}: pod runs as non-root`);
        for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
          assert.equal(c.securityContext?.readOnlyRootFilesystem, true, `${where} ${c.name}: read-only root fs`);
          assert.equal(c.securityContext?.allowPrivilegeEscalation, false, `${where} ${c.name}: no privilege escalation`);
          assert.deepEqual(c.securityContext?.capabilities?.drop, ['ALL'], `${where} ${c.name}: drops all capabilities`);
          assert.ok(c.resources?.requests?.cpu && c.resources.requests.memory && c.resources.limits?.memory, `${where} ${c.name}: requests and a memory limit`);
        }
        for (const v of pod.volumes ?? []) if (v.configMap) assert.ok(configMaps.has(v.configMap.name), `${where}: ConfigMap ${v.configMap.name} is rendered`);
        const mirror = pod.containers.find((c) => c.name === 'regmirror');
        if (!mirror) continue;
        assert.deepEqual(mirror.args, ['serve', '--config', '/etc/regmirror/config.yml']);
        assert.equal(mirror.livenessProbe?.httpGet?.path, '/healthz');
        assert.equal(mirror.readinessProbe?.httpGet?.path, '/readyz');
        assert.equal(mirror.ports?.[0]?.containerPort, 5000);
        assert.ok(mirror.securityContext?.runAsUser === undefined || mirror.securityContext.runAsUser > 0);
        assert.deepEqual(mirror.envFrom?.map((e) => e.secretRef?.name), ['regmirror-credentials'], `${where}: credentials from the Secret`);
        assert.ok(mirror.volumeMounts?.some((m) => m.mountPath === '/etc/regmirror'));
        const cache = mirror.volumeMounts?.find((m) => m.mountPath === '/var/lib/regmirror');
        assert.ok(cache, `${where}: a cache volume`);
        const cacheVolume = pod.volumes?.find((v) => v.name === cache.name);
        assert.ok(cacheVolume?.hostPath || w.spec.volumeClaimTemplates?.some((t) => t.metadata.name === cache.name), `${where}: the cache is on a hostPath or a claim, not the container`);
        const cfg = objs.find((o) => o.kind === 'ConfigMap' && pod.volumes?.some((v) => v.configMap?.name === o.metadata.name));
        const config = parseYaml(cfg?.data?.['config.yml'] ?? '') as { listen: string; dataDir: string };
        assert.equal(config.listen, '0.0.0.0:5000', `${where}: the config listens on the container port`);
        assert.equal(config.dataDir, '/var/lib/regmirror');
      }
    }
    const regional = await render('regional');
    const sts = find<Workload>(regional, 'StatefulSet');
    const svc = find<Obj & { spec: { selector: Record<string, string> } }>(regional, 'Service', 'regmirror');
    for (const [k, v] of Object.entries(svc.spec.selector)) assert.equal(sts.spec.template.metadata.labels[k], v, 'the Service selects the mirror pods');
    const redis = find<Workload>(regional, 'Deployment', 'regmirror-redis');
    const redisSvc = find<Obj & { spec: { selector: Record<string, string> } }>(regional, 'Service', 'regmirror-redis');
    for (const [k, v] of Object.entries(redisSvc.spec.selector)) assert.equal(redis.spec.template.metadata.labels[k], v, 'the Redis Service selects Redis');
    const cfg = parseYaml(find(regional, 'ConfigMap').data?.['config.yml'] ?? '') as { redis: string };
    assert.equal(cfg.redis, 'redis://regmirror-redis:6379', 'the regional mirror uses that Redis');
  });

  test('the DaemonSet runs on every node, on the host network, and its init container is the containerd-hosts installer', async () => {
    const objs = await render('node-local');
    const ds = find<Workload>(objs, 'DaemonSet');
    const pod = ds.spec.template.spec;
    assert.equal(pod.hostNetwork, true, 'containerd reaches the mirror on the node’s 127.0.0.1');
    assert.ok(pod.tolerations?.some((t) => t.operator === 'Exists' && t.key === undefined), 'tolerates every taint');
    const init = pod.initContainers?.find((c) => c.name === 'containerd-hosts');
    assert.ok(init, 'an init container named containerd-hosts');
    assert.equal(init.image, pod.containers[0]!.image, 'the installer is the mirror’s own image');
    assert.equal(init.command, undefined, 'it runs the image entrypoint');
    const argv = [...imageEntrypoint(), ...(init.args ?? [])];
    assert.deepEqual(argv.slice(0, 3), ['node', '/app/build/src/cli/main.js', 'containerd-hosts']);
    const flag = (name: string) => init.args?.[init.args.indexOf(name) + 1];
    assert.equal(flag('--mirror'), 'http://127.0.0.1:5000');
    const certsMount = init.volumeMounts?.find((m) => m.mountPath === flag('--dir'));
    assert.ok(certsMount, '--dir is a mounted volume');
    assert.equal(pod.volumes?.find((v) => v.name === certsMount.name)?.hostPath?.path, '/etc/containerd/certs.d', 'the node’s certs.d');
    assert.ok(init.volumeMounts?.some((m) => m.mountPath === '/etc/regmirror'), 'it reads the mirror’s ConfigMap');

    // Run exactly these arguments with the built CLI, the node's certs.d and the ConfigMap swapped for temp files.
    const certs = await tmpDir('ds-certs-');
    const cfgDir = await tmpDir('ds-config-');
    const cm = find(objs, 'ConfigMap');
    writeFileSync(join(cfgDir, 'config.yml'), cm.data?.['config.yml'] ?? '');
    const args = (init.args ?? []).map((a) => (a === flag('--dir') ? certs : a === flag('--config') ? join(cfgDir, 'config.yml') : a));
    const out = await run(process.execPath, [CLI_PATH, ...args], { name: 'ds-installer', env: { ...process.env, REGMIRROR_CONFIG: '', REGMIRROR_UPSTREAM: '' }, timeoutMs: 30_000 });
    const namespaces = (parseYaml(cm.data?.['config.yml'] ?? '') as { upstreams: string[] }).upstreams.map((u) => u.split('=')[0]!);
    assert.deepEqual(readdirSync(certs).sort(), [...namespaces].sort(), `one directory per namespace of the config:\n${out.stdout}`);
    for (const ns of namespaces) {
      const toml = readFileSync(join(certs, ns, 'hosts.toml'), 'utf8');
      assert.match(toml, /\[host\."http:\/\/127\.0\.0\.1:5000"\]\n {2}capabilities = \["pull", "resolve"\]/);
      assert.match(toml, new RegExp(`^server = "${ns === 'docker.io' ? 'https://registry-1\\.docker\\.io' : `https://${ns.replaceAll('.', '\\.')}`}"$`, 'm'));
    }
  });
});
