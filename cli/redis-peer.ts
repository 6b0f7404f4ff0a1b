/**
 * The CLI's Redis client, `ioredis`: an optional peer dependency, loaded only when `forward` runs
 * with a coordinator, so installs that never use Redis never need it. Its absence is an
 * `EwsPeerMissingError` (`EWS_PEER_MISSING`) that says what to install.
 *
 * @packageDocumentation
 */
import { EwsPeerMissingError } from '../lib/entry-errors.js';
import { type RedisScriptClient } from '../lib/entry-redis.js';

/** What the CLI uses of an `ioredis` `Redis` instance. */
export interface RedisConnection extends RedisScriptClient {
  connect(): Promise<void>;
  quit(): Promise<unknown>;
  disconnect(): void;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'ready' | 'close' | 'end', listener: () => void): unknown;
  off(event: 'error', listener: (error: Error) => void): unknown;
  readonly status: string;
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
