/**
 * Workload 8 (issue 10): start-up with a big cache index. The real `regmirror serve` is started on a
 * data dir holding N blob files with N index entries (bench/index/fixture.ts, seeded once per run
 * and size, not timed) plus a fresh batch of reconciliation work before every start (1 000 files
 * without entries, 1 000 entries without files, 100 old temp files). Measured from the spawn:
 * the `regmirror listening` log line (node's own start-up included), the first answer to `GET /v2/`,
 * and the `cache index reconciled` line (reconciliation runs in the background after listening);
 * VmRSS when listening, and VmRSS / VmHWM / the file-backed part (LMDB's map) once reconciled.
 *
 * The temp files are removed before listening (the blob store's init), the rest by reconciliation.
 * A first row starts regmirror on an empty data dir: what node and regmirror cost without an index.
 *
 * The fixture was just written, so its pages are in the page cache: a warm restart, the common case
 * (dropping the page cache is not ours to do on a shared machine).
 */
import { request } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { delay, freePort, spawnProc, tmpDir, type Proc } from '../test/harness/proc.js';
import { addReconcileWork, RECONCILE_WORK, seedIndexFixture } from './index/fixture.js';
import { cpuSecondsOf } from './procstat.js';
import { median } from './stats.js';
import type { StartupRound, StartupRow } from './types.js';
import type { WorkloadContext } from './workloads.js';

/** A cap far above the fixture's claimed sizes (about 2 TB at 1M entries): the evictor must not touch it. */
const FIXTURE_MAX_SIZE = '1000TB';

/** VmRSS, VmHWM and RssFile of `pid`, MiB (0 when gone). */
function memMiB(pid: number): { rss: number; hwm: number; file: number } {
  let text = '';
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    /* gone */
  }
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) / 1024;
  return { rss: field('VmRSS'), hwm: field('VmHWM'), file: field('RssFile') };
}

/** Resolves with the time (ms since epoch) of the first answer to `GET url`, polling every 5 ms until `stop()` is true. */
async function firstAnswer(url: string, stop: () => boolean): Promise<number | undefined> {
  while (!stop()) {
    const ok = await new Promise<boolean>((resolve) => {
      const req = request(url, { timeout: 1000, agent: false }, (res) => {
        res.resume();
        resolve(true);
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(false));
      req.end();
    });
    if (ok) return Date.now();
    await delay(5);
  }
  return undefined;
}

/** The parsed JSON log line matching `re`, waiting up to `timeoutMs`. */
async function logLine(proc: Proc, re: RegExp, timeoutMs: number): Promise<Record<string, unknown>> {
  const m = await proc.waitFor(re, { timeoutMs });
  return JSON.parse(m.input) as Record<string, unknown>;
}

function timeOf(line: Record<string, unknown>): number {
  const t = line.time;
  return typeof t === 'number' ? t : Date.parse(String(t));
}

/** One start of regmirror on `dataDir`, until reconciliation is done; the process is stopped after. */
async function oneStart(ctx: WorkloadContext, dataDir: string, logDir: string): Promise<StartupRound> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const args = [ctx.mainJs, 'serve', '--listen', `127.0.0.1:${port}`, '--upstream', `docker.io=${ctx.relay.url}`, '--data-dir', dataDir, '--max-size', FIXTURE_MAX_SIZE, '--log-level', 'info'];
  let done = false;
  const t0 = Date.now();
  const proc = await spawnProc(process.execPath, args, { name: 'regmirror-startup', logDir, cwd: logDir, env: { ...process.env, REGMIRROR_CONFIG: '' } });
  try {
    const ready = firstAnswer(`${url}/v2/`, () => done || !proc.running);
    const listening = await logLine(proc, /"msg":"regmirror listening/, 60_000);
    const atListen = memMiB(proc.pid);
    const cpuListenMs = cpuSecondsOf([proc.pid]) * 1000;
    const readyAt = await ready;
    const reconciled = await logLine(proc, /"msg":"cache index reconciled/, 600_000);
    const atEnd = memMiB(proc.pid);
    const cpuReconciledMs = cpuSecondsOf([proc.pid]) * 1000;
    const report = (reconciled.report ?? {}) as Record<string, number>;
    // Temp files go before listening (logged once, when there were some); reconciliation finds none left.
    const removedLine = proc
      .output('stdout')
      .split('\n')
      .find((l) => l.includes('"msg":"removed temp files left by an earlier run"'));
    const removedBefore = removedLine ? Number((JSON.parse(removedLine) as { removed?: number }).removed ?? 0) : 0;
    return {
      listenMs: timeOf(listening) - t0,
      readyMs: readyAt === undefined ? Number.NaN : readyAt - t0,
      reconciledMs: timeOf(reconciled) - t0,
      reconcileMs: report.durationMs ?? Number.NaN,
      indexed: report.indexed ?? Number.NaN,
      dropped: report.dropped ?? Number.NaN,
      tmpRemoved: (report.tmpRemoved ?? 0) + removedBefore,
      cpuListenMs,
      cpuReconciledMs,
      rssListenMiB: atListen.rss,
      rssReconciledMiB: atEnd.rss,
      hwmMiB: atEnd.hwm,
      rssFileMiB: atEnd.file,
    };
  } finally {
    done = true;
    await proc.stop();
  }
}

/**
 * Workload 8: regmirror on an empty data dir (a fresh one per round), then for each index size a
 * fixture seeded once and regmirror started on it `rounds` times.
 */
export async function startupWorkload(ctx: WorkloadContext): Promise<StartupRow[]> {
  const { params } = ctx;
  const rows: StartupRow[] = [];
  for (const n of [0, ...params.startupEntries.filter((e) => e > 0)]) {
    const dir = await tmpDir(`startup-${n}-`);
    let dataDir = join(dir, 'data');
    let seedS = 0;
    let indexMiB = 0;
    if (n > 0) {
      ctx.log(`w8: seeding a data dir with ${n} blob files and index entries (once per run, not timed)`);
      const s0 = performance.now();
      indexMiB = await seedIndexFixture(dataDir, n);
      seedS = (performance.now() - s0) / 1000;
      ctx.log(`w8: seeded ${n} entries in ${seedS.toFixed(1)} s (index ${indexMiB.toFixed(0)} MiB)`);
    }
    const rounds: StartupRound[] = [];
    for (let round = 0; round < params.rounds; round++) {
      if (n > 0) await addReconcileWork(dataDir);
      else dataDir = join(dir, `empty-${round}`);
      const r = await oneStart(ctx, dataDir, dir);
      ctx.log(
        `w8: ${n} entries, round ${round + 1}: listening after ${r.listenMs} ms (GET /v2/ answered after ${r.readyMs} ms; CPU ${r.cpuListenMs.toFixed(0)} ms), ` +
          `reconciled after ${(r.reconciledMs / 1000).toFixed(1)} s (CPU ${(r.cpuReconciledMs / 1000).toFixed(1)} s; ${r.indexed} indexed / ${r.dropped} dropped / ${r.tmpRemoved} tmp removed); ` +
          `RSS ${r.rssListenMiB.toFixed(0)} MiB listening, ${r.rssReconciledMiB.toFixed(0)} MiB reconciled (${r.rssFileMiB.toFixed(0)} file-backed), VmHWM ${r.hwmMiB.toFixed(0)} MiB`,
      );
      const want = n > 0 ? RECONCILE_WORK : { filesWithoutEntries: 0, entriesWithoutFiles: 0, tmpLeftovers: 0 };
      if (r.indexed !== want.filesWithoutEntries || r.dropped !== want.entriesWithoutFiles || r.tmpRemoved !== want.tmpLeftovers) {
        ctx.note(
          `start-up with ${n} entries, round ${round + 1}: reconciliation did ${r.indexed} / ${r.dropped} / ${r.tmpRemoved} (indexed / dropped / tmp removed), ` +
            `expected ${want.filesWithoutEntries} / ${want.entriesWithoutFiles} / ${want.tmpLeftovers}.`,
        );
      }
      rounds.push(r);
    }
    const med = (f: (r: StartupRound) => number): number => median(rounds.map(f));
    rows.push({
      entries: n,
      seedS,
      indexMiB,
      listenMs: med((r) => r.listenMs),
      readyMs: med((r) => r.readyMs),
      reconciledMs: med((r) => r.reconciledMs),
      cpuListenMs: med((r) => r.cpuListenMs),
      cpuReconciledMs: med((r) => r.cpuReconciledMs),
      rssListenMiB: med((r) => r.rssListenMiB),
      rssReconciledMiB: med((r) => r.rssReconciledMiB),
      hwmMiB: med((r) => r.hwmMiB),
      rssFileMiB: med((r) => r.rssFileMiB),
      rounds,
    });
  }
  return rows;
}
