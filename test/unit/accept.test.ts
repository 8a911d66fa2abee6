import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accepts, parseAccept, upstreamAccept, DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST } from '../../src/oci/accept.js';

test('Accept lines are merged, ordered and stripped of parameters into one key', () => {
  const containerd = parseAccept(`${DOCKER_MANIFEST}, ${DOCKER_LIST}, ${OCI_MANIFEST}, ${OCI_INDEX}, */*`);
  const dockerd = parseAccept([OCI_INDEX, DOCKER_LIST, `${OCI_MANIFEST}; q=0.9`, DOCKER_MANIFEST, '*/*']);
  assert.equal(containerd.key, dockerd.key);
  assert.ok(containerd.any);
  const skopeo = parseAccept([OCI_MANIFEST, DOCKER_MANIFEST, DOCKER_LIST, OCI_INDEX]);
  assert.notEqual(skopeo.key, containerd.key, 'a wildcard changes the key');
  assert.ok(!skopeo.any);
});

test('single-platform clients never accept an index, and the reverse', () => {
  const single = parseAccept(`${DOCKER_MANIFEST}, ${OCI_MANIFEST}`);
  assert.ok(accepts(single, DOCKER_MANIFEST));
  assert.ok(!accepts(single, OCI_INDEX));
  assert.ok(!accepts(single, DOCKER_LIST));
  const indexOnly = parseAccept(OCI_INDEX);
  assert.ok(!accepts(indexOnly, OCI_MANIFEST));
  assert.notEqual(single.key, indexOnly.key);
});

test('no Accept, q=0 and junk', () => {
  assert.ok(parseAccept(undefined).any);
  const q0 = parseAccept(`${OCI_INDEX};q=0, ${OCI_MANIFEST}`);
  assert.deepEqual(q0.types, [OCI_MANIFEST]);
  assert.ok(parseAccept('garbage, ,;;').any, 'nothing usable means anything');
  assert.match(upstreamAccept(parseAccept(undefined)), /application\/vnd\.oci\.image\.index\.v1\+json/);
  assert.equal(upstreamAccept(parseAccept(OCI_MANIFEST)), OCI_MANIFEST);
});
