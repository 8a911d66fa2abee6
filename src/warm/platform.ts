/**
 * Platforms (`os/arch[/variant]`) with the OCI names and the normalisation containerd applies
 * (`aarch64` is `arm64`, arm64's `v8` and amd64's `v1` are the default variant, plain `arm` is `v7`),
 * and the host's own platform from Node's `process.platform` / `process.arch`.
 */

/** An OCI platform (image-spec `platform` object, the parts that select an image). */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** A `--platform` value that is not `os/arch[/variant]`. */
export class PlatformError extends Error {
  override readonly name = 'PlatformError';
}

const ARCH_ALIASES: Record<string, { architecture: string; variant?: string }> = {
  x86_64: { architecture: 'amd64' },
  'x86-64': { architecture: 'amd64' },
  aarch64: { architecture: 'arm64' },
  armhf: { architecture: 'arm', variant: 'v7' },
  armel: { architecture: 'arm', variant: 'v6' },
  i386: { architecture: '386' },
  i686: { architecture: '386' },
};

/** Normalises a platform so two spellings of the same one compare equal. */
export function normalizePlatform(p: Platform): Platform {
  const os = p.os.toLowerCase() === 'macos' ? 'darwin' : p.os.toLowerCase();
  let architecture = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase();
  const alias = ARCH_ALIASES[architecture];
  if (alias) {
    architecture = alias.architecture;
    variant ??= alias.variant;
  }
  if (variant !== undefined && /^\d+$/.test(variant)) variant = `v${variant}`;
  if (architecture === 'arm64' && variant === 'v8') variant = undefined;
  if (architecture === 'amd64' && variant === 'v1') variant = undefined;
  if (architecture === 'arm' && variant === undefined) variant = 'v7';
  if (variant === '') variant = undefined;
  return variant === undefined ? { os, architecture } : { os, architecture, variant };
}

/** Parses `os/arch[/variant]`. */
export function parsePlatform(text: string): Platform {
  const parts = text.trim().split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((x) => !/^[a-zA-Z0-9_.-]+$/.test(x))) {
    throw new PlatformError(`invalid platform ${JSON.stringify(text)}: expected OS/ARCH[/VARIANT], e.g. linux/arm64 or linux/arm/v7`);
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return normalizePlatform(variant === undefined ? { os, architecture } : { os, architecture, variant });
}

/** `os/arch[/variant]`. */
export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** Node's `process.arch` in OCI names. */
const NODE_ARCH: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mips: 'mips',
  mipsel: 'mipsle',
};

/**
 * The platform images are pulled for on this host. On macOS the images that run are Linux ones
 * (Docker Desktop, podman machine and colima run a Linux VM of the same architecture), so
 * `darwin` maps to `linux`; Windows is `windows`. 32-bit ARM takes its variant from Node's build.
 */
export function hostPlatform(platform: string = process.platform, arch: string = process.arch): Platform {
  const os = platform === 'win32' ? 'windows' : platform === 'darwin' ? 'linux' : platform;
  const architecture = NODE_ARCH[arch] ?? arch;
  if (architecture === 'arm') {
    const v = (process.config.variables as unknown as Record<string, unknown>).arm_version;
    return normalizePlatform({ os, architecture, ...(v !== undefined ? { variant: String(v) } : {}) });
  }
  return normalizePlatform({ os, architecture });
}

/**
 * True when an index entry's platform is one that was asked for. A wanted platform without a
 * variant takes every variant of its os/arch (except arm, where the missing variant means v7, as in
 * containerd).
 */
export function platformMatches(want: Platform, entry: Platform | undefined): boolean {
  if (!entry || typeof entry.os !== 'string' || typeof entry.architecture !== 'string') return false;
  const w = normalizePlatform(want);
  const e = normalizePlatform(entry);
  if (w.os !== e.os || w.architecture !== e.architecture) return false;
  if (w.variant === undefined) return true;
  return w.variant === e.variant;
}
