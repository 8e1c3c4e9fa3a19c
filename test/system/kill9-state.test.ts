import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadOrCreateIdentity } from '../../src/crypto/identity.js';
import { loadHostCache } from '../../src/overlay/host-cache-store.js';
import { spawnCli } from '../helpers/process.js';

/**
 * A phone loses power whenever it likes. Every state file is written
 * atomically (temp file, fsync, rename): SIGKILL at any moment must leave
 * either the old or the new contents, never a torn file.
 */
const WRITER = join(import.meta.dirname, 'fixtures', 'state-writer.mjs');
const ROUNDS = 25;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('state files survive kill -9', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it(`host cache and device keys parse after ${ROUNDS} SIGKILLs in the middle of writing them`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pl-kill9-'));
    dirs.push(dir);
    const seen = new Set<number>();
    for (let round = 0; round < ROUNDS; round++) {
      const child = spawn(process.execPath, [WRITER, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
      const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_c, sig) => r(sig)));
      // Wait until it is writing in a loop, then kill it at some moment of that loop.
      while (!out.includes('writing')) await sleep(5);
      await sleep(10 + Math.floor(Math.random() * 120));
      child.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL');

      const { cache, warnings } = await loadHostCache(join(dir, 'hosts.json'), { now: Date.now() });
      expect(warnings).toEqual([]);
      expect(cache.size).toBe(50);
      seen.add(cache.toJSON().entries[0]!.addedAt);
      const { identity, created } = await loadOrCreateIdentity(dir);
      expect(created).toBe(false);
      expect(identity.signing.publicKey).toHaveLength(32); // parsed, and its key pairs checked by the loader
    }
    // The kills landed in different writes, not all before the first.
    expect(seen.size).toBeGreaterThan(ROUNDS / 3);
    // Interrupted writes leave temp files behind (never read), nothing else.
    const names = await readdir(dir);
    expect(names.filter((n) => !['hosts.json', 'identity.json'].includes(n) && !/^\.(hosts|identity)\.json\.[0-9a-f]{12}\.tmp$/.test(n))).toEqual([]);
  }, 60_000);

  it('a node killed at any moment of its first start starts again with a valid identity', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pl-kill9-node-'));
    dirs.push(dir);
    const env = { PARTYLINE_NODE__STATE_DIR: dir, PARTYLINE_NODE__LISTEN: '127.0.0.1', PARTYLINE_NETWORK__MDNS: 'false', PARTYLINE_SUPERNODE__POLICY: 'always' };
    for (let round = 0; round < 6; round++) {
      const node = spawnCli(['start'], env);
      await sleep(150 + Math.floor(Math.random() * 600));
      await node.stop('SIGKILL');
    }
    // What an interrupted write leaves is removed at the next start.
    const leftover = join(dir, '.hosts.json.0123456789ab.tmp');
    await writeFile(leftover, '{"torn');
    await utimes(leftover, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    const node = spawnCli(['start'], env);
    try {
      const cleaned = await node.waitFor((l) => l.msg === 'removed temporary files an interrupted write left behind', 20_000);
      expect(cleaned.files).toContain(leftover);
      const started = await node.waitFor((l) => l.msg === 'node started', 20_000);
      expect(await readdir(dir)).not.toContain('.hosts.json.0123456789ab.tmp');
      const { identity } = await loadOrCreateIdentity(dir);
      expect(started.deviceId).toBe(identity.deviceId);
      expect(await node.stop()).toBe(0);
    } finally {
      await node.stop('SIGKILL');
    }
  }, 60_000);
});
