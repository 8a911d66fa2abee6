import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type IncomingMessage } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { requestHeader } from '../../src/http/raw-headers.js';

test('requestHeader reads what req.headers would say, without building it: any case, repeated lines joined, absent undefined', async () => {
  const seen: Array<Record<string, string | undefined>> = [];
  const server = createServer((req: IncomingMessage, res) => {
    const ours = { accept: requestHeader(req, 'accept'), inm: requestHeader(req, 'if-none-match'), id: requestHeader(req, 'x-request-id'), none: requestHeader(req, 'x-absent') };
    const node = { accept: req.headers.accept, inm: req.headers['if-none-match'], id: req.headers['x-request-id'] as string | undefined, none: req.headers['x-absent'] as string | undefined };
    seen.push(ours, node);
    res.end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const send = (headers: Array<[string, string]>) =>
    new Promise<void>((resolve, reject) => {
      const flat = [['Host', `127.0.0.1:${port}`], ...headers].flat();
      const r = request({ host: '127.0.0.1', port, path: '/', headers: flat }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      r.on('error', reject);
      r.end();
    });
  await send([['Accept', 'application/vnd.oci.image.manifest.v1+json'], ['ACCEPT', '*/*'], ['If-None-Match', '"sha256:ab"'], ['X-Request-Id', 'abc']]);
  await send([['x-request-id', 'one'], ['X-REQUEST-ID', 'two']]);
  server.close();
  for (let i = 0; i < seen.length; i += 2) assert.deepEqual(seen[i], seen[i + 1]);
  assert.equal(seen[0]!.accept, 'application/vnd.oci.image.manifest.v1+json, */*');
  assert.equal(seen[2]!.id, 'one, two');
});
