#!/usr/bin/env node
/** The `regmirror` command. */
// First: sizes V8's young generation before the rest of the program is evaluated.
import './young-generation.js';
import { readFileSync } from 'node:fs';
import { buildConfig, readConfigFile, readEnv, type ConfigInput } from '../config/load.js';
import { Mirror } from '../mirror.js';
import { parseCommand, USAGE } from './args.js';

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/**
 * Subcommands other than `serve`, each in its own module exporting `run(argv): Promise<number>`
 * (loaded on demand, so `serve` pays nothing for them).
 */
const SUBCOMMANDS: Record<string, string> = {
  warm: './warm.js',
  cache: './cache.js',
  'containerd-hosts': './containerd-hosts.js',
};

async function main(argv: string[]): Promise<number> {
  const sub = argv[0] !== undefined ? SUBCOMMANDS[argv[0]] : undefined;
  if (sub) {
    const mod = (await import(sub)) as { run: (argv: string[]) => Promise<number> };
    return mod.run(argv.slice(1));
  }
  let cmd;
  try {
    cmd = parseCommand(argv);
  } catch (err) {
    process.stderr.write(`regmirror: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (cmd.kind === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (cmd.kind === 'version') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  let mirror: Mirror;
  try {
    const env = readEnv();
    const file = cmd.config ?? env.config;
    const layers: ConfigInput[] = [];
    if (file) layers.push(readConfigFile(file));
    layers.push(env, cmd.input);
    const config = buildConfig(...layers);
    mirror = await Mirror.create(config);
    const log = mirror.log;
    // A stray rejection is a bug to log, not a reason to drop every transfer in flight.
    process.on('unhandledRejection', (reason) => log.error({ err: reason }, 'unhandled rejection'));
    // An exception nothing caught leaves the process in an unknown state: say so in the JSON log, then exit
    // as node would (code 1 after the message), so the supervisor restarts it and the log shows why.
    process.on('uncaughtException', (err) => {
      log.fatal({ err }, 'uncaught exception: exiting');
      process.exit(1);
    });
    await mirror.listen();
  } catch (err) {
    process.stderr.write(`regmirror: ${(err as Error).message}\n`);
    return 1;
  }
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      mirror.log.info({ signal }, 'shutting down');
      void mirror.drain().then(resolve, (err: unknown) => {
        mirror.log.error({ err }, 'drain failed');
        resolve();
      });
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`regmirror: ${String(err)}\n`);
    process.exitCode = 1;
  },
);
