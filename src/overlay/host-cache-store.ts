import { open, readFile, rename, rm } from 'node:fs/promises';
import { errorMessage } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { HostCache, HostCacheError } from './host-cache.js';
import type { HostCacheOptions } from './host-cache.js';

/**
 * Persistence of the host cache: one JSON file (`{"version":1,"entries":[…]}`,
 * one entry per line) written atomically, and a saver that batches the many
 * small changes of a running node into rare writes (SD cards wear out).
 */

export interface LoadHostCacheOptions extends HostCacheOptions {
  /** Epoch ms: names the `.corrupt-<now>` copy and ranks entries over capacity. */
  now: number;
}

export interface LoadHostCacheResult {
  cache: HostCache;
  /** What was dropped or set aside, one line each; the caller logs them at warn. */
  warnings: string[];
}

/**
 * Read the host cache file.
 *
 * - Missing file: an empty cache, no warning.
 * - Not JSON, wrong shape or unknown version: an empty cache, a warning, and
 *   the file renamed to `<path>.corrupt-<now>` (never overwritten) so that
 *   nothing is lost.
 * - Malformed entries: dropped, one warning each; the rest are kept.
 * - Any other read error (permissions, a directory in the way) throws
 *   `HostCacheError` `ERR_HOST_CACHE_READ`.
 */
export async function loadHostCache(path: string, options: LoadHostCacheOptions): Promise<LoadHostCacheResult> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (isErrnoCode(err, 'ENOENT')) return { cache: new HostCache(options), warnings: [] };
    throw new HostCacheError('ERR_HOST_CACHE_READ', `host cache ${path}: cannot read: ${errorMessage(err)}`, { cause: err });
  }

  let problem: string;
  try {
    const { cache, warnings } = HostCache.fromJSON(JSON.parse(text), options);
    return { cache, warnings: warnings.map((warning) => `host cache ${path}: ${warning}`) };
  } catch (err) {
    if (err instanceof SyntaxError) problem = `not valid JSON (${err.message})`;
    else if (err instanceof HostCacheError && (err.code === 'ERR_HOST_CACHE_FORMAT' || err.code === 'ERR_HOST_CACHE_VERSION')) problem = err.message;
    else throw err;
  }
  const aside = await setAside(path, options.now);
  return {
    cache: new HostCache(options),
    warnings: [`host cache ${path}: ${problem}; starting empty, the file was moved to ${aside}`],
  };
}

/** Write the cache atomically (temp file, fsync, rename, directory fsync). */
export async function saveHostCache(path: string, cache: HostCache): Promise<void> {
  await writeFileAtomic(path, serializeHostCache(cache), { mode: 0o600 });
}

/** The file contents: `toJSON()` with one entry per line, so that a human can read and diff it. */
export function serializeHostCache(cache: HostCache): string {
  const { version, entries } = cache.toJSON();
  const lines = entries.map((entry) => JSON.stringify(entry));
  return lines.length === 0
    ? `{"version":${version},"entries":[]}\n`
    : `{"version":${version},"entries":[\n${lines.join(',\n')}\n]}\n`;
}

/** Rename `path` to `<path>.corrupt-<now>[-n]`, never replacing an existing file. */
async function setAside(path: string, now: number): Promise<string> {
  for (let attempt = 0; ; attempt += 1) {
    const target = `${path}.corrupt-${Math.trunc(now)}${attempt === 0 ? '' : `-${attempt}`}`;
    try {
      // Reserve the name ('wx' fails if it exists), then rename over the placeholder.
      const handle = await open(target, 'wx', 0o600);
      await handle.close();
    } catch (err) {
      if (isErrnoCode(err, 'EEXIST') && attempt < 100) continue;
      throw new HostCacheError('ERR_HOST_CACHE_WRITE', `host cache ${path}: cannot set the corrupt file aside as ${target}: ${errorMessage(err)}`, { cause: err });
    }
    try {
      await rename(path, target);
    } catch (err) {
      await rm(target, { force: true });
      throw new HostCacheError('ERR_HOST_CACHE_WRITE', `host cache ${path}: cannot set the corrupt file aside as ${target}: ${errorMessage(err)}`, { cause: err });
    }
    return target;
  }
}

function isErrnoCode(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}

/** Timer functions, injectable for tests. */
export interface SaverTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface HostCacheSaverOptions {
  path: string;
  cache: HostCache;
  /** Least time between two writes, and longest a change waits (default 30 s). */
  intervalMs?: number;
  /** A background write failed; it is retried after `intervalMs`. Log it at warn. */
  onError: (err: unknown) => void;
  /** Default: the global timers, unref'd so that they never keep the process alive. */
  timers?: SaverTimers;
  /** Default: {@link saveHostCache}. */
  save?: (path: string, cache: HostCache) => Promise<void>;
}

export const DEFAULT_SAVE_INTERVAL_MS = 30_000;

const globalTimers: SaverTimers = {
  setTimeout(callback, ms) {
    const handle = setTimeout(callback, ms);
    handle.unref();
    return handle;
  },
  clearTimeout(handle) {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
};

/**
 * Batches host cache writes: `schedule()` after every change; the cache is
 * written `intervalMs` after the first unsaved change, so at most once per
 * interval however often it changes. `flush()` writes now; `stop()` writes
 * what is pending and stops (a second `stop()` is harmless; `schedule()`
 * after `stop()` does nothing).
 */
export class HostCacheSaver {
  readonly #path: string;
  readonly #cache: HostCache;
  readonly #intervalMs: number;
  readonly #onError: (err: unknown) => void;
  readonly #timers: SaverTimers;
  readonly #save: (path: string, cache: HostCache) => Promise<void>;
  #dirty = false;
  #timer: unknown = undefined;
  #writing: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;

  constructor(options: HostCacheSaverOptions) {
    const intervalMs = options.intervalMs ?? DEFAULT_SAVE_INTERVAL_MS;
    if (!(Number.isFinite(intervalMs) && intervalMs >= 0)) {
      throw new HostCacheError('ERR_HOST_CACHE_INVALID', `intervalMs: expected a number >= 0, got ${String(intervalMs)}`);
    }
    this.#path = options.path;
    this.#cache = options.cache;
    this.#intervalMs = intervalMs;
    this.#onError = options.onError;
    this.#timers = options.timers ?? globalTimers;
    this.#save = options.save ?? saveHostCache;
  }

  /** True while a change has not been written yet. */
  get pending(): boolean {
    return this.#dirty;
  }

  /** Note a change; it is written within `intervalMs`. */
  schedule(): void {
    if (this.#stopping) return;
    this.#dirty = true;
    this.#arm();
  }

  /** Write pending changes now (after any write in progress). Rejects if the write fails. */
  async flush(): Promise<void> {
    // A background write's failure goes to onError; here we only wait for it to settle.
    while (this.#writing) await this.#writing.then(() => undefined, () => undefined);
    this.#disarm();
    if (!this.#dirty) return;
    await this.#write();
  }

  /** Cancel the timer and write pending changes. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= this.flush();
    return this.#stopping;
  }

  #arm(): void {
    if (this.#timer !== undefined || this.#writing) return;
    this.#timer = this.#timers.setTimeout(() => {
      this.#timer = undefined;
      if (!this.#dirty) return;
      // On failure #write leaves the cache dirty and re-arms: a retry in intervalMs.
      this.#write().catch((err: unknown) => this.#onError(err));
    }, this.#intervalMs);
  }

  #disarm(): void {
    if (this.#timer === undefined) return;
    this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** One write; the snapshot is taken synchronously when it starts. */
  async #write(): Promise<void> {
    this.#dirty = false;
    const writing = this.#save(this.#path, this.#cache);
    this.#writing = writing;
    try {
      await writing;
    } catch (err) {
      this.#dirty = true;
      throw err;
    } finally {
      this.#writing = undefined;
      // Changes made during the write (or a failed write) wait a full interval.
      if (this.#dirty && !this.#stopping) this.#arm();
    }
  }
}
