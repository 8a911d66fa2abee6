/**
 * The age of a tag answer across tiers (pure). A mirror tells its clients, in the standard `Age` header
 * (RFC 9111 §5.1), how many seconds ago it last confirmed a tag against its own upstream; a mirror whose
 * upstream is such a mirror records the answer as confirmed at (request time − Age), so it revalidates
 * when the *first* confirmation grows older than its TTL. Without that, a node mirror would trust for a
 * full TTL an answer the regional had already held for a full TTL: staleness up to the sum of both TTLs.
 *
 * The request time, not the response time, is the reference (RFC 9111 §4.2.3: the response delay counts
 * as age), so a slow answer is never taken for fresher than it is. `Age` is whole seconds (rounded down by
 * the sender), so `Age: n` means n to n+1 seconds and the older end is taken: the bound stays one TTL,
 * not one TTL plus a second. For TTLs under two seconds the allowance is half the TTL, so an answer with
 * `Age: 0` is still trusted for a while.
 */

/** Largest Age taken as given (RFC 9111 §1.2.2: 2^31 seconds); larger values are clamped. */
const MAX_AGE_SECONDS = 2 ** 31;

/** What `Age`'s whole seconds may hide. */
const AGE_ROUNDING_MS = 999;

/** The `Age` value of an answer confirmed at `confirmedAt` (ms since epoch), at `now`. Never negative. */
export function ageSeconds(confirmedAt: number, now: number): number {
  return Math.max(0, Math.floor((now - confirmedAt) / 1000));
}

/** Parses an `Age` header: delta-seconds (digits only), the first of several; undefined when absent or invalid. */
export function parseAge(raw: string | string[] | undefined): number | undefined {
  const v = (Array.isArray(raw) ? raw[0] : raw)?.trim();
  if (v === undefined || !/^\d{1,12}$/.test(v)) return undefined;
  return Math.min(Number(v), MAX_AGE_SECONDS);
}

/** What the upstream said about how old its tag answer is. */
export interface UpstreamAnswerAge {
  /** When the request was sent, ms since epoch. */
  requestedAt: number;
  /** The answer's `Age` header. */
  age: string | string[] | undefined;
  /** The answer carried a `Warning` (it is stale: its upstream failed). */
  stale: boolean;
  /** The TTL of this mirror's tag answers, ms. */
  ttlMs: number;
}

/**
 * When the tag answer of a mirror upstream was last confirmed against a registry, ms since epoch. A stale
 * answer is never recorded as fresh: at most at `requestedAt - ttlMs`, so the next request revalidates
 * even when the stale answer carried no (or a small) Age.
 */
export function confirmedAt({ requestedAt, age, stale, ttlMs }: UpstreamAnswerAge): number {
  const seconds = parseAge(age);
  const at = seconds === undefined ? requestedAt : requestedAt - seconds * 1000 - Math.min(AGE_ROUNDING_MS, Math.floor(ttlMs / 2));
  return stale ? Math.min(at, requestedAt - ttlMs) : at;
}
