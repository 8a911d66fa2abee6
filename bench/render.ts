/**
 * `node build/bench/render.js bench/results/<run>.json …`: renders a run's report (.md and .svg beside the
 * .json) again from its measurements, with the report code of this checkout: after a change to how the
 * report states or judges figures, an earlier sitting reads the same way as a new one. The measurements
 * themselves are not touched.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { checkTargets, renderMarkdown, targetSummary } from './report.js';
import { renderSvg } from './svg.js';
import type { BenchResults } from './types.js';

function main(paths: string[]): number {
  if (paths.length === 0 || paths.some((p) => !p.endsWith('.json'))) {
    process.stderr.write('usage: node build/bench/render.js bench/results/<run>.json …\n');
    return 2;
  }
  for (const path of paths) {
    const results = JSON.parse(readFileSync(path, 'utf8')) as BenchResults;
    const base = path.slice(0, -'.json'.length);
    writeFileSync(`${base}.md`, renderMarkdown(results));
    writeFileSync(`${base}.svg`, renderSvg(results));
    process.stdout.write(`${base}.md: ${targetSummary(checkTargets(results))}\n`);
  }
  return 0;
}

process.exitCode = main(process.argv.slice(2));
