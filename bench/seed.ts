/**
 * Generated content for the benchmark: random (incompressible) blobs of exact sizes, pushed to an
 * upstream distribution registry over its HTTP API, and small OCI manifests referencing them.
 */
import { rm } from 'node:fs/promises';
import { MediaType, putBlob, putManifest, randomBlobFile, sha256, type BlobFile } from '../test/harness/oci.js';

/** A manifest pushed to the upstream. */
export interface SeededManifest {
  repo: string;
  tag: string;
  digest: string;
  mediaType: string;
  /** Exact bytes. */
  body: Buffer;
}

/** What the warm workloads read. */
export interface WarmContent {
  repo: string;
  /** The 64 MiB blob (file kept: nginx static serves it). */
  big: BlobFile;
  /** The 1 MiB blob (file kept). */
  small: BlobFile;
  /** `repo:v1` → config + 1 MiB + 64 MiB; `repo:v2` → config + 1 MiB. */
  manifests: SeededManifest[];
}

/** Accept header a registry client sends for manifests. */
export const MANIFEST_ACCEPT = [
  MediaType.ociManifest,
  MediaType.dockerManifest,
  MediaType.ociIndex,
  MediaType.dockerList,
].join(', ');

/** Runs `task` over `items` with at most `limit` in flight; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      out[i] = await task(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/**
 * Writes `count` fresh random blobs of `size` bytes to `dir`, pushes each to `registryUrl/repo`,
 * and (unless `keepFiles`) removes the local files. Two at a time: generation and upload overlap.
 */
export async function seedBlobs(registryUrl: string, repo: string, dir: string, size: number, count: number, keepFiles = false): Promise<BlobFile[]> {
  return mapLimit(Array.from({ length: count }), 2, async () => {
    const blob = await randomBlobFile(dir, size);
    await putBlob(registryUrl, repo, blob);
    if (!keepFiles) await rm(blob.path, { force: true });
    return blob;
  });
}

/** Pushes the warm content: a 64 MiB and a 1 MiB blob, a config, and two manifests. */
export async function seedWarm(registryUrl: string, dir: string, bigSize: number, smallSize: number): Promise<WarmContent> {
  const repo = 'bench/warm';
  const [big, small] = await Promise.all([randomBlobFile(dir, bigSize), randomBlobFile(dir, smallSize)]);
  if (!big || !small) throw new Error('seed: blob generation failed');
  await putBlob(registryUrl, repo, big);
  await putBlob(registryUrl, repo, small);
  const configBody = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['/bin/true'] },
      rootfs: { type: 'layers', diff_ids: [small.digest, big.digest] },
    }),
  );
  const configDigest = await putBlob(registryUrl, repo, configBody);
  const layer = (b: BlobFile): { mediaType: string; digest: string; size: number } => ({
    mediaType: MediaType.ociLayerGzip,
    digest: b.digest,
    size: b.size,
  });
  const manifests: SeededManifest[] = [];
  for (const [tag, layers] of [
    ['v1', [small, big]],
    ['v2', [small]],
  ] as const) {
    const body = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        config: { mediaType: MediaType.ociConfig, digest: configDigest, size: configBody.length },
        layers: layers.map(layer),
      }),
    );
    const digest = await putManifest(registryUrl, repo, tag, body, MediaType.ociManifest);
    if (digest !== sha256(body)) throw new Error(`seed: registry reports ${digest} for a manifest whose sha256 is ${sha256(body)}`);
    manifests.push({ repo, tag, digest, mediaType: MediaType.ociManifest, body });
  }
  return { repo, big, small, manifests };
}
