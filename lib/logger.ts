/**
 * The logger every component accepts. Silent by default; pass `console` or a pino/winston logger
 * (their method shapes fit). Log fields never carry credentials.
 */
export interface Logger {
  /** Detail for diagnosing (each request, each reconnect step). `fields`: structured context. */
  debug(message: string, fields?: Readonly<Record<string, unknown>>): void;
  /** Normal operation worth a line (subscribed, connected). `fields`: structured context. */
  info(message: string, fields?: Readonly<Record<string, unknown>>): void;
  /** Something went wrong and is being handled (a retry, a gap). `fields`: structured context. */
  warn(message: string, fields?: Readonly<Record<string, unknown>>): void;
  /** Something failed that the library cannot fix. `fields`: structured context. */
  error(message: string, fields?: Readonly<Record<string, unknown>>): void;
}

/** A logger that drops everything: the default. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

/**
 * Checks a `logger` option: `undefined` gives {@link silentLogger}; anything without the four
 * methods is a TypeError naming the option.
 */
export function resolveLogger(value: unknown, name = 'logger'): Logger {
  if (value === undefined) return silentLogger;
  const logger = value as Partial<Logger> | null;
  if (
    typeof logger !== 'object' ||
    logger === null ||
    typeof logger.debug !== 'function' ||
    typeof logger.info !== 'function' ||
    typeof logger.warn !== 'function' ||
    typeof logger.error !== 'function'
  ) {
    throw new TypeError(`${name} must have debug, info, warn and error methods`);
  }
  return logger as Logger;
}
