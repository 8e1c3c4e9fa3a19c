import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export interface AtomicWriteOptions {
  /** File mode for the new file (default 0o644; use 0o600 for secrets). */
  mode?: number;
}

/**
 * Write a file so that a reader (or a power cut) sees either the old
 * contents or the new, never a mix: write a temporary file in the same
 * directory, fsync it, rename it over the target, fsync the directory.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(tmp, 'w', options.mode ?? 0o644);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (err) {
    await handle.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await handle.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await syncDirectory(dir);
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** What writeFileAtomic names its temporary files. */
const TEMPORARY = /^\..+\.[0-9a-f]{12}\.tmp$/;

/**
 * Remove the temporary files a write cut short (kill -9, power cut) left in
 * `dir` and its direct subdirectories, and return their paths. Only files
 * last written before `before` (default: when this process started) go, so
 * a write in progress here is never touched. Unreadable entries are skipped.
 */
export async function removeStaleTemporaries(dir: string, before = Date.now() - process.uptime() * 1000): Promise<string[]> {
  const removed: string[] = [];
  const sweep = async (at: string, depth: number): Promise<void> => {
    const entries = await readdir(at, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      const path = join(at, entry.name);
      if (entry.isDirectory()) {
        if (depth > 0) await sweep(path, depth - 1);
      } else if (entry.isFile() && TEMPORARY.test(entry.name)) {
        const info = await stat(path).catch(() => undefined);
        if (info && info.mtimeMs < before && (await rm(path).then(() => true, () => false))) removed.push(path);
      }
    }
  };
  await sweep(dir, 1);
  return removed;
}
