/**
 * A checkpoint store in Redis, shared by every bridge process, whose writes can be fenced by the
 * writer's lease token so that a process that lost a mailbox never overwrites the new owner's
 * position.
 *
 * @packageDocumentation
 */
import { EwsCheckpointError, EwsLeaseLostError } from '../errors.js';
import { LUA_PRELUDE, checkPrefix, checkRedisClient, redisScript, runScript, type RedisScriptClient } from '../coordination/redis-client.js';
import type { Checkpoint, CheckpointStore, CheckpointUpdate } from './checkpoint-store.js';
import { describeValue, nonEmptyString, requireObject } from '../validate.js';

/** Options of {@link RedisCheckpointStore}. */
export interface RedisCheckpointStoreOptions {
  /**
   * The connection (an `ioredis` `Redis` instance, or anything with `eval`/`evalsha`). Owned by
   * the caller: the store never connects or quits it. ioredis queues commands while it
   * reconnects; a call fails (retriable) when the client gives up on it.
   */
  readonly redis: RedisScriptClient;
  /**
   * Prefix of every key (`<prefix>:cp:<checkpoint key>`). Must be the coordinator's prefix for
   * fenced writes, which check its lease records. Default `ews-bridge`; for Redis Cluster use a
   * hash tag such as `{ews-bridge}` so the fencing check and the write land in one slot.
   */
  readonly prefix?: string;
}

/** What identifies the lease a fenced write is made under: a {@link MailboxLease} fits. */
export interface LeaseFence {
  /** The leased resource (mailbox or group key) as the coordinator knows it. */
  readonly resource: string;
  /** The fencing token the coordinator granted with the lease. */
  readonly token: number;
}

// A checkpoint is one hash: wm (watermark), ss (syncStates as JSON), at (updatedAt), tok (the
// fencing token of its last fenced writer, for diagnosis).
const GET = redisScript(`${LUA_PRELUDE}
return redis.call('HGETALL', P .. ':cp:' .. ARGV[2])
`);

// ARGV: prefix, key, fenced (1/0), resource, token, has watermark, watermark, has syncStates,
// syncStates JSON, updatedAt, op (set/delete). A fenced write goes through only while the
// resource has an owner and its current token is the writer's: any takeover increments the token
// and a release removes the owner, in the same Redis, atomically with this check.
const WRITE = redisScript(`${LUA_PRELUDE}
local key = P .. ':cp:' .. ARGV[2]
if ARGV[3] == '1' then
  local owner = redis.call('HGET', P .. ':owner', ARGV[4])
  local current = redis.call('HGET', P .. ':token', ARGV[4])
  if (not owner) or current ~= ARGV[5] then
    return {0, current or ''}
  end
end
if ARGV[11] == 'delete' then
  redis.call('DEL', key)
  return {1}
end
local fields = {'at', ARGV[10]}
if ARGV[6] == '1' then
  fields[#fields + 1] = 'wm'
  fields[#fields + 1] = ARGV[7]
end
if ARGV[8] == '1' then
  fields[#fields + 1] = 'ss'
  fields[#fields + 1] = ARGV[9]
end
if ARGV[3] == '1' then
  fields[#fields + 1] = 'tok'
  fields[#fields + 1] = ARGV[5]
end
redis.call('HSET', key, unpack(fields))
return {1}
`);

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Keeps checkpoints in Redis, one hash per key, so many bridge processes share them and a mailbox
 * that moves to another process resumes from where its previous owner stopped.
 *
 * - `get`/`set`/`delete` keep the {@link CheckpointStore} contract: `set` merges (fields left out
 *   keep their value), resolves once Redis applied it, and sets from one store apply in call order
 *   (one connection, one atomic script each).
 * - An empty watermark or sync state is refused (`EwsCheckpointError`, not retriable): a position
 *   the protocol cannot resume from is never stored.
 * - {@link RedisCheckpointStore.fenced} gives a view whose writes carry a lease's fencing token:
 *   Redis applies them only while that lease is still the current one, else they reject with
 *   {@link EwsLeaseLostError} (`EWS_LEASE_LOST`). Give each mailbox's source its lease's view.
 * - Redis failures reject with a retriable `EwsCheckpointError`; a stored record that is not a
 *   checkpoint rejects with a non-retriable one — the store never pretends to be empty.
 *
 * Durability is Redis's: run it with AOF (`appendonly yes`) or replicas if positions must survive
 * a Redis restart.
 */
export class RedisCheckpointStore implements CheckpointStore {
  readonly #redis: RedisScriptClient;
  /** The key prefix in use. */
  readonly prefix: string;

  constructor(options: RedisCheckpointStoreOptions) {
    this.#redis = checkRedisClient(options?.redis);
    this.prefix = checkPrefix(options.prefix);
  }

  /** {@inheritDoc CheckpointStore.get} */
  async get(key: string): Promise<Checkpoint | undefined> {
    const reply = await this.#run(GET, [this.prefix, checkKey(key)], key, 'read');
    if (!Array.isArray(reply) || reply.length === 0) return undefined;
    const fields = new Map<string, string>();
    for (let i = 0; i + 1 < reply.length; i += 2) fields.set(String(reply[i]), String(reply[i + 1]));
    return this.#parse(key, fields);
  }

  /** {@inheritDoc CheckpointStore.set} */
  set(key: string, update: CheckpointUpdate): Promise<void> {
    return this.write(key, update, undefined);
  }

  /** {@inheritDoc CheckpointStore.delete} */
  delete(key: string): Promise<void> {
    return this.remove(key, undefined);
  }

  /**
   * A view of this store whose writes are fenced by `fence` (see the class notes). Reads are not
   * fenced. Hand it to the source that consumes the leased mailbox; {@link FencedCheckpointStore.idle}
   * tells when its last write landed (the "final checkpoint" before a lease is released).
   */
  fenced(fence: LeaseFence): FencedCheckpointStore {
    requireObject(fence, 'fence');
    const resource = nonEmptyString(fence.resource, 'fence.resource');
    if (!Number.isSafeInteger(fence.token) || fence.token < 1) throw new RangeError(`fence.token must be a positive integer (got ${describeValue(fence.token)})`);
    return new FencedCheckpointStore(this, { resource, token: fence.token });
  }

  /** @internal Used by {@link FencedCheckpointStore}. */
  async write(key: string, update: CheckpointUpdate, fence: LeaseFence | undefined): Promise<void> {
    checkKey(key);
    const { watermark, syncStates } = update ?? {};
    if (watermark !== undefined && (typeof watermark !== 'string' || watermark === '')) {
      throw new EwsCheckpointError(`Refusing to store an empty watermark for checkpoint ${key}`);
    }
    if (syncStates !== undefined) {
      if (!isRecord(syncStates) || !Object.values(syncStates).every((s) => typeof s === 'string' && s !== '')) {
        throw new EwsCheckpointError(`Refusing to store an empty or non-string sync state for checkpoint ${key}`);
      }
    }
    const reply = await this.#run(
      WRITE,
      [
        this.prefix,
        key,
        fence === undefined ? '0' : '1',
        fence?.resource ?? '',
        fence?.token ?? 0,
        watermark === undefined ? '0' : '1',
        watermark ?? '',
        syncStates === undefined ? '0' : '1',
        syncStates === undefined ? '' : JSON.stringify(syncStates),
        new Date().toISOString(),
        'set',
      ],
      key,
      'write',
    );
    this.#checkFence(reply, fence);
  }

  /** @internal Used by {@link FencedCheckpointStore}. */
  async remove(key: string, fence: LeaseFence | undefined): Promise<void> {
    checkKey(key);
    const reply = await this.#run(
      WRITE,
      [this.prefix, key, fence === undefined ? '0' : '1', fence?.resource ?? '', fence?.token ?? 0, '0', '', '0', '', '', 'delete'],
      key,
      'delete',
    );
    this.#checkFence(reply, fence);
  }

  #checkFence(reply: unknown, fence: LeaseFence | undefined): void {
    if (Array.isArray(reply) && Number(reply[0]) === 1) return;
    if (fence !== undefined && Array.isArray(reply) && Number(reply[0]) === 0) {
      const current = reply[1] === '' || reply[1] === undefined || reply[1] === null ? undefined : Number(reply[1]);
      throw new EwsLeaseLostError(fence.resource, fence.token, current);
    }
    throw new EwsCheckpointError(`Unexpected reply from Redis to a checkpoint write: ${JSON.stringify(reply)}`);
  }

  async #run(script: Parameters<typeof runScript>[1], args: Array<string | number>, key: string, what: string): Promise<unknown> {
    try {
      return await runScript(this.#redis, script, args);
    } catch (error) {
      throw new EwsCheckpointError(`Cannot ${what} checkpoint ${key} in Redis: ${error instanceof Error ? error.message : String(error)}`, {
        cause: error,
        retriable: true,
      });
    }
  }

  #parse(key: string, fields: ReadonlyMap<string, string>): Checkpoint {
    const corrupt = (why: string, cause?: unknown): EwsCheckpointError =>
      new EwsCheckpointError(`Checkpoint ${key} in Redis is corrupt (${why}); refusing to start from nothing — fix or delete the key`, { cause });
    const updatedAt = fields.get('at');
    if (updatedAt === undefined || Number.isNaN(Date.parse(updatedAt))) throw corrupt('no valid updatedAt');
    const watermark = fields.get('wm');
    if (watermark === '') throw corrupt('empty watermark');
    let syncStates: Record<string, string> | undefined;
    const ss = fields.get('ss');
    if (ss !== undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(ss);
      } catch (error) {
        throw corrupt('syncStates is not JSON', error);
      }
      if (!isRecord(parsed) || !Object.values(parsed).every((s) => typeof s === 'string')) throw corrupt('syncStates is not a map of strings');
      syncStates = parsed as Record<string, string>;
    }
    return {
      ...(watermark === undefined ? {} : { watermark }),
      ...(syncStates === undefined ? {} : { syncStates }),
      updatedAt,
    };
  }
}

/**
 * A {@link RedisCheckpointStore} seen through one lease: every `set`/`delete` is applied only while
 * the lease is current, else rejects with {@link EwsLeaseLostError}. Made by
 * {@link RedisCheckpointStore.fenced}.
 */
export class FencedCheckpointStore implements CheckpointStore {
  readonly #store: RedisCheckpointStore;
  /** The lease the writes are fenced by. */
  readonly fence: LeaseFence;
  readonly #inFlight = new Set<Promise<unknown>>();
  #closed = false;

  /** @internal */
  constructor(store: RedisCheckpointStore, fence: LeaseFence) {
    this.#store = store;
    this.fence = fence;
  }

  /** {@inheritDoc CheckpointStore.get} */
  get(key: string): Promise<Checkpoint | undefined> {
    return this.#store.get(key);
  }

  /** {@inheritDoc CheckpointStore.set} */
  set(key: string, update: CheckpointUpdate): Promise<void> {
    return this.#track(() => this.#store.write(key, update, this.fence));
  }

  /** {@inheritDoc CheckpointStore.delete} */
  delete(key: string): Promise<void> {
    return this.#track(() => this.#store.remove(key, this.fence));
  }

  /**
   * Resolves once every write started so far has settled (landed or failed): after stopping the
   * source, this is the final checkpoint, and the lease may be released.
   */
  async idle(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  /**
   * Refuses further writes locally (they reject with `EWS_LEASE_LOST` without reaching Redis);
   * writes already sent still settle, see {@link FencedCheckpointStore.idle}.
   */
  close(): void {
    this.#closed = true;
  }

  #track(write: () => Promise<void>): Promise<void> {
    if (this.#closed) {
      return Promise.reject(new EwsLeaseLostError(this.fence.resource, this.fence.token, undefined, `The lease on ${JSON.stringify(this.fence.resource)} (fencing token ${this.fence.token}) was given up; checkpoint writes under it are refused`));
    }
    const pending = write();
    this.#inFlight.add(pending);
    const forget = (): void => {
      this.#inFlight.delete(pending);
    };
    pending.then(forget, forget);
    return pending;
  }
}

function checkKey(key: string): string {
  return nonEmptyString(key, 'key');
}
