/**
 * Running the lab's system tools (`ip`, `nft`, `sysctl`) without a shell:
 * every call is an argv array given to `spawn`, batched input goes to stdin,
 * and a failure names the command, its input and its stderr.
 */
import { execFileSync, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { PartylineError } from '../../src/errors.js';

/** Something in the network lab failed; `code` says what (STYLE.md 9). */
export class NetLabError extends PartylineError {
  constructor(code: `ERR_NETLAB_${string}`, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** Exit code; null when the process was ended by a signal (see `signal`). */
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RunOptions {
  /** Written to the command's stdin, which is then closed. */
  input?: string;
  /** SIGKILL the command after this long (default 20 s). */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** `cmd a b c` with arguments quoted only where needed, for error messages. */
export function commandLine(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
}

/** Run a command; resolves with its output and exit status whatever the status (rejects only if it cannot start). */
export function run(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: options.env, cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
    child.on('error', (cause) => {
      clearTimeout(timer);
      reject(new NetLabError('ERR_NETLAB_SPAWN', `cannot start ${commandLine(cmd, args)}: ${cause.message}`, { cause }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), code, signal });
    });
    // A command that exits before reading its stdin makes the write fail with EPIPE; its exit status tells the story.
    child.stdin.on('error', () => child.stdin.destroy());
    child.stdin.end(options.input ?? '');
  });
}

/** Run a command and reject with a NetLabError naming the command, its input and its stderr unless it exits 0. */
export async function runChecked(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<ExecResult> {
  const result = await run(cmd, args, options);
  if (result.code !== 0) {
    const input = options.input ? `\n--- input ---\n${options.input.trimEnd()}` : '';
    const status = result.code === null ? `signal ${result.signal}` : `exit code ${result.code}`;
    throw new NetLabError('ERR_NETLAB_COMMAND', `${commandLine(cmd, args)} failed (${status}): ${result.stderr.trim() || result.stdout.trim()}${input}`);
  }
  return result;
}

/** Synchronous variant for process-exit handlers; never throws, returns stdout ('' on failure). */
export function runSync(cmd: string, args: readonly string[], input = ''): string {
  try {
    return execFileSync(cmd, args, { input, stdio: ['pipe', 'pipe', 'pipe'], timeout: 10_000 }).toString();
  } catch (err) {
    // Best effort by design: this runs while the process is exiting and must not throw.
    process.stderr.write(`netlab cleanup: ${commandLine(cmd, args)}: ${(err as Error).message}\n`);
    return '';
  }
}

/** The absolute path of an executable, looking in PATH and in the sbin folders a non-login root PATH may lack. */
export function findBinary(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/bin', '/bin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      continue; // not in this folder; try the next one
    }
  }
  return undefined;
}
