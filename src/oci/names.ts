/**
 * The distribution-spec grammar for repository names, tags and manifest references.
 * Everything a client sends is checked here before it touches disk or the upstream.
 */
import { InvalidInput } from './errors.js';
import { looksLikeDigest, parseDigest, type Digest } from './digest.js';

const COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const NAME_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

/** Clients cap host + name at 255 characters; we cap the name alone at that. */
export const MAX_NAME_LENGTH = 255;

/** Names that passed the grammar: clients ask for the same few repositories over and over. */
const validNames = new Set<string>();
const VALID_NAMES_MAX = 4096;

/** True when `name` is a valid repository name. */
export function isValidName(name: string): boolean {
  if (validNames.has(name)) return true;
  if (name.length === 0 || name.length > MAX_NAME_LENGTH || !NAME_RE.test(name)) return false;
  if (validNames.size >= VALID_NAMES_MAX) validNames.clear();
  validNames.add(name);
  return true;
}

/** True when `tag` is a valid tag. */
export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

/** Checks a repository name or throws {@link InvalidInput} (`name`). */
export function checkName(name: string): string {
  if (!isValidName(name)) throw new InvalidInput('name', 'invalid repository name', { name: name.slice(0, 300) });
  return name;
}

/** Checks a digest or throws {@link InvalidInput} (`digest`). */
export function checkDigest(value: string): Digest {
  const d = parseDigest(value);
  if (!d) throw new InvalidInput('digest', 'invalid or unsupported digest', { digest: value.slice(0, 300) });
  return d;
}

/** A manifest reference: a tag or a digest. */
export type Reference = Readonly<{ kind: 'tag'; tag: string } | { kind: 'digest'; digest: Digest }>;

/** References that passed the grammar, as parsed (never changed once made): the same few, over and over. */
const validReferences = new Map<string, Reference>();
const VALID_REFERENCES_MAX = 4096;

/** Parses a manifest reference or throws {@link InvalidInput} (`tag` or `digest`). */
export function checkReference(ref: string): Reference {
  let r = validReferences.get(ref);
  if (r !== undefined) return r;
  // A tag has no ':', so only a reference with one can be (or fail as) a digest.
  if (ref.includes(':') && looksLikeDigest(ref)) r = { kind: 'digest', digest: checkDigest(ref) };
  else if (isValidTag(ref)) r = { kind: 'tag', tag: ref };
  else throw new InvalidInput('tag', 'invalid tag', { tag: ref.slice(0, 300) });
  if (validReferences.size >= VALID_REFERENCES_MAX) validReferences.clear();
  validReferences.set(ref, r);
  return r;
}
