import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseImageRef, parseRefList, ReferenceError } from '../../src/warm/reference.js';

const HEX = 'a'.repeat(64);

test('Docker Hub names are normalised: library/ for one component, latest when no tag', () => {
  const cases: Array<[string, string, string, string | undefined]> = [
    ['nginx', 'docker.io', 'library/nginx', 'latest'],
    ['nginx:1.27', 'docker.io', 'library/nginx', '1.27'],
    ['bitnami/redis', 'docker.io', 'bitnami/redis', 'latest'],
    ['docker.io/nginx', 'docker.io', 'library/nginx', 'latest'],
    ['index.docker.io/library/nginx:x', 'docker.io', 'library/nginx', 'x'],
    ['registry-1.docker.io/org/app:2', 'docker.io', 'org/app', '2'],
  ];
  for (const [input, registry, repository, tag] of cases) {
    const r = parseImageRef(input);
    assert.equal(r.registry, registry, input);
    assert.equal(r.repository, repository, input);
    assert.equal(r.tag, tag, input);
    assert.equal(r.digest, undefined, input);
  }
  assert.equal(parseImageRef('nginx').canonical, 'docker.io/library/nginx:latest');
});

test('other registries: a first component with a dot, a port, or localhost; no library/ there', () => {
  const gh = parseImageRef('ghcr.io/org/app:v2');
  assert.deepEqual([gh.registry, gh.repository, gh.tag], ['ghcr.io', 'org/app', 'v2']);
  const port = parseImageRef('registry.local:5000/team/tool');
  assert.deepEqual([port.registry, port.repository, port.tag], ['registry.local:5000', 'team/tool', 'latest']);
  const lh = parseImageRef('localhost/app:1');
  assert.deepEqual([lh.registry, lh.repository], ['localhost', 'app']);
  const ip = parseImageRef('127.0.0.1:5000/x');
  assert.deepEqual([ip.registry, ip.repository], ['127.0.0.1:5000', 'x']);
  // A port-looking tag on a Hub name is a tag, not a registry.
  const t = parseImageRef('app:5000');
  assert.deepEqual([t.registry, t.repository, t.tag], ['docker.io', 'library/app', '5000']);
});

test('digests win over tags; the digest is parsed; a tag beside it is kept for display', () => {
  const d = parseImageRef(`ghcr.io/org/app@sha256:${HEX}`);
  assert.equal(d.digest?.value, `sha256:${HEX}`);
  assert.equal(d.tag, undefined);
  assert.equal(d.canonical, `ghcr.io/org/app@sha256:${HEX}`);
  const both = parseImageRef(`nginx:1.27@sha256:${HEX}`);
  assert.equal(both.tag, '1.27');
  assert.equal(both.digest?.hex, HEX);
  assert.equal(both.canonical, `docker.io/library/nginx:1.27@sha256:${HEX}`);
  assert.equal(parseImageRef(`x@sha512:${'b'.repeat(128)}`).digest?.algorithm, 'sha512');
});

test('bad references are refused with the reason', () => {
  const bad: Array<[string, RegExp]> = [
    ['', /empty/],
    ['Nginx', /lowercase/],
    ['nginx:', /bad tag/],
    ['nginx:-x', /bad tag/],
    ['nginx@sha256:abc', /bad digest/],
    ['ghcr.io/', /no repository/],
    ['a//b', /bad repository/],
    ['ghcr.io/Org/app', /lowercase/],
  ];
  for (const [input, re] of bad) {
    assert.throws(() => parseImageRef(input), (e: unknown) => e instanceof ReferenceError && re.test(e.message), input);
  }
});

test('LIST files: one reference per line, # comments and blank lines ignored', () => {
  const text = '# images for CI\nnginx:1.27\n\n  ghcr.io/org/app:2   # the app\r\n#redis\nbusybox\n';
  assert.deepEqual(parseRefList(text), ['nginx:1.27', 'ghcr.io/org/app:2', 'busybox']);
});
