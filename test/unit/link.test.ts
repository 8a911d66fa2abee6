import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rewriteLink } from '../../src/http/handlers/links.js';
import type { RepoContext } from '../../src/http/context.js';

function ctx(clientName: string, via: RepoContext['via']): RepoContext {
  return { clientName, via } as RepoContext;
}

test('Link headers are rewritten to the mirror, keeping n/last and the routing', () => {
  const up = '</v2/library/alpine/tags/list?last=3.18&n=2>; rel="next"';
  assert.equal(rewriteLink(up, ctx('alpine', {}), 'tags/list'), '</v2/alpine/tags/list?n=2&last=3.18>; rel="next"');
  assert.equal(rewriteLink(up, ctx('alpine', { ns: 'docker.io' }), 'tags/list'), '</v2/alpine/tags/list?n=2&last=3.18&ns=docker.io>; rel="next"');
  assert.equal(rewriteLink('<https://ghcr.io/v2/org/app/tags/list?n=5&last=b>; rel="next"', ctx('org/app', { prefix: 'ghcr.io' }), 'tags/list'), '</v2/ghcr.io/org/app/tags/list?n=5&last=b>; rel="next"');
  assert.equal(rewriteLink('garbage', ctx('a', {}), 'tags/list'), undefined);
});
