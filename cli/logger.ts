/**
 * The CLI's logger: one line per message on stderr (stdout is kept for data: `tail`'s JSON lines,
 * `demo --json`'s summary), as text for people or JSON for log collectors. The library never puts
 * credentials in log fields; this logger adds none.
 *
 * @packageDocumentation
 */
import type { Logger } from '../lib/index.js';
import { LOG_LEVELS, type LogLevel } from './config-schema.js';

/** Options of {@link createCliLogger}. */
export interface CliLoggerOptions {
  /** Least severe level written. Default `'info'`. */
  readonly level?: LogLevel;
  /** `'text'` (`2026-01-01T10:00:00.000Z INFO message key=value`) or `'json'` (one object per line). Default `'text'`. */
  readonly format?: 'text' | 'json';
  /** Where lines go. Default `process.stderr`. */
  readonly stream?: { write(chunk: string): unknown };
}

function fieldValue(value: unknown): unknown {
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  if (value instanceof Date) return value.toISOString();
  return value;
}

function textValue(value: unknown): string {
  const v = fieldValue(value);
  if (typeof v === 'string') return /[\s"=]/.test(v) ? JSON.stringify(v) : v;
  if (typeof v === 'object' && v !== null) {
    try {
      return JSON.stringify(v);
    } catch {
      return '[unserializable]';
    }
  }
  return String(v);
}

/** A {@link Logger} that writes to stderr (or `options.stream`). */
export function createCliLogger(options: CliLoggerOptions = {}): Logger {
  const min = LOG_LEVELS.indexOf(options.level ?? 'info');
  const format = options.format ?? 'text';
  const stream = options.stream ?? process.stderr;
  const write = (level: LogLevel, message: string, fields?: Readonly<Record<string, unknown>>): void => {
    if (LOG_LEVELS.indexOf(level) < min) return;
    const time = new Date().toISOString();
    const entries = Object.entries(fields ?? {}).filter(([, v]) => v !== undefined);
    if (format === 'json') {
      const record: Record<string, unknown> = { time, level, message };
      for (const [k, v] of entries) if (!(k in record)) record[k] = fieldValue(v);
      let line: string;
      try {
        line = JSON.stringify(record);
      } catch {
        line = JSON.stringify({ time, level, message });
      }
      stream.write(`${line}\n`);
      return;
    }
    const rest = entries.map(([k, v]) => `${k}=${textValue(v)}`).join(' ');
    stream.write(`${time} ${level.toUpperCase().padEnd(5)} ${message}${rest === '' ? '' : ` ${rest}`}\n`);
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
  };
}

/**
 * The logger the CLI hands to the library's sources and to the push adapter: their `info` and
 * `warn` lines go out at `debug`. The CLI logs each lifecycle signal (connected, retrying, doorbell
 * failed, gap …) and each error the adapter reports to `onError` itself, once and with the
 * mailbox; the library's own lines about the same moments would print every one of them twice.
 * They stay available with `log.level: debug`. Errors stay errors.
 */
export function libraryLogger(base: Logger): Logger {
  return {
    debug: (m, f) => base.debug(m, f),
    info: (m, f) => base.debug(m, f),
    warn: (m, f) => base.debug(m, f),
    error: (m, f) => base.error(m, f),
  };
}
