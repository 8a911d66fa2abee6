import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERROR_TABLE, RegistryError, toRegistryError } from '../../src/http/registry-errors.js';
import { InvalidInput, isUpstreamOutage, NotFound, RangeUnsatisfiable } from '../../src/oci/errors.js';
import { errorForUpstreamStatus as domainError, type UpstreamKind } from '../../src/upstream/status.js';

/** What the client gets for an upstream answer: the domain error, mapped at the edge. */
const errorForUpstreamStatus = (status: number, kind: UpstreamKind, ns: string, body: string, retryAfter?: string) => toRegistryError(domainError(status, kind, ns, body, retryAfter));
import { parseChallenges } from '../../src/upstream/challenge.js';

test('the error table carries the spec statuses', () => {
  const expect: Record<string, number> = { BLOB_UNKNOWN: 404, MANIFEST_UNKNOWN: 404, NAME_UNKNOWN: 404, NAME_INVALID: 400, DIGEST_INVALID: 400, MANIFEST_INVALID: 400, UNAUTHORIZED: 401, DENIED: 403, UNSUPPORTED: 405, TOOMANYREQUESTS: 429, UNAVAILABLE: 503 };
  for (const [code, status] of Object.entries(expect)) assert.equal(ERROR_TABLE[code as keyof typeof ERROR_TABLE].status, status, code);
  const body = JSON.parse(new RegistryError('BLOB_UNKNOWN', ERROR_TABLE.BLOB_UNKNOWN.message, { digest: 'x' }).body()!) as { errors: Array<{ code: string; detail: unknown }> };
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

/** distribution-spec v1.1.1 "Error Codes": the codes a 4XX JSON body may carry (code-1 … code-14). */
const SPEC_CODES = ['BLOB_UNKNOWN', 'BLOB_UPLOAD_INVALID', 'BLOB_UPLOAD_UNKNOWN', 'DIGEST_INVALID', 'MANIFEST_BLOB_UNKNOWN', 'MANIFEST_INVALID', 'MANIFEST_UNKNOWN', 'NAME_INVALID', 'NAME_UNKNOWN', 'SIZE_INVALID', 'UNAUTHORIZED', 'DENIED', 'UNSUPPORTED', 'TOOMANYREQUESTS'];

test('every 4XX code with a body is one of the spec table; only 503 carries UNAVAILABLE', () => {
  for (const [code, { status }] of Object.entries(ERROR_TABLE)) {
    if (status < 500) assert.ok(SPEC_CODES.includes(code), `${code} (${status}) is not a spec code`);
    else assert.equal(code, 'UNAVAILABLE');
  }
});

test('where no spec code fits, the answer has a status and no body', () => {
  const range = toRegistryError(new RangeUnsatisfiable(1234));
  assert.equal(range.status, 416);
  assert.equal(range.body(), undefined);
  assert.equal(range.headers['content-range'], 'bytes */1234');
  const route = toRegistryError(new NotFound('route', 'not found'));
  assert.equal(route.status, 404);
  assert.equal(route.body(), undefined);
  for (const field of ['pagination', 'header'] as const) {
    const e = toRegistryError(new InvalidInput(field, 'bad'));
    assert.equal(e.status, 400, field);
    assert.equal(e.body(), undefined, field);
  }
  const tag = toRegistryError(new InvalidInput('tag', 'invalid tag'));
  assert.equal(tag.status, 404, 'an invalid tag names no manifest: 404');
  assert.equal(tag.code, 'MANIFEST_UNKNOWN');
  assert.equal((JSON.parse(tag.body()!) as { errors: Array<{ code: string }> }).errors[0]?.code, 'MANIFEST_UNKNOWN');
  assert.equal(toRegistryError(new Error('bug')).code, 'UNAVAILABLE');
});

test('upstream 400s with non-spec codes map to spec answers', () => {
  const tag = errorForUpstreamStatus(400, 'manifest', 'docker.io', '{"errors":[{"code":"TAG_INVALID","message":"x"}]}');
  assert.equal(tag.status, 404);
  assert.equal(tag.code, 'MANIFEST_UNKNOWN');
  const page = errorForUpstreamStatus(400, 'tags', 'docker.io', '{"errors":[{"code":"PAGINATION_NUMBER_INVALID"}]}');
  assert.equal(page.status, 400);
  assert.equal(page.body(), undefined);
});
