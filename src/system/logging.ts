import { pino } from 'pino';
import type { DestinationStream, Level, Logger, LevelWithSilent } from 'pino';

export type { Logger } from 'pino';

export interface LoggingOptions {
  /** Default level for every component. */
  level: LevelWithSilent;
  /** Per-component levels, e.g. `{ overlay: 'debug' }`. */
  levels?: Record<string, LevelWithSilent>;
  /** Where JSON lines go (default: stdout). */
  destination?: DestinationStream;
  /** Base fields on every line. */
  base?: Record<string, unknown>;
}

/**
 * Field names whose values are never written to the log, wherever they occur
 * (STYLE.md 12: never log keys, passwords or SRTP material).
 */
const REDACTED_FIELDS = [
  'password', 'passwordFile', 'secret', 'privateKey', 'secretKey', 'key', 'keys', 'srtpKey', 'masterKey', 'credential.signature', 'token',
];

/** Pino redaction paths need explicit depth: cover fields up to five levels down. */
const REDACT_PATHS = REDACTED_FIELDS.flatMap((f) => [0, 1, 2, 3, 4].map((depth) => `${'*.'.repeat(depth)}${f}`));

/**
 * The root logger: pino JSON lines on stdout (journald keeps them).
 * Components take a child with `componentLogger(root, 'overlay')`; the
 * child's level comes from `log.levels[component]` when set.
 */
export function createRootLogger(options: LoggingOptions): Logger {
  const root = pino(
    {
      level: options.level,
      base: options.base ?? {},
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? pino.destination({ fd: 1, sync: false }),
  );
  rootSettings.set(root, { defaultLevel: options.level, levels: options.levels ?? {} });
  return root;
}

interface RootSettings {
  defaultLevel: LevelWithSilent;
  levels: Record<string, LevelWithSilent>;
}

const rootSettings = new WeakMap<Logger, RootSettings>();

/** A child logger for one component, at that component's configured level. */
export function componentLogger(parent: Logger, component: string, bindings: Record<string, unknown> = {}): Logger {
  const settings = rootSettings.get(parent);
  const child = parent.child({ component, ...bindings });
  const level = settings?.levels[component] ?? settings?.defaultLevel;
  if (level !== undefined) child.level = level;
  if (settings) rootSettings.set(child, settings);
  return child;
}

/** A logger that writes nothing (tests, library use). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

export function isLevel(value: string): value is Level {
  return ['fatal', 'error', 'warn', 'info', 'debug', 'trace'].includes(value);
}
