/**
 * `regmirror warm`: pre-pull images through a mirror (see src/warm/). Progress goes to stdout:
 * live bars on a terminal, plain lines in logs, JSON events with --json. Failures are also named on
 * stderr, so a CI step that hides stdout still says what broke.
 */
import { readFileSync } from 'node:fs';
import { parseWarmArgs, warmUsage } from '../warm/args.js';
import { JsonProgress } from '../warm/progress-json.js';
import { LineProgress } from '../warm/progress-lines.js';
import { TtyProgress } from '../warm/progress-tty.js';
import { parseRefList } from '../warm/reference.js';
import { clean } from '../warm/format.js';
import type { Reporter } from '../warm/reporter.js';
import { warmImages } from '../warm/run.js';

function readList(path: string): string[] {
  return parseRefList(readFileSync(path === '-' ? 0 : path, 'utf8'));
}

export async function run(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseWarmArgs(argv);
    if (args === 'help') {
      process.stdout.write(warmUsage());
      return 0;
    }
    for (const f of args.files) {
      try {
        args.images.push(...readList(f));
      } catch (err) {
        throw new Error(`cannot read --file ${f}: ${(err as Error).message}`);
      }
    }
    if (args.images.length === 0) throw new Error('the --file lists name no image');
  } catch (err) {
    process.stderr.write(`regmirror warm: ${(err as Error).message}\n(regmirror warm --help shows the options)\n`);
    return 2;
  }
  const { json, progressIntervalMs } = args;
  const tty = !json && process.stdout.isTTY === true;
  let ttyReporter: TtyProgress | undefined;
  const onSigint = () => {
    ttyReporter?.abort();
    process.exit(130);
  };
  if (tty) process.once('SIGINT', onSigint);
  try {
    const summary = await warmImages([...new Set(args.images)], {
      mirror: args.mirror,
      platforms: args.platforms,
      concurrency: args.concurrency,
      reporter: (warmer): Reporter => {
        if (json) return new JsonProgress(process.stdout, warmer, progressIntervalMs);
        if (tty) return (ttyReporter = new TtyProgress(process.stdout, warmer));
        return new LineProgress(process.stdout, warmer, progressIntervalMs);
      },
    });
    if (summary.failures.length) {
      const lines = summary.failures.map((f) => `  ${clean(f.input)}: ${clean(f.message)}`);
      process.stderr.write(`regmirror warm: ${summary.failures.length} of ${summary.images.total} image${summary.images.total > 1 ? 's' : ''} failed:\n${lines.join('\n')}\n`);
      return 1;
    }
    return 0;
  } catch (err) {
    process.stderr.write(`regmirror warm: ${clean((err as Error).message)}\n`);
    return 1;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}
