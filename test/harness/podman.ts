/**
 * podman as a client that sends multi-range requests: zstd:chunked partial pulls.
 *
 * A {@link PodmanStore} is a private containers-storage (overlay driver, partial pulls on) under a
 * temp dir. podman runs as root in a private mount namespace (`unshare -m`) with temp dirs mounted
 * over `/var/lib/containers/cache` (blob-info cache) and `/run/containers` (netavark's run dir), and
 * with private `storage.conf`, `registries.conf` and `containers.conf` (libpod tmp dir, no events),
 * so nothing is shared with other runs. Overlay mounts made by podman die with the namespace.
 *
 * Facts observed on this machine (Debian 12: podman 4.3.1, skopeo 1.9.3, kernel overlay as root):
 * - `skopeo copy --dest-compress-format zstd:chunked` writes `tar+zstd` layers with
 *   `io.containers.zstd-chunked.manifest-checksum` / `-position` annotations.
 * - A partial pull logs `Retrieved partial blob sha256:…` per layer; when the registry's answer is
 *   unusable it logs `Failed to retrieve partial blob: …`, falls back to a full GET, and succeeds.
 * - podman asks one single range for a layer's table of contents, then one multi-range request for
 *   the file chunks it lacks (200 ranges for a 200-file layer); files it already has in any layer are
 *   copied locally and not requested again.
 * - Root is required (`unshare -m`, kernel overlay). The mount points `/var/lib/containers/cache` and
 *   `/run/containers` are created on the host if missing (empty dirs), as `oci.ts` does for skopeo.
 *   Not tried: a graphroot on a filesystem that is itself overlayfs (containers/storage then wants
 *   fuse-overlayfs as `mount_program`).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzip as gunzipCb, gzip as gzipCb } from 'node:zlib';
import { run, tmpDir, type RunOutcome } from './proc.js';
import { blobPath, MediaType, sha256, tarHeader, type BlobInfo, type GeneratedImage } from './oci.js';

const gzip = promisify(gzipCb);
const gunzip = promisify(gunzipCb);

/** Result of {@link PodmanStore.pull}. */
export interface PodmanPull extends RunOutcome {
  /** Layer digests podman reports as `Retrieved partial blob`. */
  partial: string[];
  /** `Failed to retrieve partial blob` lines (podman then fell back to a full GET). */
  partialFailures: string[];
  /** Sum over partially pulled layers of containers/storage's `Missing N bytes out of M`: file bytes it had to fetch vs all. */
  missing: { bytes: number; of: number };
}

/** A private podman storage. */
export interface PodmanStore {
  /** Temp dir holding storage, run root, caches and config files. */
  readonly dir: string;
  /** `podman --log-level=debug pull --tls-verify=false REF` (REF like `127.0.0.1:PORT/acme/app:v1`). */
  pull(ref: string, opts?: { timeoutMs?: number }): Promise<PodmanPull>;
  /** Mounts the image (`podman image mount`) and returns `path → sha256 hex` of every regular file. */
  imageFiles(ref: string): Promise<Map<string, string>>;
}

function sh(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Creates a private podman storage (overlay, `enable_partial_images = "true"`) in a temp dir. Needs root. */
export async function createPodmanStore(opts: { name?: string } = {}): Promise<PodmanStore> {
  if (process.getuid?.() !== 0) throw new Error('podman partial pulls in tests need root (unshare -m, kernel overlay)');
  const name = opts.name ?? 'podman';
  const dir = await tmpDir(`${name}-`);
  const d = (p: string): string => {
    const full = join(dir, p);
    mkdirSync(full, { recursive: true });
    return full;
  };
  const graph = d('graph');
  const runroot = d('run');
  const cache = d('blob-cache');
  const runContainers = d('run-containers');
  const tmp = d('tmp');
  const libpodTmp = d('libpod');
  const networks = d('networks');
  const storageConf = join(dir, 'storage.conf');
  writeFileSync(
    storageConf,
    [
      '[storage]',
      'driver = "overlay"',
      `graphroot = "${graph}"`,
      `runroot = "${runroot}"`,
      '[storage.options]',
      '[storage.options.pull_options]',
      'enable_partial_images = "true"',
      'use_hard_links = "false"',
      '',
    ].join('\n'),
  );
  const containersConf = join(dir, 'containers.conf');
  writeFileSync(
    containersConf,
    ['[engine]', `tmp_dir = "${libpodTmp}"`, 'events_logger = "none"', '[network]', `network_config_dir = "${networks}"`, ''].join('\n'),
  );
  const registriesConf = join(dir, 'registries.conf');
  const env = {
    ...process.env,
    CONTAINERS_CONF: containersConf,
    CONTAINERS_STORAGE_CONF: storageConf,
    CONTAINERS_REGISTRIES_CONF: registriesConf,
    TMPDIR: tmp,
  };
  const prologue =
    'set -e; mkdir -p /var/lib/containers/cache /run/containers; ' +
    `mount --bind ${sh(cache)} /var/lib/containers/cache; mount --bind ${sh(runContainers)} /run/containers; `;
  let n = 0;
  const inNamespace = (script: string, label: string, timeoutMs: number): Promise<RunOutcome> =>
    run('unshare', ['-m', 'sh', '-c', prologue + script], { name: `${name}-${label}-${++n}`, env, timeoutMs });

  return {
    dir,
    async pull(ref, pullOpts = {}) {
      const host = ref.split('/')[0] ?? '';
      writeFileSync(registriesConf, `unqualified-search-registries = []\n[[registry]]\nlocation = "${host}"\ninsecure = true\n`);
      const res = await inNamespace(`exec podman --log-level=debug pull --tls-verify=false ${sh(ref)}`, 'pull', pullOpts.timeoutMs ?? 120_000);
      const partial = [...res.output.matchAll(/Retrieved partial blob (sha256:[0-9a-f]{64})/g)].map((m) => m[1]!);
      const partialFailures = res.output.split('\n').filter((l) => l.includes('Failed to retrieve partial blob'));
      const missing = { bytes: 0, of: 0 };
      for (const m of res.output.matchAll(/Missing (\d+) bytes out of (\d+)/g)) {
        missing.bytes += Number(m[1]);
        missing.of += Number(m[2]);
      }
      return { ...res, partial, partialFailures, missing };
    },
    async imageFiles(ref) {
      const script =
        `mnt=$(podman image mount ${sh(ref)}); cd "$mnt"; find . -type f -print0 | xargs -0 -r sha256sum; ` +
        `cd /; podman image unmount ${sh(ref)} >/dev/null`;
      const res = await inNamespace(script, 'files', 60_000);
      const files = new Map<string, string>();
      for (const line of res.stdout.split('\n')) {
        const m = /^([0-9a-f]{64}) {2}\.\/(.+)$/.exec(line);
        if (m) files.set(m[2]!, m[1]!);
      }
      return files;
    },
  };
}

/** A regular file in a tar: name and where its data sits in the tar. */
interface TarEntry {
  name: string;
  offset: number;
  size: number;
}

function tarEntries(tar: Buffer): TarEntry[] {
  const out: TarEntry[] = [];
  let off = 0;
  while (off + 512 <= tar.length) {
    const h = tar.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const str = (a: number, len: number): string => {
      const s = h.subarray(a, a + len);
      const z = s.indexOf(0);
      return s.subarray(0, z < 0 ? len : z).toString('utf8');
    };
    const prefix = str(345, 155);
    const name = prefix ? `${prefix}/${str(0, 100)}` : str(0, 100);
    const size = parseInt(str(124, 12).trim() || '0', 8);
    const type = str(156, 1);
    if (type === '0' || type === '') out.push({ name, offset: off + 512, size });
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

/** `path → sha256 hex` of the regular files in an image's gzip'd tar layers (later layers win). */
export async function expectedFiles(img: { layers: BlobInfo[] }): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const l of img.layers) {
    const tar = await gunzip(await readFile(l.path));
    for (const e of tarEntries(tar)) {
      files.set(e.name.replace(/^\.\//, ''), createHash('sha256').update(tar.subarray(e.offset, e.offset + e.size)).digest('hex'));
    }
  }
  return files;
}


/** A tar of one directory `dir/` followed by `files` (names relative to `dir`). */
function treeTar(dir: string, files: Buffer[]): Buffer {
  const parts: Buffer[] = [tarHeader(`${dir}/`, 0, '5')];
  files.forEach((data, i) => {
    parts.push(tarHeader(`${dir}/f${i}.bin`, data.length, '0'), data);
    const pad = (512 - (data.length % 512)) % 512;
    if (pad) parts.push(Buffer.alloc(pad));
  });
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** Writes an OCI layout (gzip'd layers, config, manifest, `index.json` listing it under `tag`). */
async function writeLayout(tars: Buffer[], tag: string): Promise<GeneratedImage> {
  const layoutDir = await tmpDir('oci-tree-');
  mkdirSync(join(layoutDir, 'blobs', 'sha256'), { recursive: true });
  const write = (data: Buffer, mediaType: string): BlobInfo => {
    const digest = sha256(data);
    const path = blobPath(layoutDir, digest);
    writeFileSync(path, data);
    return { digest, size: data.length, mediaType, path };
  };
  const platform = { os: 'linux', architecture: 'amd64' };
  const layers: BlobInfo[] = [];
  for (const tar of tars) layers.push(write(await gzip(tar, { level: 1 }), MediaType.ociLayerGzip));
  const config = Buffer.from(
    JSON.stringify({
      created: '2024-01-01T00:00:00Z',
      ...platform,
      config: { Env: ['PATH=/usr/bin:/bin'], Cmd: ['/bin/true'] },
      rootfs: { type: 'layers', diff_ids: tars.map((t) => sha256(t)) },
      history: tars.map(() => ({ created: '2024-01-01T00:00:00Z', created_by: 'regmirror test harness' })),
    }),
  );
  const configBlob = write(config, MediaType.ociConfig);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: configBlob.mediaType, digest: configBlob.digest, size: configBlob.size },
      layers: layers.map((x) => ({ mediaType: x.mediaType, digest: x.digest, size: x.size })),
    }),
  );
  const mblob = write(manifest, MediaType.ociManifest);
  writeFileSync(join(layoutDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    join(layoutDir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: MediaType.ociManifest, digest: mblob.digest, size: mblob.size, annotations: { 'org.opencontainers.image.ref.name': tag } }],
    }),
  );
  return {
    layoutDir,
    tag,
    platform,
    manifestDigest: mblob.digest,
    manifestMediaType: MediaType.ociManifest,
    manifest,
    configDigest: configBlob.digest,
    config,
    configBlob,
    layers,
  };
}

/** Options for {@link makeSiblingImages}. */
export interface SiblingImagesOptions {
  /** Random payload size of each layer in bytes. */
  layers: number[];
  /** Files per layer (each layer is one directory `layerN/` holding `f0.bin`, `f1.bin`, …). */
  filesPerLayer: number;
  /** In the second image, every `changeEvery`-th file of each layer (f0, fN, f2N, …) has new random bytes. */
  changeEvery: number;
  /** Tags in the layouts' `index.json` (default `v1`, `v2`). */
  tags?: [string, string];
}

/**
 * Two images in OCI layouts whose layers hold the same files except every `changeEvery`-th one.
 * The layers are different blobs, so only a client that dedupes by file (zstd:chunked) saves bytes.
 *
 * Each layer has an explicit directory entry: containers/storage 1.43 copies files it already has
 * (from other layers) into the new layer in parallel without creating missing parent directories,
 * so with tars that lack directory entries (as `makeImage` writes) a partial pull fails now and then
 * with `open file "layer1/f32.bin" under rootfs for copy: … no such file or directory`.
 */
export async function makeSiblingImages(opts: SiblingImagesOptions): Promise<[GeneratedImage, GeneratedImage]> {
  const [tag1, tag2] = opts.tags ?? ['v1', 'v2'];
  const first: Buffer[] = [];
  const second: Buffer[] = [];
  opts.layers.forEach((payload, l) => {
    const per = Math.floor(payload / opts.filesPerLayer);
    const files = Array.from({ length: opts.filesPerLayer }, (_, i) => randomBytes(i === opts.filesPerLayer - 1 ? payload - per * (opts.filesPerLayer - 1) : per));
    first.push(treeTar(`layer${l}`, files));
    second.push(treeTar(`layer${l}`, files.map((f, i) => (i % opts.changeEvery === 0 ? randomBytes(f.length) : f))));
  });
  return [await writeLayout(first, tag1), await writeLayout(second, tag2)];
}

/** Media type of zstd:chunked layers as skopeo writes them. */
export const zstdLayerMediaType = 'application/vnd.oci.image.layer.v1.tar+zstd';
