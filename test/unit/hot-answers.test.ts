/** The tag service's in-memory answers (src/tags/hot-answers.ts): lookups by parts, overwrite, the bound. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HotAnswers } from '../../src/tags/hot-answers.js';

describe('hot tag answers', () => {
  test('an answer is found by exactly its namespace, Accept class, repository and tag', () => {
    const hot = new HotAnswers<{ d: string }>(10);
    hot.set('docker.io', 'oci,*', 'library/alpine', '3', { d: 'a' });
    assert.equal(hot.get('docker.io', 'oci,*', 'library/alpine', '3')?.d, 'a');
    // A repository and tag sliced from a request path each time (fresh strings) find it too.
    const path = '/v2/library/alpine/manifests/3';
    assert.equal(hot.get('docker.io', 'oci,*', path.slice(4, 18), path.slice(29))?.d, 'a');
    assert.equal(hot.get('ghcr.io', 'oci,*', 'library/alpine', '3'), undefined);
    assert.equal(hot.get('docker.io', 'docker2', 'library/alpine', '3'), undefined, 'another Accept class is another answer');
    assert.equal(hot.get('docker.io', 'oci,*', 'library/alpine', '3.1'), undefined);
    assert.equal(hot.get('docker.io', 'oci,*', 'library/alpin', 'e:3'), undefined, 'the parts are not joined into one ambiguous key');
  });

  test('setting an answer again replaces it, and the bound drops the one set longest ago', () => {
    const hot = new HotAnswers<{ d: string }>(3);
    hot.set('n', 'a', 'r', 't1', { d: '1' });
    hot.set('n', 'a', 'r', 't2', { d: '2' });
    hot.set('n', 'a', 'r', 't1', { d: '1b' });
    assert.equal(hot.size, 2);
    assert.equal(hot.get('n', 'a', 'r', 't1')?.d, '1b');
    hot.set('n', 'a', 'r', 't3', { d: '3' });
    hot.set('n', 'b', 'other', 't4', { d: '4' });
    assert.equal(hot.size, 3);
    assert.equal(hot.get('n', 'a', 'r', 't2'), undefined, 't2 was set longest ago');
    assert.equal(hot.get('n', 'a', 'r', 't1')?.d, '1b');
    assert.equal(hot.get('n', 'b', 'other', 't4')?.d, '4');
  });

  test('a bounded set of answers holds no more than its bound however many tags pass through', () => {
    const hot = new HotAnswers<{ i: number }>(100);
    for (let i = 0; i < 10_000; i++) hot.set(`ns${i % 7}`, `acc${i % 3}`, `repo${i % 101}`, `tag${i}`, { i });
    assert.equal(hot.size, 100);
    let found = 0;
    for (let i = 0; i < 10_000; i++) if (hot.get(`ns${i % 7}`, `acc${i % 3}`, `repo${i % 101}`, `tag${i}`)?.i === i) found += 1;
    assert.equal(found, 100, 'exactly the last 100 set are found');
    assert.equal(hot.get('ns0', 'acc0', 'repo0', 'tag0'), undefined);
  });
});
