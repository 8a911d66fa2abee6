import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { parseMaxSize, resolveCap, filesystemSpace, formatBytes } from '../../src/store/index/max-size.js';
import { parseImageReference, parsePins, parsePlatform, pinKeepsPlatform, PinConfigError } from '../../src/store/index/pins.js';

const HEX = 'a'.repeat(64);

test('maxSize: bytes with decimal and binary units, or a share of the filesystem', () => {
  assert.deepEqual(parseMaxSize('10GB'), { kind: 'bytes', bytes: 10e9 });
  assert.deepEqual(parseMaxSize('512MiB'), { kind: 'bytes', bytes: 512 * 2 ** 20 });
  assert.deepEqual(parseMaxSize(1_073_741_824), { kind: 'bytes', bytes: 2 ** 30 });
  assert.deepEqual(parseMaxSize('80%'), { kind: 'percent', percent: 80 });
  assert.deepEqual(parseMaxSize(' 12.5 % '), { kind: 'percent', percent: 12.5 });
  for (const bad of ['0%', '101%', '-5%', '%', '0', 'lots', '10XB', '5 %%']) assert.throws(() => parseMaxSize(bad), /invalid maxSize/, bad);
});

test('a share cap is resolved against the filesystem holding the dir', async () => {
  const fs = await filesystemSpace(tmpdir());
  assert.ok(fs.size > 0 && fs.free > 0 && fs.free <= fs.size);
  assert.equal(await resolveCap({ kind: 'percent', percent: 50 }, tmpdir()), Math.floor(fs.size / 2));
  assert.equal(await resolveCap({ kind: 'bytes', bytes: 123 }, tmpdir()), 123);
  assert.equal(formatBytes(1536), '1.5 KiB');
});

test('image references: host, repository, tag, digest', () => {
  assert.deepEqual(parseImageReference('alpine'), { ref: 'alpine', repository: 'alpine', tag: 'latest' });
  assert.deepEqual(parseImageReference('docker.io/library/alpine:3.20'), { ref: 'docker.io/library/alpine:3.20', namespace: 'docker.io', repository: 'library/alpine', tag: '3.20' });
  assert.deepEqual(parseImageReference('localhost:5000/app'), { ref: 'localhost:5000/app', namespace: 'localhost:5000', repository: 'app', tag: 'latest' });
  const d = parseImageReference(`ghcr.io/acme/app:1@sha256:${HEX}`);
  assert.equal(d.namespace, 'ghcr.io');
  assert.equal(d.tag, '1');
  assert.equal(d.digest?.value, `sha256:${HEX}`);
  assert.equal(parseImageReference(`acme/app@sha256:${HEX}`).tag, undefined, 'a digest alone means no tag');
  assert.throws(() => parseImageReference('Alpine'), PinConfigError);
  assert.throws(() => parseImageReference('alpine@sha256:short'), /invalid or unsupported digest/);
  assert.throws(() => parseImageReference('alpine:-bad'), /invalid tag/);
});

test('pin list: strings and {ref, platforms}, with clear errors', () => {
  const pins = parsePins(['alpine:3', { ref: 'ghcr.io/acme/app:1', platforms: ['linux/amd64', 'Linux/ARM64/v8'] }]);
  assert.equal(pins.length, 2);
  assert.equal(pins[0]?.platforms, 'all');
  assert.deepEqual(pins[1]?.platforms, [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }]);
  assert.deepEqual(parsePins(undefined), []);
  assert.deepEqual(parsePins(null), []);
  assert.throws(() => parsePins('alpine'), /must be a list/);
  assert.throws(() => parsePins([{ ref: 'alpine', platform: ['linux/amd64'] }]), /pin\[0\]: unknown key "platform"/);
  assert.throws(() => parsePins([{ ref: 'alpine', platforms: [] }]), /non-empty list/);
  assert.throws(() => parsePins([42]), /pin\[0\]/);
  assert.throws(() => parsePlatform('linux'), /invalid platform/);
  const spec = pins[1]!;
  assert.equal(pinKeepsPlatform(spec, { os: 'linux', architecture: 'amd64' }), true);
  assert.equal(pinKeepsPlatform(spec, { os: 'linux', architecture: 'amd64', variant: 'v3' }), true, 'no variant configured: any variant');
  assert.equal(pinKeepsPlatform(spec, { os: 'linux', architecture: 'arm64', variant: 'v7' }), false);
  assert.equal(pinKeepsPlatform(spec, { os: 'windows', architecture: 'amd64' }), false);
  assert.equal(pinKeepsPlatform(pins[0]!, { os: 'windows', architecture: 'amd64' }), true);
});
