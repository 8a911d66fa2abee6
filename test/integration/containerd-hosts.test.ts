/**
 * `regmirror containerd-hosts` against a real containerd (issue 12, item 1): the installer, run as the
 * DaemonSet's init container runs it (the built CLI in a child process), writes into a private
 * containerd's certs.d; `ctr images pull` (a full pull with unpack) then goes through the mirror.
 * After `--remove` the files that were there before are back, and the next pull goes where they say
 * (straight to the registry), not through the mirror.
 *
 * The node already had a docker.io/hosts.toml of its own (server = the registry, directly) and an
 * unrelated quay.io one. While the mirror is installed, docker.io's `server` is a loopback port where
 * nothing listens: a pull that succeeds cannot have bypassed the mirror.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanupAll, freePort, requireCommands, run, tmpDir } from '../harness/proc.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { makeImage, pushImage, type GeneratedImage } from '../harness/oci.js';
import { startContainerd, type Containerd } from '../harness/containerd.js';
import { startMirror, type TestMirror } from '../helpers/mirror.js';

/** The built CLI: the same entry point the container image runs. */
const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** Runs `regmirror containerd-hosts ARGS` as a child process; returns its stdout. */
async function installer(args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const res = await run(process.execPath, [CLI, 'containerd-hosts', ...args], { name: 'containerd-hosts', env: { ...process.env, ...env }, timeoutMs: 30_000 });
  return res.stdout;
}

/** Every file under `dir` with its content (relative path → text). */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out[relative(dir, p)] = readFileSync(p, 'utf8');
    }
  };
  walk(dir);
  return out;
}

async function ctrPull(ctd: Containerd, certs: string, ref: string): Promise<void> {
  await run('ctr', ['--address', ctd.sock, '-n', 'node', 'images', 'pull', '--snapshotter', 'native', '--hosts-dir', certs, ref], { name: 'ctr-pull', timeoutMs: 120_000 });
}

async function snapshotCount(ctd: Containerd): Promise<number> {
  const res = await run('ctr', ['--address', ctd.sock, '-n', 'node', 'snapshots', '--snapshotter', 'native', 'ls'], { name: 'ctr-snapshots', timeoutMs: 30_000 });
  return res.stdout.split('\n').slice(1).filter((l) => l.trim()).length;
}

describe('containerd-hosts installer on a real containerd', () => {
  let reg: Registry;
  let app: GeneratedImage;
  let other: GeneratedImage;
  let m: TestMirror;
  let ctd: Containerd;
  let certs: string;
  let original: Record<string, string>;
  let dead: string;

  before(async () => {
    requireCommands('docker-registry', 'skopeo', 'containerd', 'ctr');
    reg = await startRegistry({ name: 'hub-standin' });
    app = await makeImage({ layers: [400_000, 20_000, 3000], tag: 'v1' });
    other = await makeImage({ layers: [150_000], tag: 'v2' });
    await pushImage(app, reg.host, 'library/app:v1');
    await pushImage(other, reg.host, 'library/other:v2');
    m = await startMirror({ upstreams: [`docker.io=${reg.url}`] });
    dead = `http://127.0.0.1:${await freePort()}`;
    ctd = await startContainerd();
    certs = await tmpDir('certs.d-');
    // What the node had before: docker.io straight to the registry, and a file for a registry we do not touch.
    // (containerd 1.6 rejects a hosts.toml without a [host] table and then falls back to Docker Hub itself.)
    mkdirSync(join(certs, 'docker.io'));
    writeFileSync(join(certs, 'docker.io', 'hosts.toml'), `server = "${dead}"\n\n[host."${reg.url}"]\n  capabilities = ["pull", "resolve"]\n`);
    mkdirSync(join(certs, 'quay.io'));
    writeFileSync(join(certs, 'quay.io', 'hosts.toml'), 'server = "https://quay.io"\n');
    writeFileSync(join(certs, 'quay.io', 'ca.crt'), 'not a real certificate\n');
    original = snapshot(certs);
    await reg.settle();
    reg.resetLog();
  });
  after(cleanupAll);

  test('install: hosts.toml written, the old one backed up; a second run changes nothing', async () => {
    const out = await installer(['--mirror', m.url, '--registry', `docker.io=${dead}`, '--registry', 'ghcr.io', '--dir', certs]);
    assert.match(out, /docker\.io: wrote .*kept as hosts\.toml\.regmirror-backup/);
    assert.match(out, /ghcr\.io: wrote /);
    const installed = snapshot(certs);
    assert.equal(installed['docker.io/hosts.toml.regmirror-backup'], original['docker.io/hosts.toml'], 'the node’s own file is kept');
    assert.equal(installed['quay.io/hosts.toml'], original['quay.io/hosts.toml'], 'other registries are untouched');
    const hub = installed['docker.io/hosts.toml'] ?? '';
    assert.match(hub, new RegExp(`^server = "${dead}"$`, 'm'));
    assert.ok(hub.indexOf(`[host."${m.url}"]`) > hub.indexOf('server ='), 'the mirror host section');
    assert.match(hub, /capabilities = \["pull", "resolve"\]/);
    assert.match(hub, /dial_timeout = "200ms"/);
    assert.match(installed['ghcr.io/hosts.toml'] ?? '', /^server = "https:\/\/ghcr\.io"$/m);

    const again = await installer(['--mirror', m.url, '--registry', `docker.io=${dead}`, '--registry', 'ghcr.io', '--dir', certs]);
    assert.match(again, /docker\.io: .* unchanged/);
    assert.match(again, /ghcr\.io: .* unchanged/);
    assert.deepEqual(snapshot(certs), installed, 'idempotent: the second run changes nothing (and never backs up its own file)');
  });

  test('ctr images pull (with unpack) goes through the mirror', async () => {
    const before = await m.metric('regmirror_requests_total', { kind: 'blob' });
    assert.equal(await m.metric('regmirror_time_to_first_byte_seconds', { kind: 'blob' }), 0);
    await ctrPull(ctd, certs, 'docker.io/library/app:v1');
    await reg.settle();
    const blobRequests = (await m.metric('regmirror_requests_total', { kind: 'blob' })) - before;
    assert.equal(blobRequests, app.layers.length + 1, 'config and every layer came through the mirror');
    assert.equal(await m.metric('regmirror_time_to_first_byte_seconds', { kind: 'blob' }), blobRequests, 'one time-to-first-byte observation per blob answer');
    assert.ok((await m.metric('regmirror_served_bytes_total')) >= app.layers.reduce((s, l) => s + l.size, 0));
    const log = reg.accessLog().filter((e) => e.kind !== 'base');
    assert.ok(log.length > 0);
    for (const e of log) assert.match(e.userAgent, /^regmirror\//, `the registry was asked by the mirror only: ${e.method} ${e.path} ${e.userAgent}`);
    assert.ok((await snapshotCount(ctd)) >= app.layers.length, 'the layers were unpacked into snapshots');
  });

  test('--remove puts the node’s files back; the next pull goes straight to the registry', async () => {
    const out = await installer(['--remove', '--dir', certs]);
    assert.match(out, /docker\.io: restored /);
    assert.match(out, /ghcr\.io: removed /);
    assert.deepEqual(snapshot(certs), original, 'exactly the files that were there before');
    assert.deepEqual(readdirSync(certs).sort(), ['docker.io', 'quay.io'], 'the directory the installer made is gone');

    reg.resetLog();
    const mirrorBefore = await m.metric('regmirror_requests_total');
    await ctrPull(ctd, certs, 'docker.io/library/other:v2');
    await reg.settle();
    assert.equal(await m.metric('regmirror_requests_total'), mirrorBefore, 'the mirror saw nothing');
    const direct = reg.accessLog().filter((e) => e.kind === 'blob');
    assert.equal(direct.length, other.layers.length + 1, 'containerd fetched config and layer from the registry itself');
    for (const e of direct) assert.match(e.userAgent, /^containerd\//);

    const nothing = await installer(['--remove', '--dir', certs]);
    assert.match(nothing, /nothing to do/);
  });

  test('without --registry, the registries are the namespaces of the mirror’s config (file and REGMIRROR_UPSTREAM)', async () => {
    const dir = await tmpDir('certs-config-');
    const cfg = join(await tmpDir('cfg-'), 'config.yml');
    // The init container has no credentials: ${VAR} references it cannot resolve must not stop it.
    writeFileSync(cfg, 'upstreams:\n  - https://registry-1.docker.io\n  - ghcr.io=https://ghcr.io\ncredentials:\n  ghcr.io: {token: "${GHCR_TOKEN_NOT_SET_HERE}"}\n');
    await installer(['--mirror', 'http://127.0.0.1:5000', '--config', cfg, '--dir', dir]);
    assert.deepEqual(Object.keys(snapshot(dir)).sort(), ['docker.io/hosts.toml', 'ghcr.io/hosts.toml']);
    assert.match(snapshot(dir)['docker.io/hosts.toml'] ?? '', /^server = "https:\/\/registry-1\.docker\.io"$/m);

    await installer(['--mirror', 'http://127.0.0.1:5000', '--dir', dir], { REGMIRROR_UPSTREAM: 'docker.io=http://127.0.0.1:1,quay.io=https://quay.io', REGMIRROR_CONFIG: '' });
    assert.deepEqual(Object.keys(snapshot(dir)).sort(), ['docker.io/hosts.toml', 'quay.io/hosts.toml'], 'ghcr.io, no longer configured, is removed');
    assert.match(snapshot(dir)['docker.io/hosts.toml'] ?? '', /^server = "https:\/\/registry-1\.docker\.io"$/m, 'server is Docker Hub, not the mirror’s upstream');

    await installer(['--mirror', 'http://127.0.0.1:5000', '--dir', dir], { REGMIRROR_UPSTREAM: '', REGMIRROR_CONFIG: '' });
    assert.deepEqual(Object.keys(snapshot(dir)), ['docker.io/hosts.toml'], 'the embedded default: docker.io');
  });
});
