// Issue 9, item 1 (and 12: spec error codes only): no input crashes the process; ≥ 10 000 fuzzed requests, 0 crashes, 0 5xx the upstream did not cause.
/**
 * Fuzzes a mirror CHILD process in front of a real registry (behind a counting relay): any route, any
 * method, random and malformed names, tags, digests, ranges, Accept lines and headers, some requests as
 * raw bytes. A fixed seed and a random seed (printed, so a failure can be replayed with FUZZ_SEED=…).
 * A crash shows as the child's exit: it is counted, the child restarted on the same data dir, and the
 * run goes on, so one run reports every crash it finds.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupAll, requireCommands, tmpDir } from '../harness/proc.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { makeImage, pushImageHttp, putBlob, type GeneratedImage } from '../harness/oci.js';
import { startRelay, type Relay } from '../harness/relay.js';
import { startChild, type ChildMirror } from './fault-child.js';
import { prng } from '../helpers/prng.js';

/** The error codes of the OCI distribution-spec table; nothing else may appear in an error body. */
const SPEC_CODES = new Set([
  'BLOB_UNKNOWN', 'BLOB_UPLOAD_INVALID', 'BLOB_UPLOAD_UNKNOWN', 'DIGEST_INVALID', 'MANIFEST_BLOB_UNKNOWN', 'MANIFEST_INVALID',
  'MANIFEST_UNKNOWN', 'NAME_INVALID', 'NAME_UNKNOWN', 'SIZE_INVALID', 'UNAUTHORIZED', 'DENIED', 'UNSUPPORTED', 'TOOMANYREQUESTS',
]);

const FIXED_SEED = 0x5eed0009;
const PER_SEED = Number(process.env.FUZZ_REQUESTS ?? 5200);
const CONCURRENCY = 16;


interface Fuzzed {
  method: string;
  path: string;
  headers: Record<string, string | string[]>;
  body?: Buffer;
  /** Send as raw bytes on a fresh socket (malformed HTTP). */
  raw?: Buffer;
}

/** The known-good parts the generator mixes with junk. */
interface Corpus {
  names: string[];
  tags: string[];
  digests: string[];
}

function generator(seed: number, corpus: Corpus): () => Fuzzed {
  const r = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const int = (n: number) => Math.floor(r() * n);
  const hex = (n: number) => Array.from({ length: n }, () => '0123456789abcdef'[int(16)]).join('');
  const junkChars = 'aZ09._-/:%@!$&\'()*+,;=~ \u00e9\u4e2d\u0000\t';
  const junk = (n: number) => Array.from({ length: n }, () => encodeURIComponent(junkChars[int(junkChars.length)]!)).join('');
  const name = (): string =>
    pick([
      () => pick(corpus.names),
      () => pick(corpus.names),
      () => `docker.io/${pick(corpus.names)}`,
      () => `${hex(4)}/${hex(6)}`,
      () => 'Library/Fuzz',
      () => '../../etc',
      () => '%2e%2e/%2e%2e/etc',
      () => 'a//b',
      () => 'a'.repeat(200 + int(200)),
      () => junk(1 + int(20)),
      () => `ghcr.io/${hex(5)}`,
      () => `localhost:5000/${hex(3)}`,
      () => '',
      () => `${pick(corpus.names)}/${'x/'.repeat(int(40))}y`,
    ])();
  const digest = (): string =>
    pick([
      () => pick(corpus.digests),
      () => pick(corpus.digests),
      () => `sha256:${hex(64)}`,
      () => `sha512:${hex(128)}`,
      () => `sha256:${hex(64).toUpperCase()}`,
      () => `sha256:${hex(int(70))}`,
      () => `md5:${hex(32)}`,
      () => `sha256:..%2f..%2f${hex(4)}`,
      () => junk(int(30)),
      () => `sha256-${hex(64)}`,
    ])();
  const reference = (): string =>
    pick([
      () => pick(corpus.tags),
      () => digest(),
      () => '.INVALID_MANIFEST_NAME',
      () => 't'.repeat(int(200)),
      () => hex(8),
      () => junk(1 + int(10)),
      () => `sha256-${hex(64)}`,
    ])();
  const query = (): string =>
    pick([
      () => '',
      () => '',
      () => '?ns=docker.io',
      () => `?ns=${junk(int(10))}`,
      () => `?n=${pick(['0', '1', '-1', '5', 'abc', '99999999999999999999', ''])}&last=${junk(int(8))}`,
      () => `?artifactType=${encodeURIComponent(pick(['application/vnd.example+json', junk(6), '']))}`,
      () => `?${junk(int(40))}`,
      () => '?ns=docker.io&ns=ghcr.io',
    ])();
  const path = (): string =>
    pick([
      () => '/v2/',
      () => '/v2',
      () => `/v2/${name()}/manifests/${reference()}${query()}`,
      () => `/v2/${name()}/manifests/${reference()}${query()}`,
      () => `/v2/${name()}/blobs/${digest()}${query()}`,
      () => `/v2/${name()}/blobs/${digest()}${query()}`,
      () => `/v2/${name()}/tags/list${query()}`,
      () => `/v2/${name()}/referrers/${digest()}${query()}`,
      () => `/v2/${name()}/blobs/uploads/${pick(['', hex(8), `${hex(8)}?digest=sha256:${hex(64)}`])}`,
      () => '/v2/_catalog',
      () => pick(['/metrics', '/healthz', '/readyz', '/', '/favicon.ico', '/v1/_ping', '/v2/../../etc/passwd']),
      () => `/${junk(int(60))}`,
    ])();
  const mediaTypes = [
    'application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.index.v1+json',
    'application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.docker.distribution.manifest.list.v2+json',
    '*/*', 'application/*', 'text/html', 'application/json;q=0.5',
  ];
  const range = (): string =>
    pick([
      () => `bytes=${int(5000)}-${int(5000)}`,
      () => `bytes=${int(5000)}-`,
      () => `bytes=-${int(5000)}`,
      () => `bytes=${Array.from({ length: 1 + int(50) }, () => `${int(3000)}-${int(6000)}`).join(',')}`,
      () => `bytes=${Array.from({ length: 1 + int(30) }, () => '0-').join(',')}`,
      () => pick(['bytes=', 'bytes=a-b', 'items=0-1', 'bytes=5-1', 'bytes=99999999999999999999-', 'bytes=--1', 'bytes=0-0,,,']),
    ])();
  const method = (): string =>
    pick(['GET', 'GET', 'GET', 'GET', 'GET', 'HEAD', 'HEAD', 'HEAD', 'PUT', 'POST', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'CONNECT', 'PROPFIND', 'QUERY']);
  const rawJunk = (): Buffer =>
    Buffer.from(
      pick([
        () => `GET ${path()} HTTP/1.1\r\nHost: x\r\nRange: ${range()}\r\nConnection: close\r\n\r\n`,
        () => `BREW /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
        () => `GET /v2/ HTTP/9.9\r\n\r\n`,
        () => `GET /v2/${'a'.repeat(70_000)}/manifests/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
        () => `GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Bad: a\u0001b\r\nConnection: close\r\n\r\n`,
        () => `GET /v2/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n`,
        () => `HEAD /v2/${pick(corpus.names)}/tags/list HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
        () => `POST /v2/${pick(corpus.names)}/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n`,
        () => `GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Pad: ${'p'.repeat(300_000)}\r\nConnection: close\r\n\r\n`,
        () => `\r\n\r\n\u0000\u00ff${junk(40)}\r\n\r\n`,
        () => `GET ${path()} HTTP/1.0\r\n\r\n`,
      ])(),
      'latin1',
    );
  return () => {
    if (r() < 0.04) return { method: 'RAW', path: '(raw)', headers: {}, raw: rawJunk() };
    const headers: Record<string, string | string[]> = {};
    if (r() < 0.5) headers.accept = r() < 0.5 ? Array.from({ length: 1 + int(6) }, () => pick(mediaTypes)) : Array.from({ length: 1 + int(5) }, () => pick(mediaTypes)).join(', ');
    if (r() < 0.08) headers.accept = Array.from({ length: 1 + int(40) }, () => `application/x-${hex(6)}`).join(',');
    if (r() < 0.3) headers.range = range();
    if (r() < 0.05) headers['if-range'] = pick(['"sha256:abc"', 'Wed, 21 Oct 2015 07:28:00 GMT', junk(5)]);
    if (r() < 0.05) headers['if-none-match'] = `"${digest()}"`;
    if (r() < 0.05) headers.authorization = pick(['Bearer x', 'Basic Og==', `Basic ${hex(40)}`, 'Negotiate']);
    if (r() < 0.05) headers['x-request-id'] = pick([hex(10), 'a b', 'x'.repeat(300)]);
    if (r() < 0.03) headers['accept-encoding'] = 'gzip, br';
    const m = method();
    const out: Fuzzed = { method: m, path: path(), headers };
    if ((m === 'PUT' || m === 'POST' || m === 'PATCH') && r() < 0.7) {
      out.body = Buffer.from(hex(int(200)));
      headers['content-type'] = pick(['application/octet-stream', 'application/vnd.oci.image.manifest.v1+json', 'text/plain']);
    }
    return out;
  };
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function send(url: string, agent: Agent, f: Fuzzed): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let req;
    try {
      req = httpRequest(`${url}${f.path.startsWith('/') ? '' : '/'}${f.path}`, { method: f.method, headers: f.headers, agent, timeout: 20_000 }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          // Keep only the start of large bodies (blobs): error bodies are small.
          if (size < 64 * 1024) chunks.push(c);
          size += c.length;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
        res.on('aborted', () => reject(new Error('aborted body')));
      });
    } catch (err) {
      // The client refused to build this request (e.g. an invalid method token): not a mirror fault.
      resolve({ status: -1, headers: {}, body: Buffer.from(String(err)) });
      return;
    }
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(f.body);
  });
}

/** Raw exchange on a fresh socket; resolves with everything the mirror sent before closing. */
function sendRaw(port: number, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = connect(port, '127.0.0.1', () => s.write(bytes));
    s.setTimeout(20_000, () => s.destroy());
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => undefined);
    s.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

/** Files under `dir` (path → size), skipping `skip`. */
function snapshot(dir: string, skip: string): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (p === skip) continue;
      if (e.isDirectory()) walk(p);
      else out.set(p, statSync(p).size);
    }
  };
  walk(dir);
  return out;
}

interface Finding {
  what: string;
  request: string;
}

describe('fuzz: no input takes the mirror down', () => {
  let upstream: Registry;
  let relay: Relay;
  let child: ChildMirror;
  let corpus: Corpus;
  let img: GeneratedImage;
  let parent: string;
  let dataDir: string;

  before(async () => {
    requireCommands('docker-registry');
    upstream = await startRegistry();
    relay = await startRelay({ target: upstream.url });
    img = await makeImage({ layers: [3000, 6000] });
    await pushImageHttp(upstream.url, 'library/fuzz', '1', img);
    await pushImageHttp(upstream.url, 'acme/app', 'v1', img);
    const extra = await putBlob(upstream.url, 'library/fuzz', Buffer.alloc(5000, 7));
    corpus = {
      names: ['fuzz', 'library/fuzz', 'acme/app', 'nothere'],
      tags: ['1', 'v1', 'latest', 'nope'],
      digests: [img.manifestDigest, img.configDigest, ...img.layers.map((l) => l.digest), extra],
    };
    parent = await tmpDir('fuzz-root-');
    // The child runs in `parent` too, so a stray relative path (./data) would show in the snapshot.
    dataDir = join(parent, 'data');
    mkdirSync(dataDir);
    mkdirSync(join(parent, 'sentinel'));
    writeFileSync(join(parent, 'sentinel', 'keep.txt'), 'do not touch\n');
    child = await startChild({ upstreams: [`docker.io=${relay.url}`], dataDir, cwd: parent });
  });
  after(cleanupAll);

  test('a fixed and a random seed: 0 crashes, 0 unexplained 5xx, spec-only error codes, HEAD errors bodiless, nothing outside the data dir', { timeout: 240_000 }, async () => {
    const randomSeed = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
    process.stdout.write(`# fuzz seeds: fixed ${FIXED_SEED}, random ${randomSeed} (replay: FUZZ_SEED=${randomSeed})\n`);
    const before = snapshot(parent, dataDir);
    const findings: Finding[] = [];
    let crashes = 0;
    let sent = 0;
    let restarting: Promise<void> | undefined;
    const crashLines: string[] = [];

    /** After a connection error: if the child died, count the crash and restart it (once for all workers). */
    const checkAlive = async (): Promise<void> => {
      if (restarting) return restarting;
      if (child.proc.running) return;
      restarting = (async () => {
        crashes += 1;
        crashLines.push(child.proc.tail(8));
        child = await startChild({ upstreams: [`docker.io=${relay.url}`], dataDir, cwd: parent, port: child.port });
      })();
      await restarting;
      restarting = undefined;
    };

    const upstream5xx = (f: Fuzzed): boolean => {
      const tail = f.path.split('?')[0]!.split('/').pop() ?? '';
      return relay.stats().log.some((rec) => (rec.status >= 500 || rec.aborted) && tail !== '' && rec.path.includes(tail));
    };

    const check = (f: Fuzzed, a: Answer): void => {
      const label = `${f.method} ${f.path.slice(0, 160)} ${JSON.stringify(f.headers).slice(0, 200)}`;
      if (a.status === -1) return;
      if (a.status >= 500 && !upstream5xx(f)) findings.push({ what: `5xx not caused by the upstream: ${a.status} ${a.body.toString().slice(0, 160)}`, request: label });
      if (a.status < 400) return;
      if (f.method === 'HEAD') {
        if (a.body.length > 0) findings.push({ what: 'HEAD error with a body', request: label });
        return;
      }
      if (a.body.length === 0) return; // no body where no spec code fits
      let parsed: { errors?: Array<{ code?: unknown; message?: unknown }> };
      try {
        parsed = JSON.parse(a.body.toString()) as typeof parsed;
      } catch {
        findings.push({ what: `error body is not JSON: ${a.body.toString().slice(0, 80)}`, request: label });
        return;
      }
      if (!Array.isArray(parsed.errors) || parsed.errors.length === 0) {
        findings.push({ what: 'error body without an errors list', request: label });
        return;
      }
      for (const e of parsed.errors) {
        const code = String(e.code);
        const ok = SPEC_CODES.has(code) || (code === 'UNAVAILABLE' && a.status >= 500 && upstream5xx(f));
        if (!ok) findings.push({ what: `error code outside the spec table: ${code} (status ${a.status})`, request: label });
        if (typeof e.message !== 'string') findings.push({ what: `error ${code} without a message`, request: label });
      }
    };

    for (const seed of [FIXED_SEED, randomSeed]) {
      const next = generator(seed, corpus);
      const queue = Array.from({ length: PER_SEED }, () => next());
      const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
      let i = 0;
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (i < queue.length) {
            const f = queue[i++]!;
            sent += 1;
            if (f.raw) {
              const answer = await sendRaw(child.port, f.raw);
              const text = answer.toString('latin1');
              if (/^HTTP\/1\.[01] 5\d\d/.test(text) && !text.includes('upstream')) findings.push({ what: `raw request got ${text.slice(0, 40)}`, request: f.raw.subarray(0, 120).toString('latin1') });
              await checkAlive();
              continue;
            }
            try {
              check(f, await send(child.url, agent, f));
            } catch (err) {
              await checkAlive();
              if (!/aborted body|socket hang up|ECONNRESET|ECONNREFUSED/.test(String(err))) findings.push({ what: `client error ${String(err)}`, request: `${f.method} ${f.path.slice(0, 160)}` });
            }
          }
        }),
      );
      agent.destroy();
    }
    await checkAlive();

    // HEAD errors carry no body: checked on the wire, where a client library cannot hide it.
    for (const p of ['/v2/Bad/manifests/x', `/v2/fuzz/blobs/sha256:${'0'.repeat(64)}`, '/v2/fuzz/manifests/nope', '/v2/_catalog', '/nowhere']) {
      const text = (await sendRaw(child.port, Buffer.from(`HEAD ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`))).toString('latin1');
      if (!/^HTTP\/1\.1 4\d\d /.test(text)) findings.push({ what: `HEAD on the wire: no 4xx (${JSON.stringify(text.slice(0, 40))})`, request: `HEAD ${p}` });
      else if (text.split('\r\n\r\n')[1] !== '') findings.push({ what: 'HEAD error with a body (on the wire)', request: `HEAD ${p}` });
      await checkAlive();
    }

    const afterSnap = snapshot(parent, dataDir);
    const changed = [...new Set([...before.keys(), ...afterSnap.keys()])].filter((p) => before.get(p) !== afterSnap.get(p));
    // One line per kind of finding, with a count and one example request.
    const summary = new Map<string, { n: number; example: string }>();
    for (const f of findings) {
      const kind = f.what.slice(0, 70);
      const s = summary.get(kind) ?? { n: 0, example: f.request.slice(0, 140) };
      s.n += 1;
      summary.set(kind, s);
    }
    process.stdout.write(`# fuzz: ${sent} requests, ${crashes} crashes, ${findings.length} findings\n`);
    for (const [kind, s] of [...summary].sort((a, b) => b[1].n - a[1].n).slice(0, 25)) process.stdout.write(`#   ${s.n} × ${kind} ← ${s.example}\n`);
    for (const c of crashLines.slice(0, 2)) process.stdout.write(`# crash tail:\n${c.replace(/^/gm, '#   ')}\n`);

    assert.ok(sent >= 10_000, `at least 10 000 requests (sent ${sent})`);
    assert.deepEqual(changed, [], 'nothing written outside the data dir');
    assert.equal(crashes, 0, `the mirror process crashed ${crashes} time(s) (see crash tail above)`);
    assert.ok(child.proc.running, 'the mirror is still running');
    assert.equal(findings.filter((f) => f.what.startsWith('5xx') || f.what.startsWith('raw')).length, 0, 'no 5xx the upstream did not cause');
    assert.deepEqual(findings.slice(0, 10), [], `${findings.length} findings in total`);
  });
});
