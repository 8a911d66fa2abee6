/**
 * The reclaimer (src/reclaim.ts): it obtains V8's GC function on this Node, and runs one scavenge per
 * `every` bytes told, none in between (counted with a 'gc' PerformanceObserver).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { Reclaimer } from '../../src/reclaim.js';

/** Minor GCs seen while `fn` runs (entries are delivered asynchronously, so wait a little after). */
async function scavengesDuring(fn: () => void): Promise<number> {
  let n = 0;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if ((e as unknown as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) n++;
  });
  obs.observe({ entryTypes: ['gc'] });
  fn();
  await new Promise((r) => setTimeout(r, 50));
  obs.disconnect();
  return n;
}

test('a scavenge per `every` bytes filled, and none below it', async () => {
  const r = new Reclaimer(1000);
  assert.equal(r.active, true, 'the GC function is available on this Node');
  const none = await scavengesDuring(() => r.received(999));
  const five = await scavengesDuring(() => {
    r.received(1); // completes the first 1000
    for (let i = 0; i < 4; i++) r.received(1000);
  });
  assert.ok(none <= 1, `below the threshold: no scavenge of ours (one of V8's own at most), saw ${none}`);
  assert.ok(five >= 5, `expected at least 5 scavenges, saw ${five}`);
});

test('every = 0 turns it off', async () => {
  const r = new Reclaimer(0);
  assert.equal(r.active, false);
  assert.equal(await scavengesDuring(() => r.received(10 ** 9)), 0);
});
