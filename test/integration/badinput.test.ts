/**
 * Bad input gets the registry error with the right status and touches neither the disk nor the upstream;
 * the process keeps serving.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { connect } from 'node:net';
import { cleanupAll, requireCommands } from '../harness/proc.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { makeImage, pushImage, type GeneratedImage } from '../harness/oci.js';
import { startRelay, type Relay } from '../harness/relay.js';
import { startMirror, type TestMirror } from '../helpers/mirror.js';
import { errorCode, http } from '../helpers/http.js';

const HEX = 'ab'.repeat(32);

/** Sends raw bytes and returns the raw answer (for paths an HTTP client would normalise). */
function raw(host: string, port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, host, () => s.end(text));
    let out = '';
    s.on('data', (c) => (out += c.toString('latin1')));
    s.on('end', () => resolve(out));
    s.on('error', reject);
  });
}

describe('bad input', () => {
  let upstream: Registry;
  let relay: Relay;
  let m: TestMirror;
  let img: GeneratedImage;
  let port: number;

  before(async () => {
    requireCommands('docker-registry', 'skopeo');
    upstream = await startRegistry();
    relay = await startRelay({ target: upstream.url });
    img = await makeImage({ layers: [1000] });
    await pushImage(img, upstream.host, 'library/ok:1');
    m = await startMirror({ upstreams: [`docker.io=${relay.url}`] });
    port = Number(new URL(m.url).port);
  });
  after(cleanupAll);

  const cases: Array<[string, string, number, string | undefined]> = [
    ['dot-dot name', '/v2/../../etc/manifests/latest', 400, 'NAME_INVALID'],
    ['encoded dot-dot', '/v2/%2e%2e/%2e%2e/manifests/latest', 400, 'NAME_INVALID'],
    ['encoded slash', '/v2/a%2f..%2fb/blobs/sha256:' + HEX, 400, 'NAME_INVALID'],
    ['uppercase name', '/v2/Library/App/manifests/latest', 400, 'NAME_INVALID'],
    ['over-long name', `/v2/${'a'.repeat(256)}/manifests/latest`, 400, 'NAME_INVALID'],
    ['over-long once library/ is added', `/v2/${'a'.repeat(250)}/referrers/sha256:${HEX}`, 400, 'NAME_INVALID'],
    ['empty component', '/v2/a//b/manifests/latest', 400, 'NAME_INVALID'],
    ['uppercase hex digest', `/v2/ok/blobs/sha256:${HEX.toUpperCase()}`, 400, 'DIGEST_INVALID'],
    ['short digest', '/v2/ok/blobs/sha256:abc', 400, 'DIGEST_INVALID'],
    ['unknown algorithm', `/v2/ok/blobs/md5:${'a'.repeat(32)}`, 400, 'DIGEST_INVALID'],
    ['digest path traversal', '/v2/ok/blobs/sha256:..%2f..%2f..%2fetc%2fpasswd', 400, 'DIGEST_INVALID'],
    ['blob by tag', '/v2/ok/blobs/latest', 400, 'DIGEST_INVALID'],
    ['bad tag', '/v2/ok/manifests/.hidden', 404, 'MANIFEST_UNKNOWN'],
    ['over-long tag', `/v2/ok/manifests/${'t'.repeat(129)}`, 404, 'MANIFEST_UNKNOWN'],
    ['conformance invalid reference', '/v2/ok/manifests/.INVALID_MANIFEST_NAME', 404, 'MANIFEST_UNKNOWN'],
    ['bad manifest digest', `/v2/ok/manifests/sha256:${'z'.repeat(64)}`, 400, 'DIGEST_INVALID'],
    ['unconfigured ns', '/v2/ok/manifests/latest?ns=evil.example', 404, 'NAME_UNKNOWN'],
    ['unconfigured registry prefix', '/v2/ghcr.io/org/app/manifests/latest', 404, 'NAME_UNKNOWN'],
    ['outside the API', '/etc/passwd', 404, undefined],
    ['unknown endpoint', '/v2/ok/whatever', 404, undefined],
    ['bad n', '/v2/ok/tags/list?n=-1', 400, undefined],
    ['bad last', '/v2/ok/tags/list?last=.x', 400, undefined],
    ['catalog', '/v2/_catalog', 405, 'UNSUPPORTED'],
  ];

  for (const [label, path, status, code] of cases) {
    test(`${label}: ${status} ${code ?? 'without a body'}, no upstream request, nothing on disk`, async () => {
      relay.reset();
      const answer = await raw('127.0.0.1', port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      const [head, body] = answer.split('\r\n\r\n');
      assert.match(head ?? '', new RegExp(`^HTTP/1\\.1 ${status} `), answer.slice(0, 300));
      if (code === undefined) {
        // No spec code fits: a status and no registry body (distribution-spec: a 4XX MAY have any body, a JSON one MUST use the table).
        assert.doesNotMatch(head ?? '', /content-type/i);
        assert.equal(body, '');
      } else {
        assert.match(head ?? '', /content-type: application\/json/i);
        const parsed = JSON.parse(body ?? '') as { errors: Array<{ code: string; message: string }> };
        assert.equal(parsed.errors[0]?.code, code);
        assert.ok(parsed.errors[0]?.message);
      }
      const headAnswer = await raw('127.0.0.1', port, `HEAD ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      assert.match(headAnswer, new RegExp(`^HTTP/1\\.1 ${status} `));
      assert.equal(headAnswer.split('\r\n\r\n')[1], '', 'HEAD errors carry no body');
      assert.equal(relay.stats().requests, 0, 'the upstream was not asked');
      const entries = await readdir(m.dataDir);
      assert.deepEqual(entries.filter((e) => e !== 'tmp' && e !== 'regmirror.lock' && e !== 'index'), [], 'nothing written to the data dir (beyond what start-up makes)');
    });
  }

  test('a header block over the limit gets 431, a 1000-range header is admitted', async () => {
    const huge = await raw('127.0.0.1', port, `GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(300 * 1024)}\r\nConnection: close\r\n\r\n`);
    assert.match(huge, /^HTTP\/1\.1 431 /);
    const ranges = Array.from({ length: 1000 }, (_, i) => `${i * 20}-${i * 20 + 9}`).join(',');
    const ok = await http(`${m.url}/v2/`, { headers: { range: `bytes=${ranges}` } });
    assert.equal(ok.status, 200);
  });

  test('malformed HTTP gets 400 and the mirror keeps serving', async () => {
    const bad = await raw('127.0.0.1', port, 'BLAH\r\n\r\n');
    assert.match(bad, /^HTTP\/1\.1 400 /);
    const ok = await http(`${m.url}/v2/ok/manifests/1`);
    assert.equal(ok.status, 200);
    assert.equal(errorCode(ok), undefined);
    assert.ok(ok.body.equals(img.manifest));
  });
});
