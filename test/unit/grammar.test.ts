import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkReference, isValidName, isValidTag } from '../../src/oci/names.js';
import { parseDigest } from '../../src/oci/digest.js';
import { parseRoute, looksLikeRegistryHost, routeOf } from '../../src/http/route.js';
import { toRegistryError } from '../../src/http/registry-errors.js';
import { MirrorError } from '../../src/oci/errors.js';

/** The registry error a client would get for a thrown domain error. */
const asSent = (e: unknown) => (e instanceof MirrorError ? toRegistryError(e) : undefined);

const HEX64 = 'a'.repeat(64);

test('repository names follow the distribution grammar', () => {
  for (const ok of ['alpine', 'library/alpine', 'a/b/c', 'my-org/app_1', 'x__y', 'a.b/c-d', 'a---b', '0']) assert.ok(isValidName(ok), ok);
  for (const bad of ['', 'Alpine', 'a//b', '/a', 'a/', '..', 'a/../b', 'a/./b', '%2e%2e', 'a_', '-a', 'a___b', 'a:b', 'a b', 'ü', 'a'.repeat(256)]) {
    assert.ok(!isValidName(bad), bad);
  }
  assert.ok(isValidName('a'.repeat(255)));
});

test('tags follow the grammar', () => {
  for (const ok of ['latest', 'v1.2.3', '_x', 'A-b_c.d', 'a'.repeat(128)]) assert.ok(isValidTag(ok), ok);
  for (const bad of ['', '.x', '-x', 'a'.repeat(129), 'a/b', 'a:b', '%2e']) assert.ok(!isValidTag(bad), bad);
});

test('digests: sha256 and sha512, lowercase hex of the right length only', () => {
  assert.deepEqual(parseDigest(`sha256:${HEX64}`), { algorithm: 'sha256', hex: HEX64, value: `sha256:${HEX64}` });
  assert.equal(parseDigest(`sha512:${'b'.repeat(128)}`)?.algorithm, 'sha512');
  for (const bad of [`sha256:${'A'.repeat(64)}`, `sha256:${'a'.repeat(63)}`, `sha256:${'a'.repeat(65)}`, `md5:${'a'.repeat(32)}`, `sha512:${HEX64}`, 'sha256:', HEX64, `sha256:${'g'.repeat(64)}`, `sha256:../${'a'.repeat(61)}`]) {
    assert.equal(parseDigest(bad), undefined, bad);
  }
});

test('references: tags vs digests, with the right error code', () => {
  assert.deepEqual(checkReference('latest'), { kind: 'tag', tag: 'latest' });
  assert.equal(checkReference(`sha256:${HEX64}`).kind, 'digest');
  assert.throws(() => checkReference(`sha256:${'A'.repeat(64)}`), (e: unknown) => asSent(e)?.code === 'DIGEST_INVALID' && asSent(e)?.status === 400);
  assert.throws(() => checkReference('..'), (e: unknown) => asSent(e)?.code === 'MANIFEST_UNKNOWN' && asSent(e)?.status === 404);
});

test('routes are matched from the right, names may contain endpoint words', () => {
  assert.deepEqual(parseRoute('/v2/'), { kind: 'base' });
  assert.deepEqual(parseRoute('/v2'), { kind: 'base' });
  assert.deepEqual(parseRoute('/v2/a/manifests/b/manifests/latest'), { kind: 'manifest', name: 'a/manifests/b', reference: 'latest' });
  assert.deepEqual(parseRoute(`/v2/x/blobs/y/blobs/sha256:${HEX64}`), { kind: 'blob', name: 'x/blobs/y', digest: `sha256:${HEX64}` });
  assert.deepEqual(parseRoute('/v2/a/b/tags/list'), { kind: 'tags', name: 'a/b' });
  assert.deepEqual(parseRoute(`/v2/a/referrers/sha256:${HEX64}`), { kind: 'referrers', name: 'a', digest: `sha256:${HEX64}` });
  assert.deepEqual(parseRoute('/v2/a/blobs/uploads/'), { kind: 'upload', name: 'a' });
  assert.deepEqual(parseRoute('/v2/ghcr.io/org/app/manifests/1.0'), { kind: 'manifest', name: 'ghcr.io/org/app', reference: '1.0' });
  assert.deepEqual(parseRoute('/v2/_catalog'), { kind: 'catalog' });
  assert.throws(() => parseRoute('/etc/passwd'), (e: unknown) => asSent(e)?.status === 404);
  assert.throws(() => parseRoute('/v2/a/nothing'), (e: unknown) => asSent(e)?.status === 404);
});

test('registry host detection follows docker reference rules', () => {
  assert.ok(looksLikeRegistryHost('ghcr.io'));
  assert.ok(looksLikeRegistryHost('127.0.0.1:5000'));
  assert.ok(looksLikeRegistryHost('localhost'));
  assert.ok(!looksLikeRegistryHost('library'));
});

test('a first segment is a registry host only when it is a valid host', () => {
  assert.ok(!looksLikeRegistryHost('..'));
  assert.ok(!looksLikeRegistryHost('a..b'));
  assert.ok(!looksLikeRegistryHost('%2e%2e'));
  assert.ok(looksLikeRegistryHost('registry.example.com:443'));
  assert.ok(looksLikeRegistryHost('[::1]:5000'));
});

test('parseRoute: the fast manifest and blob paths answer what the general suffix search answers (20 000 seeded paths)', async () => {
  const { prng } = await import('../helpers/prng.js');
  // The rule, stated on its own: the suffix whose match is valid and starts last wins; at equal starts, the earlier listed one.
  const suffixes: Array<[string, string, (rest: string) => boolean]> = [
    ['/manifests/', 'manifest', (r) => r !== '' && !r.includes('/')],
    ['/blobs/uploads', 'upload', (r) => r === '' || r.startsWith('/')],
    ['/blobs/', 'blob', (r) => r !== '' && !r.includes('/')],
    ['/referrers/', 'referrers', (r) => r !== '' && !r.includes('/')],
  ];
  const reference = (path: string): string => {
    if (path === '/v2' || path === '/v2/') return 'base';
    if (!path.startsWith('/v2/')) return 'notfound';
    const p = path.slice(3);
    if (p === '/_catalog') return 'catalog';
    if (p.endsWith('/tags/list')) return `tags ${p.slice(1, -10)}`;
    let best: { at: number; r: string } | undefined;
    for (const [suffix, kind, ok] of suffixes) {
      const at = p.lastIndexOf(suffix);
      if (at <= 0) continue;
      const rest = p.slice(at + suffix.length);
      if (ok(rest) && (!best || at > best.at)) best = { at, r: `${kind} ${p.slice(1, at)} ${kind === 'upload' ? '' : rest}` };
    }
    return best?.r ?? 'notfound';
  };
  const describe = (path: string): string => {
    try {
      const r = parseRoute(path);
      if (r.kind === 'manifest') return `manifest ${r.name} ${r.reference}`;
      if (r.kind === 'blob') return `blob ${r.name} ${r.digest}`;
      if (r.kind === 'referrers') return `referrers ${r.name} ${r.digest}`;
      if (r.kind === 'upload') return `upload ${r.name} `;
      if (r.kind === 'tags') return `tags ${r.name}`;
      return r.kind;
    } catch {
      return 'notfound';
    }
  };
  const rand = prng(11);
  const pieces = ['a', 'lib', 'manifests', 'blobs', 'uploads', 'referrers', 'tags', 'list', 'sha256:ab', '', 'x.io', '_catalog'];
  for (let i = 0; i < 20_000; i++) {
    const n = 1 + Math.floor(rand() * 6);
    const segs = Array.from({ length: n }, () => pieces[Math.floor(rand() * pieces.length)]!);
    const path = `/v2/${segs.join('/')}`;
    assert.equal(describe(path), reference(path), path);
  }
});

test('routeOf and checkReference remember what parsed, and only that: a bad path or reference fails every time', () => {
  const path = `/v2/library/alpine/manifests/sha256:${HEX64}`;
  const first = routeOf(path);
  assert.deepEqual(first, parseRoute(path));
  assert.equal(routeOf(`${path}`.slice(0)), first, 'the same route object for the same path');
  for (let i = 0; i < 3; i++) assert.throws(() => routeOf('/v2/library/alpine/nothing'), (e) => asSent(e)?.status === 404);
  const ref = checkReference('v1.2');
  assert.equal(checkReference('v1.2'), ref);
  assert.deepEqual(ref, { kind: 'tag', tag: 'v1.2' });
  for (let i = 0; i < 3; i++) {
    assert.throws(() => checkReference('Bad:Tag'), (e) => asSent(e)?.code === 'MANIFEST_UNKNOWN');
    assert.throws(() => checkReference('sha256:short'), (e) => asSent(e)?.code === 'DIGEST_INVALID');
  }
  // Thousands of distinct paths keep memory bounded and answers right.
  for (let i = 0; i < 10_000; i++) assert.equal((routeOf(`/v2/r${i}/blobs/sha256:${HEX64}`) as { name: string }).name, `r${i}`);
});
