/**
 * One mirror per data directory: a lock file holding the owner's PID. A second process on the same
 * directory stops at start with a clear error (it would otherwise remove the first one's fill files and
 * race its commits). A lock left by a process that died (kill -9) is taken over.
 */
import { open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** Directories locked by this process (a mirror restarted in-process on the same directory may take its own lock back). */
const heldHere = new Set<string>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class DataDirLock {
  private constructor(readonly path: string) {}

  /** Takes the lock of `dir` (which must exist); throws when another live process holds it. */
  static async acquire(dir: string): Promise<DataDirLock> {
    const path = join(dir, 'regmirror.lock');
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const h = await open(path, 'wx');
        await h.writeFile(`${process.pid}\n`);
        await h.close();
        heldHere.add(path);
        return new DataDirLock(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      const mine = pid === process.pid;
      if (mine && heldHere.has(path)) throw new Error(`data directory ${dir} is already in use by another mirror in this process`);
      if (Number.isSafeInteger(pid) && pid > 0 && !mine && alive(pid)) {
        throw new Error(`data directory ${dir} is in use by another regmirror process (pid ${pid}); give each mirror its own --data-dir`);
      }
      // A stale lock (its process is gone): take it over.
      await rm(path, { force: true });
    }
    throw new Error(`cannot take the lock of data directory ${dir}`);
  }

  /** Releases the lock. */
  async release(): Promise<void> {
    heldHere.delete(this.path);
    await rm(this.path, { force: true }).catch(() => undefined);
  }
}
