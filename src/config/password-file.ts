import { readFile } from 'node:fs/promises';
import { ConfigError, errorMessage } from '../errors.js';
import type { AccountConfig } from './schema.js';

/**
 * The account password: `account.password`, or the first line of
 * `account.passwordFile` (trailing newline ignored). Undefined when neither
 * is set. Throws ConfigError when the file cannot be read or is empty.
 */
export async function readPasswordFromConfig(config: { account: AccountConfig }): Promise<string | undefined> {
  const { password, passwordFile } = config.account;
  if (password !== undefined) return password;
  if (passwordFile === undefined) return undefined;
  let text: string;
  try {
    text = await readFile(passwordFile, 'utf8');
  } catch (err) {
    const issue = `account.passwordFile: cannot read ${JSON.stringify(passwordFile)}: ${errorMessage(err)}`;
    throw new ConfigError(issue, [issue], { cause: err });
  }
  const line = text.split(/\r?\n/)[0] ?? '';
  if (line === '') {
    const issue = `account.passwordFile: expected a password on the first line of ${JSON.stringify(passwordFile)}, got an empty line`;
    throw new ConfigError(issue, [issue]);
  }
  return line;
}
