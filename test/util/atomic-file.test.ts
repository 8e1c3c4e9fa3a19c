import { mkdir, mkdtemp, readFile, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { removeStaleTemporaries, writeFileAtomic } from '../../src/util/atomic-file.js';

describe('atomic files', () => {
  let dir = '';
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes the new contents with the mode asked for and leaves no temporary file', async () => {
    dir = await mkdtemp(join(tmpdir(), 'pl-atomic-'));
    const path = join(dir, 'sub', 'state.json');
    await writeFileAtomic(path, 'one', { mode: 0o600 });
    await writeFileAtomic(path, 'two', { mode: 0o600 });
    expect(await readFile(path, 'utf8')).toBe('two');
    expect(await readdir(join(dir, 'sub'))).toEqual(['state.json']);
  });

  it('removes the temporary files interrupted writes left, in the directory and one level down, and nothing else', async () => {
    dir = await mkdtemp(join(tmpdir(), 'pl-atomic-'));
    const old = new Date(Date.now() - 60_000);
    const make = async (path: string, mtime?: Date): Promise<void> => {
      await mkdir(join(path, '..'), { recursive: true });
      await writeFile(path, 'x');
      if (mtime) await utimes(path, mtime, mtime);
    };
    await make(join(dir, '.hosts.json.0123456789ab.tmp'), old);
    await make(join(dir, 'supernode', '.identity.json.abcdef012345.tmp'), old);
    await make(join(dir, 'a', 'b', '.deep.json.abcdef012345.tmp'), old); // two levels down: not a state directory
    await make(join(dir, '.notes.tmp'), old); // not a name writeFileAtomic makes
    await make(join(dir, 'hosts.json'), old);
    await make(join(dir, '.fresh.json.0123456789ab.tmp')); // written after `before`: a write in progress
    const before = Date.now() - 30_000;
    const removed = await removeStaleTemporaries(dir, before);
    expect(removed.sort()).toEqual([join(dir, '.hosts.json.0123456789ab.tmp'), join(dir, 'supernode', '.identity.json.abcdef012345.tmp')].sort());
    expect((await readdir(dir)).sort()).toEqual(['.fresh.json.0123456789ab.tmp', '.notes.tmp', 'a', 'hosts.json', 'supernode']);
    expect(await readdir(join(dir, 'a', 'b'))).toEqual(['.deep.json.abcdef012345.tmp']);
    expect(await removeStaleTemporaries(join(dir, 'missing'))).toEqual([]);
  });
});
