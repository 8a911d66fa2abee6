// Issue 13 item 3: the status page's recorders — recent errors (bounded, no query strings) and upstream
// health (good and bad answers, rate-limit headroom, a client's abort is not the upstream's fault).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RecentErrors, scrubReason } from '../../src/status/recent-errors.js';
import { UpstreamHealth } from '../../src/status/upstream-health.js';
import { endpointOf } from '../../src/status/collector.js';

test('recent errors keep the newest N, newest first, and never a query string', () => {
  const r = new RecentErrors(3);
  for (let i = 0; i < 5; i++) r.add({ status: 404, code: 'BLOB_UNKNOWN', reason: 'not-found', method: 'GET', url: `/v2/a/blobs/${i}?ns=docker.io&token=secret` }, 1000 + i);
  const list = r.list();
  assert.equal(r.count, 5);
  assert.deepEqual(list.map((e) => e.path), ['/v2/a/blobs/4', '/v2/a/blobs/3', '/v2/a/blobs/2']);
  assert.ok(list.every((e) => !e.path.includes('?') && !e.path.includes('secret')));
});

test('a reason shown on the page has no URL user info, query or credentials', () => {
  assert.equal(
    scrubReason('redirect to https://u:p@cdn.example.com/blob?X-Amz-Signature=abc, then Bearer eyJhbGci.x-y failed'),
    'redirect to https://cdn.example.com/blob, then Bearer … failed',
  );
  assert.equal(scrubReason('x'.repeat(400)).length, 300);
});

test('upstream health: success, error reasons, rate-limit headroom; a 401 handshake and an abort change nothing', () => {
  let now = 1_000;
  const h = new UpstreamHealth(() => now);
  assert.equal(h.get('docker.io').lastSuccessAt, null);
  h.answered('docker.io', 'manifest', 200, { 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '76;w=21600' });
  let e = h.get('docker.io');
  assert.equal(e.lastSuccessMs, 1_000);
  assert.deepEqual({ ...e.rateLimit, at: undefined }, { limit: 100, remaining: 76, windowSeconds: 21600, at: undefined });
  now = 2_000;
  h.answered('docker.io', 'blob', 503, {});
  e = h.get('docker.io');
  assert.equal(e.lastError?.reason, '503');
  assert.equal(e.lastErrorMs, 2_000);
  now = 3_000;
  h.answered('docker.io', 'manifest', 401, {});
  h.failed('docker.io', 'blob', Object.assign(new Error('gone'), { name: 'AbortError' }));
  e = h.get('docker.io');
  assert.equal(e.lastSuccessMs, 1_000, 'a 401 is not a success');
  assert.equal(e.lastErrorMs, 2_000, 'an abort is not an upstream error');
  h.failed('docker.io', 'blob', Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }));
  assert.equal(h.get('docker.io').lastError?.reason, 'ECONNREFUSED');
  h.answered('docker.io', 'manifest', 429, {});
  assert.equal(h.get('docker.io').lastError?.reason, '429 rate-limited');
  h.answered('docker.io', 'manifest', 404, {});
  assert.equal(h.get('docker.io').lastSuccessMs, 3_000, 'a 404 is an upstream that works');
});

test('an upstream endpoint is shown without user info, path or query', () => {
  assert.equal(endpointOf('https://user:pw@registry.example.com:8443/v2/?x=1'), 'https://registry.example.com:8443');
});
