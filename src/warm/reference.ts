/**
 * Image references as people write them (`nginx`, `ghcr.io/org/app@sha256:…`, `localhost:5000/x:1`),
 * normalised the way docker and containerd do: a first component containing `.` or `:` (or
 * `localhost`) names the registry, anything else is Docker Hub, where one-component names live
 * under `library/`.
 */
import { parseDigest, type Digest } from '../oci/digest.js';
import { isValidName, isValidTag } from '../oci/names.js';

/** Docker Hub's canonical registry name (what containerd sends as `?ns=`). */
export const DOCKER_HUB = 'docker.io';

/** Host names that are Docker Hub under another name. */
const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

/** A parsed, normalised image reference. */
export interface ImageRef {
  /** Registry host (and port), e.g. `docker.io`, `ghcr.io`, `localhost:5000`. */
  registry: string;
  /** Repository on that registry, e.g. `library/nginx`. */
  repository: string;
  /** The tag, if one was given (or `latest` when neither tag nor digest was). */
  tag?: string;
  /** The digest, if one was given; it wins over the tag for what is fetched. */
  digest?: Digest;
  /** Canonical form: `registry/repository[:tag][@digest]`. */
  canonical: string;
}

/** A reference that cannot be parsed; `message` says what is wrong with it. */
export class ReferenceError extends Error {
  override readonly name = 'ReferenceError';
  constructor(
    readonly input: string,
    reason: string,
  ) {
    super(`invalid image reference ${JSON.stringify(input)}: ${reason}`);
  }
}

/** docker's rule for "this first component is a registry host". */
function isRegistryHost(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost';
}

const HOST_RE = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$/;

/** Parses and normalises one image reference; throws {@link ReferenceError}. */
export function parseImageRef(input: string): ImageRef {
  const s = input.trim();
  if (!s) throw new ReferenceError(input, 'empty');
  let rest = s;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const d = rest.slice(at + 1);
    digest = parseDigest(d);
    if (!digest) throw new ReferenceError(input, `bad digest ${JSON.stringify(d)} (expected sha256:<64 hex> or sha512:<128 hex>)`);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!isValidTag(tag)) throw new ReferenceError(input, `bad tag ${JSON.stringify(tag)}`);
  }
  let registry = DOCKER_HUB;
  let repository = rest;
  const slash = rest.indexOf('/');
  if (slash > 0 && isRegistryHost(rest.slice(0, slash))) {
    registry = rest.slice(0, slash).toLowerCase();
    repository = rest.slice(slash + 1);
    if (!HOST_RE.test(registry)) throw new ReferenceError(input, `bad registry host ${JSON.stringify(registry)}`);
  }
  if (DOCKER_HUB_ALIASES.has(registry)) {
    registry = DOCKER_HUB;
    if (!repository.includes('/')) repository = `library/${repository}`;
  }
  if (!repository) throw new ReferenceError(input, 'no repository name');
  if (repository !== repository.toLowerCase()) throw new ReferenceError(input, 'repository names must be lowercase');
  if (!isValidName(repository) || registry.length + 1 + repository.length > 255) {
    throw new ReferenceError(input, `bad repository name ${JSON.stringify(repository)}`);
  }
  if (tag === undefined && digest === undefined) tag = 'latest';
  const canonical = `${registry}/${repository}${tag !== undefined ? `:${tag}` : ''}${digest ? `@${digest.value}` : ''}`;
  return { registry, repository, ...(tag !== undefined ? { tag } : {}), ...(digest ? { digest } : {}), canonical };
}

/** Reads a LIST file's text: one reference per line, blank lines and `#` comments (whole-line or trailing) ignored. */
export function parseRefList(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const hash = raw.indexOf('#');
    const line = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
    if (line) out.push(line);
  }
  return out;
}
