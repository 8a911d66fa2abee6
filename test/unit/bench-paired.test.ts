import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pairedRatio } from '../../bench/report.js';

test('pairedRatio: the median of per-round ratios, so a slow round on both sides cancels out', () => {
  // Round 2 ran in a slow spell that halved both servers: every round still says 0.8.
  assert.equal(pairedRatio({ median: 8, rounds: [8, 4, 8] }, { median: 10, rounds: [10, 5, 10] }), 0.8);
  // Slow spells on one side only: the ratios are 1.0, 0.4 and 0.8; their median is 0.8, while the
  // ratio of the medians (8 / 10, with 10 the median of 8, 20, 10) would hide nothing here but differs below.
  assert.equal(pairedRatio({ median: 8, rounds: [8, 8, 8] }, { median: 10, rounds: [8, 20, 10] }), 0.8);
  // Both servers slow in different rounds: medians give 6 / 10 = 0.6, the pairs 0.9, 0.6, 1.0 → 0.9.
  assert.equal(pairedRatio({ median: 6, rounds: [9, 6, 3] }, { median: 10, rounds: [10, 10, 3] }), 0.9);
});

test('pairedRatio: falls back to the ratio of medians when the rounds do not pair up', () => {
  assert.equal(pairedRatio({ median: 6, rounds: [6] }, { median: 8, rounds: [8, 8] }), 0.75);
  assert.equal(pairedRatio({ median: 6 }, { median: 8 }), 0.75);
  assert.ok(Number.isNaN(pairedRatio({}, { median: 8 })));
});

test('roundOrder: servers as started in even rounds, reversed in odd ones (no server always measured after the same one)', async () => {
  const { roundOrder } = await import('../../bench/workloads.js');
  const servers = ['floor', 'before', 'regmirror'];
  assert.deepEqual(roundOrder(servers, 0), ['floor', 'before', 'regmirror']);
  assert.deepEqual(roundOrder(servers, 1), ['regmirror', 'before', 'floor']);
  assert.deepEqual(roundOrder(servers, 2), ['floor', 'before', 'regmirror']);
  assert.deepEqual(servers, ['floor', 'before', 'regmirror'], 'the list itself is not reordered');
});

test('medianInterval: the order statistics of the binomial 95 % interval for the median', async () => {
  const { medianInterval } = await import('../../bench/stats.js');
  const seq = (n: number): number[] => Array.from({ length: n }, (_, i) => n - i); // n … 1, unsorted on purpose
  // n = 40: P(B ≤ 13) = 0.019 ≤ 0.025 < P(B ≤ 14) = 0.040, so x(14) and x(27).
  assert.deepEqual(medianInterval(seq(40)), [14, 27]);
  // n = 15: P(B ≤ 3) = 0.018, P(B ≤ 4) = 0.059: x(4) and x(12).
  assert.deepEqual(medianInterval(seq(15)), [4, 12]);
  // n = 6: only the extremes (P(B = 0) = 1/64); n = 5 is too few for 95 % (1/32 > 0.025).
  assert.deepEqual(medianInterval(seq(6)), [1, 6]);
  assert.equal(medianInterval(seq(5)), undefined);
  assert.deepEqual(medianInterval([3, Number.NaN, 1, 2, 6, 5, 4]), [1, 6], 'missing values are left out');
});

test('measurablyWorse: only when the whole interval lies below 1; without one, the point figure decides', async () => {
  const { measurablyWorse } = await import('../../bench/report.js');
  assert.equal(measurablyWorse({ ratio: 0.95, interval: [0.9, 0.99] }), true);
  assert.equal(measurablyWorse({ ratio: 0.99, interval: [0.96, 1.02] }), false);
  assert.equal(measurablyWorse({ ratio: 1.05, interval: [1.01, 1.09] }), false);
  assert.equal(measurablyWorse({ ratio: 0.99 }), true);
  assert.equal(measurablyWorse({ ratio: 1 }), false);
});
