/**
 * An S3-backed upstream registry: s3rver on loopback, a counting relay in front of it, and a
 * read-only `docker-registry` with the s3 driver whose blob GETs answer 307 to presigned URLs on
 * the relay. s3rver lacks ListMultipartUploads, so content is pushed into a filesystem registry
 * first and its storage tree copied into the bucket (plain unsigned PUTs: s3rver only checks
 * signatures on signed requests).
 *
 * s3rver quirks (3.7.1): a multi-range GET gets 206 with the whole object and a full
 * `Content-Range` (the relay turns that into Amazon's 200 by default, see `multiRange`); a suffix
 * range `bytes=-N` is served as `bytes=0-N` (wrong; Amazon serves the last N bytes).
 */
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { request } from 'node:http';
import { join, relative, sep } from 'node:path';
import S3rver from 's3rver';
import { registerCleanup, tmpDir } from './proc.js';
import { startRegistry, type Registry } from './registry.js';
import { startRelay, type Relay, type RelayRecord } from './relay.js';

/** Options for {@link startS3Registry}. */
export interface S3RegistryOptions {
  /** Storage to serve: a filesystem registry (pushed to beforehand) or its data dir. */
  from: Registry | string;
  /** Bucket name (default `registry`). */
  bucket?: string;
  /** The s3 driver's `rootdirectory` (default `/reg`). */
  rootdirectory?: string;
  /** Throttle of the S3 relay (bytes per second). */
  bytesPerSecond?: number;
  /**
   * How multi-range GETs are answered. `amazon` (default): the relay drops such a `Range` header so
   * the answer is 200 with the whole object, as Amazon S3 does. `s3rver`: passed through; s3rver
   * answers 206 with the whole object and `Content-Range: bytes 0-(size-1)/size`.
   */
  multiRange?: 'amazon' | 's3rver';
  /** Label for logs (default `s3-registry`). */
  name?: string;
}

/** The S3 side as seen through the counting relay. */
export interface S3Side {
  /** Relay URL (the driver's `regionendpoint`; presigned URLs point here). */
  readonly url: string;
  /** s3rver's own URL (uncounted). */
  readonly directUrl: string;
  readonly bucket: string;
  readonly rootdirectory: string;
  /** The relay (fault modes, throttle, full request log). */
  readonly relay: Relay;
  /** Response body bytes the S3 server sent through the relay (all requests). */
  bytesSent(): number;
  /**
   * Bytes of presigned blob GETs (`…/blobs/sha256/xx/<hex>/data?X-Amz-Signature=…`): what clients
   * read from S3 after a 307. The registry's own signed reads (manifests, links) are not included.
   */
  blobBytes(): number;
  /** Requests made with a presigned URL (clients following a 307). */
  presignedRequests(): RelayRecord[];
  /** Requests seen by the relay. */
  requests(): RelayRecord[];
  /** Zeroes the relay's counters. */
  reset(): void;
}

/** A running S3-backed registry. */
export interface S3Registry {
  /** The read-only registry using the s3 driver (redirects enabled). */
  registry: Registry;
  s3: S3Side;
  /** Number of objects copied into the bucket. */
  objects: number;
  /** Stops registry, relay and s3rver. */
  stop(): Promise<void>;
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const ent of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, ent.name);
    if (ent.isDirectory()) out.push(...(await walk(p)));
    else if (ent.isFile()) out.push(p);
  }
  return out;
}

function putObject(baseUrl: string, key: string, file: string, size: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const url = `${baseUrl}/${key.split('/').map(encodeURIComponent).join('/')}`;
    const req = request(url, { method: 'PUT', headers: { 'Content-Length': String(size), 'Content-Type': 'application/octet-stream' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        if (res.statusCode === 200) resolve();
        else reject(new Error(`S3 PUT ${key}: HTTP ${String(res.statusCode)} ${Buffer.concat(chunks).toString('utf8').slice(0, 300)}`));
      });
    });
    req.on('error', reject);
    createReadStream(file).on('error', reject).pipe(req);
  });
}

/**
 * Copies every file under `<dataDir>/docker/registry/v2` to `s3://<bucket>/<rootdirectory>/docker/registry/v2/…`.
 * @returns the number of objects written
 */
export async function copyTreeToS3(dataDir: string, s3Url: string, bucket: string, rootdirectory: string): Promise<number> {
  const base = join(dataDir, 'docker');
  await stat(base).catch(() => {
    throw new Error(`${dataDir} holds no registry storage (no docker/ dir): push something first`);
  });
  const files = await walk(base);
  const prefix = rootdirectory.replace(/^\/+|\/+$/g, '');
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < files.length) {
      const file = files[next++];
      if (file === undefined) break;
      const rel = relative(dataDir, file).split(sep).join('/');
      const { size } = await stat(file);
      await putObject(`${s3Url}/${bucket}`, prefix ? `${prefix}/${rel}` : rel, file, size);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return files.length;
}

const S3_BLOB = /\/blobs\/sha256\/[0-9a-f]{2}\/[0-9a-f]{64}\/data(?:\?|$)/;
const PRESIGNED = /[?&]X-Amz-Signature=/;

/**
 * Starts s3rver (127.0.0.1, ephemeral port), a counting relay in front of it, copies the given
 * registry storage into the bucket, and starts a read-only s3-driver registry over it (with
 * `AWS_CA_BUNDLE` removed from its environment: the driver panics when it is set).
 */
export async function startS3Registry(opts: S3RegistryOptions): Promise<S3Registry> {
  const name = opts.name ?? 's3-registry';
  const bucket = opts.bucket ?? 'registry';
  const rootdirectory = opts.rootdirectory ?? '/reg';
  const dataDir = typeof opts.from === 'string' ? opts.from : opts.from.dataDir;
  const s3dir = await tmpDir('s3rver-');
  const s3 = new S3rver({ port: 0, address: '127.0.0.1', directory: s3dir, silent: true, configureBuckets: [{ name: bucket }] });
  const addr = await s3.run();
  let s3Running = true;
  const stopS3 = async (): Promise<void> => {
    if (!s3Running) return;
    s3Running = false;
    await s3.close();
  };
  registerCleanup(`s3rver :${addr.port}`, stopS3);
  const directUrl = `http://127.0.0.1:${addr.port}`;
  const relay = await startRelay({
    target: directUrl,
    name: 's3',
    dropMultiRange: (opts.multiRange ?? 'amazon') === 'amazon',
    ...(opts.bytesPerSecond ? { bytesPerSecond: opts.bytesPerSecond } : {}),
  });
  const objects = await copyTreeToS3(dataDir, directUrl, bucket, rootdirectory);
  const registry = await startRegistry({
    name,
    readOnly: true,
    unsetEnv: ['AWS_CA_BUNDLE'],
    s3: {
      accesskey: 'S3RVER',
      secretkey: 'S3RVER',
      region: 'us-east-1',
      regionendpoint: relay.url,
      bucket,
      secure: false,
      v4auth: true,
      forcepathstyle: true,
      rootdirectory,
    },
  });
  const side: S3Side = {
    url: relay.url,
    directUrl,
    bucket,
    rootdirectory,
    relay,
    bytesSent: () => relay.stats().bytes,
    blobBytes: () =>
      relay
        .stats()
        .log.filter((r) => r.method === 'GET' && S3_BLOB.test(r.path) && PRESIGNED.test(r.path))
        .reduce((n, r) => n + r.bytes, 0),
    presignedRequests: () => relay.stats().log.filter((r) => PRESIGNED.test(r.path)),
    requests: () => relay.stats().log,
    reset: () => relay.reset(),
  };
  return {
    registry,
    s3: side,
    objects,
    stop: async () => {
      await registry.stop();
      await relay.close();
      await stopS3();
    },
  };
}
