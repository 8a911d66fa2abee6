/**
 * Caps V8's young generation at {@link SEMI_SPACE_CAP_MIB} per semi-space unless the operator sized it.
 *
 * V8 doubles the semi-spaces (up to 16 MiB each on 64-bit) whenever enough objects survive scavenges since
 * the last growth; module loading at start-up and the chunks of a fill in flight are exactly that, so an
 * idle regmirror held 32 MiB of new space (both semi-spaces are resident once used) it never gave back. A
 * smaller young generation costs more scavenges: at 1 MiB per semi-space the warm-manifest load spent about
 * 6 % of its CPU in scavenges against 1.6 % at 16 MiB; the cap sits between (README, "Memory").
 *
 * V8 sizes the semi-spaces when the heap is set up (`--max-semi-space-size` works only on the command line),
 * but reads its growth factor at every growth. So a GC observer keeps V8's own doubling while a doubling
 * stays within the cap, sets the factor to 1 once the cap is reached (no further growth), and back to 2
 * when V8 shrank the space (its memory reducer does after an idle spell), so it grows again under load —
 * step by step, as V8 would: a light load (streaming blobs) regrows it to 4 MiB, not to the cap. (A first
 * version jumped to the cap in one growth; in the benchmark, with idle gaps between rounds, that held
 * 12 MiB more new space than V8's own policy did after its shrink.)
 * This module is imported first, so the factor is set before the rest of the program is evaluated.
 *
 * An operator who passes `--max-semi-space-size` / `--min-semi-space-size` / `--semi-space-growth-factor`
 * (command line or NODE_OPTIONS), or sets `REGMIRROR_YOUNG_GENERATION=v8`, gets V8's own policy;
 * `REGMIRROR_YOUNG_GENERATION=<MiB>` (1–64) sets another cap.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

/** Semi-space size the young generation stops growing at, MiB. */
export const SEMI_SPACE_CAP_MIB = 8;
const V8_GROWTH_FACTOR = 2;

/** True when the operator chose the young generation's size (or V8's growth) themselves. */
export function operatorSized(execArgv: readonly string[], nodeOptions: string | undefined, env: string | undefined): boolean {
  if (env === 'v8') return true;
  const flags = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)];
  return flags.some((f) => /^--(max|min)[-_]semi[-_]space[-_]size\b|^--semi[-_]space[-_]growth[-_]factor\b/.test(f));
}

/**
 * The growth factor for the next growth, given the new space's size (both semi-spaces) in bytes: V8's
 * doubling while the doubled size stays within the cap, else 1 (no growth). The observer runs after GCs,
 * not during them, so two growths inside one long synchronous burst could pass the cap before it sets 1;
 * a served request returns to the event loop long before enough survives for a second growth.
 */
export function growthFor(newSpaceBytes: number, capMiB: number): number {
  // The new space reports both semi-spaces once both are in use, only one before the first scavenge
  // (1 MiB at start): V8's semi-spaces never go below 1 MiB.
  const semiMiB = Math.max(1, newSpaceBytes / 2 / 2 ** 20);
  return Math.max(1, Math.min(V8_GROWTH_FACTOR, Math.floor(capMiB / semiMiB)));
}

/** Starts watching for the life of the process. */
export function capYoungGeneration(capMiB = SEMI_SPACE_CAP_MIB): void {
  let factor = V8_GROWTH_FACTOR;
  const check = () => {
    const ns = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
    const next = ns ? growthFor(ns.space_size, capMiB) : factor;
    if (next === factor) return;
    factor = next;
    setFlagsFromString(`--semi-space-growth-factor=${next}`);
  };
  new PerformanceObserver(check).observe({ entryTypes: ['gc'] });
  check();
}

/** The cap `REGMIRROR_YOUNG_GENERATION` asks for (MiB per semi-space), else the default. */
export function capFromEnv(env: string | undefined): number {
  const n = env !== undefined && /^\d{1,2}$/.test(env) ? Number(env) : 0;
  return n >= 1 && n <= 64 ? n : SEMI_SPACE_CAP_MIB;
}

const env = process.env.REGMIRROR_YOUNG_GENERATION;
if (!operatorSized(process.execArgv, process.env.NODE_OPTIONS, env)) capYoungGeneration(capFromEnv(env));
