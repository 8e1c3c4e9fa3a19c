import { Argument, Option } from 'commander';
import type { Command } from 'commander';
import type { z } from 'zod';
import { callControl, DEFAULT_CONTROL_TIMEOUT_MS } from '../control/client.js';
import { ControlError } from '../control/errors.js';
import { formatIssues } from '../control/issues.js';
import { formatStatus } from '../control/status-format.js';
import { errorMessage, PartylineError } from '../errors.js';
import { loadConfigForCli } from './start-command.js';
import { NodeIndexSearch } from '../overlay/index/node-messages.js';
import type { NodeIndexSearchResponse } from '../overlay/index/node-messages.js';
import { probeSubcommand } from './ctl-probe.js';
import { CALL_SUBCOMMANDS } from './ctl-call.js';
import { PHONE_SUBCOMMANDS } from './ctl-phone.js';
import { promotionSubcommand } from './ctl-promotion.js';
import { buddiesSubcommand, buddySubcommand, messageSubcommand, messagesSubcommand, presenceSubcommand } from './ctl-social.js';

/**
 * `partyline ctl [--config FILE | --socket PATH] <command> [--json]`: talk
 * to a running node over its control socket. The socket is `--socket`, else
 * `node.control` of the configuration (`--config FILE`, $PARTYLINE_CONFIG,
 * PARTYLINE_* variables, defaults: `<stateDir>/control.sock`). `--socket`,
 * `--config` and `--timeout` go before or after the subcommand.
 *
 * Each subcommand is a `CtlSubcommandSpec` given to `defineCtlSubcommand`:
 * how its arguments become a control request, and how its result reads to
 * a human. `--json` (every subcommand) prints the node's result as is.
 * Errors print `partyline ctl: <message>` on stderr with exit code 1.
 */
export interface CtlIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  setExitCode(code: number): void;
}

export interface CtlInput {
  /**
   * Positional arguments by name: `<user>` → `args.user` (a string),
   * `<text...>` → a string[], an optional one not given → undefined.
   */
  args: Record<string, string | string[] | undefined>;
  /** The subcommand's own options by commander name (`--max-results` → `maxResults`). */
  options: Record<string, unknown>;
}

export interface CtlSubcommandSpec<R = unknown> {
  /** Subcommand name: `status`, `call`, `hook` ... */
  name: string;
  description: string;
  /** Positional arguments: `[spec, description]` in commander syntax (`'<user>'`, `'[limit]'`, `'<text...>'`), or an Argument (e.g. with `.choices()`). */
  args?: ReadonlyArray<readonly [spec: string, description: string] | Argument>;
  /** Extra options: `[flags, description]`, or an Option. `--json`, `--socket`, `--config`, `--timeout` are always there. */
  options?: ReadonlyArray<readonly [flags: string, description: string] | Option>;
  /** Control command to call (or how the arguments choose it, e.g. `buddy add` → `buddy.add`). Default: `name`. */
  command?: string | ((input: CtlInput) => string);
  /** Milliseconds to wait for the node unless `--timeout` says otherwise. Default 5000. */
  timeoutMs?: number;
  /**
   * The request's `args`. Default: the positional arguments and options as
   * they are. The node validates them; throw a PartylineError here only for
   * what the node cannot check (e.g. reading a file).
   */
  toRequest?: (input: CtlInput) => Record<string, unknown> | Promise<Record<string, unknown>>;
  /** Schema of the result, checked before `printHuman` (not with `--json`). Without it the result is passed as unknown. */
  result?: z.ZodType<R>;
  /** Human-readable rendering of the result, ending with a newline. */
  printHuman: (result: R) => string;
}

interface ConnectionOptions {
  config?: string;
  socket?: string;
  timeout?: string;
}

const CONNECTION_OPTION_NAMES = ['config', 'socket', 'timeout', 'json'];
const MAX_TIMEOUT_MS = 600_000;

const ioByCtl = new WeakMap<Command, CtlIo>();

/** `partyline ctl status [--json]`. */
export const statusSubcommand: CtlSubcommandSpec = {
  name: 'status',
  description: 'show the node: user, login, role, supernode, host cache, uptime, and more',
  printHuman: formatStatus,
};

/** `partyline ctl search USER [--json]`: `{found, user, online, devices, lastSeen, source}`. */
export const searchSubcommand: CtlSubcommandSpec<NodeIndexSearchResponse> = {
  name: 'search',
  description: 'find a user in the network: the global index, else the login server',
  args: [['<user>', 'user name']],
  timeoutMs: 15_000,
  result: NodeIndexSearch.response,
  printHuman: (r) => {
    if (!r.found) return `${r.user}: no such user\n`;
    const seen = r.lastSeen ? new Date(r.lastSeen).toISOString() : 'never';
    const lines = [`${r.user}: ${r.online ? 'online' : 'offline'} (last seen ${seen}, from the ${r.source})`];
    for (const d of r.devices) lines.push(`  device ${d.deviceId}${d.presence ? ` (${d.presence})` : ''} via supernode ${d.supernode}${d.addresses.length ? `, at ${d.addresses.join(', ')}` : ''}`);
    if (r.lastSupernode) lines.push(`  last login through ${r.lastSupernode}`);
    return `${lines.join('\n')}\n`;
  },
};

/** Register `partyline ctl` and its subcommands; returns the `ctl` command. */
export function registerCtlCommand(program: Command, io: CtlIo = processIo()): Command {
  const ctl = program
    .command('ctl')
    .description("talk to a running node over its local control socket (node.control)")
    .usage('[--config FILE | --socket PATH] <command> [--json]');
  addConnectionOptions(ctl);
  ioByCtl.set(ctl, io);
  defineCtlSubcommand(ctl, statusSubcommand);
  defineCtlSubcommand(ctl, searchSubcommand);
  defineCtlSubcommand(ctl, probeSubcommand);
  defineCtlSubcommand(ctl, buddiesSubcommand);
  defineCtlSubcommand(ctl, buddySubcommand);
  defineCtlSubcommand(ctl, presenceSubcommand);
  defineCtlSubcommand(ctl, messageSubcommand);
  defineCtlSubcommand(ctl, messagesSubcommand);
  for (const spec of [...CALL_SUBCOMMANDS, ...PHONE_SUBCOMMANDS, promotionSubcommand]) defineCtlSubcommand(ctl, spec as CtlSubcommandSpec<unknown>);
  return ctl;
}

/** Add one subcommand to `ctl` (the command `registerCtlCommand` returned). */
export function defineCtlSubcommand<R>(ctl: Command, spec: CtlSubcommandSpec<R>): Command {
  const io = ioByCtl.get(ctl) ?? processIo();
  const sub = ctl.command(spec.name).description(spec.description);
  for (const arg of spec.args ?? []) sub.addArgument(arg instanceof Argument ? arg : new Argument(arg[0], arg[1]));
  for (const option of spec.options ?? []) sub.addOption(option instanceof Option ? option : new Option(option[0], option[1]));
  sub.option('--json', 'print the result as JSON');
  addConnectionOptions(sub);
  sub.action(async () => {
    try {
      await runSubcommand(ctl, sub, spec, io);
    } catch (err) {
      io.stderr.write(`partyline ctl: ${errorMessage(err)}\n`);
      io.setExitCode(1);
    }
  });
  return sub;
}

async function runSubcommand<R>(ctl: Command, sub: Command, spec: CtlSubcommandSpec<R>, io: CtlIo): Promise<void> {
  const own = sub.opts<Record<string, unknown>>();
  const connection: ConnectionOptions = { ...definedOnly(ctl.opts<ConnectionOptions>()), ...definedOnly(sub.opts<ConnectionOptions>()) };
  const timeoutMs = parseTimeout(connection.timeout, spec.timeoutMs ?? DEFAULT_CONTROL_TIMEOUT_MS);
  const input: CtlInput = { args: positionalArgs(sub), options: {} };
  for (const [key, value] of Object.entries(own)) {
    if (!CONNECTION_OPTION_NAMES.includes(key)) input.options[key] = value;
  }
  const args = spec.toRequest ? await spec.toRequest(input) : { ...definedOnly(input.args), ...input.options };
  const path = await socketPath(connection);
  if (path === undefined) return; // the configuration is invalid: loadConfigForCli printed why
  const command = typeof spec.command === 'function' ? spec.command(input) : spec.command ?? spec.name;
  const result = await callControl(path, command, args, { timeoutMs });
  if (own.json === true) {
    io.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  io.stdout.write(spec.printHuman(checkResult(spec, result)));
}

function addConnectionOptions(command: Command): void {
  command
    .option('-c, --config <file>', 'configuration file whose node.control names the socket (default: $PARTYLINE_CONFIG, else built-in defaults)')
    .option('-s, --socket <path>', 'control socket path (instead of node.control from the configuration)')
    .option('--timeout <ms>', `how long to wait for the node in milliseconds (default ${DEFAULT_CONTROL_TIMEOUT_MS})`);
}

/** `--socket`, else `node.control` of the loaded configuration; undefined when that is invalid (already reported). */
async function socketPath(options: ConnectionOptions): Promise<string | undefined> {
  if (options.socket !== undefined && options.config !== undefined) {
    throw new PartylineError('ERR_USAGE', 'give --socket or --config, not both');
  }
  if (options.socket !== undefined) return options.socket;
  const config = await loadConfigForCli(options.config === undefined ? {} : { config: options.config });
  return config?.node.control;
}

function parseTimeout(text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const ms = /^[0-9]+$/.test(text) ? Number(text) : NaN;
  if (!(ms >= 1 && ms <= MAX_TIMEOUT_MS)) {
    throw new PartylineError('ERR_USAGE', `--timeout: expected milliseconds 1..${MAX_TIMEOUT_MS}, got ${JSON.stringify(text)}`);
  }
  return ms;
}

function positionalArgs(sub: Command): CtlInput['args'] {
  const args: CtlInput['args'] = {};
  sub.registeredArguments.forEach((argument, i) => {
    args[argument.name()] = sub.processedArgs[i] as string | string[] | undefined;
  });
  return args;
}

function definedOnly<T extends object>(values: T): Partial<T> {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function checkResult<R>(spec: CtlSubcommandSpec<R>, result: unknown): R {
  if (!spec.result) return result as R;
  const parsed = spec.result.safeParse(result);
  if (parsed.success) return parsed.data;
  const problems = formatIssues(parsed.error, result, spec.result);
  throw new ControlError('ERR_CONTROL_PROTOCOL', `${spec.name}: unexpected answer from the node: ${problems.join('; ')} (--json prints it as it came)`);
}

function processIo(): CtlIo {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    setExitCode: (code) => {
      process.exitCode = code;
    },
  };
}
