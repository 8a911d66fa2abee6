/**
 * Accept handling for manifests. Clients send Accept differently (containerd one comma-separated line,
 * containers/image several lines, dockerd one line per type in random order), so every Accept line is
 * merged, parameters and q-values are dropped, and what is left is reduced to a canonical class: which of
 * the known manifest and index media types are accepted, and whether a wildcard is. Unknown types play no
 * part, so nothing a client sends can multiply tag-cache keys or upstream revalidations (at most 2^5 keys).
 */

export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';

/** The media types a manifest endpoint may answer with, in the order sent upstream when a client names none. */
export const MANIFEST_TYPES = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST] as const;

/** Short names of the known types, for the canonical key. */
const SHORT: Record<string, string> = { [OCI_INDEX]: 'oci-index', [OCI_MANIFEST]: 'oci-manifest', [DOCKER_LIST]: 'docker-list', [DOCKER_MANIFEST]: 'docker-manifest' };

/** A client's accepted manifest types (known types only). `any` when it sent no Accept, a wildcard, or nothing known. */
export interface AcceptSet {
  /** Known media types accepted, sorted. */
  readonly types: readonly string[];
  readonly any: boolean;
  /** Canonical key: the short names of the accepted known types, plus `*` for a wildcard. */
  readonly key: string;
}

/** Parsed Accept sets by their raw header: clients send the same few Accept values over and over. */
const memo = new Map<string, AcceptSet>();
const MEMO_MAX = 512;

/**
 * The last Accept value parsed, and its set: a header string is new on every request, and comparing it
 * with the last one costs less than hashing it for the memo (a pulling client sends one value throughout).
 */
let lastHeader = '';
let lastSet: AcceptSet | undefined;

/** Merges Accept header lines into an {@link AcceptSet}. */
export function parseAccept(header: string | string[] | undefined): AcceptSet {
  if (typeof header !== 'string' || header.length > 4096) return parseAcceptUncached(header);
  if (lastSet !== undefined && header === lastHeader) return lastSet;
  let set = memo.get(header);
  if (!set) {
    set = parseAcceptUncached(header);
    if (memo.size >= MEMO_MAX) memo.clear();
    memo.set(header, set);
  }
  lastHeader = header;
  lastSet = set;
  return set;
}

function parseAcceptUncached(header: string | string[] | undefined): AcceptSet {
  const lines = header === undefined ? [] : Array.isArray(header) ? header : [header];
  const types = new Set<string>();
  let any = false;
  for (const line of lines) {
    for (const part of line.split(',')) {
      const [typeRaw, ...params] = part.split(';');
      const type = (typeRaw ?? '').trim().toLowerCase();
      if (!type) continue;
      const q = params.map((x) => x.trim()).find((x) => x.startsWith('q='));
      if (q && Number(q.slice(2)) === 0) continue;
      if (type === '*/*' || type === 'application/*') any = true;
      else if (SHORT[type] !== undefined) types.add(type);
    }
  }
  if (types.size === 0) any = true;
  const sorted = [...types].sort();
  const names = sorted.map((t) => SHORT[t]!);
  if (any) names.push('*');
  return { types: sorted, any, key: names.join(',') };
}

/** True when a manifest of `mediaType` may be given to a client with this Accept set. */
export function accepts(set: AcceptSet, mediaType: string): boolean {
  return set.any || set.types.includes(mediaType.toLowerCase());
}

/** The Accept header to send upstream for this client (the client's types; all manifest types for a wildcard). */
export function upstreamAccept(set: AcceptSet): string {
  const types = new Set(set.types);
  if (set.any) for (const t of MANIFEST_TYPES) types.add(t);
  return [...types].join(', ') + (set.any ? ', */*' : '');
}
