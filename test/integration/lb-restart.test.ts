/**
 * Replicas behind a load balancer (issue 11, item 7), with real parts: three regmirror processes in
 * cluster mode (`--redis` + `--advertise`, a real redis-server) behind a real nginx (an upstream block of
 * the replicas, keepalive, buffering off, `proxy_next_upstream error timeout http_502 http_503`), the
 * upstream a distribution registry behind the throttling relay.
 *
 * While clients pull continuously through nginx (manifests by tag and every blob, sha256 checked; two of
 * them slow readers, plus two slow transfers started on each replica just before its SIGTERM), the replicas
 * are restarted one after another:
 * SIGTERM (graceful drain), wait for the exit, start it again on the same port and data dir, wait until
 * `/readyz` says ready, then the next. Every pull completes with the right bytes, every replica exits 0,
 * and the upstream sees each blob once for the whole fleet, twice at most (when its only holder is the
 * replica being restarted, the peer is refused and the next replica goes upstream; the figure is printed).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanupAll, delay, freePort, requireCommands, spawnProc, tmpDir, type Proc } from '../harness/proc.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { makeImage, MediaType, pushImageHttp, type GeneratedImage } from '../harness/oci.js';
import { startRedis, type RedisServer } from '../harness/redis.js';
import { startRelay, type Relay } from '../harness/relay.js';
import { http } from '../helpers/http.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const MiB = 2 ** 20;
const ACCEPT = `${MediaType.ociManifest}, ${MediaType.dockerManifest}`;

interface Replica {
  port: number;
  url: string;
  dataDir: string;
  proc: Proc;
}

/** One GET through the LB: status, sha256 of the body, completeness; a reader slowed to `bytesPerSecond` when given. */
function get(url: string, opts: { accept?: string; bytesPerSecond?: number } = {}): Promise<{ status: number; digest: string; bytes: number; complete: boolean; headerDigest?: string; error?: string }> {
  return new Promise((resolve) => {
    const started = performance.now();
    const req = httpRequest(url, { agent: false, headers: opts.accept ? { accept: opts.accept } : {} }, (res) => {
      const h = createHash('sha256');
      let bytes = 0;
      let settled = false;
      const hd = res.headers['docker-content-digest'];
      const done = (complete: boolean) => {
        if (settled) return;
        settled = true;
        resolve({ status: res.statusCode ?? 0, digest: `sha256:${h.digest('hex')}`, bytes, complete, ...(typeof hd === 'string' ? { headerDigest: hd } : {}) });
      };
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        h.update(c);
        if (opts.bytesPerSecond) {
          const due = (bytes / opts.bytesPerSecond) * 1000 - (performance.now() - started);
          if (due > 5) {
            res.pause();
            setTimeout(() => res.resume(), due);
          }
        }
      });
      res.on('end', () => done(res.complete));
      res.on('close', () => done(res.complete));
      res.on('error', () => done(false));
    });
    req.on('error', (err) => resolve({ status: 0, digest: '', bytes: 0, complete: false, error: err.message }));
    req.end();
  });
}

function nginxConfig(prefix: string, port: number, replicas: number[]): string {
  const user = process.getuid?.() === 0 ? 'user root root;\n' : '';
  return `${user}worker_processes 1;
pid ${join(prefix, 'nginx.pid')};
error_log ${join(prefix, 'error.log')} warn;
events { worker_connections 1024; }
http {
  log_format lb '$request_method $request_uri $status $upstream_addr $upstream_status $bytes_sent';
  access_log ${join(prefix, 'access.log')} lb;
  client_body_temp_path ${join(prefix, 'tmp', 'body')};
  proxy_temp_path ${join(prefix, 'tmp', 'proxy')};
  fastcgi_temp_path ${join(prefix, 'tmp', 'fastcgi')};
  uwsgi_temp_path ${join(prefix, 'tmp', 'uwsgi')};
  scgi_temp_path ${join(prefix, 'tmp', 'scgi')};
  upstream mirrors {
${replicas.map((p) => `    server 127.0.0.1:${p} max_fails=1 fail_timeout=1s;`).join('\n')}
    keepalive 32;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://mirrors;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_next_upstream error timeout http_502 http_503;
      proxy_next_upstream_tries 0;
      proxy_connect_timeout 2s;
      proxy_read_timeout 60s;
    }
  }
}
`;
}

describe('three cluster replicas behind nginx: a rolling restart fails no pull', () => {
  let reg: Registry;
  let relay: Relay;
  let redis: RedisServer;
  let nginx: Proc;
  let lbUrl: string;
  let nginxDir: string;
  const replicas: Replica[] = [];
  const images: GeneratedImage[] = [];

  async function startReplica(port: number, dataDir: string): Promise<Replica> {
    const url = `http://127.0.0.1:${port}`;
    const proc = await spawnProc(
      process.execPath,
      [CLI, 'serve', '--listen', `127.0.0.1:${port}`, '--upstream', `docker.io=${relay.url}`, '--redis', redis.url, '--advertise', url, '--tag-ttl', '2s', '--data-dir', dataDir, '--log-level', 'info'],
      { name: `replica-${port}`, env: { ...process.env, REGMIRROR_CONFIG: '', REGMIRROR_CLUSTER_TOKEN: 'lb-test' }, ready: /regmirror listening/, readyTimeoutMs: 30_000 },
    );
    const deadline = performance.now() + 20_000;
    while ((await http(`${url}/readyz`).catch(() => ({ status: 0 }))).status !== 200) {
      if (performance.now() > deadline) throw new Error(`replica ${port} not ready:\n${proc.tail(20)}`);
      await delay(50);
    }
    return { port, url, dataDir, proc };
  }

  before(async () => {
    requireCommands('docker-registry', 'redis-server', 'nginx');
    const work = await tmpDir('lb-');
    reg = await startRegistry({ name: 'registry-lb' });
    // 24 MiB/s: the cold round takes a couple of seconds, so the first SIGTERM lands on fills in flight.
    relay = await startRelay({ target: reg.url, name: 'lb-upstream', bytesPerSecond: 24 * MiB });
    redis = await startRedis();
    for (let i = 0; i < 4; i++) {
      const img = await makeImage({ layers: [6 * MiB, 2 * MiB + i * 1000], tag: 'v1' });
      await pushImageHttp(reg.url, `lb/app${i}`, 'v1', img);
      images.push(img);
    }
    const ports = [await freePort(), await freePort(), await freePort()];
    for (const [i, p] of ports.entries()) replicas.push(await startReplica(p, join(work, `data-${i}`)));
    nginxDir = await tmpDir('lb-nginx-');
    await mkdir(join(nginxDir, 'tmp'), { recursive: true });
    const lbPort = await freePort();
    const conf = join(nginxDir, 'nginx.conf');
    await writeFile(conf, nginxConfig(nginxDir, lbPort, ports));
    nginx = await spawnProc('nginx', ['-p', nginxDir, '-c', conf, '-e', join(nginxDir, 'error.log'), '-g', 'daemon off;'], { name: 'nginx-lb', logDir: nginxDir });
    lbUrl = `http://127.0.0.1:${lbPort}`;
    const deadline = performance.now() + 10_000;
    while ((await http(`${lbUrl}/v2/`).catch(() => ({ status: 0 }))).status !== 200) {
      if (performance.now() > deadline) throw new Error(`nginx not answering:\n${nginx.tail(20)}`);
      await delay(50);
    }
    relay.reset();
  });
  after(async () => {
    await nginx?.stop();
    await cleanupAll();
  });

  test('clients pull continuously through nginx while each replica is SIGTERMed and restarted: 0 failures, exits 0, blobs fetched about once', { timeout: 240_000 }, async () => {
    const started = performance.now();
    let stop = false;
    const failures: string[] = [];
    let pulls = 0;
    let slowTransfers = 0;
    let bytes = 0;

    /** One image pull: the manifest by tag, then each blob, every body checked against its digest. */
    const pullImage = async (img: GeneratedImage, repo: string, slow?: number): Promise<void> => {
      const m = await get(`${lbUrl}/v2/${repo}/manifests/v1`, { accept: ACCEPT });
      if (m.status !== 200 || !m.complete || m.digest !== img.manifestDigest || m.headerDigest !== img.manifestDigest) {
        failures.push(`manifest ${repo}: ${JSON.stringify(m)} at ${Math.round(performance.now() - started)} ms`);
        return;
      }
      for (const b of [img.configBlob, ...img.layers]) {
        const r = await get(`${lbUrl}/v2/${repo}/blobs/${b.digest}`, slow ? { bytesPerSecond: slow } : {});
        bytes += r.bytes;
        if (r.status !== 200 || !r.complete || r.digest !== b.digest || r.bytes !== b.size) failures.push(`blob ${repo} ${b.digest}: ${JSON.stringify(r)} at ${Math.round(performance.now() - started)} ms`);
        if (slow && b.size > MiB) slowTransfers++;
      }
      pulls++;
    };
    const worker = async (w: number, slow?: number) => {
      for (let n = w; !stop; n++) await pullImage(images[n % images.length]!, `lb/app${n % images.length}`, slow);
    };
    // Six fast clients and two slow readers (4 MiB/s: a 6 MiB layer takes 1.5 s, so transfers span each SIGTERM).
    const workers = [...Array.from({ length: 6 }, (_, i) => worker(i)), worker(6, 4 * MiB), worker(7, 4 * MiB)];

    const restarts: Array<{ replica: number; drainMs: number; downMs: number; code: number | null; signal: string | null }> = [];
    await delay(300); // the cold round is in flight
    const pinned: Array<Promise<void>> = [];
    for (const [i, r] of replicas.entries()) {
      // Two slow transfers certainly on this replica when the signal comes (the LB's spread is left to chance).
      const big = images[i]!.layers[0]!;
      for (let k = 0; k < 2; k++) {
        pinned.push(
          get(`${r.url}/v2/lb/app${i}/blobs/${big.digest}`, { bytesPerSecond: 4 * MiB }).then((got) => {
            if (got.status !== 200 || !got.complete || got.digest !== big.digest) failures.push(`in flight on replica ${i} at SIGTERM: ${JSON.stringify(got)}`);
          }),
        );
      }
      await delay(200);
      const t0 = performance.now();
      const exit = await r.proc.stop({ graceMs: 45_000 });
      const drained = performance.now();
      const again = await startReplica(r.port, r.dataDir);
      replicas[i] = again;
      restarts.push({ replica: i, drainMs: Math.round(drained - t0), downMs: Math.round(performance.now() - t0), code: exit.code, signal: exit.signal });
      await delay(1500); // nginx's fail_timeout passes: the restarted replica takes traffic again before the next goes down
    }
    await delay(1000);
    stop = true;
    await Promise.all([...workers, ...pinned]);
    const wallMs = Math.round(performance.now() - started);

    const log = relay.stats().log;
    const blobs = images.flatMap((img) => [img.configBlob, ...img.layers]);
    const perBlob = blobs.map((b) => log.filter((e) => e.method === 'GET' && e.path.includes(`/blobs/${b.digest}`)).length);
    const upstreamBlobGets = perBlob.reduce((a, b) => a + b, 0);
    const twice = blobs.filter((_, i) => perBlob[i]! > 1).map((b) => log.filter((e) => e.path.includes(`/blobs/${b.digest}`)).map((e) => `${e.method} ${b.size} range=${e.range ?? '-'} bytes=${e.bytes} status=${e.status}`));
    const access = (await readFile(join(nginxDir, 'access.log'), 'utf8')).split('\n').filter(Boolean);
    // $upstream_addr lists every replica tried: "127.0.0.1:A, 127.0.0.1:B" when nginx passed the request on.
    const retried = access.filter((l) => l.includes(', 127.0.0.1:'));
    const served = replicas.map((r) => access.filter((l) => l.includes(`127.0.0.1:${r.port}`)).length);
    process.stdout.write(
      `# LB rolling restart: ${pulls} image pulls (${slowTransfers} slow layer transfers), ${(bytes / MiB).toFixed(0)} MiB through nginx in ${wallMs} ms, ${failures.length} failures; ` +
        `restarts ${JSON.stringify(restarts)}; upstream blob GETs ${upstreamBlobGets} for ${blobs.length} blobs (per blob ${JSON.stringify(perBlob)}; more than once: ${JSON.stringify(twice)}); ` +
        `nginx: ${access.length} requests, ${retried.length} passed to a next replica, per replica ${JSON.stringify(served)}\n`,
    );
    assert.deepEqual(failures, [], 'every pull completed with the right bytes');
    for (const r of restarts) assert.equal(r.code, 0, `replica ${r.replica} drained and exited 0 (${JSON.stringify(r)})`);
    assert.ok(pulls >= 20, `clients kept pulling during the restarts (${pulls})`);
    assert.ok(slowTransfers >= 3, 'slow transfers were in flight across the restarts');
    // Once for the fleet, except a blob whose only holder is the replica being restarted when another needs it
    // (the peer is refused, so that one goes upstream; after that two hold it): at most twice.
    for (const [i, n] of perBlob.entries()) assert.ok(n >= 1 && n <= 2, `blob ${i}: ${n} upstream GETs (once, or twice when its only holder was down)`);
    for (const [i, n] of served.entries()) assert.ok(n > 0, `replica ${i} took traffic`);
  });
});
