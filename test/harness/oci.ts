/**
 * Generates OCI images on disk without network, and pushes/pulls them with skopeo or plain HTTP.
 *
 * Layers are gzip'd tars of random bytes (incompressible, so sizes on the wire are real). A layer
 * of payload size N is a blob of about N + 1.1 KiB (tar headers, gzip framing).
 *
 * skopeo runs with a fresh, private blob-info cache per call (see `skopeo()` below), so what it
 * asks a registry does not depend on earlier runs.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { gzip as gzipCb } from 'node:zlib';
import { spawnSync } from 'node:child_process';
import { run, tmpDir, type RunOutcome } from './proc.js';

const gzip = promisify(gzipCb);

/** Media types used here. */
export const MediaType = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

/** An OCI descriptor. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

/** Image platform. */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** A blob written into a layout. */
export interface BlobInfo {
  digest: string;
  size: number;
  mediaType: string;
  /** File holding the blob. */
  path: string;
}

/** Result of {@link makeImage}. */
export interface GeneratedImage {
  /** OCI layout directory (`oci-layout`, `index.json`, `blobs/sha256/…`). */
  layoutDir: string;
  /** Tag under which `index.json` lists the manifest (`oci:DIR:TAG`). */
  tag: string;
  platform: Platform;
  manifestDigest: string;
  manifestMediaType: string;
  /** Exact manifest bytes. */
  manifest: Buffer;
  configDigest: string;
  config: Buffer;
  configBlob: BlobInfo;
  /** Layer blobs (compressed), in manifest order. */
  layers: BlobInfo[];
}

/** Result of {@link makeIndex}. */
export interface GeneratedIndex {
  layoutDir: string;
  tag: string;
  indexDigest: string;
  indexMediaType: string;
  /** Exact index bytes. */
  index: Buffer;
  /** One image per platform, in index order (same layout dir). */
  images: GeneratedImage[];
}

/** Options for {@link makeImage}. */
export interface MakeImageOptions {
  /** Random payload size of each layer in bytes. */
  layers: number[];
  /** Default linux/amd64. */
  platform?: Platform;
  /** Layout dir (default: a fresh temp dir). May already hold a layout; blobs are added. */
  dir?: string;
  /** Tag in `index.json` (default `latest`). */
  tag?: string;
  /** `docker` writes Docker schema2 media types (push those with {@link pushImageHttp}). Default `oci`. */
  format?: 'oci' | 'docker';
  /** Split each layer's payload over this many files (default 1; podman partial pulls need many). */
  filesPerLayer?: number;
  /** gzip level (default 1; random data does not compress anyway). */
  gzipLevel?: number;
  /** Extra manifest annotations (e.g. to make two images differ without new layers). */
  annotations?: Record<string, string>;
  /** Do not list the manifest in index.json (used by makeIndex). */
  unlisted?: boolean;
}

/** Options for {@link makeIndex}. */
export interface MakeIndexOptions extends Omit<MakeImageOptions, 'platform' | 'unlisted'> {
  /** Default linux/amd64 and linux/arm64. */
  platforms?: Platform[];
}

/** `sha256:<hex>` of `data`. */
export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Path of a blob inside an OCI layout dir. */
export function blobPath(layoutDir: string, digest: string): string {
  const [alg, hex] = digest.split(':');
  if (!alg || !hex) throw new Error(`bad digest ${digest}`);
  return join(layoutDir, 'blobs', alg, hex);
}

function writeBlob(layoutDir: string, data: Buffer, mediaType: string): BlobInfo {
  const digest = sha256(data);
  const path = blobPath(layoutDir, digest);
  mkdirSync(join(layoutDir, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(path, data);
  return { digest, size: data.length, mediaType, path };
}

/** A ustar header for a regular file (`type` 0) or a directory (`type` 5). */
export function tarHeader(name: string, size: number, type: '0' | '5' = '0'): Buffer {
  const h = Buffer.alloc(512);
  const put = (s: string, off: number, len: number): void => {
    h.write(s, off, Math.min(len, Buffer.byteLength(s)), 'ascii');
  };
  const octal = (n: number, len: number): string => n.toString(8).padStart(len - 1, '0') + '\0';
  put(name, 0, 100);
  put(octal(type === '5' ? 0o755 : 0o644, 8), 100, 8);
  put(octal(0, 8), 108, 8);
  put(octal(0, 8), 116, 8);
  put(octal(size, 12), 124, 12);
  put(octal(1_700_000_000, 12), 136, 12);
  h.fill(' ', 148, 156);
  put(type, 156, 1);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  let sum = 0;
  for (const b of h) sum += b;
  put(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8);
  return h;
}

/** A tar holding `files` files of random bytes totalling `payload` bytes. */
function randomTar(payload: number, files: number, prefix: string): Buffer {
  const parts: Buffer[] = [];
  const per = Math.floor(payload / files);
  for (let i = 0; i < files; i++) {
    const size = i === files - 1 ? payload - per * (files - 1) : per;
    parts.push(tarHeader(`${prefix}/f${i}.bin`, size), randomBytes(size));
    const pad = (512 - (size % 512)) % 512;
    if (pad) parts.push(Buffer.alloc(pad));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

function writeLayoutFiles(layoutDir: string, listed: Descriptor[]): void {
  mkdirSync(layoutDir, { recursive: true });
  writeFileSync(join(layoutDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(join(layoutDir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: listed }));
}

/**
 * Writes a single-platform image into an OCI layout dir: random gzip'd tar layers, a config, and
 * a manifest listed in `index.json` under `tag`.
 */
export async function makeImage(opts: MakeImageOptions): Promise<GeneratedImage> {
  const layoutDir = opts.dir ?? (await tmpDir('oci-'));
  const tag = opts.tag ?? 'latest';
  const platform = opts.platform ?? { os: 'linux', architecture: 'amd64' };
  const docker = opts.format === 'docker';
  const layerType = docker ? MediaType.dockerLayerGzip : MediaType.ociLayerGzip;
  const layers: BlobInfo[] = [];
  const diffIds: string[] = [];
  for (const [i, size] of opts.layers.entries()) {
    const tar = randomTar(size, Math.max(1, opts.filesPerLayer ?? 1), `layer${i}`);
    diffIds.push(sha256(tar));
    const gz = await gzip(tar, { level: opts.gzipLevel ?? 1 });
    layers.push(writeBlob(layoutDir, gz, layerType));
  }
  const config = Buffer.from(
    JSON.stringify({
      created: '2024-01-01T00:00:00Z',
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config: { Env: ['PATH=/usr/bin:/bin'], Cmd: ['/bin/true'] },
      rootfs: { type: 'layers', diff_ids: diffIds },
      history: diffIds.map(() => ({ created: '2024-01-01T00:00:00Z', created_by: 'regmirror test harness' })),
    }),
  );
  const configBlob = writeBlob(layoutDir, config, docker ? MediaType.dockerConfig : MediaType.ociConfig);
  const manifestMediaType = docker ? MediaType.dockerManifest : MediaType.ociManifest;
  const manifestObj = {
    schemaVersion: 2,
    mediaType: manifestMediaType,
    config: { mediaType: configBlob.mediaType, digest: configBlob.digest, size: configBlob.size },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    ...(opts.annotations && !docker ? { annotations: opts.annotations } : {}),
  };
  const manifest = Buffer.from(JSON.stringify(manifestObj));
  const mblob = writeBlob(layoutDir, manifest, manifestMediaType);
  if (!opts.unlisted) {
    writeLayoutFiles(layoutDir, [
      {
        mediaType: manifestMediaType,
        digest: mblob.digest,
        size: mblob.size,
        annotations: { 'org.opencontainers.image.ref.name': tag },
      },
    ]);
  }
  return {
    layoutDir,
    tag,
    platform,
    manifestDigest: mblob.digest,
    manifestMediaType,
    manifest,
    configDigest: configBlob.digest,
    config,
    configBlob,
    layers,
  };
}

/**
 * Writes a multi-platform image: one image per platform (default linux/amd64 + linux/arm64) and an
 * OCI image index (or a Docker manifest list with `format: 'docker'`) listed in `index.json`.
 * Push it with `pushImage(…, {all: true})` (OCI) or {@link pushIndexHttp}.
 */
export async function makeIndex(opts: MakeIndexOptions): Promise<GeneratedIndex> {
  const layoutDir = opts.dir ?? (await tmpDir('oci-index-'));
  const tag = opts.tag ?? 'latest';
  const platforms = opts.platforms ?? [
    { os: 'linux', architecture: 'amd64' },
    { os: 'linux', architecture: 'arm64' },
  ];
  const images: GeneratedImage[] = [];
  for (const platform of platforms) {
    images.push(await makeImage({ ...opts, dir: layoutDir, tag, platform, unlisted: true }));
  }
  const indexMediaType = opts.format === 'docker' ? MediaType.dockerList : MediaType.ociIndex;
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: indexMediaType,
      manifests: images.map((img) => ({
        mediaType: img.manifestMediaType,
        digest: img.manifestDigest,
        size: img.manifest.length,
        platform: img.platform,
      })),
    }),
  );
  const iblob = writeBlob(layoutDir, index, indexMediaType);
  writeLayoutFiles(layoutDir, [
    {
      mediaType: indexMediaType,
      digest: iblob.digest,
      size: iblob.size,
      annotations: { 'org.opencontainers.image.ref.name': tag },
    },
  ]);
  return { layoutDir, tag, indexDigest: iblob.digest, indexMediaType, index, images };
}

/** Options for skopeo helpers. */
export interface SkopeoOptions {
  /** `--all`: copy every platform of an index (default false). */
  all?: boolean;
  /** `user:password` for the registry side. */
  creds?: string;
  /** Timeout in ms (default 120000). */
  timeoutMs?: number;
  /** Extra skopeo arguments placed before the source/destination. */
  extraArgs?: string[];
}

let canUnshare: boolean | undefined;

/**
 * Runs skopeo with a private, empty blob-info cache so runs are hermetic: as root skopeo keeps it
 * in /var/lib/containers/cache (then it runs in a private mount namespace with a temp dir mounted
 * there); otherwise under $XDG_DATA_HOME (pointed at a temp dir).
 */
async function skopeo(args: string[], name: string, timeoutMs: number): Promise<RunOutcome> {
  const cache = await tmpDir('skopeo-cache-');
  const root = process.getuid?.() === 0;
  if (root && canUnshare === undefined) {
    canUnshare = spawnSync('unshare', ['-m', 'true'], { stdio: 'ignore' }).status === 0;
  }
  if (root && canUnshare) {
    const script = 'mkdir -p /var/lib/containers/cache && mount --bind "$0" /var/lib/containers/cache && exec skopeo "$@"';
    return run('unshare', ['-m', 'sh', '-c', script, cache, ...args], { name, timeoutMs });
  }
  return run('skopeo', args, { name, timeoutMs, env: { ...process.env, XDG_DATA_HOME: cache } });
}

function splitRef(ref: string): { repo: string; tag: string } {
  const at = ref.indexOf('@');
  if (at >= 0) return { repo: ref.slice(0, at), tag: ref.slice(at) };
  const colon = ref.lastIndexOf(':');
  if (colon < 0 || ref.slice(colon).includes('/')) return { repo: ref, tag: 'latest' };
  return { repo: ref.slice(0, colon), tag: ref.slice(colon + 1) };
}

/** Runs `skopeo inspect --tls-verify=false [--raw] docker://HOST/REF` (hermetic cache) and returns stdout. */
export async function skopeoInspect(registryHost: string, ref: string, opts: { raw?: boolean; creds?: string } = {}): Promise<string> {
  const { repo, tag } = splitRef(ref);
  const src = tag.startsWith('@') ? `docker://${registryHost}/${repo}${tag}` : `docker://${registryHost}/${repo}:${tag}`;
  const res = await skopeo(
    ['inspect', '--tls-verify=false', ...(opts.raw ? ['--raw'] : []), ...(opts.creds ? ['--creds', opts.creds] : []), src],
    'skopeo-inspect',
    60_000,
  );
  return res.stdout;
}

/**
 * Pushes a layout to a registry with
 * `skopeo copy --dest-tls-verify=false [--all] oci:DIR:TAG docker://HOST/REPO:TAG`.
 * @param layout - a generated image/index or `{layoutDir, tag}`
 * @param registryHost - `127.0.0.1:PORT`
 * @param ref - `repo:tag` (or `repo@digest`)
 */
export async function pushImage(
  layout: { layoutDir: string; tag: string },
  registryHost: string,
  ref: string,
  opts: SkopeoOptions = {},
): Promise<RunOutcome> {
  const { repo, tag } = splitRef(ref);
  const dest = tag.startsWith('@') ? `docker://${registryHost}/${repo}${tag}` : `docker://${registryHost}/${repo}:${tag}`;
  return skopeo(
    [
      'copy',
      '--dest-tls-verify=false',
      ...(opts.all ? ['--all'] : []),
      ...(opts.creds ? ['--dest-creds', opts.creds] : []),
      ...(opts.extraArgs ?? []),
      `oci:${layout.layoutDir}:${layout.tag}`,
      dest,
    ],
    'skopeo-push',
    opts.timeoutMs ?? 120_000,
  );
}

/**
 * Pulls an image with `skopeo copy --src-tls-verify=false docker://HOST/REF dir:OUT` (or `oci:OUT:latest`).
 * skopeo verifies every digest, so success means the bytes were right.
 */
export async function pullImage(
  registryHost: string,
  ref: string,
  outDir: string,
  opts: SkopeoOptions & { format?: 'dir' | 'oci' } = {},
): Promise<RunOutcome> {
  const { repo, tag } = splitRef(ref);
  const src = tag.startsWith('@') ? `docker://${registryHost}/${repo}${tag}` : `docker://${registryHost}/${repo}:${tag}`;
  const dest = opts.format === 'oci' ? `oci:${outDir}:latest` : `dir:${outDir}`;
  return skopeo(
    [
      'copy',
      '--src-tls-verify=false',
      ...(opts.all ? ['--all'] : []),
      ...(opts.creds ? ['--src-creds', opts.creds] : []),
      ...(opts.extraArgs ?? []),
      src,
      dest,
    ],
    'skopeo-pull',
    opts.timeoutMs ?? 120_000,
  );
}

/** Extra request headers (e.g. `Authorization`) for the HTTP helpers. */
export interface HttpOptions {
  headers?: Record<string, string>;
}

/** A blob stored in a file (see {@link randomBlobFile}). */
export interface BlobFile {
  path: string;
  size: number;
  digest: string;
}

/** Writes `size` random bytes to a new file in `dir` (streaming, hashing as it goes). */
export async function randomBlobFile(dir: string, size: number): Promise<BlobFile> {
  const path = join(dir, `blob-${randomBytes(6).toString('hex')}.bin`);
  const out = createWriteStream(path);
  const hash = createHash('sha256');
  const chunk = 1 << 20;
  for (let done = 0; done < size; done += chunk) {
    const buf = randomBytes(Math.min(chunk, size - done));
    hash.update(buf);
    if (!out.write(buf)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return { path, size, digest: `sha256:${hash.digest('hex')}` };
}

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** node:http request with a streamed file or buffer body (fetch cannot stream a file with a known length simply). */
function httpRequest(
  method: string,
  url: string,
  headers: Record<string, string>,
  body?: Buffer | BlobFile,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const len = body === undefined ? 0 : Buffer.isBuffer(body) ? body.length : body.size;
    const req = request(url, { method, headers: { ...headers, 'Content-Length': String(len) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body === undefined) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else createReadStream(body.path).on('error', reject).pipe(req);
  });
}

function header(res: RawResponse, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

function httpFail(what: string, res: RawResponse): Error {
  return new Error(`${what}: HTTP ${res.status} ${res.body.toString('utf8').slice(0, 500)}`);
}

/**
 * Uploads a blob monolithically: `POST /v2/<repo>/blobs/uploads/` then `PUT <location>&digest=`.
 * Streams a {@link BlobFile} from disk (fine for 64 MiB and more).
 * @returns the blob's digest
 */
export async function putBlob(registryUrl: string, repo: string, data: Buffer | BlobFile, opts: HttpOptions = {}): Promise<string> {
  const digest = Buffer.isBuffer(data) ? sha256(data) : data.digest;
  const headers = opts.headers ?? {};
  const start = await httpRequest('POST', `${registryUrl}/v2/${repo}/blobs/uploads/`, headers);
  if (start.status !== 202) throw httpFail(`start upload to ${repo}`, start);
  const loc = header(start, 'location');
  if (!loc) throw new Error(`start upload to ${repo}: no Location header`);
  const url = new URL(loc, registryUrl);
  url.searchParams.set('digest', digest);
  const put = await httpRequest('PUT', url.toString(), { ...headers, 'Content-Type': 'application/octet-stream' }, data);
  if (put.status !== 201) throw httpFail(`upload ${digest} to ${repo}`, put);
  return digest;
}

/**
 * `PUT /v2/<repo>/manifests/<reference>` with the exact bytes and media type.
 * @returns the digest the registry reports (`Docker-Content-Digest`)
 */
export async function putManifest(
  registryUrl: string,
  repo: string,
  reference: string,
  body: Buffer | string,
  mediaType: string,
  opts: HttpOptions = {},
): Promise<string> {
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const res = await httpRequest(
    'PUT',
    `${registryUrl}/v2/${repo}/manifests/${reference}`,
    { ...(opts.headers ?? {}), 'Content-Type': mediaType },
    buf,
  );
  if (res.status !== 201) throw httpFail(`put manifest ${repo}:${reference}`, res);
  return header(res, 'docker-content-digest') ?? sha256(buf);
}

/** Pushes a generated image over the HTTP API (blobs, then the manifest under `tag`). */
export async function pushImageHttp(
  registryUrl: string,
  repo: string,
  tag: string,
  img: GeneratedImage,
  opts: HttpOptions = {},
): Promise<string> {
  for (const b of [img.configBlob, ...img.layers]) await putBlob(registryUrl, repo, { path: b.path, size: b.size, digest: b.digest }, opts);
  return putManifest(registryUrl, repo, tag, img.manifest, img.manifestMediaType, opts);
}

/** Pushes a generated index over the HTTP API: every image by digest, then the index under `tag`. */
export async function pushIndexHttp(
  registryUrl: string,
  repo: string,
  tag: string,
  idx: GeneratedIndex,
  opts: HttpOptions = {},
): Promise<string> {
  for (const img of idx.images) await pushImageHttp(registryUrl, repo, img.manifestDigest, img, opts);
  return putManifest(registryUrl, repo, tag, idx.index, idx.indexMediaType, opts);
}

/** Reads a blob file of an OCI layout or a skopeo `dir:` output (`dir:` names blobs by hex only). */
export async function readLayoutBlob(dir: string, digest: string): Promise<Buffer> {
  const hex = digest.split(':')[1] ?? '';
  for (const p of [blobPath(dir, digest), join(dir, hex)]) {
    try {
      await stat(p);
      return await readFile(p);
    } catch {
      /* try next */
    }
  }
  throw new Error(`blob ${digest} not found in ${dir}`);
}
