import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cleanupAll, spawnProc, tmpDir } from '../harness/proc.js';
import { Layout } from '../../src/store/layout.js';
import { openLmdbIndex } from '../../src/store/index/lmdb-index.js';
import { reconcile } from '../../src/store/index/reconcile.js';
import { fileMatchesName, filesOnDisk } from './fixtures/objects.js';

after(cleanupAll);

const WRITER = fileURLToPath(new URL('./fixtures/index-writer.js', import.meta.url));

test('kill -9 at random moments of commits, touches, evictions and tag writes: after reopen and reconcile, index and files agree', { timeout: 300_000 }, async () => {
  const dir = await tmpDir('crash-');
  const layout = new Layout(dir);
  let lastOps = 0;
  for (let round = 0; round < 6; round++) {
    const proc = await spawnProc(process.execPath, [WRITER, dir, 'crash'], { name: `index-writer-${round}`, ready: /^ready$/ });
    // Let it work, then SIGKILL without warning at a random moment (a few hundred operations in).
    await proc.waitFor(/^ops 25$/, { timeoutMs: 60_000 });
    await new Promise((r) => setTimeout(r, 50 + Math.floor(Math.random() * 400)));
    await proc.stop({ signal: 'SIGKILL' });
    const ops = [...proc.output('stdout').matchAll(/^ops (\d+)$/gm)].pop();
    lastOps = Number(ops?.[1] ?? 0);

    const index = openLmdbIndex({ dataDir: dir });
    // Before reconciliation the index is already self-consistent (LRU order, totals).
    assert.deepEqual(index.verify(), [], `round ${round}: index consistent right after kill -9`);
    const report = await reconcile({ index, layout });
    const disk = filesOnDisk(layout);
    const indexed = new Map<string, number>();
    let after: string | undefined;
    for (;;) {
      const page = index.scan(1000, after);
      for (const e of page.entries) indexed.set(`${e.kind} ${e.digest}`, e.size);
      if (!page.lastKey) break;
      after = page.lastKey;
    }
    assert.deepEqual([...indexed].sort(), [...disk].sort(), `round ${round}: entries = files (reconcile: ${JSON.stringify(report)})`);
    const t = index.totals();
    assert.equal(t.objects, disk.size);
    assert.equal(t.bytes, [...disk.values()].reduce((a, b) => a + b, 0));
    assert.deepEqual(index.verify(), []);
    assert.deepEqual(readdirSync(layout.tmp), [], 'leftover temp files removed');
    // Nothing partial under a digest name: every file hashes to its name.
    for (const key of disk.keys()) {
      const [kind, digest = ''] = key.split(' ');
      const d = { algorithm: 'sha256' as const, hex: digest.slice(7), value: digest };
      assert.ok(fileMatchesName(kind === 'blob' ? layout.blob(d) : layout.manifest(d), digest), `${key} intact`);
    }
    await index.close();
  }
  assert.ok(lastOps > 0);
});
