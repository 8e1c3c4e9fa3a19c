import type { Command } from 'commander';
import { LOG_LEVELS } from '../config/schema.js';
import { errorMessage, PartylineError } from '../errors.js';
import { DEFAULT_LOGIN_PORT } from '../login/client.js';
import { formatLoginServerKey, LOGIN_KEY_FILE, loadOrCreateLoginKey } from '../login/login-key.js';
import { LoginServer } from '../login/server.js';
import { componentLogger, createRootLogger } from '../system/logging.js';
import type { LoggingOptions } from '../system/logging.js';
import { HostPortError, parseHostPort } from '../util/host-port.js';
import { serviceLifecycle, stopOnSignals } from './start-command.js';

/**
 * `partyline login-server …`: the network's one central server.
 *
 *     partyline login-server [run] --data DIR [--listen HOST:PORT] [--network NAME]
 *                                  [--credential-hours H] [--log-level LEVEL]
 *     partyline login-server key --data DIR
 *
 * `run` is the default subcommand. `<DIR>` holds `accounts.db` (managed with
 * `partyline user …`) and `login-key.json` (the server's long-term key,
 * mode 0600, made at first start). `key` prints the base64 public key for
 * `network.loginServer.publicKey`.
 */
export const DEFAULT_LOGIN_LISTEN = `0.0.0.0:${DEFAULT_LOGIN_PORT}`;
export const DEFAULT_NETWORK = 'partyline';
export const DEFAULT_CREDENTIAL_HOURS = 8;
/** Credentials last hours, not forever (DESIGN.md "Trust"): a week at most. */
export const MAX_CREDENTIAL_HOURS = 7 * 24;

const DATA_HELP = `login server data directory (holds accounts.db and ${LOGIN_KEY_FILE}; created when missing)`;

interface RunOptions {
  data: string;
  listen: string;
  network: string;
  credentialHours: string;
  logLevel: string;
}

interface KeyOptions {
  data: string;
}

/** A command-line value the login server cannot use. */
class UsageError extends PartylineError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_USAGE', message, options);
  }
}

export function registerLoginServerCommand(program: Command): void {
  const loginServer = program.command('login-server')
    .description('run the login server (accounts, password check, credentials), or print its public key')
    .addHelpText('after', `
Without a subcommand, "run" is meant:
  partyline login-server --data /var/lib/partyline-login
  partyline login-server key --data /var/lib/partyline-login   # for network.loginServer.publicKey
Accounts: partyline user add NAME --data DIR`);

  loginServer.command('run', { isDefault: true })
    .description('run the login server until SIGINT/SIGTERM (the default subcommand)')
    .requiredOption('--data <dir>', DATA_HELP)
    .option('--listen <host:port>', 'TCP address to accept Noise links on (port 0: any free port)', DEFAULT_LOGIN_LISTEN)
    .option('--network <name>', 'network name: in every handshake and every credential (1-64 characters)', DEFAULT_NETWORK)
    .option('--credential-hours <hours>', `how long a credential is valid (0.1 to ${MAX_CREDENTIAL_HOURS})`, String(DEFAULT_CREDENTIAL_HOURS))
    .option('--log-level <level>', `log level (${LOG_LEVELS.join(', ')})`, 'info')
    .action(async (options: RunOptions) => {
      let settings: ReturnType<typeof parseRunOptions>;
      try {
        settings = parseRunOptions(options);
      } catch (err) {
        fail('login-server', err);
        return;
      }
      const root = createRootLogger({ level: settings.level });
      const log = componentLogger(root, 'login-server');
      const service = serviceLifecycle(root);
      service.startWatchdog();
      let server: LoginServer;
      try {
        server = new LoginServer({
          dataDir: options.data,
          host: settings.host,
          port: settings.port,
          network: settings.network,
          credentialTtlMs: settings.credentialTtlMs,
          log,
        });
        await server.start();
      } catch (err) {
        log.error({ code: (err as { code?: string }).code, err: errorMessage(err) }, 'login server failed to start');
        service.close();
        process.exitCode = 1;
        return;
      }
      service.whenReady(() => ({ ready: true, status: `login server serving on port ${server.port}` }));
      stopOnSignals(log, () => server.stop(), service);
    });

  loginServer.command('key')
    .description(`print the login server's public key (base64, for network.loginServer.publicKey); creates the key when missing`)
    .requiredOption('--data <dir>', DATA_HELP)
    .action(async (options: KeyOptions) => {
      try {
        const { identity, created, path } = await loadOrCreateLoginKey(options.data);
        if (created) process.stderr.write(`partyline login-server key: created ${path}\n`);
        process.stdout.write(`${formatLoginServerKey(identity)}\n`);
      } catch (err) {
        fail('login-server key', err);
      }
    });
}

/** Check and convert the `run` options; every problem at once. */
export function parseRunOptions(options: Omit<RunOptions, 'data'>): {
  host: string;
  port: number;
  network: string;
  credentialTtlMs: number;
  level: LoggingOptions['level'];
} {
  const problems: string[] = [];
  let host = '';
  let port = 0;
  try {
    ({ host, port } = parseListen(options.listen));
  } catch (err) {
    problems.push(`--listen: ${errorMessage(err)}`);
  }
  const network = options.network;
  if (network.length === 0 || network.length > 64 || /\s/.test(network)) {
    problems.push(`--network: expected 1 to 64 characters without white space, got ${JSON.stringify(network)}`);
  }
  const hours = Number(options.credentialHours);
  if (!/^\d+(\.\d+)?$/.test(options.credentialHours) || !(hours >= 0.1 && hours <= MAX_CREDENTIAL_HOURS)) {
    problems.push(`--credential-hours: expected a number from 0.1 to ${MAX_CREDENTIAL_HOURS}, got ${JSON.stringify(options.credentialHours)}`);
  }
  const level = options.logLevel as LoggingOptions['level'];
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    problems.push(`--log-level: expected one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(options.logLevel)}`);
  }
  if (problems.length > 0) throw new UsageError(problems.join('; '));
  return { host, port, network, credentialTtlMs: Math.round(hours * 3_600_000), level };
}

/** `host:port` as the rest of Partyline spells it, plus port 0 ("any free port"). */
export function parseListen(text: string): { host: string; port: number } {
  const anyPort = text.endsWith(':0');
  try {
    const { host, port } = parseHostPort(anyPort ? `${text.slice(0, -2)}:1` : text);
    return { host, port: anyPort ? 0 : port };
  } catch (err) {
    const reason = err instanceof HostPortError ? err.reason : errorMessage(err);
    throw new UsageError(`expected "host:port" (e.g. ${DEFAULT_LOGIN_LISTEN} or [::]:${DEFAULT_LOGIN_PORT}), got ${JSON.stringify(text)}: ${reason}`, { cause: err });
  }
}

function fail(what: string, err: unknown): void {
  process.stderr.write(`partyline ${what}: ${errorMessage(err)}\n`);
  process.exitCode = 1;
}
