/**
 * The Accept headers real clients send when they resolve a tag, byte for byte as captured on this
 * machine (a logging HTTP server standing in for the mirror):
 *
 * - containerd 1.6.20 (`ctr`, CRI): `HEAD …/manifests/<tag>?ns=…` with ONE comma-separated line ending `*∕*`.
 * - containers/image 5.23 (skopeo 1.9.3, podman 4.3): SIX separate Accept lines, schema1 types included.
 * - dockerd 20.10.24 (`registry-mirrors`): HEAD, then GET, each with one line per type (six, order random
 *   per request), including `application/json` (schema1).
 *
 * A mirror keys its tag answers on the set of accepted types, so a tag warmed for one client is
 * not warm for another: `regmirror warm` asks once with each set.
 */

import { DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST } from '../oci/accept.js';

/** Manifest media types (image-spec and Docker schema2). */
export const MediaTypes = {
  ociIndex: OCI_INDEX,
  ociManifest: OCI_MANIFEST,
  dockerList: DOCKER_LIST,
  dockerManifest: DOCKER_MANIFEST,
} as const;

/** The media types of manifests that list other manifests (per platform). */
export const INDEX_TYPES: ReadonlySet<string> = new Set([MediaTypes.ociIndex, MediaTypes.dockerList]);
/** The media types of single-platform image manifests. */
export const IMAGE_TYPES: ReadonlySet<string> = new Set([MediaTypes.ociManifest, MediaTypes.dockerManifest]);

/** One client's way of asking for a tag. */
export interface ClientAccept {
  /** Who sends it. */
  client: 'containerd' | 'containers-image' | 'dockerd';
  /** The Accept header lines, in the order that client sends them. */
  lines: readonly string[];
}

/** The Accept sets of the clients a mirror serves, the first being the one used to walk the image. */
export const CLIENT_ACCEPTS: readonly ClientAccept[] = [
  {
    client: 'containerd',
    lines: [`${MediaTypes.dockerManifest}, ${MediaTypes.dockerList}, ${MediaTypes.ociManifest}, ${MediaTypes.ociIndex}, */*`],
  },
  {
    client: 'containers-image',
    lines: [
      MediaTypes.ociManifest,
      MediaTypes.dockerManifest,
      'application/vnd.docker.distribution.manifest.v1+prettyjws',
      'application/vnd.docker.distribution.manifest.v1+json',
      MediaTypes.dockerList,
      MediaTypes.ociIndex,
    ],
  },
  {
    client: 'dockerd',
    lines: [
      MediaTypes.ociIndex,
      'application/vnd.docker.distribution.manifest.v1+prettyjws',
      'application/json',
      MediaTypes.ociManifest,
      MediaTypes.dockerManifest,
      MediaTypes.dockerList,
    ],
  },
];

/** What to send when fetching a manifest by digest (the answer is fixed by the digest; any type goes). */
export const ANY_MANIFEST_ACCEPT = `${MediaTypes.ociIndex}, ${MediaTypes.ociManifest}, ${MediaTypes.dockerList}, ${MediaTypes.dockerManifest}, */*`;
