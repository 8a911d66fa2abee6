// Issue 9 items 9 and 10: the address classifier and policy of the upstream trust module, and the Redis breaker's states.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyAddress, UpstreamTrust, type AddressClass } from '../../src/upstream/trust.js';
import { Breaker, type BreakerState } from '../../src/tags/redis-breaker.js';

test('classifyAddress: IPv4 ranges', () => {
  const cases: Array<[string, AddressClass]> = [
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.1', 'public'],
    ['172.15.255.255', 'public'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'link-local'],
    ['100.64.0.1', 'shared'],
    ['100.127.255.255', 'shared'],
    ['100.128.0.1', 'public'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['224.0.0.1', 'reserved'],
    ['255.255.255.255', 'reserved'],
    ['8.8.8.8', 'public'],
    ['52.216.1.1', 'public'],
  ];
  for (const [a, c] of cases) assert.equal(classifyAddress(a), c, a);
});

test('classifyAddress: IPv6 ranges, mapped IPv4, brackets and zones', () => {
  const cases: Array<[string, AddressClass]> = [
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    ['0:0:0:0:0:0:0:1', 'loopback'],
    ['::', 'unspecified'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['febf::1', 'link-local'],
    ['fec0::1', 'public'],
    ['ff02::1', 'reserved'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:169.254.169.254', 'link-local'],
    ['::ffff:8.8.8.8', 'public'],
    ['64:ff9b::10.0.0.1', 'private'],
    ['2001:4860:4860::8888', 'public'],
    ['not-an-address', 'reserved'],
    ['1.2.3', 'reserved'],
  ];
  for (const [a, c] of cases) assert.equal(classifyAddress(a), c, a);
});

const policy = (over: Partial<{ allowRedirectHosts: string[]; allowPrivateRedirects: boolean }> = {}) => ({ allowRedirectHosts: [], allowPrivateRedirects: false, ...over });

test('UpstreamTrust: a public upstream may send the mirror to public addresses only', async () => {
  const t = new UpstreamTrust(new URL('https://8.8.4.4'), policy());
  assert.equal(await t.refusedAddress(['52.216.1.1', '2001:4860::1']), undefined);
  assert.deepEqual(await t.refusedAddress(['52.216.1.1', '10.1.2.3']), { address: '10.1.2.3', cls: 'private' }, 'one bad address refuses the host');
  assert.deepEqual(await t.refusedAddress(['127.0.0.1']), { address: '127.0.0.1', cls: 'loopback' });
  assert.deepEqual(await t.refusedAddress(['169.254.169.254']), { address: '169.254.169.254', cls: 'link-local' });
  assert.deepEqual(await t.refusedAddress(['::ffff:127.0.0.1']), { address: '::ffff:127.0.0.1', cls: 'loopback' });
});

test('UpstreamTrust: an upstream on loopback may redirect to loopback, not to other private classes; the config can allow all', async () => {
  const t = new UpstreamTrust(new URL('http://127.0.0.1:5000'), policy());
  assert.equal(await t.refusedAddress(['127.0.0.1', '127.0.0.2']), undefined);
  assert.deepEqual(await t.refusedAddress(['169.254.77.1']), { address: '169.254.77.1', cls: 'link-local' });
  assert.deepEqual(await t.refusedAddress(['0.0.0.0']), { address: '0.0.0.0', cls: 'unspecified' }, 'unspecified is never shared');
  const open = new UpstreamTrust(new URL('https://8.8.4.4'), policy({ allowPrivateRedirects: true }));
  assert.equal(await open.refusedAddress(['10.0.0.1', '127.0.0.1', '169.254.169.254']), undefined);
});

test('UpstreamTrust: hosts trusted by name — the upstream host and trust.allowRedirectHosts (host or host:port)', () => {
  const t = new UpstreamTrust(new URL('https://registry.example:5000'), policy({ allowRedirectHosts: ['cdn.internal', 'blobs.internal:9000'] }));
  assert.equal(t.trustsHostName('registry.example', 443), true, 'own host, any port');
  assert.equal(t.trustsHostName('REGISTRY.example', undefined), true);
  assert.equal(t.trustsHostName('cdn.internal', 8080), true);
  assert.equal(t.trustsHostName('blobs.internal', 9000), true);
  assert.equal(t.trustsHostName('blobs.internal', 9001), false);
  assert.equal(t.trustsHostName('evil.example', 443), false);
  assert.equal(t.isUpstreamHost(new URL('http://registry.example/token')), true);
  assert.equal(t.isUpstreamHost(new URL('http://auth.example/token')), false);
  assert.equal(t.refuseScheme(new URL('ftp://x/y')), 'scheme ftp');
  assert.equal(t.refuseScheme(new URL('file:///etc/passwd')), 'scheme file');
  assert.equal(t.refuseScheme(new URL('https://x/y')), undefined);
});

test('UpstreamTrust: an upstream named by host name takes the class of what it resolves to', async () => {
  // The system resolver: `localhost` is loopback on every machine this runs on.
  const t = new UpstreamTrust(new URL('http://localhost:5000'), policy());
  assert.equal(await t.refusedAddress(['127.0.0.1']), undefined);
  assert.deepEqual(await t.refusedAddress(['10.0.0.1']), { address: '10.0.0.1', cls: 'private' });
});

test('Breaker: opens after the threshold of consecutive failures, one probe after the cooldown, closes on success', () => {
  let now = 0;
  const changes: string[] = [];
  const b = new Breaker({ failureThreshold: 3, cooldownMs: 5000 }, (to: BreakerState, from: BreakerState) => changes.push(`${from}->${to}`), () => now);
  assert.equal(b.allow(), true);
  b.failure(new Error('x'));
  b.failure(new Error('x'));
  b.success(); // not consecutive: the count starts again
  b.failure(new Error('x'));
  b.failure(new Error('x'));
  assert.equal(b.state, 'closed');
  b.failure(new Error('x'));
  assert.equal(b.state, 'open');
  assert.equal(b.allow(), false);
  now = 4999;
  assert.equal(b.allow(), false, 'no command during the cooldown');
  now = 5000;
  assert.equal(b.allow(), true, 'the probe');
  assert.equal(b.state, 'half-open');
  assert.equal(b.allow(), false, 'only one probe at a time');
  b.failure(new Error('still down'));
  assert.equal(b.state, 'open');
  now = 9999;
  assert.equal(b.allow(), false, 'a failed probe starts a new cooldown');
  now = 10_000;
  assert.equal(b.allow(), true);
  b.success();
  assert.equal(b.state, 'closed');
  assert.equal(b.allow(), true);
  assert.deepEqual(changes, ['closed->open', 'open->half-open', 'half-open->open', 'open->half-open', 'half-open->closed']);
});
