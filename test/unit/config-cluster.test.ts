/** Cluster settings (issue 11): advertise URL, token, and the Redis they need. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildConfig, ConfigError, readEnv } from '../../src/config/load.js';
import { parseCommand } from '../../src/cli/args.js';

test('cluster is off by default', () => {
  assert.deepEqual(buildConfig({}).cluster, {});
});

test('--advertise with --redis turns cluster mode on; the URL is normalized to its origin', () => {
  const cmd = parseCommand(['serve', '--redis', 'redis://127.0.0.1:6379', '--advertise', 'http://10.0.0.5:5000/']);
  assert.equal(cmd.kind, 'serve');
  if (cmd.kind !== 'serve') return;
  assert.equal(buildConfig(cmd.input).cluster.advertise, 'http://10.0.0.5:5000');
});

test('env REGMIRROR_ADVERTISE and REGMIRROR_CLUSTER_TOKEN', () => {
  const c = buildConfig(readEnv({ REGMIRROR_REDIS_URL: 'redis://r:6379', REGMIRROR_ADVERTISE: 'http://m1:5000', REGMIRROR_CLUSTER_TOKEN: 's3cret' }));
  assert.deepEqual(c.cluster, { advertise: 'http://m1:5000', token: 's3cret' });
});

test('advertise without redis, a token without advertise, and a URL with a path are refused naming the key', () => {
  const refuses = (fn: () => unknown, key: string, re: RegExp) =>
    assert.throws(fn, (e: unknown) => e instanceof ConfigError && e.key === key && re.test(e.message));
  refuses(() => buildConfig({ cluster: { advertise: 'http://m1:5000' } }), 'cluster.advertise', /redis/);
  refuses(() => buildConfig({ redis: 'redis://r:1', cluster: { token: 'x' } }), 'cluster.token', /advertise/);
  refuses(() => buildConfig({ redis: 'redis://r:1', cluster: { advertise: 'http://m1:5000/v2' } }), 'cluster.advertise', /no path/);
  refuses(() => buildConfig({ redis: 'redis://r:1', cluster: { advertise: 'ftp://m1' } }), 'cluster.advertise', /http/);
  refuses(() => buildConfig({ redis: 'redis://r:1', cluster: { advertise: 'http://m1:5000', token: '' } }), 'cluster.token', /empty/);
});
