import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatPlatform, hostPlatform, parsePlatform, platformMatches, PlatformError } from '../../src/warm/platform.js';

test('platforms parse to OCI names, aliases and default variants normalised', () => {
  assert.deepEqual(parsePlatform('linux/amd64'), { os: 'linux', architecture: 'amd64' });
  assert.deepEqual(parsePlatform('linux/x86_64'), { os: 'linux', architecture: 'amd64' });
  assert.deepEqual(parsePlatform('linux/aarch64'), { os: 'linux', architecture: 'arm64' });
  assert.deepEqual(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64' });
  assert.deepEqual(parsePlatform('linux/arm'), { os: 'linux', architecture: 'arm', variant: 'v7' });
  assert.deepEqual(parsePlatform('linux/arm/6'), { os: 'linux', architecture: 'arm', variant: 'v6' });
  assert.deepEqual(parsePlatform('Windows/AMD64'), { os: 'windows', architecture: 'amd64' });
  for (const bad of ['linux', 'linux/', 'a/b/c/d', 'linux/am d64', '']) assert.throws(() => parsePlatform(bad), PlatformError, bad);
  assert.equal(formatPlatform(parsePlatform('linux/arm/v7')), 'linux/arm/v7');
});

test('the host platform comes from process.platform/arch in OCI names', () => {
  assert.deepEqual(hostPlatform('linux', 'x64'), { os: 'linux', architecture: 'amd64' });
  assert.deepEqual(hostPlatform('linux', 'arm64'), { os: 'linux', architecture: 'arm64' });
  assert.deepEqual(hostPlatform('win32', 'x64'), { os: 'windows', architecture: 'amd64' });
  assert.deepEqual(hostPlatform('darwin', 'arm64'), { os: 'linux', architecture: 'arm64' }, 'macOS runs Linux images in a VM');
  assert.deepEqual(hostPlatform('linux', 'ia32'), { os: 'linux', architecture: '386' });
  assert.deepEqual(hostPlatform('linux', 'ppc64'), { os: 'linux', architecture: 'ppc64le' });
  assert.equal(hostPlatform('linux', 'arm').architecture, 'arm');
});

test('index entries match a wanted platform; no variant wanted means any variant', () => {
  const amd64 = { os: 'linux', architecture: 'amd64' };
  const arm64 = { os: 'linux', architecture: 'arm64' };
  assert.ok(platformMatches(amd64, { os: 'linux', architecture: 'amd64' }));
  assert.ok(platformMatches(amd64, { os: 'linux', architecture: 'amd64', variant: 'v3' }));
  assert.ok(!platformMatches(amd64, arm64));
  assert.ok(!platformMatches(amd64, { os: 'windows', architecture: 'amd64' }));
  assert.ok(platformMatches(arm64, { os: 'linux', architecture: 'arm64', variant: 'v8' }));
  assert.ok(platformMatches(parsePlatform('linux/arm64/v8'), arm64));
  assert.ok(platformMatches(parsePlatform('linux/arm/v7'), { os: 'linux', architecture: 'arm', variant: 'v7' }));
  assert.ok(platformMatches(parsePlatform('linux/arm'), { os: 'linux', architecture: 'arm' }), 'arm without variant is v7 on both sides');
  assert.ok(!platformMatches(parsePlatform('linux/arm/v6'), { os: 'linux', architecture: 'arm', variant: 'v7' }));
  // Attestation manifests (unknown/unknown) and entries without a platform never match.
  assert.ok(!platformMatches(amd64, { os: 'unknown', architecture: 'unknown' }));
  assert.ok(!platformMatches(amd64, undefined));
});
