/** The benchmark's steal accounting (bench/procstat.ts, bench/workloads.ts): reading /proc/stat, the share between two readings, the report line. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stealPctBetween, stealReading } from '../../bench/procstat.js';
import { stealNote } from '../../bench/workloads.js';

const stat = (user: number, idle: number, steal: number, guest = 0): string =>
  `cpu  ${user} 0 100 ${idle} 5 0 7 ${steal} ${guest} 0\ncpu0 1 2 3 4 5 6 7 8 9 10\nintr 1 2 3\n`;

test('steal is field 8 of the first /proc/stat line, and its share counts only the first eight fields (guest time is inside user)', () => {
  const a = stealReading(stat(1000, 5000, 100, 400));
  assert.deepEqual(a, { steal: 100, total: 1000 + 100 + 5000 + 5 + 7 + 100 });
  // 300 jiffies pass: 100 user, 0 idle, 200 stolen (and 50 guest, already inside user).
  const b = stealReading(stat(1100, 5000, 300, 450));
  assert.equal(stealPctBetween(a, b), (200 / 300) * 100);
  assert.equal(stealPctBetween(a, a), 0, 'no time passed: no steal');
});

test('the real /proc/stat reads as steal within total', () => {
  const r = stealReading();
  assert.ok(r.total > 0 && r.steal >= 0 && r.steal <= r.total, JSON.stringify(r));
});

test('the report says how many measurements were repeated and kept above the limit', () => {
  assert.equal(stealNote({ measurements: 0, repeated: 0, keptOver: 0, maxKeptPct: 0 }, 5, 3), undefined);
  const n = stealNote({ measurements: 90, repeated: 7, keptOver: 2, maxKeptPct: 12.34 }, 5, 3)!;
  assert.match(n, /7 of 90 measurements/);
  assert.match(n, /more than 5 %/);
  assert.match(n, /2 kept above it after 3 tries/);
  assert.match(n, /12\.3 %/);
});
