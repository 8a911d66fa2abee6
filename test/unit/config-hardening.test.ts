/** The settings the hardening fixes read: defaults (nginx's where it has one), YAML shape, merging (issue 9, items 3–5, 7, 9, 10, 13). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig, readConfigFile, readEnv } from '../../src/config/load.js';

function file(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'regmirror-cfg-'));
  const p = join(dir, 'config.yml');
  writeFileSync(p, text);
  return p;
}

test('defaults: nginx client limits, 5 s negative TTL, shared cache, strict redirects, Redis deadline and breaker', () => {
  const c = buildConfig();
  assert.deepEqual(c.limits, {
    headersTimeoutMs: 60_000, // nginx client_header_timeout
    keepAliveTimeoutMs: 75_000, // nginx keepalive_timeout
    writeIdleTimeoutMs: 60_000, // nginx send_timeout
    maxConnections: 4096,
    transferBufferBytes: 256 * 2 ** 20,
    shutdownTimeoutMs: 30_000,
  });
  assert.equal(c.negativeTtlMs, 5000);
  assert.equal(c.isolateNamespaces, false);
  assert.equal(c.range.fillAfterMisses, 3);
  assert.equal(c.range.maxAmplification, 1);
  assert.deepEqual(c.trust, { allowRedirectHosts: [], allowPrivateRedirects: false });
  assert.deepEqual(c.redis, { timeoutMs: 250, breaker: { failureThreshold: 3, cooldownMs: 5000 } });
  assert.equal(c.upstreamTimeouts.headersMs, 30_000, 'top-level headersTimeout stays the upstream one');
});

test('the YAML shape: limits, trust, redis as a mapping, range policy, negativeTtl, isolateNamespaces', () => {
  const path = file(
    [
      'limits:',
      '  headersTimeout: 2s',
      '  keepAliveTimeout: 1500ms',
      '  writeIdleTimeout: 3',
      '  maxConnections: 50',
      '  transferBufferBudget: 16MiB',
      '  shutdownTimeout: 0s',
      'trust:',
      '  allowRedirectHosts: [CDN.example.com, "10.0.0.5:9000"]',
      '  allowPrivateRedirects: true',
      'redis:',
      '  url: redis://127.0.0.1:6390',
      '  timeout: 100ms',
      '  breaker: {failures: 5, cooldown: 2s}',
      'rangeFillAfterMisses: 0',
      'maxRangeAmplification: 2.5',
      'negativeTtl: 10s',
      'isolateNamespaces: true',
      'headersTimeout: 7s',
      '',
    ].join('\n'),
  );
  const c = buildConfig(readConfigFile(path, {}));
  assert.deepEqual(c.limits, { headersTimeoutMs: 2000, keepAliveTimeoutMs: 1500, writeIdleTimeoutMs: 3000, maxConnections: 50, transferBufferBytes: 16 * 2 ** 20, shutdownTimeoutMs: 0 });
  assert.deepEqual(c.trust, { allowRedirectHosts: ['cdn.example.com', '10.0.0.5:9000'], allowPrivateRedirects: true });
  assert.equal(c.redisUrl, 'redis://127.0.0.1:6390');
  assert.deepEqual(c.redis, { timeoutMs: 100, breaker: { failureThreshold: 5, cooldownMs: 2000 } });
  assert.equal(c.range.fillAfterMisses, 0);
  assert.equal(c.range.maxAmplification, 2.5);
  assert.equal(c.negativeTtlMs, 10_000);
  assert.equal(c.isolateNamespaces, true);
  assert.equal(c.upstreamTimeouts.headersMs, 7000);
});

test('sections merge key by key: the environment overrides one limit of the file, a --redis URL keeps the file timeout', () => {
  const fileIn = readConfigFile(file('limits: {keepAliveTimeout: 9s, maxConnections: 10}\nredis: {url: "redis://file:1", timeout: 80ms}\n'), {});
  const env = readEnv({ REGMIRROR_MAX_CONNECTIONS: '20' });
  const c = buildConfig(fileIn, env, { redis: 'redis://flag:2' });
  assert.equal(c.limits.keepAliveTimeoutMs, 9000);
  assert.equal(c.limits.maxConnections, 20);
  assert.equal(c.limits.headersTimeoutMs, 60_000);
  assert.equal(c.redisUrl, 'redis://flag:2');
  assert.equal(c.redis.timeoutMs, 80);
  assert.equal(buildConfig({ redis: 'redis://a:1' }).redisUrl, 'redis://a:1', 'redis: URL is still accepted');
});

test('a config file may not name the CLI-only `config` key', () => {
  assert.throws(() => readConfigFile(file('config: other.yml\n'), {}), /unknown setting "config"/);
  // …but the environment layer carries it beside the settings, and buildConfig accepts that layer.
  assert.doesNotThrow(() => buildConfig(readEnv({ REGMIRROR_CONFIG: '/etc/regmirror.yml' })));
});
