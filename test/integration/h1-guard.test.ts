/**
 * The HTTP/1 guard on our undici connectors (src/upstream/h1-guard.ts), against a raw TCP server that
 * answers `Connection: close` and ends the connection right after the body: the client holds the body
 * unread for a while, so its last bytes arrive while undici's parser is paused and the socket ends then
 * (nodejs/undici#5360). Without the guard that is an uncaught AssertionError from a socket handler: the
 * control case shows it still is one with a plain undici Agent, in a child process (so the day undici
 * fixes it this test says the guard can go). With the guard a complete body reads whole and right, and a
 * body cut short fails its request, and the process lives on.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { createDispatcher } from '../../src/upstream/client.js';
import { delay } from '../harness/proc.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
// One socket read's worth: the parser pauses on exactly the last bytes, with nothing left for it to read.
const BODY_SIZE = 64 * 1024;
/** The body, computed the same way here and in the server's process. */
const bodyOf = (size: number): Buffer => Buffer.from(Array.from({ length: size }, (_, i) => (i * 131 + (i >> 8) * 7) & 255));
const BODY = bodyOf(BODY_SIZE);
const sha = (b: Buffer | Uint8Array): string => createHash('sha256').update(b).digest('hex');

/**
 * A raw TCP server in a child process (in this process the FIN tends to arrive in a later read than the
 * body, which does not trigger the bug): `/whole` gets BODY, `/cut` gets BODY under twice its length,
 * each in one write, then the connection ends. Resolves with its port.
 */
function startServer(): Promise<{ port: number; proc: ChildProcess }> {
  const script = `
    const net = require('node:net');
    const body = (${bodyOf.toString()})(${BODY_SIZE});
    const server = net.createServer((sock) => {
      sock.on('error', () => {});
      sock.once('data', (d) => {
        const cut = d.toString('latin1').startsWith('GET /cut');
        const head = 'HTTP/1.1 200 OK\\r\\nContent-Length: ' + (cut ? 2 * body.length : body.length) + '\\r\\nContent-Type: application/octet-stream\\r\\nConnection: close\\r\\n\\r\\n';
        sock.end(Buffer.concat([Buffer.from(head, 'latin1'), body]));
      });
    });
    server.listen(0, '127.0.0.1', () => console.log(server.address().port));`;
  const proc = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    proc.stdout!.once('data', (d: Buffer) => resolve({ port: Number(d.toString().trim()), proc }));
    proc.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
}

describe('undici HTTP/1 guard: a Connection: close response that ends while its body is paused', () => {
  let server: ChildProcess;
  let url: string;
  const dispatcher = createDispatcher({ connectMs: 2000, headersMs: 5000, bodyIdleMs: 5000, revalidateMs: 5000 });

  before(async () => {
    const s = await startServer();
    server = s.proc;
    url = `http://127.0.0.1:${s.port}`;
  });
  after(async () => {
    await dispatcher.close();
    server.kill();
  });

  for (const path of ['/whole', '/cut']) {
  test(`control: with a plain undici Agent, ${path} crashes the process (undici 7 still has the bug)`, async () => {
    const script = `
      import { Agent, request } from 'undici';
      const res = await request(${JSON.stringify(url + path)}, { dispatcher: new Agent() });
      await new Promise((r) => setTimeout(r, 500));
      try { for await (const _ of res.body); } catch {}
      console.log('survived');`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, timeout: 20_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const status = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    const r = { status, stdout, stderr };
    assert.notEqual(r.status, 0, `the unguarded client survived (undici fixed #5360? then the guard can go): ${r.stdout}`);
    assert.match(r.stderr, /assert\(!this\.paused\)/, r.stderr);
  });
  }

  test('guarded: the whole body arrives, byte for byte, after being held unread past the end of the connection', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await request(`${url}/whole`, { dispatcher });
      assert.equal(res.statusCode, 200);
      await delay(300);
      const chunks: Buffer[] = [];
      for await (const c of res.body) chunks.push(c as Buffer);
      const got = Buffer.concat(chunks);
      assert.equal(got.length, BODY.length);
      assert.equal(sha(got), sha(BODY));
    }
  });

  test('guarded: a body cut short by the end of the connection fails its request instead of ending cleanly', async () => {
    const res = await request(`${url}/cut`, { dispatcher });
    assert.equal(res.statusCode, 200);
    await delay(300);
    let bytes = 0;
    await assert.rejects(async () => {
      for await (const c of res.body) bytes += (c as Buffer).length;
    });
    assert.ok(bytes <= BODY.length, `${bytes} bytes read of ${2 * BODY.length}`);
  });
});
