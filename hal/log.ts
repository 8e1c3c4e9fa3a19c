/**
 * The logger the HAL's drivers take: the part of pino's `Logger` they use
 * (`hal/` never imports `src/`, so the entry point passes a child logger,
 * e.g. `log.child({component: 'keypad'})`). Fixed message text, data in the
 * first argument (STYLE.md 11).
 */
export interface HalLog {
  error(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

/** A logger that drops everything (the default when none is given). */
export const silentLog: HalLog = {
  error() {},
  warn() {},
  info() {},
  debug() {},
};
