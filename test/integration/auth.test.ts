/**
 * Upstream authentication against a real distribution registry:
 * - token auth, anonymous pulls: the Bearer dance with `repository:<repo>:pull`, tokens cached per scope;
 * - a token server that requires credentials: DENIED (never a 401 challenge from the mirror) without
 *   them; with them (from a YAML config file with `${ENV}` references) the pull works as that user;
 * - the client's own Authorization header never reaches the upstream or the token server;
 * - an expired or no longer accepted token is replaced by exactly one new token request (the challenge
 *   is re-read once on 401, never in a loop);
 * - Basic auth (htpasswd) with credentials from the config.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cleanupAll, requireCommands, tmpDir } from '../harness/proc.js';
import { countAccess, startRegistry, type Registry } from '../harness/registry.js';
import { makeImage, MediaType, pullImage, pushImage, type GeneratedImage } from '../harness/oci.js';
import { startTokenServer, type TokenServer } from '../harness/tokenserver.js';
import { startRelay, type Relay, type RelayRecord } from '../harness/relay.js';
import { startMirror, type TestMirror } from '../helpers/mirror.js';
import { errorCode, http, type HttpResult } from '../helpers/http.js';
import { readConfigFile } from '../../src/config/load.js';

const ACCEPT = { accept: `${MediaType.ociManifest}, ${MediaType.dockerManifest}` };
const ADMIN = { user: 'admin', password: 'admin-pw' };
const ADMIN_CREDS = `${ADMIN.user}:${ADMIN.password}`;

/** The claims of a JWT (no verification: the registry did that). */
function jwtClaims(authorization: string): { iss?: string; sub?: string; access?: Array<{ name: string; actions: string[] }> } {
  const token = authorization.replace(/^Bearer /, '');
  const payload = token.split('.')[1];
  assert.ok(payload, `not a JWT: ${authorization.slice(0, 40)}`);
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as ReturnType<typeof jwtClaims>;
}

/** A mirror answer to a client must never be a challenge: clients only hold credentials for the mirror. */
function assertNoChallenge(r: HttpResult, what: string): void {
  assert.notEqual(r.status, 401, `${what}: the mirror never answers 401`);
  assert.equal(r.headers['www-authenticate'], undefined, `${what}: no WWW-Authenticate from the mirror`);
}

function blobGets(log: RelayRecord[], digest?: string): RelayRecord[] {
  return log.filter((r) => r.method === 'GET' && r.path.includes('/blobs/') && (digest === undefined || r.path.includes(digest)));
}

/** Polls `check` until it returns true (for an event the test cannot subscribe to); fails after 20 s. */
async function waitUntil(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = performance.now() + 20_000;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`${what}: not reached within 20 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('token auth, anonymous pulls allowed', () => {
  let ts: TokenServer;
  let reg: Registry;
  let v1: GeneratedImage;
  let v2: GeneratedImage;
  let m: TestMirror;

  before(async () => {
    requireCommands('docker-registry', 'skopeo', 'openssl');
    ts = await startTokenServer({ users: { [ADMIN.user]: ADMIN.password } });
    reg = await startRegistry({ auth: ts.registryAuth(), name: 'registry-token' });
    v1 = await makeImage({ layers: [200_000, 3000], tag: 'v1' });
    v2 = await makeImage({ layers: [150_000, 4000], tag: 'v2' });
    await pushImage(v1, reg.host, 'team/app:v1', { creds: ADMIN_CREDS });
    await pushImage(v2, reg.host, 'team/app:v2', { creds: ADMIN_CREDS });
    m = await startMirror({ upstreams: [`docker.io=${reg.url}`], tagTtl: '1h' });
  });
  after(cleanupAll);

  test('skopeo pulls through the mirror; the mirror fetched an anonymous pull token for the repository', async () => {
    ts.reset();
    await reg.settle();
    reg.resetLog();
    const r = await pullImage(m.host, 'team/app:v1', await tmpDir('pull-anon-'));
    assert.equal(r.code, 0, r.stderr);
    await reg.settle();
    const log = reg.accessLog();
    assert.ok(countAccess(log, { status: 401 }) >= 1, 'the upstream challenged the mirror');
    assert.equal(countAccess(log, { method: 'GET', kind: 'blob', status: 200 }), 1 + v1.layers.length);
    const reqs = ts.requests();
    assert.ok(reqs.length >= 1);
    for (const q of reqs) {
      assert.equal(q.user, undefined, 'anonymous');
      assert.equal(q.status, 200);
      assert.equal(q.service, ts.service);
      assert.deepEqual(q.scopes, ['repository:team/app:pull'], 'exactly the pull scope of the repository');
      assert.match(q.userAgent ?? '', /^regmirror\//);
    }
    assert.equal(reqs.length, 1, 'one token for the whole pull (the token is cached and shared)');
  });

  test('tokens are cached: cold fetches of another manifest and blobs in the same repository need no new token', async () => {
    // Make sure a token is cached (this test may run alone).
    const warm = await http(`${m.url}/v2/team/app/manifests/v1`, { headers: ACCEPT });
    assert.equal(warm.status, 200);
    ts.reset();
    await reg.settle();
    reg.resetLog();
    const man = await http(`${m.url}/v2/team/app/manifests/v2`, { headers: ACCEPT });
    assert.equal(man.status, 200);
    assert.equal(man.headers['docker-content-digest'], v2.manifestDigest);
    for (const b of [v2.configBlob, ...v2.layers]) {
      const r = await http(`${m.url}/v2/team/app/blobs/${b.digest}`);
      assert.equal(r.status, 200);
      assert.equal(r.body.length, b.size);
    }
    await reg.settle();
    const log = reg.accessLog();
    assert.equal(countAccess(log, { method: 'GET', kind: 'blob', status: 200 }), 1 + v2.layers.length, 'the blobs were cold: fetched upstream');
    assert.equal(countAccess(log, { status: 401 }), 0, 'the cached token was sent up front: no challenge');
    assert.equal(ts.requests().length, 0, 'no new token request within the token lifetime');
  });
});

describe('token auth that requires credentials', () => {
  const USER = 'mirror-bot';
  const PASS = 'pw-from-env-42';
  let ts: TokenServer;
  let reg: Registry;
  let img: GeneratedImage;

  before(async () => {
    requireCommands('docker-registry', 'skopeo', 'openssl');
    ts = await startTokenServer({ users: { [USER]: PASS, [ADMIN.user]: ADMIN.password }, requireCredentials: true });
    reg = await startRegistry({ auth: ts.registryAuth(), name: 'registry-private' });
    img = await makeImage({ layers: [120_000], tag: 'v1' });
    await pushImage(img, reg.host, 'private/app:v1', { creds: ADMIN_CREDS });
  });
  after(cleanupAll);

  test('without credentials in the config the client gets 403 DENIED, never a 401 challenge', async () => {
    const m = await startMirror({ upstreams: [`docker.io=${reg.url}`] });
    ts.reset();
    const base = await http(`${m.url}/v2/`);
    assert.equal(base.status, 200);
    assertNoChallenge(base, 'GET /v2/');
    for (const method of ['GET', 'HEAD']) {
      const man = await http(`${m.url}/v2/private/app/manifests/v1`, { method, headers: ACCEPT });
      assert.equal(man.status, 403, `${method} manifest`);
      assertNoChallenge(man, `${method} manifest`);
      if (method === 'GET') assert.equal(errorCode(man), 'DENIED');
      const blob = await http(`${m.url}/v2/private/app/blobs/${img.layers[0]!.digest}`, { method });
      assert.equal(blob.status, 403, `${method} blob`);
      assertNoChallenge(blob, `${method} blob`);
      if (method === 'GET') assert.equal(errorCode(blob), 'DENIED');
    }
    await assert.rejects(pullImage(m.host, 'private/app:v1', await tmpDir('pull-denied-')), /denied/i);
    const reqs = ts.requests();
    assert.ok(reqs.length >= 1, 'the mirror asked the token server');
    assert.ok(reqs.every((q) => q.user === undefined && q.status === 401), 'anonymously, and was refused');
  });

  test('with credentials from a YAML config file (${ENV} references) the pull works as that user', async () => {
    const dir = await tmpDir('config-');
    const file = join(dir, 'regmirror.yml');
    await writeFile(
      file,
      [
        'upstreams:',
        '  - docker.io=${UPSTREAM_URL}',
        'tagTtl: 1h',
        'credentials:',
        '  docker.io:',
        '    username: ${REG_USER}',
        '    password: ${REG_PASSWORD}',
        '',
      ].join('\n'),
    );
    const input = readConfigFile(file, { UPSTREAM_URL: reg.url, REG_USER: USER, REG_PASSWORD: PASS });
    assert.deepEqual(input.credentials, { 'docker.io': { username: USER, password: PASS } });
    const m = await startMirror(input);
    ts.reset();
    const out = await tmpDir('pull-creds-');
    const r = await pullImage(m.host, 'private/app:v1', out);
    assert.equal(r.code, 0, r.stderr);
    const reqs = ts.requests();
    assert.ok(reqs.length >= 1);
    for (const q of reqs) {
      assert.equal(q.user, USER, 'Basic credentials of the configured user at the realm');
      assert.equal(q.status, 200);
      assert.deepEqual(q.scopes, ['repository:private/app:pull']);
    }
    const log = await readFile(m.logFile, 'utf8');
    assert.ok(log.length > 0);
    assert.ok(!log.includes(PASS), 'the password is never logged');
    assert.ok(!log.includes(Buffer.from(`${USER}:${PASS}`).toString('base64')), 'nor its Basic encoding');
  });

  test('a pre-issued token from the config is sent as Bearer; no token request', async () => {
    const token = ts.issue('ci-bot', [{ type: 'repository', name: 'private/app', actions: ['pull'] }], 300);
    const m = await startMirror({ upstreams: [`docker.io=${reg.url}`], credentials: { 'docker.io': { token } } });
    ts.reset();
    const r = await pullImage(m.host, 'private/app:v1', await tmpDir('pull-token-'));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(ts.requests().length, 0);
    const other = await http(`${m.url}/v2/private/other/manifests/v1`, { headers: ACCEPT });
    assert.equal(other.status, 403, 'a repository the token does not cover is DENIED');
    assertNoChallenge(other, 'manifest');
    assert.equal(ts.requests().length, 0, 'a pre-issued token is not swapped for another');
  });

  test('wrong credentials: 403 DENIED, no challenge', async () => {
    const m = await startMirror({ upstreams: [`docker.io=${reg.url}`], credentials: { 'docker.io': { username: USER, password: 'wrong' } } });
    ts.reset();
    const man = await http(`${m.url}/v2/private/app/manifests/v1`, { headers: ACCEPT });
    assert.equal(man.status, 403);
    assert.equal(errorCode(man), 'DENIED');
    assertNoChallenge(man, 'manifest');
    assert.ok(ts.requests().length >= 1 && ts.requests().every((q) => q.status === 401));
  });
});

describe('the client’s Authorization header stays with the mirror', () => {
  let ts: TokenServer;
  let reg: Registry;
  let relay: Relay;
  let img: GeneratedImage;

  before(async () => {
    requireCommands('docker-registry', 'skopeo', 'openssl');
    ts = await startTokenServer({ users: { [ADMIN.user]: ADMIN.password } });
    reg = await startRegistry({ auth: ts.registryAuth(), name: 'registry-clientauth' });
    relay = await startRelay({ target: reg.url, name: 'clientauth' });
    img = await makeImage({ layers: [90_000, 2000], tag: 'v1' });
    await pushImage(img, reg.host, 'team/app:v1', { creds: ADMIN_CREDS });
  });
  after(cleanupAll);

  test('only mirror-obtained Bearer tokens go upstream; the client’s credentials reach neither registry nor token server', async () => {
    const m = await startMirror({ upstreams: [`docker.io=${relay.url}`], tagTtl: '1h' });
    ts.reset();
    relay.reset();
    // Valid credentials of a real user: if the mirror passed them on, the token server would log that user.
    const clientBasic = `Basic ${Buffer.from(ADMIN_CREDS).toString('base64')}`;
    const clientBearer = 'Bearer client-secret-token-0123456789';
    const man = await http(`${m.url}/v2/team/app/manifests/v1`, { headers: { ...ACCEPT, authorization: clientBasic } });
    assert.equal(man.status, 200);
    assert.equal(man.headers['docker-content-digest'], img.manifestDigest);
    const [first, ...rest] = [img.configBlob, ...img.layers];
    const b0 = await http(`${m.url}/v2/team/app/blobs/${first!.digest}`, { headers: { authorization: clientBearer } });
    assert.equal(b0.status, 200);
    for (const b of rest) {
      const r = await http(`${m.url}/v2/team/app/blobs/${b.digest}`, { headers: { authorization: clientBasic } });
      assert.equal(r.status, 200);
    }
    const headBlob = await http(`${m.url}/v2/team/app/blobs/sha256:${'e'.repeat(64)}`, { method: 'HEAD', headers: { authorization: clientBearer } });
    assert.equal(headBlob.status, 404);

    const log = relay.stats().log;
    assert.ok(blobGets(log).length === 1 + img.layers.length, 'the blobs were fetched upstream through the relay');
    const sent = log.map((r) => r.authorization).filter((a): a is string => a !== undefined);
    assert.ok(sent.length > 0, 'the mirror authenticated upstream');
    for (const a of sent) {
      assert.notEqual(a, clientBasic);
      assert.notEqual(a, clientBearer);
      assert.ok(!a.includes('client-secret'));
      assert.match(a, /^Bearer [\w-]+\.[\w-]+\.[\w-]+$/, 'a JWT');
      const claims = jwtClaims(a);
      assert.equal(claims.iss, ts.issuer, 'issued by the token server to the mirror');
      assert.equal(claims.sub, '', 'to an anonymous subject, not to the client’s user');
    }
    const reqs = ts.requests();
    assert.ok(reqs.length >= 1);
    assert.ok(reqs.every((q) => q.user === undefined), 'the token server never saw the client’s credentials');
  });
});

describe('expired and rejected tokens', () => {
  before(() => requireCommands('docker-registry', 'skopeo', 'openssl'));
  after(cleanupAll);

  test('an expired token is refreshed with exactly one new token request', async () => {
    // strictExpiry: distribution rejects a token exactly `expires_in` after issue (no 60 s leeway).
    const ts2 = await startTokenServer({ users: { [ADMIN.user]: ADMIN.password }, expiresIn: 300, strictExpiry: true });
    const reg2 = await startRegistry({ auth: ts2.registryAuth(), name: 'registry-expiry' });
    const img = await makeImage({ layers: [80_000, 60_000], tag: 'v1' });
    await pushImage(img, reg2.host, 'team/app:v1', { creds: ADMIN_CREDS });
    ts2.setExpiresIn(2); // pull tokens live 2 s from now on
    ts2.reset();
    const relay = await startRelay({ target: reg2.url, name: 'expiry' });
    const m = await startMirror({ upstreams: [`docker.io=${relay.url}`], tagTtl: '1h' });

    const man = await http(`${m.url}/v2/team/app/manifests/v1`, { headers: ACCEPT });
    assert.equal(man.status, 200);
    assert.ok(ts2.requests().length >= 1);
    const used = relay.stats().log.findLast((r) => r.status === 200 && r.authorization !== undefined)?.authorization;
    assert.ok(used, 'the mirror used a token');

    // Wait for the event "the upstream no longer accepts that token" (polled: there is nothing to subscribe to).
    await waitUntil('token expiry upstream', async () => {
      const r = await fetch(`${reg2.url}/v2/team/app/manifests/${img.manifestDigest}`, { method: 'HEAD', headers: { authorization: used, ...ACCEPT } });
      await r.arrayBuffer();
      return r.status === 401;
    });
    ts2.reset();
    relay.reset();
    const layer = img.layers[0]!;
    const blob = await http(`${m.url}/v2/team/app/blobs/${layer.digest}`);
    assert.equal(blob.status, 200, 'the request after expiry succeeds');
    assert.equal(blob.body.length, layer.size);
    const reqs = ts2.requests();
    assert.equal(reqs.length, 1, 'exactly one new token request');
    assert.deepEqual(reqs[0]!.scopes, ['repository:team/app:pull']);
    const ok = blobGets(relay.stats().log, layer.digest).filter((r) => r.status === 200);
    assert.equal(ok.length, 1);
    assert.notEqual(ok[0]!.authorization, used, 'with the new token');
    assert.ok(blobGets(relay.stats().log).length <= 2, 'at most the rejected attempt and the retry');
  });

  test('a token the upstream stops accepting early is replaced after one 401 (the challenge is re-read once)', async () => {
    // The mirror holds a 300 s token from ts1; the registry then trusts only ts2 (key rotation, new realm).
    const ts1 = await startTokenServer({ users: { [ADMIN.user]: ADMIN.password } });
    const reg = await startRegistry({ auth: ts1.registryAuth(), name: 'registry-rotate' });
    const img = await makeImage({ layers: [70_000, 50_000], tag: 'v1' });
    await pushImage(img, reg.host, 'team/app:v1', { creds: ADMIN_CREDS });
    const relay = await startRelay({ target: reg.url, name: 'rotate' });
    const m = await startMirror({ upstreams: [`docker.io=${relay.url}`], tagTtl: '1h' });
    const man = await http(`${m.url}/v2/team/app/manifests/v1`, { headers: ACCEPT });
    assert.equal(man.status, 200);

    const ts2 = await startTokenServer();
    const port = reg.port;
    await reg.stop();
    const reg2 = await startRegistry({ auth: ts2.registryAuth(), dataDir: reg.dataDir, port, name: 'registry-rotate-2' });
    assert.equal(reg2.port, port);
    ts1.reset();
    relay.reset();
    const layer = img.layers[0]!;
    const blob = await http(`${m.url}/v2/team/app/blobs/${layer.digest}`);
    assert.equal(blob.status, 200);
    assert.equal(blob.body.length, layer.size);
    const attempts = blobGets(relay.stats().log, layer.digest);
    assert.deepEqual(attempts.map((r) => r.status), [401, 200], 'the old token was refused once, the new one accepted');
    assert.equal(ts1.requests().length, 0, 'the old realm is not asked');
    assert.equal(ts2.requests().length, 1, 'exactly one token request at the realm of the new challenge');
    assert.equal(jwtClaims(attempts[1]!.authorization ?? '').iss, ts2.issuer);
  });

  test('a token that never grants access: DENIED after one retry, no loop', async () => {
    const ts1 = await startTokenServer({ users: { [ADMIN.user]: ADMIN.password } });
    const reg = await startRegistry({ auth: ts1.registryAuth(), name: 'registry-noaccess' });
    const img = await makeImage({ layers: [10_000], tag: 'v1' });
    await pushImage(img, reg.host, 'team/app:v1', { creds: ADMIN_CREDS });
    await reg.stop();
    const ts = await startTokenServer({ anonymousActions: [] });
    const reg2 = await startRegistry({ auth: ts.registryAuth(), dataDir: reg.dataDir, name: 'registry-noaccess-2' });
    const relay = await startRelay({ target: reg2.url, name: 'noaccess' });
    const m = await startMirror({ upstreams: [`docker.io=${relay.url}`] });
    for (let i = 0; i < 2; i++) {
      ts.reset();
      relay.reset();
      const r = await http(`${m.url}/v2/team/app/blobs/${img.layers[0]!.digest}`);
      assert.equal(r.status, 403);
      assert.equal(errorCode(r), 'DENIED');
      assertNoChallenge(r, 'blob');
      const log = relay.stats().log;
      assert.ok(log.length <= 2, `at most one retry upstream (request ${i + 1}): ${log.map((x) => `${x.method} ${x.path} ${x.status}`).join(', ')}`);
      assert.ok(log.every((x) => x.status === 401));
      assert.equal(ts.requests().length, 1, `one token request (request ${i + 1})`);
    }
  });
});

describe('Basic auth upstream (htpasswd)', () => {
  // bcrypt (cost 4) of BASIC_PASS; distribution's htpasswd accepts only bcrypt entries. Made with
  // python3 -c "import crypt; print(crypt.crypt('basic-pass-7', crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))"
  const BASIC_USER = 'puller';
  const BASIC_PASS = 'basic-pass-7';
  const BCRYPT = '$2b$04$SCJtFb0FJkDfKlMCZlLWS.y5xuteFmAvJoHndYg4mvPd7rkW/H0Xm';
  let reg: Registry;
  let relay: Relay;
  let img: GeneratedImage;

  before(async () => {
    requireCommands('docker-registry', 'skopeo');
    const dir = await tmpDir('htpasswd-');
    const path = join(dir, 'htpasswd');
    await writeFile(path, `${BASIC_USER}:${BCRYPT}\n`);
    reg = await startRegistry({ htpasswd: { realm: 'basic-realm', path }, name: 'registry-basic' });
    // The fixture itself: the registry takes the password and refuses a wrong one.
    const basic = (p: string) => ({ authorization: `Basic ${Buffer.from(`${BASIC_USER}:${p}`).toString('base64')}` });
    const good = await fetch(`${reg.url}/v2/`, { headers: basic(BASIC_PASS) });
    assert.equal(good.status, 200, 'the htpasswd entry matches the password');
    const bad = await fetch(`${reg.url}/v2/`, { headers: basic('nope') });
    assert.equal(bad.status, 401);
    assert.match(bad.headers.get('www-authenticate') ?? '', /^Basic realm="basic-realm"/);
    img = await makeImage({ layers: [110_000, 1000], tag: 'v1' });
    await pushImage(img, reg.host, 'team/app:v1', { creds: `${BASIC_USER}:${BASIC_PASS}` });
    relay = await startRelay({ target: reg.url, name: 'basic' });
  });
  after(cleanupAll);

  test('without credentials: 403 DENIED, no challenge passed on', async () => {
    const m = await startMirror({ upstreams: [`docker.io=${relay.url}`] });
    relay.reset();
    const r = await http(`${m.url}/v2/team/app/manifests/v1`, { headers: ACCEPT });
    assert.equal(r.status, 403);
    assert.equal(errorCode(r), 'DENIED');
    assertNoChallenge(r, 'manifest');
    assert.ok(relay.stats().log.every((x) => x.authorization === undefined));
  });

  test('with credentials from the config: skopeo pulls; Basic is sent upstream, up front after the first challenge', async () => {
    const m = await startMirror({ upstreams: [`docker.io=${relay.url}`], tagTtl: '1h', credentials: { 'docker.io': { username: BASIC_USER, password: BASIC_PASS } } });
    relay.reset();
    const out = await tmpDir('pull-basic-');
    const r = await pullImage(m.host, 'team/app:v1', out);
    assert.equal(r.code, 0, r.stderr);
    const log = relay.stats().log;
    const expected = `Basic ${Buffer.from(`${BASIC_USER}:${BASIC_PASS}`).toString('base64')}`;
    assert.equal(blobGets(log).filter((x) => x.status === 200).length, 1 + img.layers.length);
    for (const x of log.filter((e) => e.status === 200)) assert.equal(x.authorization, expected);
    assert.equal(log.filter((x) => x.status === 401).length, 1, 'one challenge, then credentials sent up front');
    const logText = await readFile(m.logFile, 'utf8');
    assert.ok(!logText.includes(BASIC_PASS) && !logText.includes(expected.slice(6)), 'credentials never logged');
  });

  test('wrong Basic credentials: 403 DENIED after a single attempt with them', async () => {
    const m = await startMirror({ upstreams: [`docker.io=${relay.url}`], credentials: { 'docker.io': { username: BASIC_USER, password: 'wrong' } } });
    relay.reset();
    const r = await http(`${m.url}/v2/team/app/blobs/${img.layers[0]!.digest}`);
    assert.equal(r.status, 403);
    assert.equal(errorCode(r), 'DENIED');
    assertNoChallenge(r, 'blob');
    assert.ok(relay.stats().log.length <= 2, 'no retry loop');
  });
});
