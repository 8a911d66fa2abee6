/**
 * Start-up with a large cache (issue 10): how long until a process that opens the index is
 * listening, and what reconciling N entries in the background costs (time, RSS, event-loop delay).
 *
 *   node build/bench/index/startup.js [--entries 100000,1000000] [--keep DIR]
 *
 * Setup (not timed, bench/index/fixture.ts): N blob files under blobs/sha256/xx/ (empty files:
 * reconciliation reads names and, for files without entries, stat; the bytes never matter) and N
 * entries in the index, plus 1 000 files without entries, 1 000 entries without files and 100
 * leftover temp files, so that reconciliation has every kind of work to do. `npm run bench` measures
 * the same with the real `regmirror serve` (workload 8); this script isolates the index.
 *
 * Measured in a fresh child process: node start → index open → an HTTP server listening on
 * 127.0.0.1 (the mirror's readiness), then reconcile() in the background while the server answers
 * a request every 10 ms (requests answered, worst event-loop delay).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Layout } from '../../src/store/layout.js';
import { openLmdbIndex } from '../../src/store/index/lmdb-index.js';
import { reconcile } from '../../src/store/index/reconcile.js';
import { addReconcileWork, indexMiB, seedIndexFixture } from './fixture.js';

function procStatus(field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : 0;
}

async function setup(dir: string, n: number): Promise<void> {
  const t0 = Date.now();
  await seedIndexFixture(dir, n);
  await addReconcileWork(dir);
  process.stderr.write(`setup of ${n} entries: ${((Date.now() - t0) / 1000).toFixed(0)} s, index file ${indexMiB(dir).toFixed(0)} MiB\n`);
}

/** Child: open, listen, reconcile in the background while answering requests; prints one JSON line. */
async function child(dir: string): Promise<void> {
  const index = openLmdbIndex({ dataDir: dir });
  const server = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const listenMs = performance.now(); // since the process started
  const port = (server.address() as { port: number }).port;
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  let answered = 0;
  let stop = false;
  const poll = async () => {
    while (!stop) {
      await new Promise<void>((resolve) => {
        request({ host: '127.0.0.1', port, path: '/' }, (res) => {
          res.resume();
          res.on('end', () => {
            answered++;
            resolve();
          });
        })
          .on('error', () => resolve())
          .end();
      });
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  const polling = poll();
  const t0 = performance.now();
  const report = await reconcile({ index, layout: new Layout(dir) });
  const reconcileMs = performance.now() - t0;
  stop = true;
  await polling;
  lag.disable();
  const out = {
    listenMs: Math.round(listenMs),
    reconcileMs: Math.round(reconcileMs),
    indexed: report.indexed,
    dropped: report.dropped,
    tmpRemoved: report.tmpRemoved,
    files: report.files,
    requestsAnswered: answered,
    maxLoopDelayMs: Math.round(lag.max / 1e6),
    p99LoopDelayMs: Math.round(lag.percentile(99) / 1e6),
    rssMiB: procStatus('VmRSS'),
    hwmMiB: procStatus('VmHWM'),
    rssAnonMiB: procStatus('RssAnon'),
    rssFileMiB: procStatus('RssFile'),
    objects: index.totals().objects,
  };
  server.close();
  await index.close();
  process.stdout.write(JSON.stringify(out) + '\n');
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === '--child') return child(argv[1] ?? '');
  let sizes = [100_000, 1_000_000];
  for (let i = 0; i < argv.length; i++) if (argv[i] === '--entries') sizes = (argv[++i] ?? '').split(',').map(Number);
  const rows = [
    `node ${process.version}; empty files; reconcile with 1 000 files without entries, 1 000 entries without files, 100 temp leftovers`,
    '| entries | listening after (ms) | reconcile (s) | indexed / dropped / tmp removed | requests answered during reconcile | worst loop delay (ms) | RSS after (MiB) | peak RSS (MiB) | of which file-backed (MiB) |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const n of sizes) {
    const dir = mkdtempSync(join(tmpdir(), 'idx-startup-'));
    try {
      await setup(dir, n);
      // Drop nothing from the page cache (not ours to do): this is a warm restart, the common case.
      const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', dir], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
      const o = JSON.parse(r.stdout.trim()) as Record<string, number>;
      const row = `| ${n} | ${o.listenMs} | ${((o.reconcileMs ?? 0) / 1000).toFixed(1)} | ${o.indexed} / ${o.dropped} / ${o.tmpRemoved} | ${o.requestsAnswered} | ${o.maxLoopDelayMs} | ${o.rssMiB} | ${o.hwmMiB} | ${o.rssFileMiB} |`;
      process.stderr.write(row + '\n');
      rows.push(row);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  process.stdout.write(rows.join('\n') + '\n');
}

await main(process.argv.slice(2));
