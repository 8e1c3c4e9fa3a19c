import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ControlRegistry } from '../../src/control/registry.js';
import type { ControlContext } from '../../src/control/registry.js';
import { PartylineError } from '../../src/errors.js';
import { memoryLogger } from '../helpers/log.js';

function registry(): { registry: ControlRegistry; logs: ReturnType<typeof memoryLogger> } {
  const logs = memoryLogger();
  const reg = new ControlRegistry({ log: logs.log });
  reg.register('search', {
    args: z.strictObject({ user: z.string(), limit: z.number().int().min(1).max(50).default(10) }),
    describe: 'find a user',
    handler: ({ user, limit }) => ({ user, limit }),
  });
  reg.register('hook', {
    args: z.strictObject({ state: z.enum(['on', 'off']) }),
    describe: 'lift or replace the handset',
    handler: async ({ state }) => state === 'off',
  });
  return { registry: reg, logs };
}

describe('ControlRegistry', () => {
  it('validates arguments, applies defaults and returns what the handler returns', async () => {
    const { registry: reg } = registry();
    await expect(reg.invoke('search', { user: 'bob' })).resolves.toEqual({ user: 'bob', limit: 10 });
    await expect(reg.invoke('hook', { state: 'off' })).resolves.toBe(true);
  });

  it('lists the commands sorted, with their descriptions', () => {
    const { registry: reg } = registry();
    expect(reg.list()).toEqual([
      { name: 'hook', describe: 'lift or replace the handset' },
      { name: 'search', describe: 'find a user' },
    ]);
    expect(reg.has('hook')).toBe(true);
    expect(reg.has('call')).toBe(false);
  });

  it('names the available commands when the command is unknown', async () => {
    const { registry: reg } = registry();
    await expect(reg.invoke('serch', {})).rejects.toMatchObject({
      code: 'ERR_CONTROL_UNKNOWN_COMMAND',
      message: 'unknown command "serch"; available: hook, search',
    });
    await expect(new ControlRegistry({ log: memoryLogger().log }).invoke('status')).rejects.toMatchObject({
      message: 'unknown command "status"; available: none',
    });
  });

  it('reports every bad argument with its path, what was expected and what came', async () => {
    const { registry: reg } = registry();
    const err = await reg.invoke('search', { user: 42, limit: 99, usr: 'x' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PartylineError);
    expect((err as PartylineError).code).toBe('ERR_CONTROL_ARGS');
    const message = (err as PartylineError).message;
    expect(message).toMatch(/^search: invalid arguments: /);
    expect(message).toContain('user: expected a string, got 42');
    expect(message).toContain('limit: expected a number <= 50, got 99');
    expect(message).toContain('usr: expected one of the keys user | limit, got unknown key "usr"');
    await expect(reg.invoke('hook', { state: 'up' })).rejects.toMatchObject({
      code: 'ERR_CONTROL_ARGS',
      message: 'hook: invalid arguments: state: expected one of "on" | "off", got "up"',
    });
    await expect(reg.invoke('hook', ['off'])).rejects.toMatchObject({ code: 'ERR_CONTROL_ARGS', message: expect.stringContaining('got a list of 1') });
  });

  it('passes a handler PartylineError through with its code and message', async () => {
    const { registry: reg, logs } = registry();
    reg.register('call', {
      args: z.strictObject({ user: z.string() }),
      describe: 'place a call',
      handler: ({ user }) => {
        throw new PartylineError('ERR_CALL_BUSY', `${user} is busy`);
      },
    });
    await expect(reg.invoke('call', { user: 'bob' })).rejects.toMatchObject({ code: 'ERR_CALL_BUSY', message: 'bob is busy' });
    expect(logs.lines().filter((l) => l.level === 50)).toEqual([]);
  });

  it('turns any other failure into ERR_INTERNAL and logs it as an error', async () => {
    const { registry: reg, logs } = registry();
    reg.register('broken', {
      args: z.strictObject({}),
      describe: 'a bug',
      handler: async () => {
        await Promise.resolve();
        throw new TypeError("Cannot read properties of undefined (reading 'rtt')");
      },
    });
    await expect(reg.invoke('broken', {}, { origin: 'mqtt' })).rejects.toMatchObject({
      code: 'ERR_INTERNAL',
      message: "broken: internal error: Cannot read properties of undefined (reading 'rtt') (details in the node's log)",
    });
    const logged = logs.lines().find((l) => l.msg === 'control handler failed');
    expect(logged).toMatchObject({ level: 50, command: 'broken', origin: 'mqtt' });
  });

  it('gives the handler its context, with a default when called in-process', async () => {
    const reg = new ControlRegistry({ log: memoryLogger().log });
    const seen: ControlContext[] = [];
    reg.register('whoami', { args: z.strictObject({}), describe: 'context', handler: (_args, context) => seen.push(context) });
    const controller = new AbortController();
    await reg.invoke('whoami');
    await reg.invoke('whoami', {}, { origin: 'tui', signal: controller.signal });
    expect(seen[0]?.origin).toBe('local');
    expect(seen[0]?.signal.aborted).toBe(false);
    expect(seen[1]?.origin).toBe('tui');
    expect(seen[1]?.signal).toBe(controller.signal);
  });

  it('refuses a duplicate or malformed command name', () => {
    const { registry: reg } = registry();
    const spec = { args: z.strictObject({}), describe: 'x', handler: () => null };
    expect(() => reg.register('hook', spec)).toThrow(expect.objectContaining({ code: 'ERR_CONTROL_DUPLICATE_COMMAND' }));
    expect(() => reg.register('Hook Up', spec)).toThrow(expect.objectContaining({ code: 'ERR_CONTROL_COMMAND_NAME' }));
  });
});
