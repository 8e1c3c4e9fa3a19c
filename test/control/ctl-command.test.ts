import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineCtlSubcommand, registerCtlCommand } from '../../src/cli/ctl-command.js';
import type { CtlIo } from '../../src/cli/ctl-command.js';
import { ControlRegistry } from '../../src/control/registry.js';
import { ControlServer } from '../../src/control/server.js';
import type { StatusReport } from '../../src/control/status.js';
import { PartylineError } from '../../src/errors.js';
import { memoryLogger } from '../helpers/log.js';
import { CLI } from '../helpers/process.js';

const REPORT: StatusReport = {
  user: 'alice',
  deviceId: 'd8f1c2a9e0b34f5a',
  role: 'ordinary',
  loggedIn: true,
  supernode: { address: '203.0.113.5:40000', rttMs: 12 },
  hostCache: { size: 37 },
  uptimeS: 125,
};

let dir: string;
let path: string;
let server: ControlServer;
let registry: ControlRegistry;

beforeEach(async () => {
  dir = await mkdtemp('/tmp/plc-');
  path = join(dir, 'control.sock');
  const log = memoryLogger().log;
  registry = new ControlRegistry({ log });
  registry.register('status', { args: z.strictObject({}), describe: 'status', handler: () => REPORT });
  server = new ControlServer({ path, registry, log });
  await server.start();
});

afterEach(async () => {
  await server.stop();
  await rm(dir, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the built `partyline` CLI (asynchronously: the node it talks to lives in this process). */
function partyline(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, timeout: 15_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('partyline ctl (built CLI, separate process)', () => {
  it('status --json prints the node status as JSON', async () => {
    const run = await partyline(['ctl', '--socket', path, 'status', '--json']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual(REPORT);
    expect(run.stdout).toBe(`${JSON.stringify(REPORT, null, 2)}\n`);
  });

  it('status prints a human summary', async () => {
    const run = await partyline(['ctl', 'status', '--socket', path]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^user: +alice$/m);
    expect(run.stdout).toMatch(/^logged in: +yes$/m);
    expect(run.stdout).toMatch(/^supernode: +203\.0\.113\.5:40000 \(rtt 12 ms\)$/m);
    expect(run.stdout).toMatch(/^uptime: +2m 05s$/m);
  });

  it('finds the socket through node.control of --config', async () => {
    const file = join(dir, 'phone.yaml');
    await writeFile(file, `node:\n  stateDir: ${dir}\n  control: ${path}\n`);
    const run = await partyline(['ctl', '--config', file, 'status', '--json']);
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout)).toEqual(REPORT);
  });

  it('says clearly when no node listens, with exit code 1', async () => {
    const missing = join(dir, 'nobody.sock');
    const run = await partyline(['ctl', '--socket', missing, 'status']);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(`partyline ctl: no partyline node is listening on ${missing} (is it running? is node.control / --socket right?)\n`);
  });
});

describe('partyline ctl (in process)', () => {
  function ctlProgram(extend?: (ctl: Command) => void): { run: (args: string[]) => Promise<Run> } {
    return {
      async run(args) {
        const out: Run = { code: 0, stdout: '', stderr: '' };
        const io: CtlIo = {
          stdout: { write: (text: string) => (out.stdout += text) },
          stderr: { write: (text: string) => (out.stderr += text) },
          setExitCode: (code) => {
            out.code = code;
          },
        };
        const program = new Command('partyline').exitOverride().enablePositionalOptions();
        const ctl = registerCtlCommand(program, io);
        extend?.(ctl);
        await program.parseAsync(['node', 'partyline', ...args]);
        return out;
      },
    };
  }

  it("reports the node's error with exit code 1", async () => {
    await server.stop();
    const failing = new ControlRegistry({ log: memoryLogger().log });
    failing.register('status', {
      args: z.strictObject({}),
      describe: 'status',
      handler: () => {
        throw new PartylineError('ERR_NOT_READY', 'node is still starting');
      },
    });
    server = new ControlServer({ path, registry: failing, log: memoryLogger().log });
    await server.start();
    const run = await ctlProgram().run(['ctl', '--socket', path, 'status']);
    expect(run).toEqual({ code: 1, stdout: '', stderr: 'partyline ctl: node is still starting\n' });
  });

  it('refuses --socket with --config, and a bad --timeout', async () => {
    expect(await ctlProgram().run(['ctl', '--socket', path, '--config', 'x.yaml', 'status'])).toEqual({
      code: 1,
      stdout: '',
      stderr: 'partyline ctl: give --socket or --config, not both\n',
    });
    expect((await ctlProgram().run(['ctl', '--socket', path, 'status', '--timeout', 'soon'])).stderr).toBe(
      'partyline ctl: --timeout: expected milliseconds 1..600000, got "soon"\n',
    );
  });

  it('times out on a node that does not answer', async () => {
    registry.register('stuck', { args: z.strictObject({}), describe: 'never answers', handler: () => new Promise(() => undefined) });
    const program = ctlProgram((ctl) => defineCtlSubcommand(ctl, { name: 'stuck', description: 'wait forever', printHuman: () => 'done\n' }));
    const run = await program.run(['ctl', '--socket', path, '--timeout', '50', 'stuck']);
    expect(run).toEqual({ code: 1, stdout: '', stderr: `partyline ctl: no answer from ${path} to "stuck" within 50 ms\n` });
  });

  it('a later subcommand is a few lines: arguments and options become the request, the result is printed', async () => {
    registry.register('lookup', {
      args: z.strictObject({ user: z.string().regex(/^[a-z]+$/), limit: z.number().int().min(1) }),
      describe: 'find a user',
      handler: ({ user, limit }) => ({ user, online: true, devices: limit }),
    });
    const searchResult = z.object({ user: z.string(), online: z.boolean() });
    const program = ctlProgram((ctl) =>
      defineCtlSubcommand(ctl, {
        name: 'lookup',
        description: 'find a user in the network',
        args: [['<user>', 'user name']],
        options: [['--limit <n>', 'at most n devices']],
        result: searchResult,
        toRequest: ({ args, options }) => ({ user: args.user, limit: Number(options.limit ?? 1) }),
        printHuman: (r) => `${r.user} is ${r.online ? 'online' : 'offline'}\n`,
      }),
    );
    expect(await program.run(['ctl', '--socket', path, 'lookup', 'bob', '--limit', '3'])).toEqual({ code: 0, stdout: 'bob is online\n', stderr: '' });
    const json = await program.run(['ctl', 'lookup', 'bob', '--json', '--socket', path]);
    expect(JSON.parse(json.stdout)).toEqual({ user: 'bob', online: true, devices: 1 });
    // the node validates: its message comes back as is
    expect(await program.run(['ctl', '--socket', path, 'lookup', 'Bob!'])).toEqual({
      code: 1,
      stdout: '',
      stderr: 'partyline ctl: lookup: invalid arguments: user: expected text matching /^[a-z]+$/, got "Bob!"\n',
    });
  });

  it('checks the result against the subcommand schema before printing it for a human', async () => {
    registry.register('roster', { args: z.strictObject({}), describe: 'roster', handler: () => ({ buddies: 'bob' }) });
    const program = ctlProgram((ctl) =>
      defineCtlSubcommand(ctl, {
        name: 'roster',
        description: 'list buddies',
        result: z.object({ buddies: z.array(z.string()) }),
        printHuman: (r) => `${r.buddies.join('\n')}\n`,
      }),
    );
    expect(await program.run(['ctl', '--socket', path, 'roster'])).toEqual({
      code: 1,
      stdout: '',
      stderr: 'partyline ctl: roster: unexpected answer from the node: buddies: expected a list, got "bob" (--json prints it as it came)\n',
    });
    expect((await program.run(['ctl', '--socket', path, 'roster', '--json'])).stdout).toBe('{\n  "buddies": "bob"\n}\n');
  });

  it('passes positional arguments and options as they are when there is no toRequest', async () => {
    const seen: unknown[] = [];
    registry.register('memo', {
      args: z.strictObject({ user: z.string(), text: z.array(z.string()), urgent: z.boolean().optional() }),
      describe: 'send a message',
      handler: (args) => {
        seen.push(args);
        return { sent: true };
      },
    });
    const program = ctlProgram((ctl) =>
      defineCtlSubcommand(ctl, {
        name: 'memo',
        description: 'send a memo',
        args: [
          ['<user>', 'to whom'],
          ['<text...>', 'the message'],
        ],
        options: [['--urgent', 'ring the phone']],
        printHuman: () => 'sent\n',
      }),
    );
    expect((await program.run(['ctl', '--socket', path, 'memo', 'bob', 'lunch', 'at', 'one', '--urgent'])).stdout).toBe('sent\n');
    expect(seen).toEqual([{ user: 'bob', text: ['lunch', 'at', 'one'], urgent: true }]);
  });
});
