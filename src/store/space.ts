/** The data directory's health: writable, and how much room its filesystem has. */
import { access, constants, statfs } from 'node:fs/promises';

/** What a readiness check learns about the data directory. */
export interface SpaceReport {
  writable: boolean;
  /** Bytes free on the filesystem that holds the data directory (for unprivileged users). */
  freeBytes: number;
  totalBytes: number;
}

/** Reads the data directory's state; never throws (an unreadable directory is not writable). */
export async function checkSpace(dir: string): Promise<SpaceReport> {
  try {
    await access(dir, constants.W_OK);
    const s = await statfs(dir);
    return { writable: true, freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
  } catch {
    return { writable: false, freeBytes: 0, totalBytes: 0 };
  }
}
