import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERROR_TABLE, RegistryError, toRegistryError } from '../../src/http/registry-errors.js';
import { isUpstreamOutage } from '../../src/oci/errors.js';
import { errorForUpstreamStatus as domainError, type UpstreamKind } from '../../src/upstream/status.js';

/** What the client gets for an upstream answer: the domain error, mapped at the edge. */
const errorForUpstreamStatus = (status: number, kind: UpstreamKind, ns: string, body: string, retryAfter?: string) => toRegistryError(domainError(status, kind, ns, body, retryAfter));
import { parseChallenges } from '../../src/upstream/challenge.js';

test('the error table carries the spec statuses', () => {
  const expect: Record<string, number> = { BLOB_UNKNOWN: 404, MANIFEST_UNKNOWN: 404, NAME_UNKNOWN: 404, NAME_INVALID: 400, DIGEST_INVALID: 400, MANIFEST_INVALID: 400, UNAUTHORIZED: 401, DENIED: 403, UNSUPPORTED: 405, TOOMANYREQUESTS: 429, UNAVAILABLE: 503, RANGE_INVALID: 416 };
  for (const [code, status] of Object.entries(expect)) assert.equal(ERROR_TABLE[code as keyof typeof ERROR_TABLE].status, status, code);
  const body = JSON.parse(new RegistryError('BLOB_UNKNOWN', ERROR_TABLE.BLOB_UNKNOWN.message, { digest: 'x' }).body()) as { errors: Array<{ code: string; detail: unknown }> };
  assert.equal(body.errors[0]?.code, 'BLOB_UNKNOWN');
  assert.deepEqual(body.errors[0]?.detail, { digest: 'x' });
});

test('upstream statuses map to registry errors', () => {
  assert.equal(errorForUpstreamStatus(404, 'manifest', 'docker.io', '').code, 'MANIFEST_UNKNOWN');
  assert.equal(errorForUpstreamStatus(404, 'blob', 'docker.io', '').code, 'BLOB_UNKNOWN');
  assert.equal(errorForUpstreamStatus(404, 'manifest', 'docker.io', '{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known"}]}').code, 'NAME_UNKNOWN');
  assert.equal(errorForUpstreamStatus(404, 'manifest', 'docker.io', '{"errors":[{"code":"DENIED"}]}').code, 'MANIFEST_UNKNOWN', 'a code whose status differs is not taken');
  assert.equal(errorForUpstreamStatus(401, 'blob', 'docker.io', '').code, 'DENIED');
  const rl = errorForUpstreamStatus(429, 'manifest', 'docker.io', '', '30');
  assert.equal(rl.code, 'TOOMANYREQUESTS');
  assert.equal(rl.headers['retry-after'], '30');
  assert.equal(errorForUpstreamStatus(429, 'manifest', 'docker.io', '', 'bad\r\nx: y').headers['retry-after'], undefined, 'header injection is dropped');
  assert.equal(errorForUpstreamStatus(500, 'blob', 'docker.io', '').code, 'UNAVAILABLE');
  assert.equal(errorForUpstreamStatus(502, 'blob', 'docker.io', '').status, 503);
  assert.ok(isUpstreamOutage(domainError(503, 'tag-head', 'x', '')));
  assert.ok(isUpstreamOutage(domainError(429, 'tag-head', 'x', '')));
  assert.ok(!isUpstreamOutage(domainError(404, 'tag-head', 'x', '')));
});

test('WWW-Authenticate challenges', () => {
  const [c] = parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"');
  assert.equal(c?.scheme, 'bearer');
  assert.equal(c?.params.realm, 'https://auth.docker.io/token');
  assert.equal(c?.params.scope, 'repository:library/alpine:pull');
  const two = parseChallenges('Basic realm="x, y", Bearer realm="http://127.0.0.1:5000/t",service=reg,scope="repository:127.0.0.1:5000/a/b:pull,push"');
  assert.equal(two.length, 2);
  assert.equal(two[0]?.params.realm, 'x, y');
  assert.equal(two[1]?.params.service, 'reg');
  assert.equal(two[1]?.params.scope, 'repository:127.0.0.1:5000/a/b:pull,push');
  assert.deepEqual(parseChallenges(undefined), []);
  assert.equal(parseChallenges('Bearer realm="a\\"b"')[0]?.params.realm, 'a"b');
});
