/**
 * The upstream client's retry interceptor (src/upstream/retry.ts), against an in-process upstream that
 * drops connections on purpose: the keep-alive race (the upstream closes a reused connection instead of
 * answering) is sent once more and the client never notices; a connection that drops every time is
 * tried exactly twice, then the client gets the registry's UNAVAILABLE; a body that breaks after the
 * answer began is never re-requested (its fill fails, nothing is cached).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { cleanupAll, registerCleanup } from '../harness/proc.js';
import { startMirror, type TestMirror } from '../helpers/mirror.js';
import { errorCode, http, httpDigest } from '../helpers/http.js';

const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';
const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A manifest body of its own (distinct digest) for each case. */
function manifest(label: string): { body: Buffer; digest: string } {
  const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MANIFEST_TYPE, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(Buffer.from(label)), size: label.length }, layers: [] }));
  return { body, digest: sha256(body) };
}

describe('upstream retry of a connection dropped before the answer', () => {
  let server: Server;
  let m: TestMirror;
  /** Requests the upstream received, by path (dropped ones included). */
  const seen = new Map<string, number>();
  /** What the upstream does with a request: answer it, drop its connection without a word, or break its body. */
  const behaviour = new Map<string, 'drop-when-reused-once' | 'drop-always' | 'break-body'>();
  const content = new Map<string, { body: Buffer; type: string }>();
  const served = new WeakMap<Socket, number>();
  const blob = randomBytes(256 * 1024);
  const blobDigest = sha256(blob);

  before(async () => {
    server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0]!;
      seen.set(path, (seen.get(path) ?? 0) + 1);
      const sock = req.socket;
      const answeredOnThisSocket = served.get(sock) ?? 0;
      const how = behaviour.get(path);
      if (how === 'drop-always' || (how === 'drop-when-reused-once' && answeredOnThisSocket > 0)) {
        if (how === 'drop-when-reused-once') behaviour.delete(path);
        sock.destroy();
        return;
      }
      const c = content.get(path);
      served.set(sock, answeredOnThisSocket + 1);
      if (!c) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}');
        return;
      }
      res.writeHead(200, { 'content-type': c.type, 'content-length': String(c.body.length), 'docker-content-digest': sha256(c.body) });
      if (how === 'break-body') {
        res.write(c.body.subarray(0, c.body.length >> 1), () => sock.destroy());
        return;
      }
      res.end(req.method === 'HEAD' ? undefined : c.body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const open = new Set<Socket>();
    server.on('connection', (s: Socket) => {
      open.add(s);
      s.once('close', () => open.delete(s));
    });
    registerCleanup('retry test upstream', () => {
      for (const s of open) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    });
    const { port } = server.address() as AddressInfo;
    m = await startMirror({ upstreams: [`docker.io=http://127.0.0.1:${port}`] });
  });
  after(cleanupAll);

  const path = (ref: string, kind: 'manifests' | 'blobs' = 'manifests') => `/v2/library/app/${kind}/${ref}`;

  test('the keep-alive race: a reused connection closed instead of answered is sent once more, and the client gets its manifest', { timeout: 30_000 }, async () => {
    const first = manifest('first');
    const second = manifest('second');
    content.set(path(first.digest), { body: first.body, type: MANIFEST_TYPE });
    content.set(path(second.digest), { body: second.body, type: MANIFEST_TYPE });
    behaviour.set(path(second.digest), 'drop-when-reused-once');
    // The first answer leaves a keep-alive connection in the mirror's pool; the second request reuses it.
    const a = await http(`${m.url}/v2/app/manifests/${first.digest}`, { headers: { accept: MANIFEST_TYPE } });
    assert.equal(a.status, 200);
    const b = await http(`${m.url}/v2/app/manifests/${second.digest}`, { headers: { accept: MANIFEST_TYPE } });
    assert.equal(b.status, 200, `the client never sees the dropped connection (${b.body.toString()})`);
    assert.ok(b.body.equals(second.body));
    assert.equal(seen.get(path(second.digest)), 2, 'the dropped request and its one retry');
    assert.equal(await m.metric('regmirror_upstream_retries_total', { upstream: 'docker.io' }), 1);
  });

  test('a connection that drops every time is tried twice, no more, and the client gets UNAVAILABLE', { timeout: 30_000 }, async () => {
    const never = manifest('never');
    content.set(path(never.digest), { body: never.body, type: MANIFEST_TYPE });
    behaviour.set(path(never.digest), 'drop-always');
    const before = await m.metric('regmirror_upstream_retries_total', { upstream: 'docker.io' });
    const r = await http(`${m.url}/v2/app/manifests/${never.digest}`, { headers: { accept: MANIFEST_TYPE } });
    assert.equal(r.status, 503);
    assert.equal(errorCode(r), 'UNAVAILABLE');
    assert.equal(seen.get(path(never.digest)), 2, 'one attempt and one retry');
    assert.equal(await m.metric('regmirror_upstream_retries_total', { upstream: 'docker.io' }), before + 1);
  });

  test('a body that breaks after the answer began is not requested again: the fill fails and nothing is cached', { timeout: 30_000 }, async () => {
    content.set(path(blobDigest, 'blobs'), { body: blob, type: 'application/octet-stream' });
    behaviour.set(path(blobDigest, 'blobs'), 'break-body');
    const before = await m.metric('regmirror_upstream_retries_total', { upstream: 'docker.io' });
    const r = await httpDigest(`${m.url}/v2/app/blobs/${blobDigest}`);
    assert.ok(!(r.status === 200 && r.complete), `no clean 200 for a broken body (got ${r.status}, complete=${r.complete})`);
    assert.equal(seen.get(path(blobDigest, 'blobs')), 1, 'one GET: the answer had begun');
    assert.equal(await m.metric('regmirror_upstream_retries_total', { upstream: 'docker.io' }), before);
    const hex = blobDigest.slice('sha256:'.length);
    assert.equal(existsSync(join(m.dataDir, 'blobs', 'sha256', hex.slice(0, 2), hex)), false, 'nothing cached');
    // Once the upstream behaves, the blob is served whole.
    behaviour.delete(path(blobDigest, 'blobs'));
    const again = await httpDigest(`${m.url}/v2/app/blobs/${blobDigest}`);
    assert.equal(again.status, 200);
    assert.equal(again.digest, blobDigest);
  });
});
