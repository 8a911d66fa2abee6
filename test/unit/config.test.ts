import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig, parseListen, readConfigFile, readEnv } from '../../src/config/load.js';
import { parseCommand } from '../../src/cli/args.js';
import { parseDuration } from '../../src/config/duration.js';
import { parseSize } from '../../src/config/size.js';
import { resolveUpstreams } from '../../src/config/upstream-spec.js';

function file(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'regmirror-cfg-'));
  const p = join(dir, 'config.yml');
  writeFileSync(p, text);
  return p;
}

test('embedded defaults: Docker Hub on 0.0.0.0:5000, ./data, 60 s tag TTL, memory metadata', () => {
  const c = buildConfig();
  assert.deepEqual(c.listen, { host: '0.0.0.0', port: 5000 });
  assert.equal(c.dataDir, './data');
  assert.equal(c.tagTtlMs, 60_000);
  assert.equal(c.redisUrl, undefined);
  assert.deepEqual(c.upstreams.map((u) => [u.namespace, u.url, u.libraryPrefix]), [['docker.io', 'https://registry-1.docker.io', true]]);
  assert.equal(c.defaultNamespace, 'docker.io');
});

test('precedence: flags over environment over file over defaults', () => {
  const path = file('listen: 127.0.0.1:7000\ntagTtl: 5m\ndataDir: /file\nlogLevel: warn\nupstreams: ["https://file.example"]\n');
  const fileIn = readConfigFile(path, {});
  const env = readEnv({ REGMIRROR_TAG_TTL: '30s', REGMIRROR_DATA_DIR: '/env', REGMIRROR_UPSTREAM: 'https://env.example, ghcr.io=https://ghcr.io' });
  const cmd = parseCommand(['serve', '--data-dir', '/flag', '--upstream', 'https://flag.example']);
  assert.equal(cmd.kind, 'serve');
  const flags = cmd.kind === 'serve' ? cmd.input : {};
  const all = buildConfig(fileIn, env, flags);
  assert.equal(all.dataDir, '/flag');
  assert.equal(all.tagTtlMs, 30_000);
  assert.deepEqual(all.listen, { host: '127.0.0.1', port: 7000 });
  assert.equal(all.logLevel, 'warn');
  assert.deepEqual(all.upstreams.map((u) => u.url), ['https://flag.example']);
  const noFlags = buildConfig(fileIn, env);
  assert.deepEqual(noFlags.upstreams.map((u) => u.namespace), ['env.example', 'ghcr.io']);
  assert.equal(noFlags.defaultNamespace, 'env.example');
  assert.equal(buildConfig(fileIn).tagTtlMs, 300_000);
});

test('credentials come from the file with ${ENV} references and attach by namespace', () => {
  const path = file('upstreams: ["https://registry-1.docker.io", "ghcr.io=https://ghcr.io"]\ncredentials:\n  docker.io: {username: bob, password: "${HUB_PASS}"}\n  ghcr.io: {token: "${GH_TOKEN}"}\n');
  const c = buildConfig(readConfigFile(path, { HUB_PASS: 's3cret', GH_TOKEN: 'ghp_x' }));
  assert.deepEqual(c.upstreams[0]?.credentials, { username: 'bob', password: 's3cret' });
  assert.deepEqual(c.upstreams[1]?.credentials, { token: 'ghp_x' });
  assert.throws(() => readConfigFile(path, {}), /HUB_PASS is not set/);
  const stray = file('credentials:\n  quay.io: {token: x}\n');
  assert.throws(() => buildConfig(readConfigFile(stray, {})), /quay\.io, which is not a configured upstream/);
});

test('bad settings are refused with a readable error', () => {
  assert.throws(() => readConfigFile(file('tagTTL: 5s\n'), {}), /unknown setting "tagTTL"/);
  assert.throws(() => buildConfig({ tagTtl: 'soon' }), /invalid duration/);
  assert.throws(() => buildConfig({ logLevel: 'loud' }), /invalid log level/);
  assert.throws(() => buildConfig({ upstreams: ['ftp://x'] }), /scheme must be http or https/);
  assert.throws(() => buildConfig({ upstreams: ['https://u:p@x.example'] }), /credentials in the config file/);
  assert.throws(() => buildConfig({ upstreams: ['https://a.example', 'https://b.example'] }), /more than one default/);
  assert.throws(() => buildConfig({ upstreams: ['x.io=https://a.example', 'x.io=https://b.example'] }), /configured twice/);
  assert.throws(() => buildConfig({ listen: 'nope' }), /invalid listen address/);
  assert.throws(() => parseCommand(['serve', '--bogus']), /Unknown option/);
  assert.throws(() => parseCommand(['fly']), /unknown command/);
});

test('upstream specs, listen addresses, durations and sizes', () => {
  const r = resolveUpstreams(['docker.io=http://127.0.0.1:5001', 'ghcr.io=https://ghcr.io/']);
  assert.equal(r.defaultNamespace, 'docker.io', 'the first is the default when none is bare');
  assert.equal(r.upstreams[0]?.libraryPrefix, true);
  assert.equal(r.upstreams[1]?.url, 'https://ghcr.io');
  assert.equal(resolveUpstreams(['https://registry-1.docker.io']).upstreams[0]?.namespace, 'docker.io');
  assert.equal(resolveUpstreams(['http://127.0.0.1:5000']).upstreams[0]?.namespace, '127.0.0.1:5000');
  assert.deepEqual(parseListen(':8080'), { host: '0.0.0.0', port: 8080 });
  assert.deepEqual(parseListen('[::1]:5000'), { host: '::1', port: 5000 });
  assert.equal(parseDuration('1.5s'), 1500);
  assert.equal(parseDuration('250ms'), 250);
  assert.equal(parseDuration(2), 2000);
  assert.equal(parseSize('64MiB'), 64 * 2 ** 20);
  assert.equal(parseSize('1GB'), 1e9);
  const mem = buildConfig({ blobMemory: '0', blobMemoryMaxItem: '512KiB' });
  assert.equal(mem.blobMemoryBytes, 0);
  assert.equal(mem.blobMemoryItemBytes, 512 * 1024);
  assert.throws(() => parseSize('lots'));
  assert.deepEqual(parseCommand(['--help']), { kind: 'help' });
});
