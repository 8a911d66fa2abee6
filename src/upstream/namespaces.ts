/** Which upstream serves which registry namespace (`docker.io`, `ghcr.io`, …), and the default one. */
import type { Upstream } from './client.js';

export class Namespaces {
  private readonly byName = new Map<string, Upstream>();

  constructor(upstreams: Iterable<Upstream>, readonly defaultNamespace: string) {
    for (const u of upstreams) this.byName.set(u.namespace, u);
    if (!this.byName.has(defaultNamespace)) throw new Error(`default namespace ${defaultNamespace} has no upstream`);
  }

  /** The upstream for a namespace, if one is configured. */
  get(namespace: string): Upstream | undefined {
    return this.byName.get(namespace);
  }

  /** The upstream for requests that name no namespace. */
  get default(): Upstream {
    return this.byName.get(this.defaultNamespace)!;
  }

  /** Every configured namespace, in configuration order. */
  names(): string[] {
    return [...this.byName.keys()];
  }

  /** Every upstream. */
  all(): Upstream[] {
    return [...this.byName.values()];
  }
}
