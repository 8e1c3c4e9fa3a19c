import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatUserTable, registerUserCommand } from '../../src/cli/user-command.js';
import type { UserCommandIo } from '../../src/cli/user-command.js';
import { AccountStore } from '../../src/login/account-store.js';

interface Run {
  stdout: string;
  stderr: string;
  exitCode: number;
}

type Stdin = UserCommandIo['stdin'];

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'partyline-user-cli-'));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function partyline(args: string[], stdin: Stdin = Readable.from([]), onStderr?: (text: string) => void): Promise<Run> {
  const run: Run = { stdout: '', stderr: '', exitCode: 0 };
  const io: UserCommandIo = {
    stdin,
    stdout: { write: (text: string) => (run.stdout += text) },
    stderr: {
      write: (text: string) => {
        run.stderr += text;
        onStderr?.(text);
      },
    },
    setExitCode: (code) => {
      run.exitCode = code;
    },
  };
  const program = new Command('partyline').exitOverride().configureOutput({
    writeOut: (text) => (run.stdout += text),
    writeErr: (text) => (run.stderr += text),
  });
  registerUserCommand(program, io);
  await program.parseAsync(['node', 'partyline', ...args]);
  return run;
}

function stdinWith(text: string): Stdin {
  return Readable.from([Buffer.from(text)]);
}

/** A fake terminal: answers each password prompt with the next entry of `answers`. */
function terminal(answers: string[]): { stdin: Stdin; onStderr: (text: string) => void; rawModes: boolean[] } {
  const rawModes: boolean[] = [];
  const stdin = Object.assign(new PassThrough(), {
    isTTY: true,
    setRawMode: (mode: boolean) => rawModes.push(mode),
  });
  const onStderr = (text: string): void => {
    if (/password/i.test(text) && text.endsWith(': ')) {
      const answer = answers.shift();
      if (answer !== undefined) setImmediate(() => stdin.write(answer));
    }
  };
  return { stdin, onStderr, rawModes };
}

async function verify(name: string, password: string): Promise<boolean> {
  const store = AccountStore.open(dir);
  try {
    return await store.verifyPassword(name, password);
  } finally {
    store.close();
  }
}

describe('partyline user', () => {
  it('adds a user from --password-stdin and lists it as JSON', async () => {
    const added = await partyline(['user', 'add', 'Alice', '--data', dir, '--password-stdin'], stdinWith('alice secret 1\n'));
    expect(added).toEqual({ stdout: 'user alice added\n', stderr: '', exitCode: 0 });
    await partyline(['user', 'add', 'bob', '--data', dir, '--password-stdin'], stdinWith('bob secret 22\r\nignored second line\n'));

    const listed = await partyline(['user', 'list', '--data', dir, '--json']);
    expect(listed.exitCode).toBe(0);
    expect(listed.stderr).toBe('');
    const users = JSON.parse(listed.stdout) as unknown[];
    expect(users).toEqual([
      { name: 'alice', createdAt: expect.any(Number), lastLoginAt: null, lastSupernode: null, lastDeviceId: null },
      { name: 'bob', createdAt: expect.any(Number), lastLoginAt: null, lastSupernode: null, lastDeviceId: null },
    ]);
    expect(await verify('alice', 'alice secret 1')).toBe(true);
    expect(await verify('bob', 'bob secret 22')).toBe(true);
  });

  it('reads a password without a final newline', async () => {
    expect((await partyline(['user', 'add', 'carol', '--data', dir, '--password-stdin'], stdinWith('no newline here'))).exitCode).toBe(0);
    expect(await verify('carol', 'no newline here')).toBe(true);
  });

  it('lists users as a table', async () => {
    await partyline(['user', 'add', 'alice', '--data', dir, '--password-stdin'], stdinWith('alice secret 1\n'));
    const store = AccountStore.open(dir);
    store.recordLogin('alice', { at: Date.UTC(2025, 0, 2, 3, 4, 5), supernode: '192.0.2.7:40000' });
    store.close();
    const out = (await partyline(['user', 'list', '--data', dir])).stdout.split('\n');
    expect(out[0]).toMatch(/^NAME\s+CREATED\s+LAST LOGIN\s+LAST SUPERNODE$/);
    expect(out[1]).toMatch(/^alice\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\s+2025-01-02 03:04:05Z\s+192\.0\.2\.7:40000$/);
  });

  it('refuses to list, delete or change a password without a database, and creates none', async () => {
    const missing = join(dir, 'typo');
    for (const args of [['list'], ['del', 'alice'], ['passwd', 'alice', '--password-stdin']]) {
      const run = await partyline(['user', ...args, '--data', missing], stdinWith('whatever 123\n'));
      expect(run.exitCode).toBe(1);
      expect(run.stderr).toBe(`partyline user ${args[0]}: account database ${join(missing, 'accounts.db')}: does not exist (is --data right? \`partyline user add\` creates it)\n`);
    }
    expect(existsSync(missing)).toBe(false);
  });

  it('says so when there are no users', async () => {
    await partyline(['user', 'add', 'alice', '--data', dir, '--password-stdin'], stdinWith('alice secret 1\n'));
    await partyline(['user', 'del', 'alice', '--data', dir]);
    expect(await partyline(['user', 'list', '--data', dir])).toEqual({ stdout: 'no users\n', stderr: '', exitCode: 0 });
  });

  it('formats never-logged-in users', () => {
    expect(formatUserTable([{ name: 'al', createdAt: 0, lastLoginAt: null, lastSupernode: null, lastDeviceId: null }])).toBe(
      'NAME  CREATED               LAST LOGIN  LAST SUPERNODE\n'
      + 'al    1970-01-01 00:00:00Z  never       -\n',
    );
  });

  it('refuses a duplicate, a bad name and a short password with exit code 1', async () => {
    await partyline(['user', 'add', 'alice', '--data', dir, '--password-stdin'], stdinWith('alice secret 1\n'));
    expect(await partyline(['user', 'add', 'ALICE', '--data', dir, '--password-stdin'], stdinWith('other secret\n'))).toEqual({
      stdout: '', stderr: 'partyline user add: user "alice": already exists\n', exitCode: 1,
    });
    const badName = await partyline(['user', 'add', 'Al ice', '--data', dir, '--password-stdin'], stdinWith('long enough\n'));
    expect(badName.exitCode).toBe(1);
    expect(badName.stderr).toBe('partyline user add: user name "Al ice": only a-z, 0-9, ".", "_" and "-" are allowed (found " ")\n');
    const short = await partyline(['user', 'add', 'bob', '--data', dir, '--password-stdin'], stdinWith('short\n'));
    expect(short).toEqual({ stdout: '', stderr: 'partyline user add: password: 5 characters long, at least 8 required\n', exitCode: 1 });
    const empty = await partyline(['user', 'add', 'bob', '--data', dir, '--password-stdin'], stdinWith('\n'));
    expect(empty.stderr).toBe('partyline user add: no password on stdin (expected one line)\n');
    const long = await partyline(['user', 'add', 'bob', '--data', dir, '--password-stdin'], stdinWith(`${'x'.repeat(1025)}\n`));
    expect(long.stderr).toBe('partyline user add: password: 1025 bytes long, at most 1024 allowed\n');
    const endless = await partyline(['user', 'add', 'bob', '--data', dir, '--password-stdin'], stdinWith('y'.repeat(10_000)));
    expect(endless.stderr).toBe('partyline user add: password line on stdin longer than 4096 bytes\n');
    const listed = JSON.parse((await partyline(['user', 'list', '--data', dir, '--json'])).stdout) as { name: string }[];
    expect(listed.map((u) => u.name)).toEqual(['alice']);
  });

  it('asks for --password-stdin when stdin is not a terminal', async () => {
    const run = await partyline(['user', 'add', 'alice', '--data', dir], stdinWith('alice secret 1\n'));
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toBe('partyline user add: stdin is not a terminal: pass the password on stdin with --password-stdin\n');
    expect((await partyline(['user', 'list', '--data', dir, '--json'])).stdout).toBe('[]\n');
  });

  it('prompts twice on a terminal with echo off', async () => {
    const tty = terminal(['tty secret 1\r', 'tty secret 1\r']);
    const run = await partyline(['user', 'add', 'dave', '--data', dir], tty.stdin, tty.onStderr);
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toBe('user dave added\n');
    expect(run.stderr).toBe('New password for dave: \nRetype the password: \n');
    expect(tty.rawModes).toEqual([true, false, true, false]);
    expect(await verify('dave', 'tty secret 1')).toBe(true);
  });

  it('handles backspace on the terminal and refuses a mismatch', async () => {
    const typo = terminal(['tty secrex\u007ft 2\r', 'tty secret 2\r']);
    expect((await partyline(['user', 'add', 'erin', '--data', dir], typo.stdin, typo.onStderr)).exitCode).toBe(0);
    expect(await verify('erin', 'tty secret 2')).toBe(true);

    const mismatch = terminal(['first try 123\r', 'second try 123\r']);
    const run = await partyline(['user', 'passwd', 'erin', '--data', dir], mismatch.stdin, mismatch.onStderr);
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toContain('partyline user passwd: the passwords do not match; nothing changed\n');
    expect(await verify('erin', 'tty secret 2')).toBe(true);
  });

  it('stops on Ctrl-C at the prompt', async () => {
    const tty = terminal(['abc\u0003']);
    const run = await partyline(['user', 'add', 'frank', '--data', dir], tty.stdin, tty.onStderr);
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toContain('partyline user add: password entry aborted\n');
    expect(tty.rawModes).toEqual([true, false]);
  });

  it('changes a password', async () => {
    await partyline(['user', 'add', 'alice', '--data', dir, '--password-stdin'], stdinWith('alice secret 1\n'));
    const run = await partyline(['user', 'passwd', 'alice', '--data', dir, '--password-stdin'], stdinWith('alice secret 2\n'));
    expect(run).toEqual({ stdout: 'password of alice changed\n', stderr: '', exitCode: 0 });
    expect(await verify('alice', 'alice secret 1')).toBe(false);
    expect(await verify('alice', 'alice secret 2')).toBe(true);
    const unknown = await partyline(['user', 'passwd', 'zed', '--data', dir, '--password-stdin'], stdinWith('whatever 123\n'));
    expect(unknown).toEqual({ stdout: '', stderr: 'partyline user passwd: user "zed": no such user\n', exitCode: 1 });
  });

  it('deletes a user', async () => {
    await partyline(['user', 'add', 'alice', '--data', dir, '--password-stdin'], stdinWith('alice secret 1\n'));
    expect(await partyline(['user', 'del', 'alice', '--data', dir])).toEqual({ stdout: 'user alice deleted\n', stderr: '', exitCode: 0 });
    expect(await partyline(['user', 'del', 'alice', '--data', dir])).toEqual({
      stdout: '', stderr: 'partyline user del: user "alice": no such user\n', exitCode: 1,
    });
  });

  it('never prints the password', async () => {
    const secret = 'Sup3r-Secret-Phrase';
    const runs = [
      await partyline(['user', 'add', 'alice', '--data', dir, '--password-stdin'], stdinWith(`${secret}\n`)),
      await partyline(['user', 'add', 'alice', '--data', dir, '--password-stdin'], stdinWith(`${secret}\n`)),
      await partyline(['user', 'list', '--data', dir, '--json']),
    ];
    for (const run of runs) expect(run.stdout + run.stderr).not.toContain(secret);
  });

  it('reports a corrupt database', async () => {
    writeFileSync(join(dir, 'accounts.db'), 'garbage garbage garbage');
    const run = await partyline(['user', 'list', '--data', dir]);
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toMatch(/^partyline user list: account database .*accounts\.db: not a valid SQLite database/);
  });

  it('requires --data', async () => {
    await expect(partyline(['user', 'list'])).rejects.toMatchObject({ code: 'commander.missingMandatoryOptionValue' });
  });
});
