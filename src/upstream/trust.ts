/**
 * Where an upstream may send the mirror: the address policy for redirect targets and token realms.
 *
 * A hostile or compromised upstream must not be able to point the mirror at internal services
 * (cloud metadata on 169.254.169.254, admin ports on loopback, the private network). So a host the
 * upstream names (a redirect's Location, a token realm on another host) is connected to only when it
 * is the upstream's own host, a host named in `trust.allowRedirectHosts`, or every address it resolves
 * to is public — or of the same class as the upstream's own address (an upstream on loopback may
 * redirect to loopback), or `trust.allowPrivateRedirects` is set.
 *
 * The check runs inside undici's connector, on the very addresses the socket connects to: the
 * connector's `lookup` resolves the name (all addresses), refuses the connection when any of them
 * fails, and hands the checked addresses to `net.connect`, so a DNS answer that changes between a
 * check and the connect (rebinding) cannot slip through.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP, isIPv4 } from 'node:net';
import { buildConnector } from 'undici';
import type { TrustPolicy } from '../config/types.js';

/** What kind of network an address is on. Everything but `public` is refused by default. */
export type AddressClass = 'public' | 'loopback' | 'private' | 'link-local' | 'shared' | 'unspecified' | 'reserved';

function v4Octets(a: string): [number, number, number, number] {
  const p = a.split('.').map(Number);
  return [p[0]!, p[1]!, p[2]!, p[3]!];
}

function classifyV4(a: string): AddressClass {
  const [x, y] = v4Octets(a);
  if (x === 0) return 'unspecified'; // 0.0.0.0/8 ("this network"; 0.0.0.0 reaches loopback on Linux)
  if (x === 127) return 'loopback';
  if (x === 10 || (x === 172 && y >= 16 && y <= 31) || (x === 192 && y === 168)) return 'private'; // RFC 1918
  if (x === 169 && y === 254) return 'link-local';
  if (x === 100 && y >= 64 && y <= 127) return 'shared'; // 100.64/10, carrier-grade NAT (RFC 6598)
  if (x >= 224) return 'reserved'; // multicast, 240/4 and broadcast
  return 'public';
}

/** Expands an IPv6 address into its eight 16-bit groups (an embedded IPv4 tail is converted). */
function v6Groups(a: string): number[] | undefined {
  let s = a.toLowerCase();
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (tail) {
    const [p, q, r, t] = v4Octets(tail[1]!);
    s = s.slice(0, tail.index) + ((p << 8) | q).toString(16) + ':' + ((r << 8) | t).toString(16);
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(':') : [];
  const rest = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...rest].map((g) => parseInt(g, 16));
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : undefined;
}

/**
 * The class of an IP address (v4 or v6; brackets and a zone id are accepted). IPv4-mapped and
 * IPv4-compatible forms are classified as their IPv4 address, so `::ffff:127.0.0.1` is loopback.
 * Anything that is not an IP address is `reserved` (never trusted as an address).
 */
export function classifyAddress(address: string): AddressClass {
  const a = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  if (isIPv4(a)) return classifyV4(a);
  const g = v6Groups(a);
  if (!g || isIP(a.split('%')[0]!) !== 6) return 'reserved';
  const [g0, , , , , g5, g6, g7] = g as [number, number, number, number, number, number, number, number];
  const firstFive = g.slice(0, 5).every((x) => x === 0);
  if (firstFive && (g5 === 0xffff || g5 === 0) && !(g5 === 0 && g6 === 0 && g7 <= 1)) {
    // ::ffff:a.b.c.d (mapped) and the deprecated ::a.b.c.d (compatible).
    return classifyV4(`${g6 >> 8}.${g6 & 255}.${g7 >> 8}.${g7 & 255}`);
  }
  if (g.every((x) => x === 0)) return 'unspecified';
  if (g.slice(0, 7).every((x) => x === 0) && g7 === 1) return 'loopback';
  if ((g0 & 0xfe00) === 0xfc00) return 'private'; // fc00::/7 unique local
  if ((g0 & 0xffc0) === 0xfe80) return 'link-local'; // fe80::/10
  if ((g0 & 0xff00) === 0xff00) return 'reserved'; // multicast
  if (g0 === 0x64 && g[1] === 0xff9b) return classifyV4(`${g6 >> 8}.${g6 & 255}.${g7 >> 8}.${g7 & 255}`); // NAT64 64:ff9b::/96
  return 'public';
}

/** Thrown (inside the connector) when a host the upstream named resolves to an address the policy refuses. */
export class AddressRefused extends Error {
  readonly code = 'REGMIRROR_ADDRESS_REFUSED';
  constructor(
    /** The host name as named by the upstream (never a path or query). */
    readonly host: string,
    readonly address: string,
    readonly addressClass: AddressClass,
  ) {
    super(`refusing to connect to ${host} (${address} is ${addressClass})`);
    this.name = 'AddressRefused';
  }
}

/** Finds an {@link AddressRefused} in an error or its causes (undici may wrap connector errors). */
export function addressRefusal(err: unknown): AddressRefused | undefined {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof AddressRefused) return e;
  }
  return undefined;
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** A DNS lookup in the shape `net.connect` expects (`dns.lookup`'s). */
type Lookup = (hostname: string, options: LookupOptions, callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void) => void;

/** The trust policy of one upstream. */
export class UpstreamTrust {
  private readonly upstreamHost: string;
  private readonly allowHosts: Set<string>;
  private upstreamClasses: Promise<Set<AddressClass>> | undefined;

  constructor(
    upstreamUrl: URL,
    private readonly policy: TrustPolicy,
    private readonly resolve: Lookup = dnsLookup as unknown as Lookup,
  ) {
    this.upstreamHost = stripBrackets(upstreamUrl.hostname.toLowerCase());
    this.allowHosts = new Set(policy.allowRedirectHosts.map((h) => h.toLowerCase()));
  }

  /** True when `url` is on the upstream's own host (any port or scheme): the host the operator configured. */
  isUpstreamHost(url: URL): boolean {
    return stripBrackets(url.hostname.toLowerCase()) === this.upstreamHost;
  }

  /** True when the host is trusted by name: the upstream's own, or named in `trust.allowRedirectHosts` (`host` or `host:port`). */
  trustsHostName(hostname: string, port: string | number | undefined): boolean {
    const h = stripBrackets(hostname.toLowerCase());
    if (h === this.upstreamHost) return true;
    const withPort = port ? `${h.includes(':') ? `[${h}]` : h}:${port}` : undefined;
    return this.allowHosts.has(h) || (withPort !== undefined && this.allowHosts.has(withPort));
  }

  /** Why the policy refuses a URL before any connection (scheme), or undefined. */
  refuseScheme(url: URL): string | undefined {
    return url.protocol === 'http:' || url.protocol === 'https:' ? undefined : `scheme ${url.protocol.replace(/:$/, '')}`;
  }

  /** The classes of the upstream's own addresses (resolved once). */
  private ownClasses(): Promise<Set<AddressClass>> {
    if (!this.upstreamClasses) {
      const h = this.upstreamHost;
      this.upstreamClasses = isIP(h)
        ? Promise.resolve(new Set([classifyAddress(h)]))
        : new Promise((resolve) => {
            this.resolve(h, { all: true }, (err, addrs) => {
              // Unresolvable now: trust no private class for it (and try again next time).
              if (err || !Array.isArray(addrs)) {
                this.upstreamClasses = undefined;
                resolve(new Set());
                return;
              }
              resolve(new Set(addrs.map((a) => classifyAddress(a.address))));
            });
          });
    }
    return this.upstreamClasses;
  }

  /** The first address in `addresses` the policy refuses, with its class, or undefined when all pass. */
  async refusedAddress(addresses: readonly string[]): Promise<{ address: string; cls: AddressClass } | undefined> {
    const own = this.policy.allowPrivateRedirects ? undefined : await this.ownClasses();
    for (const address of addresses) {
      const cls = classifyAddress(address);
      if (cls === 'public' || own === undefined) continue;
      // `unspecified` and `reserved` are never a class an upstream legitimately shares.
      if (cls !== 'unspecified' && cls !== 'reserved' && own.has(cls)) continue;
      return { address, cls };
    }
    return undefined;
  }

  /** A `dns.lookup` that resolves every address and fails with {@link AddressRefused} unless all pass. */
  private checkedLookup(): Lookup {
    return (hostname, options, callback) => {
      this.resolve(hostname, { ...options, all: true }, (err, addrs) => {
        if (err) return callback(err, []);
        const list = Array.isArray(addrs) ? addrs : [{ address: addrs, family: isIP(addrs) }];
        this.refusedAddress(list.map((a) => a.address)).then(
          (bad) => {
            if (bad) return callback(new AddressRefused(hostname, bad.address, bad.cls) as NodeJS.ErrnoException, []);
            if (options.all) return callback(null, list);
            const first = list[0];
            if (!first) return callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }), []);
            callback(null, first.address, first.family);
          },
          (e: unknown) => callback(e as NodeJS.ErrnoException, []),
        );
      });
    };
  }

  /**
   * An undici connector that applies this policy to every connection: hosts trusted by name connect
   * as usual; an IP literal is checked as it is; a name is resolved by a lookup that checks every
   * address and gives `net.connect` only checked ones.
   */
  connector(opts: buildConnector.BuildOptions): buildConnector.connector {
    const plain = buildConnector(opts);
    const checked = buildConnector({ ...opts, lookup: this.checkedLookup() } as buildConnector.BuildOptions);
    return (options, callback) => {
      const host = stripBrackets(options.hostname);
      if (this.trustsHostName(host, options.port)) return plain(options, callback);
      if (isIP(host)) {
        this.refusedAddress([host]).then(
          (bad) => (bad ? callback(new AddressRefused(host, bad.address, bad.cls), null) : plain(options, callback)),
          (e: unknown) => callback(e as Error, null),
        );
        return;
      }
      checked(options, callback);
    };
  }
}
