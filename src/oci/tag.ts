/** A tag's identity across the mirror: upstream namespace, upstream repository name, tag. */
export interface TagKey {
  namespace: string;
  repository: string;
  tag: string;
}

/** The storage key of a tag. */
export function tagKeyString(k: TagKey): string {
  return `${k.namespace}/${k.repository}:${k.tag}`;
}
