/**
 * An exception nothing caught (none is known; a dependency's bug, like undici's paused-parser assertion,
 * was one) ends `regmirror serve` with a fatal JSON log line naming the error, and exit code 1, instead of
 * a bare stack trace on stderr. The exception is thrown from a timer by a preload module given with
 * `--import`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { freePort, tmpDir } from '../harness/proc.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

test('an uncaught exception is logged as fatal JSON with the error, and the process exits 1', { timeout: 30_000 }, async () => {
  const dir = await tmpDir('fatal-');
  const preload = join(dir, 'throw-later.mjs');
  // Thrown once the mirror is listening (the log line), from a timer: nothing can catch it.
  await writeFile(preload, "setTimeout(() => { throw new Error('injected failure for the test'); }, 1500);\n");
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', pathToFileURL(preload).href, CLI, 'serve', '--listen', `127.0.0.1:${port}`, '--data-dir', join(dir, 'data'), '--upstream', 'docker.io=http://127.0.0.1:9', '--log-level', 'info'], {
    env: { ...process.env, REGMIRROR_CONFIG: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  const lines = stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: number; msg: string; err?: { message?: string; stack?: string } });
  assert.ok(lines.some((l) => l.msg.startsWith('regmirror listening')), `it started first:\n${stdout}\n${stderr}`);
  const fatal = lines.find((l) => l.level === 60);
  assert.ok(fatal, `a fatal line:\n${stdout}\n${stderr}`);
  assert.equal(fatal.msg, 'uncaught exception: exiting');
  assert.equal(fatal.err?.message, 'injected failure for the test');
  assert.match(fatal.err?.stack ?? '', /throw-later\.mjs/);
  assert.equal(code, 1);
});
