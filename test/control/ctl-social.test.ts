import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { registerCtlCommand } from '../../src/cli/ctl-command.js';
import type { CtlIo } from '../../src/cli/ctl-command.js';
import { ControlRegistry } from '../../src/control/registry.js';
import { ControlServer } from '../../src/control/server.js';
import { PartylineError } from '../../src/errors.js';
import { memoryLogger } from '../helpers/log.js';

/**
 * `ctl buddies | buddy add|remove | presence | message | messages` against a
 * control socket whose handlers record what they were asked (the node's
 * side is tested with real processes in test/overlay/index-network.test.ts).
 */
let dir: string;
let path: string;
let server: ControlServer;
let calls: Array<{ command: string; args: unknown }>;

const BUDDIES = [{ user: 'bob', online: true, presence: 'in-call' }, { user: 'carol', online: false, presence: 'offline' }];
const T = Date.UTC(2026, 10, 21, 9, 30, 5);

beforeEach(async () => {
  dir = await mkdtemp('/tmp/plc-');
  path = join(dir, 'control.sock');
  calls = [];
  const log = memoryLogger().log;
  const registry = new ControlRegistry({ log });
  const record = <A>(command: string, args: z.ZodType<A>, answer: (a: A) => unknown) =>
    registry.register(command, { args, describe: command, handler: (a) => {
      calls.push({ command, args: a });
      return answer(a);
    } });
  record('buddies', z.strictObject({}), () => BUDDIES);
  record('buddy.add', z.strictObject({ user: z.string() }), (a) => {
    if (a.user === 'nobody') throw new PartylineError('ERR_BUDDY_UNKNOWN_USER', 'no such user "nobody": nobody by that name has an account');
    return BUDDIES;
  });
  record('buddy.remove', z.strictObject({ user: z.string() }), () => BUDDIES.slice(1));
  record('presence', z.strictObject({ state: z.enum(['online', 'in-call']).optional() }), (a) => ({ state: a.state ?? 'online' }));
  record('message', z.strictObject({ user: z.string(), text: z.string() }), (a) => ({ id: 'f00d', to: a.user, devices: 2, delivered: 1, held: 1 }));
  record('messages', z.strictObject({}), () => [
    { id: 'a1', direction: 'in', from: 'bob', to: 'alice', time: T, text: 'lunch?', delivered: true, device: 'dev' },
    { id: 'a2', direction: 'out', from: 'alice', to: 'bob', time: T + 60_000, text: 'at one', delivered: false, held: 3 },
  ]);
  server = new ControlServer({ path, registry, log });
  await server.start();
});

afterEach(async () => {
  await server.stop();
  await rm(dir, { recursive: true, force: true });
});

async function ctl(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = { code: 0, stdout: '', stderr: '' };
  const io: CtlIo = {
    stdout: { write: (text: string) => (out.stdout += text) },
    stderr: { write: (text: string) => (out.stderr += text) },
    setExitCode: (code) => {
      out.code = code;
    },
  };
  const program = new Command('partyline').exitOverride().enablePositionalOptions();
  registerCtlCommand(program, io);
  await program.parseAsync(['node', 'partyline', 'ctl', '--socket', path, ...args]);
  return out;
}

describe('ctl buddies, buddy, presence, message, messages', () => {
  it('buddies: a list for scripts, one line per buddy for people', async () => {
    expect(JSON.parse((await ctl('buddies', '--json')).stdout)).toEqual(BUDDIES);
    expect((await ctl('buddies')).stdout).toBe('bob    in-call\ncarol  offline\n');
  });

  it('buddy add|remove USER calls buddy.add / buddy.remove; the node\'s refusal is shown', async () => {
    expect((await ctl('buddy', 'add', 'bob')).code).toBe(0);
    expect((await ctl('buddy', 'remove', 'bob')).stdout).toBe('carol  offline\n');
    expect(calls.map((c) => [c.command, c.args])).toEqual([['buddy.add', { user: 'bob' }], ['buddy.remove', { user: 'bob' }]]);
    expect(await ctl('buddy', 'add', 'nobody')).toEqual({ code: 1, stdout: '', stderr: 'partyline ctl: no such user "nobody": nobody by that name has an account\n' });
    const wrong = await ctl('buddy', 'befriend', 'bob').catch((err: { code: string }) => err);
    expect(wrong).toMatchObject({ code: 'commander.invalidArgument' });
  });

  it('presence shows or sets the state', async () => {
    expect((await ctl('presence')).stdout).toBe('presence: online\n');
    expect((await ctl('presence', 'in-call')).stdout).toBe('presence: in-call\n');
    expect(calls.map((c) => c.args)).toEqual([{}, { state: 'in-call' }]);
  });

  it('message USER TEXT… sends the words as one text', async () => {
    expect((await ctl('message', 'bob', 'lunch', 'at', 'one?')).stdout).toBe('sent to bob (2 devices: 1 delivered, 1 held until it logs in)\n');
    expect(calls).toEqual([{ command: 'message', args: { user: 'bob', text: 'lunch at one?' } }]);
  });

  it('messages: the history, oldest first', async () => {
    expect((await ctl('messages')).stdout).toBe('2026-11-21T09:30:05Z  bob -> alice: lunch?\n2026-11-21T09:31:05Z  alice -> bob (not delivered yet): at one\n');
    expect(JSON.parse((await ctl('messages', '--json')).stdout)).toHaveLength(2);
  });
});
