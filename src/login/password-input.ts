import type { Readable } from 'node:stream';
import { AccountError } from '../errors.js';
import { MAX_PASSWORD_BYTES } from './password.js';

/**
 * Reading a password for the admin CLI: from a terminal with echo off, or
 * as one line from stdin (`--password-stdin`). Passwords are never echoed,
 * logged or put in error messages.
 */

/** A stdin: a readable stream, maybe a terminal. */
export type PasswordSource = Readable & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };

export interface PasswordSink {
  write(text: string): unknown;
}

/** More than this on the first line of stdin is refused before a newline turns up. */
const LINE_LIMIT = 4 * MAX_PASSWORD_BYTES;

/**
 * Read the first line of `input` (up to `\n` or the end of the stream),
 * without its line ending.
 * @throws AccountError `ERR_ACCOUNT_INPUT` when the line is missing or too long.
 */
export function readPasswordLine(input: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const finish = (error: Error | undefined, line?: Buffer): void => {
      input.off('data', onData);
      input.off('end', onEnd);
      input.off('error', onError);
      input.pause();
      const text = line?.toString('utf8').replace(/\r$/, '');
      buffered.fill(0);
      if (error !== undefined) reject(error);
      else if (text === undefined || text.length === 0) reject(inputError('no password on stdin (expected one line)'));
      else resolve(text);
    };
    const onData = (chunk: Buffer | string): void => {
      buffered = Buffer.concat([buffered, typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk]);
      const newline = buffered.indexOf(0x0a);
      if (newline >= 0) finish(undefined, buffered.subarray(0, newline));
      else if (buffered.length > LINE_LIMIT) finish(inputError(`password line on stdin longer than ${LINE_LIMIT} bytes`));
    };
    const onEnd = (): void => finish(undefined, buffered);
    const onError = (err: Error): void => finish(inputError(`cannot read stdin: ${err.message}`, err));
    input.on('data', onData);
    input.once('end', onEnd);
    input.once('error', onError);
    input.resume();
  });
}

/**
 * Prompt on a terminal with echo off: raw mode, Enter ends, Backspace
 * deletes, Ctrl-U clears, Ctrl-C or Ctrl-D aborts. The prompt goes to `output`
 * (stderr, so stdout stays clean for scripts).
 * @throws AccountError `ERR_ACCOUNT_INPUT` when aborted or `input` is not a terminal.
 */
export function promptPassword(input: PasswordSource, output: PasswordSink, prompt: string): Promise<string> {
  const setRawMode = input.setRawMode?.bind(input);
  if (input.isTTY !== true || setRawMode === undefined) {
    return Promise.reject(inputError('stdin is not a terminal: pass the password on stdin with --password-stdin'));
  }
  return new Promise((resolve, reject) => {
    let chars: string[] = [];
    output.write(prompt);
    const finish = (error: Error | undefined): void => {
      input.off('data', onData);
      input.off('end', onEnd);
      setRawMode(false);
      input.pause();
      output.write('\n');
      const text = chars.join('');
      chars = [];
      if (error !== undefined) reject(error);
      else resolve(text);
    };
    const onData = (chunk: Buffer | string): void => {
      for (const ch of typeof chunk === 'string' ? chunk : chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return finish(undefined);
        if (ch === '\u0003' || ch === '\u0004') return finish(inputError('password entry aborted'));
        if (ch === '\u007f' || ch === '\b') chars.pop();
        else if (ch === '\u0015') chars = [];
        else if (ch >= ' ') chars.push(ch);
      }
    };
    const onEnd = (): void => finish(inputError('password entry aborted (end of input)'));
    setRawMode(true);
    input.on('data', onData);
    input.once('end', onEnd);
    input.resume();
  });
}

function inputError(message: string, cause?: unknown): AccountError {
  return new AccountError('ERR_ACCOUNT_INPUT', message, cause === undefined ? undefined : { cause });
}
