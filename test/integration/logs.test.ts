/**
 * The traps of issue 12, explained in the log (item 6): the start-up line says which namespaces are
 * served by which upstream and warns when none is docker.io (containerd's `?ns=docker.io` would get
 * 404 and quietly fall back to Docker Hub); request lines for errors carry the registry error code,
 * a reason a person can act on, and the real byte count of the error body.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { cleanupAll, freePort } from '../harness/proc.js';
import { startMirror, type TestMirror } from '../helpers/mirror.js';
import { http } from '../helpers/http.js';

interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

async function lines(m: TestMirror): Promise<LogLine[]> {
  return (await readFile(m.logFile, 'utf8'))
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as LogLine);
}

/** Waits for the request line of `path` (written when the response closes). */
async function requestLine(m: TestMirror, method: string, path: string): Promise<LogLine> {
  for (let i = 0; i < 200; i++) {
    const found = (await lines(m)).find((l) => l.msg === 'request' && l.method === method && l.path === path);
    if (found) return found;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no request line for ${method} ${path}`);
}

describe('start-up and error log lines', () => {
  after(cleanupAll);

  test('start-up: the namespaces served and their upstreams; no warning when docker.io is one', async () => {
    const a = `http://127.0.0.1:${await freePort()}`;
    const b = `http://127.0.0.1:${await freePort()}`;
    const m = await startMirror({ upstreams: [`docker.io=${a}`, `ghcr.io=${b}`] });
    const start = (await lines(m)).find((l) => l.msg.startsWith('regmirror listening'));
    assert.ok(start);
    assert.equal(start.msg, `regmirror listening; serving docker.io by ${a} (default), ghcr.io by ${b}`);
    assert.ok(!(await lines(m)).some((l) => l.level === 40), 'no warning');
  });

  test('start-up: a bare URL that is not Docker Hub is named after its host, and the log warns', async () => {
    const port = await freePort();
    const m = await startMirror({ upstreams: [`http://127.0.0.1:${port}`] });
    const start = (await lines(m)).find((l) => l.msg.startsWith('regmirror listening'));
    assert.match(start?.msg ?? '', new RegExp(`serving 127\\.0\\.0\\.1:${port} by http://127\\.0\\.0\\.1:${port} \\(default\\)`));
    const warn = (await lines(m)).find((l) => l.level === 40);
    assert.ok(warn, 'a warning');
    assert.match(warn.msg, /no upstream is named docker\.io/);
    assert.match(warn.msg, /--upstream docker\.io=URL/, 'it says how to name a Docker Hub stand-in');
    assert.deepEqual(warn.namespaces, [`127.0.0.1:${port}`]);
  });

  test('error lines: code, reason and the bytes of the error body', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const m = await startMirror({ upstreams: [`docker.io=${dead}`] });

    const unknown = await http(`${m.url}/v2/quay.io/org/app/manifests/v1`);
    assert.equal(unknown.status, 404);
    const l1 = await requestLine(m, 'GET', '/v2/quay.io/org/app/manifests/v1');
    assert.equal(l1.status, 404);
    assert.equal(l1.error, 'NAME_UNKNOWN');
    assert.match(String(l1.reason), /registry quay\.io is not configured on this mirror \(registry=quay\.io\)/);
    assert.equal(l1.bytes, unknown.body.length, 'the error body’s real size');
    assert.ok(unknown.body.length > 50);

    const down = await http(`${m.url}/v2/library/app/manifests/v1`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(down.status, 503);
    const l2 = await requestLine(m, 'GET', '/v2/library/app/manifests/v1');
    assert.equal(l2.error, 'UNAVAILABLE');
    assert.match(String(l2.reason), /the upstream registry is unreachable \(upstream=docker\.io, error=ECONNREFUSED\)/);
    assert.equal(l2.bytes, down.body.length);

    const head = await http(`${m.url}/v2/quay.io/org/app/manifests/v2`, { method: 'HEAD' });
    assert.equal(head.status, 404);
    const l3 = await requestLine(m, 'HEAD', '/v2/quay.io/org/app/manifests/v2');
    assert.equal(l3.error, 'NAME_UNKNOWN');
    assert.equal(l3.bytes, 0, 'HEAD errors have no body');

    const ok = await http(`${m.url}/v2/`);
    assert.equal(ok.status, 200);
    const l4 = await requestLine(m, 'GET', '/v2/');
    assert.equal(l4.error, undefined, 'no error fields on a success');
    assert.equal(l4.bytes, 2);
  });
});
