/**
 * The young-generation cap (src/cli/young-generation.ts): the pure rules, and, in child processes, that
 * V8 really stops at the cap under an allocation load that makes its own policy grow to the maximum
 * (the control: without the cap the same load goes past it, so the test can tell).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { capFromEnv, growthFor, operatorSized, SEMI_SPACE_CAP_MIB } from '../../src/cli/young-generation.js';

const MiB = 2 ** 20;
const MODULE = fileURLToPath(new URL('../../src/cli/young-generation.js', import.meta.url));

/** Largest new space (MiB, both semi-spaces) seen by a child that loads the module and then allocates survivors, yielding like a server. */
function maxNewSpace(env: Record<string, string>): Promise<number> {
  const script = `
    import { getHeapSpaceStatistics } from 'node:v8';
    await import(${JSON.stringify(MODULE)});
    const ring = new Array(300000);
    let max = 0;
    for (let i = 0; i < 3000000; i++) {
      ring[i % ring.length] = { i, s: 'x' + i };
      if (i % 2000 === 0) {
        max = Math.max(max, getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size);
        await new Promise((r) => setImmediate(r));
      }
    }
    console.log(max / 2 ** 20);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => child.on('close', (code) => (code === 0 ? resolve(Number(out.trim())) : reject(new Error(`child exited ${code}`)))));
}

describe('young generation cap', () => {
  test('the growth factor is V8 own doubling below the cap, never past it, and stops growth at it', () => {
    assert.equal(growthFor(1 * MiB, 8), 2, 'one semi-space of 1 MiB at start (or after a shrink): double, as V8 does');
    assert.equal(growthFor(2 * MiB, 8), 2, 'two semi-spaces of 1 MiB');
    assert.equal(growthFor(8 * MiB, 8), 2, 'two of 4 MiB: the next doubling lands at the cap');
    assert.equal(growthFor(16 * MiB, 8), 1, 'at the cap');
    assert.equal(growthFor(32 * MiB, 8), 1, 'above it (grown before the observer ran)');
    assert.equal(growthFor(8 * MiB, 6), 1, 'a doubling would pass a cap that is not a power of two: stay');
    assert.equal(growthFor(0, 8), 2);
  });

  test('the operator choosing the size (flags, NODE_OPTIONS, REGMIRROR_YOUNG_GENERATION=v8) turns the cap off', () => {
    assert.equal(operatorSized([], undefined, undefined), false);
    assert.equal(operatorSized(['--max-semi-space-size=32'], undefined, undefined), true);
    assert.equal(operatorSized(['--max_semi_space_size', '32'], undefined, undefined), true);
    assert.equal(operatorSized([], '--enable-source-maps --min-semi-space-size=4', undefined), true);
    assert.equal(operatorSized([], '--semi-space-growth-factor=2', undefined), true);
    assert.equal(operatorSized(['--max-old-space-size=512'], '--enable-source-maps', undefined), false);
    assert.equal(operatorSized([], undefined, 'v8'), true);
    assert.equal(capFromEnv(undefined), SEMI_SPACE_CAP_MIB);
    assert.equal(capFromEnv('4'), 4);
    assert.equal(capFromEnv('0'), SEMI_SPACE_CAP_MIB);
    assert.equal(capFromEnv('99'), SEMI_SPACE_CAP_MIB);
    assert.equal(capFromEnv('8MiB'), SEMI_SPACE_CAP_MIB);
  });

  test('under a load that grows V8 own young generation to its maximum, the capped one stays at the cap', async () => {
    const [capped, own] = await Promise.all([maxNewSpace({}), maxNewSpace({ REGMIRROR_YOUNG_GENERATION: 'v8' })]);
    assert.ok(own > 2 * SEMI_SPACE_CAP_MIB, `V8's own policy went past the cap (${own} MiB), so the load is one that grows it`);
    assert.ok(capped <= 2 * SEMI_SPACE_CAP_MIB, `capped at ${2 * SEMI_SPACE_CAP_MIB} MiB of new space, saw ${capped}`);
  });
});
