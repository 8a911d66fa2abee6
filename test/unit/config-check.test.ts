/** Config values of the wrong type, unknown keys and empty credentials stop the start naming the key (issue 9, item 10). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig, ConfigError, readConfigFile, readEnv, type ConfigInput } from '../../src/config/load.js';

function file(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'regmirror-cfg-'));
  const p = join(dir, 'config.yml');
  writeFileSync(p, text);
  return p;
}

/** Asserts that `fn` throws a ConfigError for `key` whose message matches `re`. */
function refuses(fn: () => unknown, key: string, re: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.equal(err.key, key);
    assert.match(err.message, re);
    assert.ok(err.message.startsWith(`${key}: `), err.message);
    return true;
  });
}

const up = 'upstreams: ["docker.io=https://registry-1.docker.io"]\n';

test('a quoted boolean in the file is an error, not true', () => {
  refuses(() => readConfigFile(file('abortOrphanedFills: "false"\n'), {}), 'abortOrphanedFills', /expected a boolean.*got string "false"/);
  refuses(() => readConfigFile(file('rangeFillOnMiss: 1\n'), {}), 'rangeFillOnMiss', /expected a boolean/);
  refuses(() => readConfigFile(file('isolateNamespaces: "yes"\n'), {}), 'isolateNamespaces', /expected a boolean/);
  assert.equal(buildConfig(readConfigFile(file('abortOrphanedFills: false\n'), {})).fill.abortWhenOrphaned, false);
  assert.equal(buildConfig(readConfigFile(file('abortOrphanedFills: true\n'), {})).fill.abortWhenOrphaned, true);
});

test('listen accepts HOST:PORT or a port number; other types name the key', () => {
  assert.deepEqual(buildConfig(readConfigFile(file('listen: 5000\n'), {})).listen, { host: '0.0.0.0', port: 5000 });
  assert.deepEqual(buildConfig({ listen: '127.0.0.1:7000' }).listen, { host: '127.0.0.1', port: 7000 });
  refuses(() => readConfigFile(file('listen: true\n'), {}), 'listen', /expected a HOST:PORT string or a port number, got boolean/);
  refuses(() => readConfigFile(file('listen: [1, 2]\n'), {}), 'listen', /HOST:PORT string or a port number, got a list/);
  refuses(() => readConfigFile(file('listen: 70000\n'), {}), 'listen', /between 0 and 65535/);
  refuses(() => readConfigFile(file('listen: 5000.5\n'), {}), 'listen', /expected an integer/);
  refuses(() => buildConfig({ listen: 'nope' }), 'listen', /invalid listen address/);
});

test('every kind of value is type-checked with the key in the message', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['dataDir: 5\n', 'dataDir', /expected a string, got number 5/],
    ['dataDir: ""\n', 'dataDir', /must not be empty/],
    ['tagTtl: true\n', 'tagTtl', /expected a duration/],
    ['tagTtl: soon\n', 'tagTtl', /invalid duration/],
    ['tagTtl:\n', 'tagTtl', /got null/],
    ['logLevel: 3\n', 'logLevel', /expected a string/],
    ['logLevel: loud\n', 'logLevel', /invalid log level/],
    ['maxConcurrentFills: "64"\n', 'maxConcurrentFills', /expected an integer, got string "64"/],
    ['maxConcurrentFills: 0\n', 'maxConcurrentFills', /between 1 and/],
    ['maxRanges: 2.5\n', 'maxRanges', /expected an integer/],
    ['blobMemory: [1]\n', 'blobMemory', /expected a size/],
    ['blobMemory: lots\n', 'blobMemory', /invalid size/],
    ['upstreams: "https://x.example"\n', 'upstreams', /expected a list of strings/],
    ['upstreams: [5]\n', 'upstreams[0]', /expected a string/],
    ['upstreams: ["ftp://x"]\n', 'upstreams', /scheme must be http or https/],
    ['redis: 6379\n', 'redis', /expected a mapping/],
    ['redis: http://x\n', 'redis.url', /expected redis:\/\/HOST:PORT/],
    ['redis: {url: "redis://127.0.0.1:6379", timeout: fast}\n', 'redis.timeout', /invalid duration/],
    ['redis: {breaker: {failures: 0}}\n', 'redis.breaker.failures', /between 1 and/],
    ['redis: {url: "redis://h:1", tls: true}\n', 'redis', /unknown setting "tls"/],
    ['limits: 5\n', 'limits', /expected a mapping/],
    ['limits: {headersTimeout: "0s"}\n', 'limits.headersTimeout', /greater than 0/],
    ['limits: {keepAliveTimeout: true}\n', 'limits.keepAliveTimeout', /expected a duration.*got boolean/],
    ['limits: {maxConnections: "4096"}\n', 'limits.maxConnections', /expected an integer/],
    ['limits: {transferBufferBudget: 0}\n', 'limits.transferBufferBudget', /greater than 0/],
    ['limits: {keepaliveTimeout: 5s}\n', 'limits', /unknown setting "keepaliveTimeout"/],
    ['trust: {allowRedirectHosts: cdn.example}\n', 'trust.allowRedirectHosts', /expected a list of strings/],
    ['trust: {allowRedirectHosts: ["http://cdn.example/"]}\n', 'trust.allowRedirectHosts[0]', /expected a host or host:port/],
    ['trust: {allowPrivateRedirects: "false"}\n', 'trust.allowPrivateRedirects', /expected a boolean/],
    ['maxRangeAmplification: 0.5\n', 'maxRangeAmplification', /at least 1/],
    ['rangeFillAfterMisses: -1\n', 'rangeFillAfterMisses', /between 0 and/],
    ['negativeTtl: {}\n', 'negativeTtl', /expected a duration/],
  ];
  for (const [yaml, key, re] of cases) {
    const path = file(yaml);
    assert.throws(
      () => buildConfig(readConfigFile(path, {})),
      (err: unknown) => err instanceof ConfigError && err.key === key && re.test(err.message) && err.message.includes(path),
      `${yaml.trim()} → ${key} ${String(re)}`,
    );
  }
});

test('programmatic inputs are checked too (no "value.trim is not a function")', () => {
  refuses(() => buildConfig({ abortOrphanedFills: 'false' } as unknown as ConfigInput), 'abortOrphanedFills', /expected a boolean/);
  refuses(() => buildConfig({ dataDir: 7 } as unknown as ConfigInput), 'dataDir', /expected a string/);
  refuses(() => buildConfig({ redis: 5 } as unknown as ConfigInput), 'redis', /expected a mapping/);
  refuses(() => buildConfig({ bogus: 1 } as unknown as ConfigInput), 'bogus', /unknown setting/);
});

test('empty or half credentials stop the start naming the key', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['  docker.io: {username: "", password: "x"}\n', 'credentials.docker.io.username', /must not be empty/],
    ['  docker.io: {username: bob, password: ""}\n', 'credentials.docker.io.password', /must not be empty/],
    ['  docker.io: {token: ""}\n', 'credentials.docker.io.token', /must not be empty/],
    ['  docker.io: {token: "   "}\n', 'credentials.docker.io.token', /must not be empty/],
    ['  docker.io: {username: bob}\n', 'credentials.docker.io', /password is missing/],
    ['  docker.io: {username: bob, password: 5}\n', 'credentials.docker.io.password', /expected a string/],
    ['  docker.io: {token: t, username: u, password: p}\n', 'credentials.docker.io', /not both/],
    ['  docker.io: {user: bob, password: x}\n', 'credentials.docker.io', /unknown setting "user"/],
    ['  docker.io: {}\n', 'credentials.docker.io', /needs username and password, or token/],
    ['  docker.io: bob\n', 'credentials.docker.io', /expected a mapping/],
  ];
  for (const [entry, key, re] of cases) {
    assert.throws(
      () => buildConfig(readConfigFile(file(`${up}credentials:\n${entry}`), {})),
      (err: unknown) => err instanceof ConfigError && err.key === key && re.test(err.message),
      `${entry.trim()} → ${key}`,
    );
  }
  // An environment variable that expands to nothing is an empty credential as well.
  assert.throws(
    () => readConfigFile(file(`${up}credentials:\n  docker.io: {username: bob, password: "\${P}"}\n`), { P: '' }),
    (err: unknown) => err instanceof ConfigError && err.key === 'credentials.docker.io.password',
  );
  const ok = buildConfig(readConfigFile(file(`${up}credentials:\n  docker.io: {username: bob, password: pw}\n`), {}));
  assert.deepEqual(ok.upstreams[0]?.credentials, { username: 'bob', password: 'pw' });
});

test('environment: integers and booleans are parsed strictly and name the variable', () => {
  refuses(() => readEnv({ REGMIRROR_MAX_CONNECTIONS: 'many' }), 'REGMIRROR_MAX_CONNECTIONS', /expected an integer/);
  refuses(() => readEnv({ REGMIRROR_ISOLATE_NAMESPACES: 'maybe' }), 'REGMIRROR_ISOLATE_NAMESPACES', /expected true or false/);
  refuses(() => buildConfig(readEnv({ REGMIRROR_KEEPALIVE_TIMEOUT: 'forever' })), 'limits.keepAliveTimeout', /invalid duration/);
  const c = buildConfig(
    readEnv({
      REGMIRROR_MAX_CONNECTIONS: '100',
      REGMIRROR_ISOLATE_NAMESPACES: 'true',
      REGMIRROR_KEEPALIVE_TIMEOUT: '5s',
      REGMIRROR_CLIENT_HEADERS_TIMEOUT: '2s',
      REGMIRROR_WRITE_IDLE_TIMEOUT: '3s',
      REGMIRROR_TRANSFER_BUFFER_BUDGET: '32MiB',
      REGMIRROR_SHUTDOWN_TIMEOUT: '10s',
      REGMIRROR_NEGATIVE_TTL: '0',
      REGMIRROR_REDIS_URL: 'redis://127.0.0.1:6379',
      REGMIRROR_REDIS_TIMEOUT: '100ms',
    }),
  );
  assert.deepEqual(c.limits, { headersTimeoutMs: 2000, keepAliveTimeoutMs: 5000, writeIdleTimeoutMs: 3000, maxConnections: 100, transferBufferBytes: 32 * 2 ** 20, shutdownTimeoutMs: 10_000 });
  assert.equal(c.isolateNamespaces, true);
  assert.equal(c.negativeTtlMs, 0);
  assert.equal(c.redisUrl, 'redis://127.0.0.1:6379');
  assert.equal(c.redis.timeoutMs, 100);
});
