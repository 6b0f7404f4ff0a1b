/**
 * The CLI's Redis client, `ioredis`: an optional peer dependency, loaded only when `forward` runs
 * with a coordinator (or `doctor` checks one), so installs that never use Redis never need it. Its
 * absence is an `EwsPeerMissingError` (`EWS_PEER_MISSING`) that says what to install.
 *
 * @packageDocumentation
 */
import { EwsPeerMissingError } from '../lib/entry-errors.js';
import { type RedisScriptClient } from '../lib/entry-redis.js';
import { shownRedisUrl, type CoordinatorConfig } from './config.js';
import { CliError, EXIT } from './exit-codes.js';

/** What the CLI uses of an `ioredis` `Redis` instance. */
export interface RedisConnection extends RedisScriptClient {
  connect(): Promise<void>;
  quit(): Promise<unknown>;
  disconnect(): void;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'ready' | 'close' | 'end', listener: () => void): unknown;
  off(event: 'error', listener: (error: Error) => void): unknown;
  readonly status: string;
  /** `INFO section`. */
  info(section: string): Promise<string>;
}

/** `new Redis(url, options)`. */
export type RedisConstructor = new (url: string, options: Record<string, unknown>) => RedisConnection;

/** Imports the `ioredis` module (injectable for tests). */
export type RedisImporter = () => Promise<unknown>;

const importIoredis: RedisImporter = () => import('ioredis');

/**
 * The `Redis` class of the installed `ioredis`.
 *
 * @throws EwsPeerMissingError (`EWS_PEER_MISSING`, `packageName: 'ioredis'`) when it is not installed or does not load.
 */
export async function loadIoredis(importer: RedisImporter = importIoredis): Promise<RedisConstructor> {
  let module: unknown;
  try {
    module = await importer();
  } catch (error) {
    const why = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new EwsPeerMissingError(
      'ioredis',
      `forward with a coordinator needs the optional peer dependency ioredis, which did not load (${why}): run "npm install ioredis" beside ews-push-bridge, or remove coordinator (and --coordinator)`,
      { cause: error },
    );
  }
  const exports = module as { Redis?: unknown; default?: unknown } | null;
  const candidate = exports?.Redis ?? (exports?.default as { Redis?: unknown } | undefined)?.Redis ?? exports?.default;
  if (typeof candidate !== 'function') {
    throw new EwsPeerMissingError('ioredis', 'the installed ioredis has no Redis class: install ioredis 5 or 6 beside ews-push-bridge');
  }
  return candidate as RedisConstructor;
}

/** Whether a Redis error means the credentials (or the user's rights) were refused. */
export function redisRefused(message: string): boolean {
  return /\b(WRONGPASS|NOAUTH|NOPERM)\b|invalid password/i.test(message);
}

/** The exit error for a Redis that cannot be used at start-up: 3 when it refused the password, else 4. */
export function redisStartError(error: unknown, coordinator: CoordinatorConfig): CliError {
  const where = `the coordinator's Redis at ${shownRedisUrl(coordinator.url)} (${coordinator.urlField})`;
  const message = error instanceof Error ? error.message : String(error);
  if (redisRefused(message)) {
    return new CliError(EXIT.auth, `Cannot authenticate to ${where}: ${message}. Check the user name and password in the URL.`, { cause: error });
  }
  return new CliError(EXIT.unreachable, `Cannot reach ${where}: ${message}. Check the URL, that Redis is running, and the firewall.`, { cause: error });
}

/**
 * Connects, failing on the first error (or after `timeoutMs`, named by `timeoutOption` in the
 * message) instead of retrying: a Redis down at start-up ends the command.
 *
 * @throws CliError from {@link redisStartError}.
 */
export async function connectRedis(redis: RedisConnection, coordinator: CoordinatorConfig, timeoutMs: number, timeoutOption: string): Promise<void> {
  let firstError: Error | undefined;
  const onError = (error: Error): void => {
    firstError ??= error;
  };
  redis.on('error', onError);
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      redis.connect(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s (${timeoutOption})`)), timeoutMs);
      }),
    ]);
  } catch (error) {
    redis.disconnect();
    // ioredis rejects connect() with "Connection is closed."; the 'error' event has the cause.
    throw redisStartError(firstError ?? error, coordinator);
  } finally {
    clearTimeout(timer);
    redis.off('error', onError);
  }
}
