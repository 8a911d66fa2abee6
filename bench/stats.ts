/** Small numeric helpers for benchmark figures. */

/** Median of `xs` (NaN for an empty list). */
export function median(xs: readonly number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? (v[mid] ?? Number.NaN) : ((v[mid - 1] ?? 0) + (v[mid] ?? 0)) / 2;
}

/**
 * A distribution-free confidence interval for the median of `xs`: the order statistics x(k) and x(n+1-k),
 * with k the largest rank for which P(Binomial(n, 1/2) < k) ≤ (1 - level) / 2. Needs no assumption about
 * how the values spread (per-round ratios on a shared host are far from normal). Undefined when `xs` has
 * too few values for the level (fewer than 6 at 95 %).
 */
export function medianInterval(xs: readonly number[], level = 0.95): [number, number] | undefined {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  const n = v.length;
  const tail = (1 - level) / 2;
  // P(B < k) for k = 0, 1, …: add P(B = i) while the sum stays within the tail.
  let k = 0;
  let below = 0;
  let p = 0.5 ** n; // P(B = 0)
  while (k < n && below + p <= tail) {
    below += p;
    k++;
    p = (p * (n - k + 1)) / k; // P(B = k) from P(B = k - 1)
  }
  if (k === 0) return undefined;
  return [v[k - 1]!, v[n - k]!];
}

/** `a / b`, or NaN when either is missing or `b` is zero. */
export function ratio(a: number | undefined, b: number | undefined): number {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return Number.NaN;
  return a / b;
}

/** Bytes in one MiB. */
export const MiB = 1024 * 1024;
/** Bytes in one KiB. */
export const KiB = 1024;
