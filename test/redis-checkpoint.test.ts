/**
 * RedisCheckpointStore against a real redis-server: the CheckpointStore contract, fenced writes
 * (a writer that lost its lease can never overwrite the new owner's checkpoint), refusal of empty
 * positions, corrupt records, and a Redis that stops answering.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisCheckpointStore } from '../lib/checkpoint/redis-store.js';
import { EwsCheckpointError, EwsLeaseLostError } from '../lib/errors.js';
import { storeContract } from './helpers/checkpoint-contract.js';
import { redisServerMissing, startRedisServer, type RedisServer } from './helpers/redis-server.js';

const missing = redisServerMissing();
if (missing !== undefined) console.warn(missing);

describe.skipIf(missing !== undefined)('RedisCheckpointStore', () => {
  let server: RedisServer;
  let redis: Redis;
  let prefixes = 0;
  const freshPrefix = (): string => `test${++prefixes}`;

  beforeAll(async () => {
    server = await startRedisServer();
    redis = server.client();
  });
  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  storeContract('RedisCheckpointStore', () => new RedisCheckpointStore({ redis, prefix: freshPrefix() }));

  it('persists across instances and keeps prefixes apart', async () => {
    const prefix = freshPrefix();
    await new RedisCheckpointStore({ redis, prefix }).set('k', { watermark: 'w1', syncStates: { inbox: 's1' } });
    expect(await new RedisCheckpointStore({ redis, prefix }).get('k')).toMatchObject({ watermark: 'w1', syncStates: { inbox: 's1' } });
    expect(await new RedisCheckpointStore({ redis, prefix: freshPrefix() }).get('k')).toBeUndefined();
    expect(await redis.hget(`${prefix}:cp:k`, 'wm')).toBe('w1');
  });

  it('refuses to store an empty watermark or sync state, keeping what was stored', async () => {
    const store = new RedisCheckpointStore({ redis, prefix: freshPrefix() });
    await store.set('k', { watermark: 'good' });
    await expect(store.set('k', { watermark: '' })).rejects.toMatchObject({ code: 'EWS_CHECKPOINT_ERROR', retriable: false });
    await expect(store.set('k', { syncStates: { inbox: '' } })).rejects.toBeInstanceOf(EwsCheckpointError);
    expect((await store.get('k'))?.watermark).toBe('good');
  });

  it('refuses a corrupt record instead of reading it as empty', async () => {
    const prefix = freshPrefix();
    const store = new RedisCheckpointStore({ redis, prefix });
    await redis.hset(`${prefix}:cp:bad`, 'wm', 'w', 'at', 'not a date');
    await expect(store.get('bad')).rejects.toMatchObject({ code: 'EWS_CHECKPOINT_ERROR', retriable: false });
    await redis.hset(`${prefix}:cp:bad2`, 'at', new Date().toISOString(), 'ss', '{"half');
    await expect(store.get('bad2')).rejects.toThrow(/corrupt/);
  });

  it('fences writes: only the current lease token may write; a takeover or release locks the old writer out', async () => {
    const prefix = freshPrefix();
    const store = new RedisCheckpointStore({ redis, prefix });
    // What the coordinator records when worker A claims the mailbox (token 1)…
    await redis.hset(`${prefix}:owner`, 'alice@x', 'A');
    await redis.hset(`${prefix}:token`, 'alice@x', '1');
    const a = store.fenced({ resource: 'alice@x', token: 1 });
    await a.set('cp-alice', { watermark: 'a1' });
    // …then B takes it over (token 2).
    await redis.hset(`${prefix}:owner`, 'alice@x', 'B');
    await redis.hincrby(`${prefix}:token`, 'alice@x', 1);
    const b = store.fenced({ resource: 'alice@x', token: 2 });
    await b.set('cp-alice', { watermark: 'b1' });
    const refused = await a.set('cp-alice', { watermark: 'a2-stale' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(EwsLeaseLostError);
    expect(refused).toMatchObject({ code: 'EWS_LEASE_LOST', retriable: false, resource: 'alice@x', token: 1, currentToken: 2 });
    await expect(a.delete('cp-alice')).rejects.toMatchObject({ code: 'EWS_LEASE_LOST' });
    expect(await store.get('cp-alice')).toMatchObject({ watermark: 'b1' });
    expect(await redis.hget(`${prefix}:cp:cp-alice`, 'tok')).toBe('2');
    // A released lease (no owner) fences out its last holder too.
    await redis.hdel(`${prefix}:owner`, 'alice@x');
    await expect(b.set('cp-alice', { watermark: 'b2' })).rejects.toMatchObject({ code: 'EWS_LEASE_LOST', currentToken: 2 });
    // A view closed locally refuses without a round trip, and idle() waits for what was sent.
    await redis.hset(`${prefix}:owner`, 'alice@x', 'B');
    const writes = Array.from({ length: 20 }, (_, i) => b.set('cp-alice', { watermark: `b${i + 10}` }));
    b.close();
    await b.idle();
    await Promise.all(writes);
    expect((await store.get('cp-alice'))?.watermark).toBe('b29');
    await expect(b.set('cp-alice', { watermark: 'after-close' })).rejects.toMatchObject({ code: 'EWS_LEASE_LOST' });
    expect(() => store.fenced({ resource: 'alice@x', token: 0 })).toThrow(/^fence\.token must be a positive integer \(got 0\)$/);
    expect(() => store.fenced({ resource: '', token: 1 })).toThrow(/^fence\.resource must be a non-empty string \(got ""\)$/);
  });

  it('runs its scripts again after the server forgot them (SCRIPT FLUSH)', async () => {
    const store = new RedisCheckpointStore({ redis, prefix: freshPrefix() });
    await store.set('k', { watermark: 'w1' });
    await redis.script('FLUSH');
    await store.set('k', { watermark: 'w2' });
    expect((await store.get('k'))?.watermark).toBe('w2');
  });

  it('rejects with a retriable EwsCheckpointError when Redis cannot be reached', async () => {
    const dead = server.client({ maxRetriesPerRequest: 0, enableOfflineQueue: false, lazyConnect: true });
    const store = new RedisCheckpointStore({ redis: dead });
    await expect(store.set('k', { watermark: 'w' })).rejects.toMatchObject({ code: 'EWS_CHECKPOINT_ERROR', retriable: true });
    dead.disconnect();
  });

  it('checks its options, naming them', () => {
    expect(() => new RedisCheckpointStore({ redis: {} as never })).toThrow(/redis must be/);
    expect(() => new RedisCheckpointStore({ redis, prefix: '' })).toThrow(/prefix must be/);
  });
});
