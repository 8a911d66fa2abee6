/**
 * The progress displays without a terminal: the TTY renderer is pure (rows and a width in, lines out),
 * so it is checked at several fake widths; the log reporter is fed events and its text is checked
 * for the lines CI needs and for the absence of control characters.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderFrame, renderRow, TtyProgress, type BarRow } from '../../src/warm/progress-tty.js';
import { LineProgress } from '../../src/warm/progress-lines.js';
import { Warmer } from '../../src/warm/walker.js';
import { MirrorClient } from '../../src/warm/client.js';
import { Pool } from '../../src/warm/pool.js';
import { formatSummary, type Summary } from '../../src/warm/summary.js';
import { formatBytes, formatDuration, RateMeter } from '../../src/warm/format.js';
import { parseDigest } from '../../src/oci/digest.js';

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f]/;
const HEX = (c: string) => c.repeat(64);

function row(label: string, received: number, total: number, status: BarRow['status'] = 'fetching'): BarRow {
  return { label, status, received, total, rate: 2 * 2 ** 20 };
}

test('a bar row never reaches the terminal width (so redrawing in place cannot wrap)', () => {
  const long = `docker.io/${'verylongorganisation/'.repeat(4)}app:1.2.3`;
  for (const width of [30, 40, 60, 80, 120, 200]) {
    for (const r of [row('docker.io/library/nginx:1.27', 3 * 2 ** 20, 10 * 2 ** 20), row(long, 0, 5), row('x', 5, 5, 'done'), row('y', 0, 0, 'resolving'), row('total (1/2 blobs)', 1, 2, 'total')]) {
      const line = renderRow(r, width, 40);
      assert.ok([...line].length <= Math.max(20, width - 1), `width ${width}: ${line.length} > ${width - 1}: ${line}`);
      assert.ok(!CONTROL.test(line));
    }
  }
});

test('a bar row shows bytes done of total, percent, rate and ETA', () => {
  const line = renderRow(row('docker.io/library/nginx:1.27', 5 * 2 ** 20, 10 * 2 ** 20), 100, 30);
  assert.match(line, /^docker\.io\/library\/nginx:1\.27 +█+░+  50% 5\.00 MiB\/10\.0 MiB 2\.00 MiB\/s ETA 2\.5s$/);
  const bar = /█+░+/.exec(line)![0];
  assert.ok(Math.abs([...bar].filter((c) => c === '█').length * 2 - [...bar].length) <= 1, 'half the bar is full');
  // Bars line up whatever the text after them.
  const [a, b, t] = renderFrame([row('a', 1, 2), row('b', 3, 3, 'done')], row('total', 4, 5, 'total'), 100, 24);
  assert.equal(/[█░]+/.exec(a!)![0].length, /[█░]+/.exec(b!)![0].length);
  assert.equal(/[█░]+/.exec(a!)![0].length, /[█░]+/.exec(t!)![0].length);
  assert.match(renderRow(row('a', 7, 7, 'done'), 80, 5), /100% 7 B done$/);
  assert.match(renderRow(row('a', 0, 0, 'resolving'), 80, 5), /resolving…$/);
  assert.match(renderRow(row('a', 0, 9, 'failed'), 80, 5), /FAILED$/);
  // A long name is cut from the left, keeping the tag.
  const cut = renderRow(row(`docker.io/${'x'.repeat(100)}/app:v9`, 1, 2), 80, 200);
  assert.match(cut, /^…x+\/app:v9 /);
});

test('a frame fits the terminal height: running images first, the rest counted, the total last', () => {
  const rows = Array.from({ length: 30 }, (_, i) => row(`img${i}`, i, 30, i % 3 === 0 ? 'fetching' : 'done'));
  const frame = renderFrame(rows, row('total', 10, 100, 'total'), 80, 10);
  assert.equal(frame.length, 10);
  assert.match(frame[frame.length - 1]!, /^total /);
  assert.match(frame[frame.length - 2]!, /… 22 more images/);
  for (const l of frame.slice(0, 8)) assert.match(l, /^img(0|3|6|9|12|15|18|21) /, 'the fetching ones are shown');
  assert.equal(renderFrame(rows.slice(0, 3), row('total', 1, 2, 'total'), 80, 24).length, 4, 'everything fits: 3 images and the total');
});

function fakeWarmer(): Warmer {
  const w = new Warmer(new MirrorClient('http://127.0.0.1:9'), { blobs: new Pool(1), manifests: new Pool(1) }, () => {}, { platforms: 'all' });
  const b = { digest: parseDigest(`sha256:${HEX('c')}`)!, size: 1000, received: 400, status: 'running' as const, images: ['docker.io/library/app:v1'] };
  w.blobs.set(b.digest.value, b);
  w.images.push({ ref: 'docker.io/library/app:v1', status: 'fetching', startedAt: 0, total: 1000, blobs: [b] });
  return w;
}

function summary(): Summary {
  return {
    type: 'summary',
    ok: false,
    mirror: 'http://127.0.0.1:5000',
    images: { total: 2, ok: 1, failed: 1 },
    blobs: 1,
    bytes: 1000,
    manifests: 1,
    ms: 1500,
    results: [
      { input: 'app:v1', ref: 'docker.io/library/app:v1', ok: true, platforms: ['linux/amd64'], tags: [], manifests: 1, blobs: 1, bytes: 1000, skippedForeign: 0, ms: 1400, warnings: [] },
      { input: 'gone:1', ref: 'docker.io/library/gone:1', ok: false, platforms: [], tags: [], manifests: 0, blobs: 0, bytes: 0, skippedForeign: 0, ms: 20, warnings: [], error: { kind: 'not-found', message: 'manifest docker.io/library/gone:1: not found (HTTP 404 MANIFEST_UNKNOWN: \u001b[31mred\u001b[0m)' } },
    ],
    mirrorCounters: { blobHits: 0, blobMisses: 1, manifestHits: 2, manifestMisses: 3, bytesFromCache: 10, bytesFromUpstream: 1000, upstreamRequests: 5, upstreamBytes: 1010 },
    failures: [{ input: 'gone:1', ref: 'docker.io/library/gone:1', kind: 'not-found', message: 'manifest docker.io/library/gone:1: not found (HTTP 404 MANIFEST_UNKNOWN: \u001b[31mred\u001b[0m)' }],
  };
}

test('log lines: one per blob and image, a total line, the summary table; no control characters even from hostile messages', () => {
  let text = '';
  const w = fakeWarmer();
  const p = new LineProgress({ write: (s: string) => (text += s) }, w, 0);
  p.start();
  p.event({ type: 'image-start', t: 0, input: 'app:v1', ref: 'docker.io/library/app:v1' });
  p.event({ type: 'blob-done', t: 120, digest: `sha256:${HEX('c')}`, size: 1000, ms: 100, images: ['docker.io/library/app:v1'] });
  p.event({ type: 'image-done', t: 130, result: summary().results[0]! });
  p.event({ type: 'image-failed', t: 140, result: summary().results[1]! });
  p.finish(summary());
  for (const line of text.split('\n')) assert.ok(!CONTROL.test(line), `control character in ${JSON.stringify(line)}`);
  assert.match(text, /\] start docker\.io\/library\/app:v1\n/);
  assert.match(text, /\] blob sha256:cccccccccccc 1000 B in 100ms \(9\.77 KiB\/s\) docker\.io\/library\/app:v1\n/);
  assert.match(text, /\] done docker\.io\/library\/app:v1: 1 blobs, 1000 B in 1\.4s\n/);
  assert.match(text, /\] FAILED docker\.io\/library\/gone:1: manifest .*not found/);
  assert.match(text, /\] total: 400 B of 1000 B \(40%\), .*blobs 0\/1; images 0\/1\n/);
  assert.match(text, /IMAGE +PLATFORMS +MANIFESTS +BLOBS +SIZE +TIME +RESULT/);
  assert.match(text, /docker\.io\/library\/app:v1 +linux\/amd64 +1 +1 +1000 B +1\.4s +ok/);
  assert.match(text, /blobs: +0 from cache, 1 from upstream/);
  assert.match(text, /FAILED: 1 image:\n  gone:1: manifest/);
});

test('while an image is still being resolved, the totals say so: no percent, no ETA, not "0 B of 0 B"', () => {
  let text = '';
  const w = fakeWarmer();
  const p = new LineProgress({ write: (s: string) => (text += s) }, w, 0);
  w.images.push({ ref: 'docker.io/library/next:v2', status: 'resolving', startedAt: 0, total: 0, blobs: [] });
  p.finish(summary());
  assert.match(text, /\] total: 400 B of 1000 B so far \(1 image resolving\), [\d.]+ (B|KiB|MiB)\/s, ETA \?; blobs 0\/1; images 0\/2\n/);
  assert.equal(w.totals().resolving, 1);
  const only = fakeWarmer();
  only.blobs.clear();
  only.images.splice(0, 1, { ref: 'docker.io/library/next:v2', status: 'resolving', startedAt: 0, total: 0, blobs: [] });
  text = '';
  new LineProgress({ write: (s: string) => (text += s) }, only, 0).finish(summary());
  assert.match(text, /\] total: 0 B \(1 image resolving\), 0 B\/s, ETA \?; blobs 0\/0; images 0\/1\n/);
  assert.doesNotMatch(text, /0 B of 0 B|ETA 0s/);
  // The terminal's total row: no percent and no ETA while a total is partial.
  const partial = renderRow({ ...row('total', 400, 1000, 'total'), resolving: 2 }, 100, 10);
  assert.match(partial, / +- 400 B\/1000 B\+ .* ETA \? \(2 resolving\)$/);
  assert.match(renderRow({ ...row('total', 0, 0, 'total'), resolving: 1 }, 100, 10), / +- 0 B\/\? .* ETA \? \(1 resolving\)$/);
  assert.match(renderRow({ ...row('total', 400, 1000, 'total'), resolving: 0 }, 100, 10), / 40% 400 B\/1000 B .* ETA /);
});

test('log lines: a total line every interval while transfers run', async () => {
  let text = '';
  const w = fakeWarmer();
  const p = new LineProgress({ write: (s: string) => (text += s) }, w, 10);
  p.start();
  const deadline = Date.now() + 10_000;
  while (!/total: 400 B of 1000 B/.test(text) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  p.finish(summary());
  const totals = text.split('\n').filter((l) => /\] total: /.test(l));
  assert.ok(totals.length >= 2, `a periodic total line and the final one:\n${text}`);
});

test('the TTY reporter redraws in place: cursor up over the last frame, erase, bars; cursor shown at the end', () => {
  let text = '';
  const w = fakeWarmer();
  const p = new TtyProgress({ write: (s: string) => (text += s), columns: 70, rows: 20 }, w, 60_000);
  p.start();
  p.finish(summary());
  assert.ok(text.startsWith('\x1b[?25l'), 'cursor hidden while drawing');
  assert.match(text, /\x1b\[2A\r\x1b\[J/, 'the 2-line frame (image + total) is erased before the next');
  assert.match(text, /docker\.io\/library\/app:v1 █+░+  40% /);
  assert.match(text, /\x1b\[\?25h\nSummary/);
  const bars = text.split('\n').filter((l) => /[█░]/.test(l));
  assert.ok(bars.length >= 4, 'two frames of two bars');
  for (const line of bars) assert.ok([...line.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '')].length <= 69, line);
});

test('formatting helpers', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(1536), '1.50 KiB');
  assert.equal(formatBytes(150 * 2 ** 20), '150 MiB');
  assert.equal(formatDuration(850), '850ms');
  assert.equal(formatDuration(12_345), '12.3s');
  assert.equal(formatDuration(245_000), '4m05s');
  const m = new RateMeter(5000);
  m.sample(0, 0);
  m.sample(1000, 2 ** 20);
  assert.equal(m.rate(), 2 ** 20);
  m.sample(10_000, 2 ** 20);
  assert.ok(m.rate() < 2 ** 20 / 5, 'a stall lowers the rate');
});

test('summary text strips control characters from messages', () => {
  const lines = formatSummary(summary());
  for (const l of lines) assert.ok(!CONTROL.test(l), l);
});
