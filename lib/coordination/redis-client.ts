/**
 * The little of a Redis client the Redis checkpoint store and lease coordinator use: Lua scripts,
 * run by SHA with a fallback to the full text when the server's script cache is empty (a restart,
 * `SCRIPT FLUSH`). Everything they do is one atomic script, so the client needs only these two
 * methods — an `ioredis` client has them; so can a thin wrapper around any other client.
 *
 * @packageDocumentation
 */
import { createHash } from 'node:crypto';

/**
 * A Redis connection that can run Lua scripts. An `ioredis` `Redis` instance fits as is
 * (`new Redis(url)`); the library never imports a Redis client itself, so applications that do
 * not use Redis do not install one.
 */
export interface RedisScriptClient {
  /** `EVALSHA sha numKeys ...args`. */
  evalsha(sha1: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>;
  /** `EVAL script numKeys ...args`. */
  eval(script: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>;
}

/** A Lua script and its SHA-1, run with {@link runScript}. */
export interface RedisScript {
  readonly source: string;
  readonly sha1: string;
}

/** Builds a {@link RedisScript} from its Lua source. */
export function redisScript(source: string): RedisScript {
  return { source, sha1: createHash('sha1').update(source).digest('hex') };
}

const isNoScript = (error: unknown): boolean => error instanceof Error && error.message.startsWith('NOSCRIPT');

/**
 * Runs `script` by SHA; when the server does not know it, sends the source once (which also loads
 * it). Scripts here take no declared keys (they derive theirs from a prefix argument), which a
 * single Redis server or a Redis Cluster with a hash-tagged prefix (`{ews-bridge}`) accepts.
 */
export async function runScript(client: RedisScriptClient, script: RedisScript, args: ReadonlyArray<string | number>): Promise<unknown> {
  try {
    return await client.evalsha(script.sha1, 0, ...args);
  } catch (error) {
    if (!isNoScript(error)) throw error;
    return client.eval(script.source, 0, ...args);
  }
}

/**
 * Checks a `redis` option.
 *
 * @throws TypeError naming the option.
 */
export function checkRedisClient(value: unknown, name = 'redis'): RedisScriptClient {
  const client = value as Partial<RedisScriptClient> | null | undefined;
  if (typeof client !== 'object' || client === null || typeof client.evalsha !== 'function' || typeof client.eval !== 'function') {
    throw new TypeError(`${name} must be a Redis client with eval and evalsha methods (an ioredis Redis instance)`);
  }
  return client as RedisScriptClient;
}

/** Checks a key `prefix` option (default `ews-bridge`). */
export function checkPrefix(value: unknown): string {
  const prefix = value ?? 'ews-bridge';
  if (typeof prefix !== 'string' || prefix === '') throw new TypeError('prefix must be a non-empty string');
  return prefix;
}

/** The Lua helpers every script shares: the prefix (ARGV[1]) and the server's clock in ms. */
export const LUA_PRELUDE = `
local P = ARGV[1]
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;
