/**
 * The control handlers, by name. The Unix socket server, MQTT provisioning
 * commands and the terminal UI all call `invoke()` on the same registry, so
 * every caller gets the same argument validation and the same errors.
 */
import type { z } from 'zod';
import { errorMessage, PartylineError } from '../errors.js';
import type { Logger } from '../system/logging.js';
import { ControlError, ERR_INTERNAL } from './errors.js';
import { formatIssues } from './issues.js';
import { COMMAND_NAME_PATTERN, MAX_COMMAND_NAME_LENGTH } from './protocol.js';

/** Who is asking, and a signal to stop early. */
export interface ControlContext {
  /** `socket`, `mqtt`, `tui`, `local` (in-process default) ... for logs. */
  origin: string;
  /**
   * Fires when nobody can receive the answer any more: for the socket, when
   * the connection closes or the server stops. (A client that only shuts
   * down its sending side still gets its answers, so that alone does not.)
   */
  signal: AbortSignal;
}

export interface ControlCommandSpec<A, R> {
  /** Schema of the arguments object; what it outputs is what the handler gets. */
  args: z.ZodType<A>;
  /** One line for `list()` and help texts. */
  describe: string;
  /**
   * Do the work. Throw a PartylineError (stable `code`, clear message) for
   * anything the caller should see; any other error is reported as
   * `ERR_INTERNAL` and logged. The result must be plain JSON data.
   */
  handler: (args: A, context: ControlContext) => R | Promise<R>;
}

export interface ControlCommandInfo {
  name: string;
  describe: string;
}

export interface ControlRegistryOptions {
  log: Logger;
}

interface Entry {
  args: z.ZodType;
  describe: string;
  handler: (args: unknown, context: ControlContext) => unknown;
}

const NEVER_ABORTED = new AbortController().signal;

export class ControlRegistry {
  #commands = new Map<string, Entry>();
  #log: Logger;

  constructor(options: ControlRegistryOptions) {
    this.#log = options.log;
  }

  /** Add a command. Names are lower case (`status`, `call`, `phone.keys`); registering a name twice throws. */
  register<A, R>(name: string, spec: ControlCommandSpec<A, R>): this {
    if (name.length > MAX_COMMAND_NAME_LENGTH || !COMMAND_NAME_PATTERN.test(name)) {
      throw new ControlError('ERR_CONTROL_COMMAND_NAME', `control command name ${JSON.stringify(name)}: expected lower case letters, digits, "-" and "."`);
    }
    if (this.#commands.has(name)) {
      throw new ControlError('ERR_CONTROL_DUPLICATE_COMMAND', `control command "${name}" is already registered`);
    }
    this.#commands.set(name, {
      args: spec.args,
      describe: spec.describe,
      handler: spec.handler as Entry['handler'],
    });
    return this;
  }

  has(name: string): boolean {
    return this.#commands.has(name);
  }

  /** Every command, sorted by name. */
  list(): ControlCommandInfo[] {
    return [...this.#commands.entries()]
      .map(([name, entry]) => ({ name, describe: entry.describe }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /**
   * Validate `rawArgs` (undefined = `{}`) against the command's schema and
   * run its handler. Rejects with a PartylineError:
   * `ERR_CONTROL_UNKNOWN_COMMAND`, `ERR_CONTROL_ARGS`, the handler's own
   * error, or `ERR_INTERNAL` for anything else (logged here).
   */
  async invoke(name: string, rawArgs: unknown = {}, context: Partial<ControlContext> = {}): Promise<unknown> {
    const entry = this.#commands.get(name);
    if (!entry) {
      const available = this.list().map((c) => c.name);
      const list = available.length > 0 ? available.join(', ') : 'none';
      throw new ControlError('ERR_CONTROL_UNKNOWN_COMMAND', `unknown command ${JSON.stringify(name)}; available: ${list}`);
    }
    const parsed = await entry.args.safeParseAsync(rawArgs);
    if (!parsed.success) {
      const problems = formatIssues(parsed.error, rawArgs, entry.args);
      throw new ControlError('ERR_CONTROL_ARGS', `${name}: invalid arguments: ${problems.join('; ')}`);
    }
    const full: ControlContext = { origin: context.origin ?? 'local', signal: context.signal ?? NEVER_ABORTED };
    try {
      return await entry.handler(parsed.data, full);
    } catch (err) {
      if (err instanceof PartylineError) throw err;
      this.#log.error({ command: name, origin: full.origin, err: errorMessage(err), stack: (err as Error)?.stack }, 'control handler failed');
      throw new PartylineError(ERR_INTERNAL, `${name}: internal error: ${errorMessage(err)} (details in the node's log)`, { cause: err });
    }
  }
}
