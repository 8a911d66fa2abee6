/** Command-line parsing for `regmirror serve`. */
import { parseArgs } from 'node:util';
import type { ConfigInput } from '../config/load.js';

export const USAGE = `regmirror — a pull-through caching mirror for OCI/Docker registries

Usage:
  regmirror serve [options]
  regmirror warm [--mirror URL] IMAGE...      pre-pull images into a mirror (regmirror warm --help)
  regmirror cache du|ls|rm|gc [options]       inspect and prune the cache (regmirror cache --help)
  regmirror containerd-hosts --mirror URL     write containerd hosts.toml files (--help)
  regmirror --help | --version

Options (flags override REGMIRROR_* environment variables, which override the config file):
  --config FILE          YAML config file                       (REGMIRROR_CONFIG)
  --listen HOST:PORT     listen address [0.0.0.0:5000]          (REGMIRROR_LISTEN)
  --upstream [NS=]URL    upstream registry; repeatable. A bare URL is the default upstream;
                         NS=URL maps a registry host, e.g. ghcr.io=https://ghcr.io
                         [https://registry-1.docker.io]         (REGMIRROR_UPSTREAM, comma-separated)
  --mirror-upstream NS   the upstream of NS is a mirror (a regional regmirror): send it ?ns=NS;
                         repeatable, * for all                  (REGMIRROR_MIRROR_UPSTREAMS)
  --data-dir DIR         cache directory [./data]               (REGMIRROR_DATA_DIR)
  --tag-ttl DURATION     how long a tag answer is trusted before revalidation [60s]
                                                                (REGMIRROR_TAG_TTL)
  --max-size SIZE|N%     cap of the disk cache, bytes or share of its filesystem [80%]
                                                                (REGMIRROR_MAX_SIZE)
  --redis URL            keep tag metadata in Redis (redis://host:port) instead of memory
                                                                (REGMIRROR_REDIS_URL)
  --advertise URL        cluster mode (needs --redis): the URL other mirrors reach this one at
                                                                (REGMIRROR_ADVERTISE)
  --log-level LEVEL      fatal|error|warn|info|debug|trace|silent [info]
                                                                (REGMIRROR_LOG_LEVEL)
  -h, --help             show this help
  -v, --version          print the version

Credentials for upstreams and the other settings live in the config file; see README.md.
`;

/** What the command line asked for. */
export type Command = { kind: 'help' } | { kind: 'version' } | { kind: 'serve'; config?: string; input: ConfigInput };

/** Parses argv (without node and the script). Throws on unknown or malformed flags. */
export function parseCommand(argv: string[]): Command {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: 'string' },
      listen: { type: 'string' },
      upstream: { type: 'string', multiple: true },
      'mirror-upstream': { type: 'string', multiple: true },
      'data-dir': { type: 'string' },
      'tag-ttl': { type: 'string' },
      'max-size': { type: 'string' },
      redis: { type: 'string' },
      advertise: { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
  });
  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };
  const [cmd, ...rest] = positionals;
  if (cmd === undefined || cmd === 'help') return { kind: 'help' };
  if (cmd !== 'serve') throw new Error(`unknown command ${JSON.stringify(cmd)}; try: regmirror serve`);
  if (rest.length) throw new Error(`unexpected argument ${JSON.stringify(rest[0])}`);
  const input: ConfigInput = {};
  if (values.listen !== undefined) input.listen = values.listen;
  if (values.upstream !== undefined) input.upstreams = values.upstream;
  if (values['mirror-upstream'] !== undefined) input.mirrorUpstreams = values['mirror-upstream'];
  if (values['data-dir'] !== undefined) input.dataDir = values['data-dir'];
  if (values['tag-ttl'] !== undefined) input.tagTtl = values['tag-ttl'];
  if (values['max-size'] !== undefined) input.maxSize = values['max-size'];
  if (values.redis !== undefined) input.redis = values.redis;
  if (values.advertise !== undefined) input.cluster = { advertise: values.advertise };
  if (values['log-level'] !== undefined) input.logLevel = values['log-level'];
  return { kind: 'serve', ...(values.config !== undefined ? { config: values.config } : {}), input };
}
