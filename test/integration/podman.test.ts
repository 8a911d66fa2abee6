/**
 * A real client that sends multi-range requests: podman zstd:chunked partial pulls through the mirror,
 * in front of an S3-backed upstream (distribution's s3 driver: 307 to presigned URLs on an S3 server
 * that answers multi-range GETs with the whole object). podman hides a bad answer (it falls back to a
 * full GET and still succeeds), so the test reads its debug log for `Retrieved partial blob`, compares
 * every pulled file, checks the mirror answered multipart, and counts what S3 sent: for a second image
 * that shares most files with the first, far less than its layers.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanupAll, requireCommands } from '../harness/proc.js';
import { startRegistry } from '../harness/registry.js';
import { pushImage, MediaType, type GeneratedImage } from '../harness/oci.js';
import { startS3Registry, type S3Registry } from '../harness/s3.js';
import { createPodmanStore, expectedFiles, makeSiblingImages, zstdLayerMediaType, type PodmanPull, type PodmanStore } from '../harness/podman.js';
import { startMirror, type TestMirror } from '../helpers/mirror.js';
import { http } from '../helpers/http.js';

const MiB = 2 ** 20;

interface PushedLayer {
  digest: string;
  size: number;
}

/** The zstd:chunked layers of a pushed manifest (skopeo recompressed the layout's gzip layers). */
async function pushedLayers(registryUrl: string, ref: string): Promise<PushedLayer[]> {
  const r = await http(`${registryUrl}/v2/acme/app/manifests/${ref}`, { headers: { accept: MediaType.ociManifest } });
  assert.equal(r.status, 200);
  const man = JSON.parse(r.body.toString('utf8')) as { layers: Array<{ mediaType: string; digest: string; size: number; annotations?: Record<string, string> }> };
  for (const l of man.layers) {
    assert.equal(l.mediaType, zstdLayerMediaType);
    assert.ok(l.annotations?.['io.containers.zstd-chunked.manifest-position'], 'zstd:chunked TOC annotation');
  }
  return man.layers.map((l) => ({ digest: l.digest, size: l.size }));
}

function assertPartial(p: PodmanPull, layers: PushedLayer[]): void {
  assert.equal(p.code, 0, p.output.slice(-3000));
  assert.deepEqual(p.partialFailures, [], `podman fell back to full GETs (log ${p.logFile})`);
  assert.deepEqual([...p.partial].sort(), layers.map((l) => l.digest).sort(), `Retrieved partial blob for every layer (log ${p.logFile})`);
}

function assertSameFiles(got: Map<string, string>, want: Map<string, string>): void {
  assert.equal(got.size, want.size, 'file count');
  for (const [path, digest] of want) assert.equal(got.get(path), digest, `content of ${path}`);
}

describe('podman zstd:chunked partial pulls through the mirror (S3-backed upstream)', () => {
  let s3: S3Registry;
  let m: TestMirror;
  let store: PodmanStore;
  let img1: GeneratedImage;
  let img2: GeneratedImage;
  let layers1: PushedLayer[];
  let layers2: PushedLayer[];

  before(async () => {
    requireCommands('docker-registry', 'skopeo', 'podman', 'unshare');
    const fsReg = await startRegistry();
    [img1, img2] = await makeSiblingImages({ layers: [4 * MiB, 2 * MiB], filesPerLayer: 200, changeEvery: 10 });
    const zstd = { extraArgs: ['--dest-compress-format', 'zstd:chunked'] };
    await pushImage(img1, fsReg.host, 'acme/app:v1', zstd);
    await pushImage(img2, fsReg.host, 'acme/app:v2', zstd);
    layers1 = await pushedLayers(fsReg.url, 'v1');
    layers2 = await pushedLayers(fsReg.url, 'v2');
    await fsReg.stop();
    s3 = await startS3Registry({ from: fsReg });
    m = await startMirror({ upstreams: [`docker.io=${s3.registry.url}`] });
    store = await createPodmanStore();
  });
  after(cleanupAll);

  test('first image: every layer retrieved partially, multipart answers, right files', async () => {
    s3.s3.reset();
    const p = await store.pull(`${m.host}/acme/app:v1`);
    console.log(`# mirror log ${m.logFile}; podman log ${p.logFile}`);
    const sent = s3.s3.blobBytes();
    const multi = await m.metric('regmirror_range_requests_total', { parts: 'multi' });
    const single = await m.metric('regmirror_range_requests_total', { parts: 'single' });
    console.log(`# v1: pull ${p.durationMs.toFixed(0)} ms, layers ${layers1.map((l) => l.size).join('+')} bytes, S3 sent ${sent}, range requests multi ${multi} single ${single}`);
    assertPartial(p, layers1);
    assert.equal(p.missing.bytes, p.missing.of, 'an empty storage lacks every file');
    assert.ok(multi > 0, 'the mirror answered at least one multi-range request');
    for (const r of s3.s3.presignedRequests().filter((x) => x.method === 'GET')) assert.ok(!r.range?.includes(','), `single range to S3: ${r.range}`);
    assertSameFiles(await store.imageFiles(`${m.host}/acme/app:v1`), await expectedFiles(img1));
  });

  test('second image sharing most files: only the difference is asked for; S3 sends far less than the layers', async () => {
    const multiBefore = await m.metric('regmirror_range_requests_total', { parts: 'multi' });
    s3.s3.reset();
    const p = await store.pull(`${m.host}/acme/app:v2`);
    const sent = s3.s3.blobBytes();
    const total = layers2.reduce((s, l) => s + l.size, 0);
    const multi = (await m.metric('regmirror_range_requests_total', { parts: 'multi' })) - multiBefore;
    console.log(`# v2: pull ${p.durationMs.toFixed(0)} ms, layers ${total} bytes, podman lacked ${p.missing.bytes} of ${p.missing.of} file bytes, S3 sent ${sent} (${((100 * sent) / total).toFixed(1)} %), multi-range requests ${multi}; podman log ${p.logFile}`);
    assertPartial(p, layers2);
    assert.ok(p.missing.bytes > 0 && p.missing.bytes < p.missing.of * 0.2, `podman lacked ${p.missing.bytes} of ${p.missing.of} file bytes`);
    assert.ok(multi > 0, 'the mirror answered at least one multi-range request');
    assert.ok(sent < total * 0.25, `S3 sent ${sent} bytes for layers of ${total} bytes (10 % of the files changed)`);
    for (const r of s3.s3.presignedRequests().filter((x) => x.method === 'GET')) assert.ok(!r.range?.includes(','), `single range to S3: ${r.range}`);
    assertSameFiles(await store.imageFiles(`${m.host}/acme/app:v2`), await expectedFiles(img2));
  });
});
