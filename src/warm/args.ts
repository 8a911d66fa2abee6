/** Command-line parsing for `regmirror warm`. */
import { parseArgs } from 'node:util';
import { hostPlatform, parsePlatform, type Platform } from './platform.js';

export const WARM_USAGE = `regmirror warm — pull images through a mirror so they are cached before they are needed

Usage:
  regmirror warm [options] IMAGE...
  regmirror warm [options] --file LIST

Each IMAGE is a reference as docker writes it: nginx, nginx:1.27, ghcr.io/org/app@sha256:…,
localhost:5000/team/tool:2. Docker Hub names are normalised (nginx → docker.io/library/nginx:latest);
other registries are asked for with ?ns=<registry> (containerd's mirror convention), so the mirror
needs an upstream for each registry named.

Every manifest and blob is fetched through the mirror (and checked against its digest), and each tag
is resolved with the Accept headers of containerd, containers/image (podman, skopeo, CRI-O) and dockerd,
so their first pull within the mirror's tag TTL needs no upstream request.

Options:
  --mirror URL               the mirror [http://127.0.0.1:5000]
  --platform OS/ARCH[/VAR]   platform to warm from multi-platform images; repeatable
                             [this host's: %HOST%]
  --all-platforms            warm every platform of an index
  --concurrency N            blob transfers at once [4]
  --file LIST                read references from LIST (one per line, # comments; - for stdin); repeatable
  --json                     machine-readable output: one JSON event per line, then a summary
  --progress-interval SECS   how often a total line is printed in logs and --json [10]
  -h, --help                 show this help

Exit status: 0 when every image was warmed, 1 when any failed (each is named with its reason),
2 for a usage error.
`;

/** What `regmirror warm` was asked to do. */
export interface WarmArgs {
  mirror: string;
  platforms: Platform[] | 'all';
  concurrency: number;
  files: string[];
  images: string[];
  json: boolean;
  progressIntervalMs: number;
}

/** The help text with this host's platform filled in. */
export function warmUsage(): string {
  const p = hostPlatform();
  return WARM_USAGE.replace('%HOST%', `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`);
}

/** Parses argv after `warm`; `help` when asked for. Throws Error with a readable message otherwise. */
export function parseWarmArgs(argv: string[]): WarmArgs | 'help' {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      mirror: { type: 'string' },
      platform: { type: 'string', multiple: true },
      'all-platforms': { type: 'boolean' },
      concurrency: { type: 'string' },
      file: { type: 'string', multiple: true },
      json: { type: 'boolean' },
      'progress-interval': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  if (values['all-platforms'] && values.platform?.length) throw new Error('--platform and --all-platforms exclude each other');
  const concurrency = values.concurrency === undefined ? 4 : Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw new Error(`--concurrency must be an integer from 1 to 64, got ${JSON.stringify(values.concurrency)}`);
  const interval = values['progress-interval'] === undefined ? 10 : Number(values['progress-interval']);
  if (!Number.isFinite(interval) || interval < 0) throw new Error(`--progress-interval must be a number of seconds (0 turns it off), got ${JSON.stringify(values['progress-interval'])}`);
  const files = values.file ?? [];
  if (positionals.length === 0 && files.length === 0) throw new Error('no IMAGE given (name images as arguments or in --file LIST)');
  return {
    mirror: values.mirror ?? 'http://127.0.0.1:5000',
    platforms: values['all-platforms'] ? 'all' : values.platform?.length ? values.platform.map(parsePlatform) : [hostPlatform()],
    concurrency,
    files,
    images: positionals,
    json: values.json === true,
    progressIntervalMs: Math.round(interval * 1000),
  };
}
