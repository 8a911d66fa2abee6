// Issue 9, item 10: the upstream trust policy with a hostile upstream of the test's own in front of a real registry.
/**
 * The hostile upstream (a node:http server on 127.0.0.1) asks for Basic credentials, so the mirror's
 * credentials are in play in every case, and answers blob GETs with whatever redirect the case wants:
 * - to `localhost` (loopback, another origin): followed — the upstream is on loopback — and the
 *   Authorization header stays behind (a counting relay in front of the real registry sees none);
 * - to `0.0.0.0` (the unspecified address, which Linux routes to loopback, so nothing could leave the
 *   machine even if the mirror followed it): refused, nothing reaches the listener there, one log line
 *   names the host and not the presigned-style query;
 * - to itself: the loop ends after a bounded number of hops with a 503.
 * A Bearer challenge naming an `http://` realm on another host gets a token request without credentials.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { cleanupAll, listenLoopback, registerCleanup, requireCommands } from '../harness/proc.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { putBlob } from '../harness/oci.js';
import { startRelay, type Relay } from '../harness/relay.js';
import { startMirror, type TestMirror } from '../helpers/mirror.js';
import { http, httpDigest } from '../helpers/http.js';

const USER = 'mirror';
const PASS = 'secret-pass';
const BASIC = `Basic ${Buffer.from(`${USER}:${PASS}`).toString('base64')}`;

/** A test server; every request is recorded; closed by cleanupAll. */
async function server(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ port: number; seen: Array<{ url: string; authorization: string | undefined }> }> {
  const seen: Array<{ url: string; authorization: string | undefined }> = [];
  const s = createServer((req, res) => {
    seen.push({ url: req.url ?? '', authorization: req.headers.authorization });
    handler(req, res);
  });
  const port = await listenLoopback(s);
  registerCleanup(`server :${port}`, () => {
    s.closeAllConnections();
    return new Promise<void>((r) => s.close(() => r()));
  });
  return { port, seen };
}

after(cleanupAll);

describe('upstream trust policy', () => {
  let reg: Registry;
  let target: Relay;
  let mirror: TestMirror;
  let hostile: Awaited<ReturnType<typeof server>>;
  let trap: Awaited<ReturnType<typeof server>>;
  /** Where the hostile upstream sends each blob (by digest), as a function of the request path. */
  const redirects = new Map<string, (path: string) => string>();
  const digests: Record<string, string> = {};

  before(async () => {
    requireCommands('docker-registry');
    reg = await startRegistry({ name: 'registry-trust' });
    for (const label of ['cross', 'refused', 'loop']) digests[label] = await putBlob(reg.url, 'library/app', randomBytes(64 * 1024));
    target = await startRelay({ target: reg.url, name: 'redirect-target' });
    // A listener on the port the refused redirect names: it must never see a request.
    trap = await server((_req, res) => res.end('bad'));
    hostile = await server((req, res) => {
      if (req.headers.authorization !== BASIC) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="hostile"', 'content-length': '0' });
        return res.end();
      }
      const url = req.url ?? '/';
      const digest = /\/blobs\/(sha256:[0-9a-f]{64})/.exec(url)?.[1];
      const to = digest ? redirects.get(digest) : undefined;
      if (to) {
        res.writeHead(307, { location: to(url), 'content-length': '0' });
        return res.end();
      }
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"BLOB_UNKNOWN","message":"no"}]}');
    });
    mirror = await startMirror({ upstreams: [`docker.io=http://127.0.0.1:${hostile.port}`], credentials: { 'docker.io': { username: USER, password: PASS } } });
  });

  test('a redirect from a loopback upstream to loopback (by host name) is followed, without the Authorization header', { timeout: 60_000 }, async () => {
    const d = digests.cross!;
    redirects.set(d, (path) => `http://localhost:${target.port}${path}`);
    const r = await httpDigest(`${mirror.url}/v2/app/blobs/${d}`);
    assert.equal(r.status, 200);
    assert.equal(r.digest, d);
    assert.ok(hostile.seen.some((s) => s.url.includes(d) && s.authorization === BASIC), 'the upstream itself got the credentials');
    const atTarget = target.stats().log.filter((x) => x.path.includes(d));
    assert.ok(atTarget.length >= 1, 'the redirect was followed');
    assert.deepEqual(atTarget.map((x) => x.authorization), atTarget.map(() => undefined), 'no Authorization at the other origin');
  });

  test('a redirect to a refused address is not followed: 503 redirect-refused, one log line with the host and not the query', { timeout: 60_000 }, async () => {
    const d = digests.refused!;
    const filled = await mirror.metric('regmirror_fills_completed_total');
    redirects.set(d, (path) => `http://0.0.0.0:${trap.port}${path}?X-Amz-Signature=TOPSECRET123`);
    const r = await http(`${mirror.url}/v2/app/blobs/${d}`);
    assert.equal(r.status, 503, r.body.toString());
    assert.match(r.body.toString(), /redirect-refused/);
    assert.equal(trap.seen.length, 0, 'nothing connected to the refused address');
    const log = readFileSync(mirror.logFile, 'utf8');
    const lines = log.split('\n').filter((l) => l.includes('refused a host the upstream named'));
    assert.equal(lines.length, 1, `one log line for one refusal:\n${lines.join('\n')}`);
    assert.match(lines[0]!, /"host":"0\.0\.0\.0"/);
    assert.doesNotMatch(log, /TOPSECRET123/, 'the presigned query never reaches the log');
    assert.equal(await mirror.metric('regmirror_fills_completed_total'), filled, 'nothing was cached from it');
  });

  test('a redirect loop ends after a bounded number of hops', { timeout: 60_000 }, async () => {
    const d = digests.loop!;
    redirects.set(d, (path) => path);
    const before = hostile.seen.filter((s) => s.url.includes(d)).length;
    const r = await http(`${mirror.url}/v2/app/blobs/${d}`);
    assert.equal(r.status, 503);
    assert.match(r.body.toString(), /redirect-loop/);
    const hops = hostile.seen.filter((s) => s.url.includes(d)).length - before;
    assert.ok(hops >= 2 && hops <= 12, `hops bounded: ${hops}`);
  });
});

describe('token realm policy', () => {
  test('an http:// realm on another host gets a token request without the configured credentials', { timeout: 60_000 }, async () => {
    const realm = await server((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ token: 'tok-anon', expires_in: 300 }));
    });
    const upstream = await server((req, res) => {
      if (req.headers.authorization !== 'Bearer tok-anon') {
        // The realm is on `localhost`, the upstream is configured as 127.0.0.1: another host, plain http.
        res.writeHead(401, { 'www-authenticate': `Bearer realm="http://localhost:${realm.port}/token",service="svc"`, 'content-type': 'application/json' });
        return res.end('{"errors":[{"code":"UNAUTHORIZED","message":"auth"}]}');
      }
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"no such tag"}]}');
    });
    const m = await startMirror({ upstreams: [`docker.io=http://127.0.0.1:${upstream.port}`], credentials: { 'docker.io': { username: USER, password: PASS } } });
    const r = await http(`${m.url}/v2/app/manifests/v1`);
    assert.equal(r.status, 404, `the anonymous token was used: ${r.body.toString()}`);
    assert.ok(realm.seen.length >= 1, 'the realm was asked');
    assert.deepEqual(realm.seen.map((s) => s.authorization), realm.seen.map(() => undefined), 'no credentials to an http realm on another host');
    assert.ok(upstream.seen.some((s) => s.authorization === 'Bearer tok-anon'));
    const lines = readFileSync(m.logFile, 'utf8').split('\n').filter((l) => l.includes('without credentials'));
    assert.equal(lines.length, 1, 'one warning names the realm');
    assert.doesNotMatch(lines[0]!, new RegExp(PASS));
  });
});
