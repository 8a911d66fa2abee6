import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareTags, paginateTags, tagsOf } from '../../src/tags/list.js';
import { referrersTag } from '../../src/tags/referrers.js';
import { NegativeCache } from '../../src/manifests/negative.js';
import { NotFound } from '../../src/oci/errors.js';
import { parseDigest } from '../../src/oci/digest.js';
import { nextLink } from '../../src/http/handlers/links.js';
import { pageRequest } from '../../src/http/handlers/tags-list.js';
import { toRegistryError } from '../../src/http/registry-errors.js';
import { delay } from '../harness/proc.js';

test('tags sort in the spec lexical order: case-insensitive, ties by code point', () => {
  assert.deepEqual(['b', 'C', 'a', 'B', '10', '9', '_x'].sort(compareTags), ['10', '9', '_x', 'a', 'B', 'b', 'C']);
  assert.equal(compareTags('v1', 'v1'), 0);
});

test('pages: after last, at most n, next last when cut; n=0 is empty', () => {
  const all = ['v3', 'V1', 'v2', 'a', 'v2'];
  assert.deepEqual(paginateTags(all, {}), { tags: ['a', 'V1', 'v2', 'v3'] }, 'sorted, duplicates dropped');
  assert.deepEqual(paginateTags(all, { n: 2 }), { tags: ['a', 'V1'], nextLast: 'V1' });
  assert.deepEqual(paginateTags(all, { n: 2, last: 'V1' }), { tags: ['v2', 'v3'] }, 'exactly the rest: no next page');
  assert.deepEqual(paginateTags(all, { last: 'v1' }), { tags: ['v2', 'v3'] }, 'last need not exist; V1 sorts before v1');
  assert.deepEqual(paginateTags(all, { n: 0 }), { tags: [] });
  assert.deepEqual(paginateTags(all, { n: 10, last: 'zzz' }), { tags: [] });
});

test('upstream tag lists: the spec shape or an error; invalid entries dropped', () => {
  assert.deepEqual(tagsOf({ name: 'a', tags: ['x', 7, '..', 'y'] }), ['x', 'y']);
  assert.deepEqual(tagsOf({ name: 'a', tags: null }), []);
  assert.throws(() => tagsOf({ tags: 'x' }));
});

test('pagination query: malformed n or last is a bodiless 400', () => {
  assert.deepEqual(pageRequest(new URLSearchParams('n=5&last=v1')), { n: 5, last: 'v1' });
  assert.deepEqual(pageRequest(new URLSearchParams('last=')), {});
  for (const q of ['n=-1', 'n=abc', 'n=1234567', 'last=.x', 'last=a/b']) {
    assert.throws(
      () => pageRequest(new URLSearchParams(q)),
      (e: unknown) => toRegistryError(e).status === 400 && toRegistryError(e).body() === undefined,
      q,
    );
  }
});

test('next links point at the mirror with the client routing', () => {
  assert.equal(nextLink({ clientName: 'app', via: { ns: 'docker.io' } }, 'tags/list', { n: '2', last: 'v2' }), '</v2/app/tags/list?n=2&last=v2&ns=docker.io>; rel="next"');
  assert.equal(nextLink({ clientName: 'org/app', via: { prefix: 'ghcr.io' } }, 'tags/list', { n: '1', last: 'a' }), '</v2/ghcr.io/org/app/tags/list?n=1&last=a>; rel="next"');
});

test('the referrers tag schema: <alg>-<hex>, limited to 64 characters of hex', () => {
  assert.equal(referrersTag(parseDigest(`sha256:${'a'.repeat(64)}`)!), `sha256-${'a'.repeat(64)}`);
  assert.equal(referrersTag(parseDigest(`sha512:${'b'.repeat(128)}`)!), `sha512-${'b'.repeat(64)}`);
});

test('negative cache: remembers a 404 for its TTL with the same answer, bounded, off at 0', async () => {
  const c = new NegativeCache(200, 3);
  const e = new NotFound('manifest', undefined, { detail: { upstream: 'docker.io', status: 404 }, reason: 'upstream-404' });
  c.remember('k', e);
  const again = c.recall('k');
  assert.ok(again instanceof NotFound);
  assert.equal(again.what, 'manifest');
  assert.equal(again.reason, 'negative-cache');
  assert.deepEqual(toRegistryError(again).body(), toRegistryError(e).body(), 'the same answer');
  for (const k of ['a', 'b', 'c']) c.remember(k, e);
  assert.equal(c.size, 3, 'bounded');
  assert.equal(c.recall('k'), undefined, 'the oldest went first');
  await delay(250);
  assert.equal(c.recall('c'), undefined, 'expired');
  const off = new NegativeCache(0);
  off.remember('k', e);
  assert.equal(off.recall('k'), undefined);
});
