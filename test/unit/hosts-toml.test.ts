/** containerd hosts.toml rendering and the install/remove plan (pure). */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkBaseUrl,
  isOurs,
  MARKER,
  parseRegistryArg,
  planInstall,
  planRemove,
  registryEndpoint,
  renderHostsToml,
  type RegistryDirState,
} from '../../src/cli/hosts-toml.js';

const OPTS = { mirrors: ['http://127.0.0.1:5000'], dialTimeoutMs: 200 };

describe('hosts.toml', () => {
  test('registry endpoints: docker.io is Docker Hub’s API host, others are https://HOST', () => {
    assert.equal(registryEndpoint('docker.io'), 'https://registry-1.docker.io');
    assert.equal(registryEndpoint('ghcr.io'), 'https://ghcr.io');
    assert.equal(registryEndpoint('registry.local:5000'), 'https://registry.local:5000');
    assert.deepEqual(parseRegistryArg('docker.io'), { namespace: 'docker.io', server: 'https://registry-1.docker.io' });
    assert.deepEqual(parseRegistryArg('Quay.IO'), { namespace: 'quay.io', server: 'https://quay.io' });
    assert.deepEqual(parseRegistryArg('docker.io=http://127.0.0.1:1/'), { namespace: 'docker.io', server: 'http://127.0.0.1:1' });
    assert.throws(() => parseRegistryArg('not a host'), /invalid registry/);
    assert.throws(() => parseRegistryArg('ghcr.io=ftp://x'), /scheme must be http or https/);
    assert.throws(() => checkBaseUrl('http://u:p@mirror:5000', 'mirror'), /no credentials/);
    assert.throws(() => checkBaseUrl('http://mirror:5000/v2', 'mirror'), /only scheme, host and port/);
    assert.equal(checkBaseUrl('http://mirror.internal:5000/', 'mirror'), 'http://mirror.internal:5000');
  });

  test('the mirrors come first with pull and resolve and a dial timeout; server is the registry', () => {
    const text = renderHostsToml({ namespace: 'docker.io', server: 'https://registry-1.docker.io' }, { mirrors: ['http://127.0.0.1:5000', 'http://regional:5000'], dialTimeoutMs: 250 });
    assert.ok(text.startsWith(MARKER));
    assert.ok(isOurs(text));
    const lines = text.split('\n').filter((l) => l && !l.startsWith('#'));
    assert.deepEqual(lines, [
      'server = "https://registry-1.docker.io"',
      '[host."http://127.0.0.1:5000"]',
      '  capabilities = ["pull", "resolve"]',
      '  dial_timeout = "250ms"',
      '[host."http://regional:5000"]',
      '  capabilities = ["pull", "resolve"]',
      '  dial_timeout = "250ms"',
    ]);
    assert.throws(() => renderHostsToml({ namespace: 'x.io', server: 'https://x.io' }, { mirrors: [], dialTimeoutMs: 1 }), /at least one mirror/);
  });
});

describe('install and remove plans', () => {
  const ours = renderHostsToml({ namespace: 'docker.io', server: 'https://registry-1.docker.io' }, OPTS);
  const foreign = 'server = "https://registry-1.docker.io"\n[host."https://corp-proxy"]\n  capabilities = ["pull"]\n';
  const want = new Map([['docker.io', ours]]);

  test('no file: write; a foreign file: back it up, then write; our own file: unchanged', () => {
    assert.deepEqual(planInstall(want, []), [{ kind: 'write', namespace: 'docker.io', content: ours }]);
    assert.deepEqual(planInstall(want, [{ namespace: 'docker.io', current: foreign, backup: false }]), [{ kind: 'backup-and-write', namespace: 'docker.io', content: ours }]);
    assert.deepEqual(planInstall(want, [{ namespace: 'docker.io', current: ours, backup: true }]), [{ kind: 'unchanged', namespace: 'docker.io' }]);
  });

  test('an older file of ours is rewritten, never backed up', () => {
    const older = renderHostsToml({ namespace: 'docker.io', server: 'https://registry-1.docker.io' }, { ...OPTS, mirrors: ['http://old:5000'] });
    assert.deepEqual(planInstall(want, [{ namespace: 'docker.io', current: older, backup: true }]), [{ kind: 'write', namespace: 'docker.io', content: ours }]);
  });

  test('a registry no longer wanted: our file goes and its backup comes back', () => {
    const ghcr = renderHostsToml({ namespace: 'ghcr.io', server: 'https://ghcr.io' }, OPTS);
    const state: RegistryDirState[] = [
      { namespace: 'docker.io', current: ours, backup: false },
      { namespace: 'ghcr.io', current: ghcr, backup: true },
      { namespace: 'quay.io', current: ghcr.replace('ghcr', 'quay'), backup: false },
    ];
    assert.deepEqual(planInstall(want, state), [
      { kind: 'unchanged', namespace: 'docker.io' },
      { kind: 'restore', namespace: 'ghcr.io' },
      { kind: 'delete', namespace: 'quay.io' },
    ]);
  });

  test('remove: restore backups, delete our files, leave foreign files alone', () => {
    const state: RegistryDirState[] = [
      { namespace: 'docker.io', current: ours, backup: true },
      { namespace: 'ghcr.io', current: ours, backup: false },
      { namespace: 'quay.io', current: foreign, backup: true },
      { namespace: 'k8s.io', backup: true },
      { namespace: 'mcr.microsoft.com', current: foreign, backup: false },
    ];
    assert.deepEqual(planRemove(state), [
      { kind: 'restore', namespace: 'docker.io' },
      { kind: 'delete', namespace: 'ghcr.io' },
      { kind: 'restore', namespace: 'k8s.io' },
      { kind: 'keep-foreign', namespace: 'quay.io' },
    ]);
  });

  test('idempotent: the state an install leaves plans to nothing but unchanged', () => {
    const after: RegistryDirState[] = [{ namespace: 'docker.io', current: ours, backup: true }];
    assert.deepEqual(planInstall(want, after), [{ kind: 'unchanged', namespace: 'docker.io' }]);
    assert.deepEqual(planRemove([{ namespace: 'docker.io', current: foreign, backup: false }]), []);
  });
});
