/**
 * Two tiers (issue 11, item 6), the pure and in-process parts:
 * - the Age arithmetic: a tag answer through a mirror upstream counts as confirmed at (request time − Age),
 *   a stale one (Warning) never as fresh, invalid Age headers are ignored;
 * - `mirrorUpstreams` / `--mirror-upstream` / `REGMIRROR_MIRROR_UPSTREAMS` mark upstreams, `*` marks all,
 *   an unknown namespace fails at start;
 * - an upstream marked as a mirror is sent `?ns=<namespace>` on every request (query kept as built),
 *   a plain one never; a mirror that answers for another namespace is refused.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ageSeconds, confirmedAt, parseAge } from '../../src/tags/age.js';
import { buildConfig, readEnv } from '../../src/config/load.js';
import { parseCommand } from '../../src/cli/args.js';
import { createDispatcher, Upstream } from '../../src/upstream/client.js';
import { Metrics } from '../../src/metrics.js';
import { createLogger } from '../../src/log.js';
import { MirrorError } from '../../src/oci/errors.js';

test('Age: whole seconds since the confirmation, never negative', () => {
  assert.equal(ageSeconds(10_000, 10_000), 0);
  assert.equal(ageSeconds(10_000, 10_999), 0);
  assert.equal(ageSeconds(10_000, 11_000), 1);
  assert.equal(ageSeconds(10_000, 72_500), 62);
  assert.equal(ageSeconds(20_000, 10_000), 0, 'a clock step back is age 0, not negative');
});

test('Age header parsing: delta-seconds only, first of several, clamped', () => {
  assert.equal(parseAge('0'), 0);
  assert.equal(parseAge(' 42 '), 42);
  assert.equal(parseAge(['7', '9']), 7);
  assert.equal(parseAge(undefined), undefined);
  for (const bad of ['', '-1', '1.5', '1e3', 'abc', '12 34']) assert.equal(parseAge(bad), undefined, bad);
  assert.equal(parseAge('999999999999'), 2 ** 31);
});

test('a mirror upstream\'s answer is confirmed at request time minus its Age', () => {
  const requestedAt = 1_000_000;
  // Age is whole seconds rounded down: `Age: n` is taken as the older end, n + 0.999 s.
  assert.equal(confirmedAt({ requestedAt, age: '0', stale: false, ttlMs: 60_000 }), requestedAt - 999);
  assert.equal(confirmedAt({ requestedAt, age: '45', stale: false, ttlMs: 60_000 }), requestedAt - 45_999);
  assert.equal(confirmedAt({ requestedAt, age: '0', stale: false, ttlMs: 400 }), requestedAt - 200, 'a short TTL: half of it at most');
  assert.equal(confirmedAt({ requestedAt, age: undefined, stale: false, ttlMs: 60_000 }), requestedAt, 'no Age: as fresh as the request');
  assert.equal(confirmedAt({ requestedAt, age: 'junk', stale: false, ttlMs: 60_000 }), requestedAt);
  // The bound: the node's entry expires when the regional's confirmation is one TTL old, not one TTL after the node asked.
  const ttlMs = 60_000;
  const at = confirmedAt({ requestedAt, age: '59', stale: false, ttlMs });
  assert.equal(at + ttlMs - requestedAt, 1, 'an answer 59.x s old is trusted until 60 s after the older end');
  // Round trip: the regional's Age of a confirmation, read back by the node, is never later than the truth.
  for (const elapsed of [0, 1, 999, 1000, 1001, 59_999, 60_000, 123_456]) {
    const truth = requestedAt - elapsed;
    const back = confirmedAt({ requestedAt, age: String(ageSeconds(truth, requestedAt)), stale: false, ttlMs });
    assert.ok(back <= truth && truth - back < 1000, `elapsed ${elapsed}: read back ${truth - back} ms early`);
  }
});

test('a stale answer (Warning) is never recorded as fresh, whatever its Age', () => {
  const requestedAt = 1_000_000;
  const ttlMs = 60_000;
  assert.equal(confirmedAt({ requestedAt, age: '0', stale: true, ttlMs }), requestedAt - ttlMs);
  assert.equal(confirmedAt({ requestedAt, age: undefined, stale: true, ttlMs }), requestedAt - ttlMs);
  assert.equal(confirmedAt({ requestedAt, age: '3600', stale: true, ttlMs }), requestedAt - 3_600_999, 'a truthful old Age is kept');
});

test('mirrorUpstreams marks upstreams from the file, the environment and the flag; * marks all', () => {
  const ups = ['docker.io=http://regional:5000', 'ghcr.io=http://regional:5000', 'quay.io=https://quay.io'];
  const c = buildConfig({ upstreams: ups, mirrorUpstreams: ['docker.io', 'GHCR.io'] });
  assert.deepEqual(c.upstreams.map((u) => [u.namespace, u.mirror === true]), [['docker.io', true], ['ghcr.io', true], ['quay.io', false]]);
  const all = buildConfig({ upstreams: ups, mirrorUpstreams: ['*'] });
  assert.ok(all.upstreams.every((u) => u.mirror === true));
  const env = readEnv({ REGMIRROR_UPSTREAM: ups.join(','), REGMIRROR_MIRROR_UPSTREAMS: 'docker.io, quay.io' });
  assert.deepEqual(env.mirrorUpstreams, ['docker.io', 'quay.io']);
  const cmd = parseCommand(['serve', '--upstream', ups[0]!, '--upstream', ups[1]!, '--mirror-upstream', 'ghcr.io']);
  assert.equal(cmd.kind, 'serve');
  if (cmd.kind !== 'serve') return;
  const fromFlag = buildConfig({ mirrorUpstreams: ['docker.io'] }, cmd.input);
  assert.deepEqual(fromFlag.upstreams.map((u) => [u.namespace, u.mirror === true]), [['docker.io', false], ['ghcr.io', true]], 'the flag replaces the file\'s list');
  assert.equal(buildConfig({ upstreams: ups }).upstreams.some((u) => u.mirror), false, 'default: no upstream is a mirror');
  assert.throws(() => buildConfig({ upstreams: ups, mirrorUpstreams: ['gcr.io'] }), /mirrorUpstreams\[0\].*gcr\.io is not a configured upstream/);
});

test('?ns= goes to a mirror upstream on every request, never to a plain one; a namespace mismatch is refused', async () => {
  const seen: string[] = [];
  let echo: string | undefined;
  const server = createServer((req: IncomingMessage, res) => {
    seen.push(req.url ?? '');
    if (echo) res.setHeader('oci-namespace', echo);
    res.end('{}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  after(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const timeouts = buildConfig().upstreamTimeouts;
  const deps = { dispatcher: createDispatcher(timeouts), timeouts, trust: buildConfig().trust, metrics: new Metrics({ defaultMetrics: false }), log: createLogger('silent') };
  const mirror = new Upstream({ namespace: 'ghcr.io', url, libraryPrefix: false, mirror: true }, deps);
  const plain = new Upstream({ namespace: 'quay.io', url, libraryPrefix: false }, deps);
  const ask = async (u: Upstream, path: string) => (await u.request({ kind: 'manifest', method: 'GET', repository: 'org/app', path })).body.dump();
  await ask(mirror, '/v2/org/app/manifests/v1');
  await ask(mirror, '/v2/org/app/tags/list?n=10&last=a');
  await ask(mirror, `/v2/org/app/referrers/sha256:${'0'.repeat(64)}?artifactType=application%2Fvnd.x%2Bjson`);
  await ask(plain, '/v2/org/app/manifests/v1');
  assert.deepEqual(seen, [
    '/v2/org/app/manifests/v1?ns=ghcr.io',
    '/v2/org/app/tags/list?n=10&last=a&ns=ghcr.io',
    `/v2/org/app/referrers/sha256:${'0'.repeat(64)}?artifactType=application%2Fvnd.x%2Bjson&ns=ghcr.io`,
    '/v2/org/app/manifests/v1',
  ]);
  echo = 'ghcr.io';
  await ask(mirror, '/v2/org/app/manifests/v1');
  echo = 'docker.io';
  await assert.rejects(ask(mirror, '/v2/org/app/manifests/v1'), (err: unknown) => err instanceof MirrorError && err.reason === 'namespace-mismatch');
  await ask(plain, '/v2/org/app/manifests/v1'); // a plain upstream's header changes nothing (a hint in the log)
  await deps.dispatcher.close();
});
