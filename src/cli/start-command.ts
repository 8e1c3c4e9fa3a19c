import type { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { ConfigError, errorMessage } from '../errors.js';
import { componentLogger, createRootLogger } from '../system/logging.js';
import type { Logger } from '../system/logging.js';
import { ProvisionedNode } from '../provisioning/provisioned-node.js';
import { createServiceNotifier } from '../system/sd-notify.js';
import { EXIT_GRACE_MS, STOP_DEADLINE_MS, ServiceLifecycle, nodeReadiness } from '../system/service-lifecycle.js';

export interface ConfigOptions {
  config?: string;
  logLevel?: string;
}

/** Load the layered configuration; print every problem and return undefined when it is invalid. */
export async function loadConfigForCli(options: ConfigOptions): Promise<Config | undefined> {
  try {
    const { config } = await loadConfig(options.config ? { file: options.config } : {});
    if (options.logLevel) config.log.level = options.logLevel as Config['log']['level'];
    return config;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exitCode = 1;
      return undefined;
    }
    throw err;
  }
}

export function loggerFor(config: Config): Logger {
  return createRootLogger({ level: config.log.level, levels: config.log.levels });
}

/** systemd readiness, watchdog and stop notifications for a daemon (nothing without $NOTIFY_SOCKET). */
export function serviceLifecycle(log: Logger): ServiceLifecycle {
  const serviceLog = componentLogger(log, 'systemd');
  return new ServiceLifecycle({ notifier: createServiceNotifier({ log: serviceLog }), log: serviceLog });
}

/**
 * Stop cleanly on SIGINT/SIGTERM (STOPPING=1 to systemd first); a second
 * signal exits at once, and so does a stop that outlasts STOP_DEADLINE_MS.
 */
export function stopOnSignals(log: Logger, stop: () => Promise<void>, service?: ServiceLifecycle): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'stopping');
    void service?.stopping();
    const deadline = setTimeout(() => {
      log.error({ deadlineMs: STOP_DEADLINE_MS }, 'stop took too long: exiting');
      process.exit(1);
    }, STOP_DEADLINE_MS).unref();
    stop().then(
      () => {
        clearTimeout(deadline);
        service?.close();
        process.exitCode = process.exitCode ?? 0;
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        setTimeout(() => {
          log.warn({ resources: process.getActiveResourcesInfo() }, 'still running after stop: exiting');
          process.exit();
        }, EXIT_GRACE_MS).unref();
      },
      (err: unknown) => {
        log.error({ err: errorMessage(err) }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

export function registerStartCommand(program: Command): void {
  program.command('start')
    .description('run a node (a phone, or a supernode box) with the given configuration')
    .option('-c, --config <file>', 'YAML configuration file (default: $PARTYLINE_CONFIG, else built-in defaults)')
    .option('--log-level <level>', 'log level for every component (fatal, error, warn, info, debug, trace, silent)')
    .action(async (options: ConfigOptions) => {
      const config = await loadConfigForCli(options);
      if (!config) return;
      const log = loggerFor(config);
      const service = serviceLifecycle(log);
      service.startWatchdog();
      // The node, with provisioning over MQTT beside it when a broker is configured (or found).
      const node = new ProvisionedNode({ config, log, configFile: options.config, logLevel: options.logLevel });
      try {
        await node.start();
      } catch (err) {
        log.error({ code: (err as { code?: string }).code, err: errorMessage(err) }, 'node failed to start');
        await node.stop();
        service.close();
        process.exitCode = 1;
        return;
      }
      service.whenReady(() => nodeReadiness(node.status()));
      stopOnSignals(log, () => node.stop(), service);
    });
}
