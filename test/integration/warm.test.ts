/**
 * `regmirror warm` end to end, the compiled CLI as a child process against an in-process mirror in
 * front of a real distribution registry (standing for docker.io):
 * - CI mode (stdout not a terminal): every blob of the host's platform is fetched once upstream and
 *   committed to the mirror's disk, the other platform's manifest and blobs are not fetched, the log
 *   has a line per blob and image, a summary, and no control characters;
 * - afterwards the first pull by containerd (hosts.toml, `?ns=docker.io`) and by skopeo
 *   (containers/image) makes 0 upstream requests: the tag answers their Accept sets need are warm;
 * - `--json --all-platforms`: one JSON object per line, every blob of every platform, the summary;
 * - missing images and unconfigured registries: exit 1, each named with its reason, the rest warmed;
 * - on a terminal (`script` gives it a pty): bars redrawn in place with cursor movement, then the summary.
 * The `server` in hosts.toml is a port where nothing listens: a containerd fetch can only succeed
 * through the mirror.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupAll, freePort, requireCommands, run, spawnProc, tmpDir } from '../harness/proc.js';
import { startRegistry, type AccessEntry, type Registry } from '../harness/registry.js';
import { makeImage, makeIndex, pullImage, pushImage, type GeneratedImage, type GeneratedIndex } from '../harness/oci.js';
import { ctrFetch, startContainerd, writeHostsToml } from '../harness/containerd.js';
import { startMirror, type TestMirror } from '../helpers/mirror.js';
import { startRelay } from '../harness/relay.js';
import { formatPlatform, hostPlatform, type Platform } from '../../src/warm/platform.js';

const CLI = new URL('../../src/cli/main.js', import.meta.url).pathname;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f]/;

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with stdout and stderr as pipes (not a terminal), raw bytes kept. */
function cli(args: string[], timeoutMs = 120_000): Promise<CliResult> {
  return runRaw(process.execPath, [CLI, ...args], timeoutMs);
}

function runRaw(cmd: string, args: string[], timeoutMs: number): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function blobDigests(img: GeneratedImage): string[] {
  return [img.configDigest, ...img.layers.map((l) => l.digest)];
}

function blobFile(m: TestMirror, digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return join(m.dataDir, 'blobs', 'sha256', hex.slice(0, 2), hex);
}

function describeLog(log: AccessEntry[]): string {
  return log.map((e) => `${e.method} ${e.path} ${e.status} ${e.userAgent}`).join('\n');
}

/** The platform of the index that is not the host's. */
function otherPlatform(host: Platform): Platform {
  return host.architecture === 'arm64' ? { os: 'linux', architecture: 'amd64' } : { os: 'linux', architecture: 'arm64' };
}

describe('regmirror warm', () => {
  let registry: Registry;
  let app: GeneratedImage; // docker.io/library/app:v1, single platform
  let multi: GeneratedIndex; // docker.io/team/multi:1.0, host platform + another
  let host: Platform;
  let deadServer: string;

  const settleAndReset = async () => {
    await registry.settle();
    registry.resetLog();
  };

  before(async () => {
    requireCommands('docker-registry', 'skopeo', 'containerd', 'ctr', 'script', 'stty');
    host = hostPlatform();
    registry = await startRegistry();
    app = await makeImage({ layers: [2 * 2 ** 20, 300_000], tag: 'v1', platform: host });
    multi = await makeIndex({ layers: [400_000, 60_000], tag: '1.0', platforms: [host, otherPlatform(host)] });
    await pushImage(app, registry.host, 'library/app:v1');
    await pushImage(multi, registry.host, 'team/multi:1.0', { all: true });
    deadServer = `http://127.0.0.1:${await freePort()}`;
    await settleAndReset();
  });
  after(cleanupAll);

  test('CI output: the host platform is cached and verified, the other is not fetched; then containerd and skopeo pull with 0 upstream requests', async () => {
    const m = await startMirror({ upstreams: [`docker.io=${registry.url}`], tagTtl: '1h' });
    const res = await cli(['warm', '--mirror', m.url, '--concurrency', '3', 'app:v1', 'docker.io/team/multi:1.0']);
    assert.equal(res.code, 0, `${res.stdout}\n${res.stderr}`);
    console.log(`# warm output (non-TTY):\n${res.stdout.replace(/^/gm, '#   ')}`);

    // Upstream: each chosen blob and manifest fetched exactly once; nothing of the other platform.
    await registry.settle();
    const log = registry.accessLog();
    const hostImg = multi.images.find((i) => formatPlatform(i.platform) === formatPlatform(host))!;
    const otherImg = multi.images.find((i) => i !== hostImg)!;
    const wanted = [...blobDigests(app), ...blobDigests(hostImg)];
    for (const d of wanted) {
      assert.equal(log.filter((e) => e.method === 'GET' && e.kind === 'blob' && e.reference === d).length, 1, `${d} fetched once upstream\n${describeLog(log)}`);
      assert.ok(existsSync(blobFile(m, d)), `${d} committed to the mirror's disk`);
    }
    for (const d of [otherImg.manifestDigest, ...blobDigests(otherImg)]) {
      assert.equal(log.filter((e) => e.reference === d).length, 0, `${d} (${formatPlatform(otherImg.platform)}) not fetched`);
      assert.ok(!existsSync(blobFile(m, d)));
    }
    assert.equal(await m.metric('regmirror_verify_failures_total'), 0);

    // CI log: no control characters; a line per blob and image; the summary.
    assert.ok(!CONTROL.test(res.stdout.replace(/\n/g, '')), 'no control characters in CI output');
    for (const d of wanted) assert.match(res.stdout, new RegExp(`\\] blob ${d.slice(0, 19)} `), `a line for blob ${d}`);
    assert.match(res.stdout, /\] done docker\.io\/library\/app:v1: 3 blobs/);
    assert.match(res.stdout, /\] done docker\.io\/team\/multi:1\.0: 3 blobs/);
    assert.match(res.stdout, /\] total: /);
    assert.match(res.stdout, /\nSummary\n/);
    assert.match(res.stdout, new RegExp(`docker\\.io/team/multi:1\\.0 +${formatPlatform(host)} +2 +3 `), 'index + host manifest, config + 2 layers');
    assert.match(res.stdout, /images: 2 warmed, 0 failed, of 2/);
    assert.match(res.stdout, /blobs: +0 from cache, 6 from upstream/, 'the mirror counted every blob as a miss on this cold run');

    // A second warm is all cache hits, and says so.
    await settleAndReset();
    const again = await cli(['warm', '--mirror', m.url, 'app:v1', 'docker.io/team/multi:1.0']);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.match(again.stdout, /blobs: +6 from cache, 0 from upstream/);
    assert.match(again.stdout, /\(0 upstream requests, 0 B received\)/);
    await settleAndReset();

    // First pulls by real clients after warm: zero upstream requests.
    const certs = await tmpDir('certs-');
    writeHostsToml(certs, 'docker.io', deadServer, m.url);
    const ctd = await startContainerd();
    const upstreamBefore = await m.metric('regmirror_upstream_requests_total');
    await ctrFetch({ sock: ctd.sock, hostsDir: certs, ref: 'docker.io/library/app:v1' });
    await ctrFetch({ sock: ctd.sock, hostsDir: certs, ref: 'docker.io/team/multi:1.0' });
    await registry.settle();
    const ctrLog = registry.accessLog();
    console.log(`# containerd first pull after warm: ${ctrLog.length} upstream requests`);
    assert.equal(ctrLog.length, 0, `containerd's pull reached the upstream:\n${describeLog(ctrLog)}`);
    registry.resetLog();
    const skopeoApp = await pullImage(m.host, 'app:v1', await tmpDir('pull-'));
    assert.equal(skopeoApp.code, 0, skopeoApp.stderr);
    const skopeoMulti = await pullImage(m.host, 'team/multi:1.0', await tmpDir('pull-'));
    assert.equal(skopeoMulti.code, 0, skopeoMulti.stderr);
    await registry.settle();
    const skLog = registry.accessLog();
    console.log(`# skopeo first pull after warm: ${skLog.length} upstream requests`);
    assert.equal(skLog.length, 0, `skopeo's pull reached the upstream:\n${describeLog(skLog)}`);
    assert.equal((await m.metric('regmirror_upstream_requests_total')) - upstreamBefore, 0, 'the mirror sent no upstream request');
    await ctd.stop();
  });

  test('dockerd (registry-mirrors, no ?ns=, its own Accept lines) pulls with 0 upstream requests after warm', async () => {
    requireCommands('dockerd', 'docker');
    const m = await startMirror({ upstreams: [`docker.io=${registry.url}`], tagTtl: '1h' });
    const warm = await cli(['warm', '--mirror', m.url, 'app:v1', 'team/multi:1.0']);
    assert.equal(warm.code, 0, warm.stdout + warm.stderr);
    await settleAndReset();
    const d = await tmpDir('dockerd-');
    const sock = join(d, 'sock');
    // A private daemon (testing.md): its own root, exec root and socket, no networking set-up.
    await spawnProc(
      'dockerd',
      ['--data-root', join(d, 'root'), '--exec-root', join(d, 'exec'), '--pidfile', join(d, 'pid'), '-H', `unix://${sock}`, '--storage-driver', 'vfs',
        '--iptables=false', '--ip6tables=false', '--bridge=none', '--registry-mirror', m.url, '--insecure-registry', m.host],
      { name: 'dockerd', logDir: d, ready: /API listen on/, readyTimeoutMs: 60_000 },
    );
    const before = await m.metric('regmirror_upstream_requests_total');
    await run('docker', ['-H', `unix://${sock}`, 'pull', 'app:v1'], { name: 'docker-pull', timeoutMs: 120_000 });
    await run('docker', ['-H', `unix://${sock}`, 'pull', 'team/multi:1.0'], { name: 'docker-pull', timeoutMs: 120_000 });
    await registry.settle();
    const log = registry.accessLog();
    console.log(`# dockerd first pull after warm: ${log.length} upstream requests`);
    assert.equal(log.length, 0, `dockerd's pull reached the upstream:\n${describeLog(log)}`);
    assert.equal((await m.metric('regmirror_upstream_requests_total')) - before, 0);
    assert.ok((await m.metric('regmirror_cache_hits_total', { kind: 'blob' })) >= 6, 'dockerd got its blobs from the mirror');
  });

  test('--json --all-platforms: one JSON object per line, every platform fetched, a summary last', async () => {
    const m = await startMirror({ upstreams: [`docker.io=${registry.url}`], tagTtl: '1h' });
    await settleAndReset();
    const res = await cli(['warm', '--mirror', m.url, '--json', '--all-platforms', 'team/multi:1.0']);
    assert.equal(res.code, 0, res.stdout + res.stderr);
    const events = res.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { type: string; [k: string]: unknown });
    console.log(`# --json sample:\n${res.stdout.split('\n').slice(0, 4).join('\n').replace(/^/gm, '#   ')}`);
    assert.equal(events[0]!.type, 'image-start');
    const summary = events[events.length - 1]! as unknown as { type: string; ok: boolean; blobs: number; bytes: number; images: { ok: number }; results: Array<{ platforms: string[]; manifests: number; tags: Array<{ client: string; digest: string }> }>; mirrorCounters: { blobMisses: number } };
    assert.equal(summary.type, 'summary');
    assert.equal(summary.ok, true);
    const all = multi.images.flatMap(blobDigests);
    assert.equal(summary.blobs, all.length);
    assert.equal(summary.bytes, multi.images.flatMap((i) => [i.configBlob.size, ...i.layers.map((l) => l.size)]).reduce((a, b) => a + b, 0));
    assert.deepEqual(summary.results[0]!.platforms, multi.images.map((i) => formatPlatform(i.platform)).sort());
    assert.equal(summary.results[0]!.manifests, 3);
    assert.deepEqual(summary.results[0]!.tags.map((t) => t.client), ['containerd', 'containers-image', 'dockerd']);
    for (const t of summary.results[0]!.tags) assert.equal(t.digest, multi.indexDigest);
    assert.equal(summary.mirrorCounters.blobMisses, all.length);
    const blobEvents = events.filter((e) => e.type === 'blob-done').map((e) => e.digest as string);
    assert.deepEqual(blobEvents.sort(), [...all].sort());
    assert.equal(events.filter((e) => e.type === 'image-done').length, 1);
    for (const d of all) assert.ok(existsSync(blobFile(m, d)), `${d} cached`);
  });

  test('failures: a missing tag and an unconfigured registry fail the run, each named with its reason; the rest is warmed', async () => {
    const m = await startMirror({ upstreams: [`docker.io=${registry.url}`], tagTtl: '1h' });
    const list = join(await tmpDir('list-'), 'images.txt');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(list, '# CI images\napp:v1\nlibrary/nothere:1   # removed upstream\n\nghcr.io/org/tool:2\n');
    const res = await cli(['warm', '--mirror', m.url, '--file', list]);
    assert.equal(res.code, 1, res.stdout + res.stderr);
    assert.match(res.stderr, /2 of 3 images failed/);
    assert.match(res.stderr, /library\/nothere:1: manifest docker\.io\/library\/nothere:1: not found \(HTTP 404 MANIFEST_UNKNOWN/);
    assert.match(res.stderr, /ghcr\.io\/org\/tool:2: .*no upstream for this registry \(HTTP 404 NAME_UNKNOWN: registry ghcr\.io is not configured/);
    assert.match(res.stdout, /FAILED docker\.io\/library\/nothere:1: /);
    assert.match(res.stdout, /docker\.io\/library\/app:v1 .* ok\n/);
    assert.match(res.stdout, /FAILED \(not-found\)/);
    assert.match(res.stdout, /FAILED \(mirror\)/);
    for (const d of blobDigests(app)) assert.ok(existsSync(blobFile(m, d)));
    // A mirror that is not there: exit 1, said plainly.
    const down = await cli(['warm', '--mirror', `http://127.0.0.1:${await freePort()}`, 'app:v1']);
    assert.equal(down.code, 1);
    assert.match(down.stderr, /app:v1: mirror http:\/\/127\.0\.0\.1:\d+ did not answer: ECONNREFUSED/);
    // Usage errors: exit 2 with the usage.
    const usage = await cli(['warm', '--concurrency', '0', 'app:v1']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--concurrency must be an integer from 1 to 64/);
    const bad = await cli(['warm', '--mirror', m.url, 'App:v1']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /App:v1: invalid image reference "App:v1": repository names must be lowercase/);
  });

  test('over a slow or faulty link to the mirror: periodic totals, a broken transfer retried, corrupt bytes refused', async () => {
    const m = await startMirror({ upstreams: [`docker.io=${registry.url}`], tagTtl: '1h' });
    // 2.3 MiB at 1 MiB/s: a run of about 2 s, so a 0.2 s interval must print totals before the end.
    const slow = await startRelay({ target: m.url, bytesPerSecond: 2 ** 20, name: 'slow-link' });
    const res = await cli(['warm', '--mirror', slow.url, '--progress-interval', '0.2', 'app:v1']);
    assert.equal(res.code, 0, res.stdout + res.stderr);
    const totals = res.stdout.split('\n').filter((l) => /\] total: /.test(l));
    assert.ok(totals.length >= 3, `periodic total lines and the final one:\n${res.stdout}`);
    // On a slow machine the first tick can come before the image's manifests are read: such a line says
    // the image is being resolved, with no percent and no ETA (it once said `0 B of 0 B, ETA 0s`).
    for (const l of totals) assert.ok(/ of 2\.29 MiB/.test(l) || /total: 0 B \(1 image resolving\), [\d.]+ B\/s, ETA \?;/.test(l), `a total line is either planned or resolving: ${l}`);
    const planned = totals.filter((l) => / of 2\.29 MiB/.test(l));
    assert.ok(planned.length >= 2, `periodic total lines once the plan is known, and the final one:\n${res.stdout}`);
    assert.match(planned[0]!, /total: [\d.]+ (B|KiB|MiB) of 2\.29 MiB \(\d+%\), [\d.]+ (B|KiB|MiB)\/s, ETA /);
    assert.ok(!CONTROL.test(res.stdout.replace(/\n/g, '')));

    const faulty = await startRelay({ target: m.url, name: 'faulty-link' });
    // One blob transfer cut after 1 KiB: retried, and the run succeeds.
    faulty.setMode('truncate', { times: 1, afterBytes: 1024 });
    const retried = await cli(['warm', '--mirror', faulty.url, 'app:v1']);
    assert.equal(retried.code, 0, retried.stdout + retried.stderr);
    assert.equal(faulty.stats().log.filter((r) => r.fault === 'truncate').length, 1);
    // Every blob body corrupted on the way: the client-side digest check fails the image, naming the blob.
    faulty.setMode('corrupt');
    const bad = await cli(['warm', '--mirror', faulty.url, 'app:v1']);
    assert.equal(bad.code, 1, bad.stdout + bad.stderr);
    assert.match(bad.stderr, /app:v1: blob sha256:[0-9a-f]{64}: the mirror sent \d+ bytes hashing to sha256:[0-9a-f]{64}/);
    assert.match(bad.stdout, /FAILED \(verify\)/);
    faulty.setMode('pass');
  });

  test('on a terminal: bars per image and a total, redrawn in place, then the summary', async () => {
    const m = await startMirror({ upstreams: [`docker.io=${registry.url}`], tagTtl: '1h' });
    // script(1) runs the command on a pseudo-terminal; -e returns its exit status; stty sets the size.
    const cmd = `stty cols 100 rows 30; exec ${process.execPath} ${CLI} warm --mirror ${m.url} app:v1 team/multi:1.0`;
    const res = await runRaw('script', ['-qefc', cmd, '/dev/null'], 120_000);
    assert.equal(res.code, 0, res.stdout + res.stderr);
    const out = res.stdout;
    assert.ok(out.includes('\x1b[?25l') && out.includes('\x1b[?25h'), 'cursor hidden while drawing, shown after');
    assert.match(out, /\x1b\[3A\r\x1b\[J/, 'a frame of 2 images + total is erased and redrawn');
    assert.match(out, /docker\.io\/library\/app:v1 +█+ +100% +[\d.]+ MiB done/);
    assert.match(out, /total \(6\/6 blobs\) +█+ +100% /);
    const frames = out.split('\x1b[J');
    assert.ok(frames.length >= 2, 'more than one frame');
    for (const l of out.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').split(/\r?\n|\r/).filter((x) => /[█░]/.test(x))) assert.ok([...l].length < 100, `bar line fits 100 columns: ${l}`);
    assert.match(out, /Summary\r?\n/);
  });
});
