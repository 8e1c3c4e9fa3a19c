import type { Command } from 'commander';
import { AccountError, errorMessage } from '../errors.js';
import { AccountStore } from '../login/account-store.js';
import type { AccountInfo } from '../login/account-store.js';
import { checkNewPassword, MIN_PASSWORD_LENGTH } from '../login/password.js';
import { promptPassword, readPasswordLine } from '../login/password-input.js';
import type { PasswordSink, PasswordSource } from '../login/password-input.js';
import { parseUserName } from '../login/user-name.js';

/**
 * `partyline user …`: manage the login server's accounts in `<data>/accounts.db`.
 *
 *     partyline user add NAME --data DIR [--password-stdin]
 *     partyline user del NAME --data DIR
 *     partyline user passwd NAME --data DIR [--password-stdin]
 *     partyline user list --data DIR [--json]
 *
 * Passwords are typed twice on the terminal with echo off, or given as the
 * first line of stdin with `--password-stdin`. Errors go to stderr and set
 * the exit code to 1.
 */
export interface UserCommandIo {
  stdin: PasswordSource;
  stdout: PasswordSink;
  stderr: PasswordSink;
  setExitCode(code: number): void;
}

interface DataOptions {
  data: string;
}

interface PasswordOptions extends DataOptions {
  passwordStdin?: boolean;
}

interface ListOptions extends DataOptions {
  json?: boolean;
}

const DATA_HELP = 'login server data directory (holds accounts.db)';
const STDIN_HELP = 'read the password from the first line of stdin instead of the terminal';

export function registerUserCommand(program: Command, io: UserCommandIo = processIo()): void {
  const user = program.command('user').description('manage login server accounts');

  user.command('add')
    .description(`add an account (password: at least ${MIN_PASSWORD_LENGTH} characters)`)
    .argument('<name>', 'user name: 2-32 of a-z 0-9 . _ -, starting with a letter')
    .requiredOption('--data <dir>', DATA_HELP)
    .option('--password-stdin', STDIN_HELP)
    .action(guard(io, 'user add', async (name: string, options: PasswordOptions) => {
      const account = parseUserName(name);
      await withStore(options.data, true, async (store) => {
        if (store.getUser(account) !== undefined) {
          throw new AccountError('ERR_ACCOUNT_EXISTS', `user "${account}": already exists`);
        }
        const password = await newPassword(io, account, options.passwordStdin === true);
        await store.addUser(account, password);
      });
      io.stdout.write(`user ${account} added\n`);
    }));

  user.command('del')
    .description('delete an account and its buddy list')
    .argument('<name>', 'user name')
    .requiredOption('--data <dir>', DATA_HELP)
    .action(guard(io, 'user del', async (name: string, options: DataOptions) => {
      const account = parseUserName(name);
      await withStore(options.data, false, (store) => store.deleteUser(account));
      io.stdout.write(`user ${account} deleted\n`);
    }));

  user.command('passwd')
    .description(`set an account's password (at least ${MIN_PASSWORD_LENGTH} characters)`)
    .argument('<name>', 'user name')
    .requiredOption('--data <dir>', DATA_HELP)
    .option('--password-stdin', STDIN_HELP)
    .action(guard(io, 'user passwd', async (name: string, options: PasswordOptions) => {
      const account = parseUserName(name);
      await withStore(options.data, false, async (store) => {
        if (store.getUser(account) === undefined) {
          throw new AccountError('ERR_ACCOUNT_UNKNOWN', `user "${account}": no such user`);
        }
        const password = await newPassword(io, account, options.passwordStdin === true);
        await store.setPassword(account, password);
      });
      io.stdout.write(`password of ${account} changed\n`);
    }));

  user.command('list')
    .description('list accounts')
    .requiredOption('--data <dir>', DATA_HELP)
    .option('--json', 'print a JSON array (times in epoch milliseconds)')
    .action(guard(io, 'user list', async (options: ListOptions) => {
      const users = await withStore(options.data, false, (store) => store.listUsers());
      io.stdout.write(options.json === true ? `${JSON.stringify(users, null, 2)}\n` : formatUserTable(users));
    }));
}

/** The human listing: name, created, last login, last supernode. */
export function formatUserTable(users: readonly AccountInfo[]): string {
  if (users.length === 0) return 'no users\n';
  const rows = [
    ['NAME', 'CREATED', 'LAST LOGIN', 'LAST SUPERNODE'],
    ...users.map((u) => [u.name, formatTime(u.createdAt), formatTime(u.lastLoginAt), u.lastSupernode ?? '-']),
  ];
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')).join('\n') + '\n';
}

function formatTime(ms: number | null): string {
  if (ms === null) return 'never';
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, 'Z');
}

async function newPassword(io: UserCommandIo, account: string, fromStdin: boolean): Promise<string> {
  if (fromStdin) {
    const password = await readPasswordLine(io.stdin);
    checkNewPassword(password);
    return password;
  }
  if (io.stdin.isTTY !== true) {
    throw new AccountError('ERR_ACCOUNT_INPUT', 'stdin is not a terminal: pass the password on stdin with --password-stdin');
  }
  const password = await promptPassword(io.stdin, io.stderr, `New password for ${account}: `);
  checkNewPassword(password);
  const again = await promptPassword(io.stdin, io.stderr, 'Retype the password: ');
  if (again !== password) throw new AccountError('ERR_ACCOUNT_INPUT', 'the passwords do not match; nothing changed');
  return password;
}

/** Only `user add` creates the database: a mistyped --data for the others must not leave an empty one behind. */
async function withStore<T>(dir: string, create: boolean, use: (store: AccountStore) => T | Promise<T>): Promise<T> {
  let store: AccountStore;
  try {
    store = AccountStore.open(dir, { create });
  } catch (err) {
    if (err instanceof AccountError && err.code === 'ERR_ACCOUNT_DB_MISSING') {
      throw new AccountError(err.code, `${err.message} (is --data right? \`partyline user add\` creates it)`, { cause: err });
    }
    throw err;
  }
  try {
    return await use(store);
  } finally {
    store.close();
  }
}

/** Run an action; report any error as `partyline <what>: <message>` on stderr with exit code 1. */
function guard<A extends unknown[]>(io: UserCommandIo, what: string, action: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await action(...args);
    } catch (err) {
      io.stderr.write(`partyline ${what}: ${errorMessage(err)}\n`);
      io.setExitCode(1);
    }
  };
}

function processIo(): UserCommandIo {
  return {
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    setExitCode: (code) => {
      process.exitCode = code;
    },
  };
}
