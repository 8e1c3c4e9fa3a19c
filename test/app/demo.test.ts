/**
 * `partyline demo --script` (issue 7, the embedded-default demo): one
 * process with a login server, a supernode with the sound test and two sim
 * phones; the script lifts handsets, dials extensions and checks states,
 * LEDs and media.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI } from '../helpers/process.js';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('demo-script.txt', import.meta.url));
const dirs: string[] = [];

async function demoDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pl-demo-test-'));
  dirs.push(dir);
  return dir;
}

afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('partyline demo --script', () => {
  it('alice dials bob (202), bob rings and blinks, answers, media both ways, hang up; then the sound test (300)', async () => {
    const { stdout } = await run(process.execPath, [CLI, 'demo', '--dir', await demoDir(), '--script', SCRIPT], { timeout: 60_000 });
    const steps = stdout.split('\n').filter((l) => l.startsWith('ok ') || l.startsWith('FAIL '));
    expect(steps.filter((l) => l.startsWith('FAIL'))).toEqual([]);
    expect(steps).toContain('ok expect bob led line blink-fast');
    expect(steps).toContain('ok expect bob media');
    expect(steps.at(-1)).toBe('ok wait alice idle');
    expect(steps).toHaveLength(24);
  }, 70_000);

  it('a failing step says what was wrong and exits 1', async () => {
    const dir = await demoDir();
    const script = join(dir, 'bad.txt');
    await writeFile(script, 'alice hook off\nalice keys 999#\nwait alice busy-tone\nexpect alice state ringback\n');
    const result = run(process.execPath, [CLI, 'demo', '--dir', dir, '--script', script], { timeout: 60_000 });
    await expect(result).rejects.toMatchObject({ code: 1, stdout: expect.stringContaining('FAIL expect alice state ringback: alice is busy-tone') });
  }, 70_000);
});
