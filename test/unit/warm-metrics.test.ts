import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countersOf, diffCounters, parsePrometheus } from '../../src/warm/mirror-metrics.js';
import { parseManifest } from '../../src/warm/manifest.js';
import { WarmError } from '../../src/warm/errors.js';
import { Pool } from '../../src/warm/pool.js';

const TEXT = `# HELP regmirror_cache_hits_total x
# TYPE regmirror_cache_hits_total counter
regmirror_cache_hits_total{kind="blob"} 3
regmirror_cache_hits_total{kind="manifest"} 7
regmirror_cache_misses_total{kind="blob"} 2
regmirror_bytes_served_total{source="cache"} 1000
regmirror_bytes_served_total{source="fill"} 500
regmirror_bytes_served_total{source="upstream"} 20
regmirror_upstream_requests_total{upstream="docker.io",kind="blob",method="GET",status="200"} 2
regmirror_upstream_requests_total{upstream="ghcr.io",kind="tag-head",method="HEAD",status="200"} 1
regmirror_upstream_bytes_total{upstream="docker.io",kind="blob"} 520
regmirror_request_duration_seconds_bucket{le="0.1",kind="blob",cache="hit"} 3
weird_label{a="x\\"y"} 1
`;

test('Prometheus text: counters with labels summed by filter', () => {
  const s = parsePrometheus(TEXT);
  assert.equal(s.find((x) => x.name === 'weird_label')?.labels.a, 'x"y');
  const c = countersOf(TEXT);
  assert.deepEqual(c, { blobHits: 3, blobMisses: 2, manifestHits: 7, manifestMisses: 0, bytesFromCache: 1000, bytesFromUpstream: 520, upstreamRequests: 3, upstreamBytes: 520 });
  const later = countersOf(TEXT.replace('{kind="blob"} 3', '{kind="blob"} 10'));
  assert.equal(diffCounters(c, later).blobHits, 7);
  assert.equal(diffCounters(c, later).bytesFromCache, 0);
});

const D = (c: string) => `sha256:${c.repeat(64)}`;

test('manifests: an index lists platform entries; an image its config and layers', () => {
  const index = parseManifest(
    Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: D('a'), size: 10, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }] })),
    '',
    'x',
  );
  assert.equal(index.kind, 'index');
  assert.deepEqual(index.kind === 'index' && index.manifests[0]!.platform, { os: 'linux', architecture: 'arm64', variant: 'v8' });
  // A Docker list identified only by its Content-Type.
  const list = parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [] })), 'application/vnd.docker.distribution.manifest.list.v2+json', 'x');
  assert.equal(list.kind, 'index');
  const img = parseManifest(
    Buffer.from(JSON.stringify({ schemaVersion: 2, config: { mediaType: 'c', digest: D('b'), size: 5 }, layers: [{ mediaType: 'l', digest: D('c'), size: 7 }, { mediaType: 'f', digest: D('d'), size: 9, urls: ['https://example.invalid/x'] }] })),
    'application/vnd.docker.distribution.manifest.v2+json',
    'x',
  );
  assert.equal(img.kind, 'image');
  if (img.kind !== 'image') return;
  assert.equal(img.config?.digest.value, D('b'));
  assert.deepEqual(img.blobs.map((b) => b.digest.value), [D('b'), D('c'), D('d')]);
  assert.deepEqual(img.blobs[2]!.urls, ['https://example.invalid/x']);
});

test('manifests that cannot be walked are refused with kind invalid', () => {
  for (const bad of ['not json', '[]', JSON.stringify({ schemaVersion: 1, fsLayers: [] }), JSON.stringify({ schemaVersion: 2, config: { digest: 'sha256:zz', size: 1 } }), JSON.stringify({ schemaVersion: 2, layers: [{ digest: D('a'), size: -1 }] }), JSON.stringify({ schemaVersion: 2 })]) {
    assert.throws(() => parseManifest(Buffer.from(bad), '', 'x'), (e: unknown) => e instanceof WarmError && e.kind === 'invalid', bad);
  }
});

test('the pool runs at most N tasks at once and all of them', async () => {
  const pool = new Pool(3);
  let now = 0;
  let peak = 0;
  const done = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      pool.run(async () => {
        now++;
        peak = Math.max(peak, now);
        await new Promise((r) => setImmediate(r));
        now--;
        return i;
      }),
    ),
  );
  assert.equal(peak, 3);
  assert.deepEqual(done, Array.from({ length: 20 }, (_, i) => i));
  assert.throws(() => new Pool(0), RangeError);
});
