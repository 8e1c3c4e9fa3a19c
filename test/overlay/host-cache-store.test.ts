import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HostCache } from '../../src/overlay/host-cache.js';
import { HostCacheSaver, loadHostCache, saveHostCache } from '../../src/overlay/host-cache-store.js';
import type { SaverTimers } from '../../src/overlay/host-cache-store.js';

const T0 = Date.UTC(2025, 0, 1);
const KEY = Buffer.alloc(32, 7).toString('base64');

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'partyline-host-cache-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function sampleCache(): HostCache {
  const cache = new HostCache();
  cache.seed(['sn1.example.org:4000'], T0);
  cache.add({ address: '10.0.0.1:4000', altPorts: [443, 80], udpPort: 4000, publicKey: KEY }, 'self', T0);
  cache.recordSuccess('10.0.0.1:4000', 12.5, T0 + 1000);
  cache.add('[2001:db8::1]:4000', 'supernode', T0);
  cache.recordFailure('[2001:db8::1]:4000', T0 + 2000);
  return cache;
}

describe('saveHostCache / loadHostCache', () => {
  it('round-trips through a file with version 1', async () => {
    const path = join(dir, 'state', 'host-cache.json');
    const cache = sampleCache();
    await saveHostCache(path, cache);
    const text = await readFile(path, 'utf8');
    expect(JSON.parse(text)).toEqual({ version: 1, entries: cache.entries() });
    expect(text.split('\n')).toHaveLength(cache.size + 3); // header, one line per entry, footer, final newline
    expect((await stat(path)).mode & 0o777).toBe(0o600);

    const { cache: loaded, warnings } = await loadHostCache(path, { now: T0 + 5000 });
    expect(warnings).toEqual([]);
    expect(loaded.entries()).toEqual(cache.entries());
    expect(await readdir(join(dir, 'state'))).toEqual(['host-cache.json']);
  });

  it('saves and loads an empty cache', async () => {
    const path = join(dir, 'host-cache.json');
    await saveHostCache(path, new HostCache());
    expect(await readFile(path, 'utf8')).toBe('{"version":1,"entries":[]}\n');
    const { cache, warnings } = await loadHostCache(path, { now: T0 });
    expect(cache.size).toBe(0);
    expect(warnings).toEqual([]);
  });

  it('a missing file gives an empty cache and no warning', async () => {
    const { cache, warnings } = await loadHostCache(join(dir, 'absent.json'), { now: T0, capacity: 7 });
    expect(cache.size).toBe(0);
    expect(cache.capacity).toBe(7);
    expect(warnings).toEqual([]);
    expect(await readdir(dir)).toEqual([]);
  });

  it.each([
    ['truncated JSON', '{"version":1,"entries":[{"address":"10.0.0.1:4000",', /not valid JSON/],
    ['an empty file', '', /not valid JSON/],
    ['binary garbage', '\u0000\u00ff\u0001garbage', /not valid JSON/],
    ['the wrong shape', '["10.0.0.1:4000"]', /expected an object, got an array/],
    ['a future version', '{"version":2,"entries":[]}', /field "version": expected 1, got 2/],
  ])('%s: empty cache, a warning, and the original bytes kept aside', async (_name, content, problem) => {
    const path = join(dir, 'host-cache.json');
    await writeFile(path, content);
    const { cache, warnings } = await loadHostCache(path, { now: T0 });
    expect(cache.size).toBe(0);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(problem);
    const aside = `${path}.corrupt-${T0}`;
    expect(warnings[0]).toContain(aside);
    expect(await readdir(dir)).toEqual([`host-cache.json.corrupt-${T0}`]);
    expect(await readFile(aside)).toEqual(Buffer.from(content));
  });

  it('never overwrites an earlier corrupt copy', async () => {
    const path = join(dir, 'host-cache.json');
    await writeFile(path, 'first');
    await loadHostCache(path, { now: T0 });
    await writeFile(path, 'second');
    const { warnings } = await loadHostCache(path, { now: T0 });
    expect(warnings[0]).toContain(`${path}.corrupt-${T0}-1`);
    expect(await readFile(`${path}.corrupt-${T0}`, 'utf8')).toBe('first');
    expect(await readFile(`${path}.corrupt-${T0}-1`, 'utf8')).toBe('second');
  });

  it('drops malformed entries with warnings and keeps the file', async () => {
    const path = join(dir, 'host-cache.json');
    const good = sampleCache().entries();
    await writeFile(path, JSON.stringify({ version: 1, entries: [good[0], { ...good[1], udpPort: -1 }, good[2]] }));
    const { cache, warnings } = await loadHostCache(path, { now: T0 });
    expect(cache.entries()).toEqual([good[0], good[2]]);
    expect(warnings).toEqual([`host cache ${path}: entries[1]: field "udpPort": expected an integer 1..65535, got -1; entry dropped`]);
    expect(await readdir(dir)).toEqual(['host-cache.json']);
  });

  it('a bad option is an error, not a corrupt file: nothing is moved', async () => {
    const path = join(dir, 'host-cache.json');
    await saveHostCache(path, sampleCache());
    await expect(loadHostCache(path, { now: T0, capacity: 0 })).rejects.toMatchObject({ code: 'ERR_HOST_CACHE_INVALID' });
    expect(await readdir(dir)).toEqual(['host-cache.json']);
  });

  it('throws a typed error when the file cannot be read', async () => {
    const path = join(dir, 'host-cache.json');
    await mkdir(path);
    await expect(loadHostCache(path, { now: T0 })).rejects.toMatchObject({ name: 'HostCacheError', code: 'ERR_HOST_CACHE_READ' });
  });
});

/** Timers that fire only when the test says so. */
class FakeTimers implements SaverTimers {
  readonly pending = new Map<number, { callback: () => void; ms: number }>();
  #next = 1;

  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.#next++;
    this.pending.set(id, { callback, ms });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  fireAll(): void {
    const due = [...this.pending];
    this.pending.clear();
    for (const [, { callback }] of due) callback();
  }
}

/** A save function that records calls and completes when told to. */
function fakeSave(): { save: (path: string, cache: HostCache) => Promise<void>; calls: number[]; finish: (err?: Error) => void } {
  const calls: number[] = [];
  let settle: ((err?: Error) => void) | undefined;
  return {
    calls,
    save: (_path, cache) => {
      calls.push(cache.size);
      return new Promise<void>((resolve, reject) => {
        settle = (err) => (err ? reject(err) : resolve());
      });
    },
    finish: (err) => {
      const s = settle;
      settle = undefined;
      s?.(err);
    },
  };
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i += 1) await Promise.resolve();
}

describe('HostCacheSaver', () => {
  it('writes once per interval however many changes arrive', async () => {
    const timers = new FakeTimers();
    const io = fakeSave();
    const errors: unknown[] = [];
    const cache = new HostCache();
    const saver = new HostCacheSaver({ path: 'unused', cache, timers, save: io.save, onError: (e) => errors.push(e) });

    for (let i = 1; i <= 50; i += 1) {
      cache.add(`10.0.0.${i}:4000`, 'supernode', T0);
      saver.schedule();
    }
    expect(timers.pending.size).toBe(1);
    expect([...timers.pending.values()][0]?.ms).toBe(30_000);
    expect(io.calls).toEqual([]);
    expect(saver.pending).toBe(true);

    timers.fireAll();
    expect(io.calls).toEqual([50]);
    // A change during the write waits for the next interval, not for the write to end.
    cache.add('10.0.1.1:4000', 'supernode', T0);
    saver.schedule();
    expect(timers.pending.size).toBe(0);
    io.finish();
    await settle();
    expect(timers.pending.size).toBe(1);
    timers.fireAll();
    io.finish();
    await settle();
    expect(io.calls).toEqual([50, 51]);
    expect(saver.pending).toBe(false);
    expect(timers.pending.size).toBe(0);
    expect(errors).toEqual([]);
  });

  it('reports a failed background write and retries it after the interval', async () => {
    const timers = new FakeTimers();
    const io = fakeSave();
    const errors: unknown[] = [];
    const saver = new HostCacheSaver({ path: 'unused', cache: new HostCache(), timers, save: io.save, onError: (e) => errors.push(e) });
    saver.schedule();
    timers.fireAll();
    io.finish(new Error('ENOSPC'));
    await settle();
    expect(errors).toEqual([new Error('ENOSPC')]);
    expect(saver.pending).toBe(true);
    expect(timers.pending.size).toBe(1);
    timers.fireAll();
    io.finish();
    await settle();
    expect(io.calls).toHaveLength(2);
    expect(saver.pending).toBe(false);
  });

  it('flush() writes now; stop() writes what is pending, leaves no timer and is idempotent', async () => {
    const timers = new FakeTimers();
    const io = fakeSave();
    const saver = new HostCacheSaver({ path: 'unused', cache: new HostCache(), timers, save: io.save, onError: () => undefined });
    await saver.flush(); // nothing pending: no write
    expect(io.calls).toEqual([]);

    saver.schedule();
    const flushed = saver.flush();
    expect(timers.pending.size).toBe(0);
    io.finish();
    await flushed;
    expect(io.calls).toHaveLength(1);

    saver.schedule();
    const stopped = saver.stop();
    expect(saver.stop()).toBe(stopped);
    io.finish();
    await stopped;
    expect(io.calls).toHaveLength(2);
    expect(timers.pending.size).toBe(0);

    saver.schedule();
    expect(timers.pending.size).toBe(0);
    await saver.stop();
    expect(io.calls).toHaveLength(2);
  });

  it('stop() during a background write waits for it, then writes later changes', async () => {
    const timers = new FakeTimers();
    const io = fakeSave();
    const saver = new HostCacheSaver({ path: 'unused', cache: new HostCache(), timers, save: io.save, onError: () => undefined });
    saver.schedule();
    timers.fireAll();
    saver.schedule(); // change during the write
    const stopped = saver.stop();
    io.finish();
    await settle();
    expect(io.calls).toHaveLength(2);
    io.finish();
    await stopped;
    expect(timers.pending.size).toBe(0);
    expect(saver.pending).toBe(false);
  });

  it('really writes the file with the default save and global timers', async () => {
    const path = join(dir, 'host-cache.json');
    const cache = sampleCache();
    const saver = new HostCacheSaver({ path, cache, onError: (e) => { throw e; } });
    saver.schedule();
    await saver.stop();
    const { cache: loaded } = await loadHostCache(path, { now: T0 });
    expect(loaded.entries()).toEqual(cache.entries());
  });
});
