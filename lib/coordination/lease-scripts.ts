/**
 * The Lua scripts of the lease coordinator. Each is one atomic step on the shared state, so two
 * workers never decide from the same stale view (no thundering herd: a claim is capped by the fair
 * share computed inside the script that makes it).
 *
 * Keys (P = prefix):
 * - `P:workers`   ZSET worker id → session expiry (ms, Redis clock). Expired members are reaped.
 * - `P:all`       SET every resource (mailbox or group key) the workers share: those at least one
 *                 live worker lists.
 * - `P:lists:<w>` SET resources worker w listed (registered); w is only ever granted these.
 * - `P:refs`      HASH resource → how many live workers list it; at 0 the resource is retired
 *                 (out of `all` and `free`; its token stays, so fencing holds if it comes back).
 * - `P:unclaimed` HASH resource → when a worker at its fair share first saw it free (lists differ).
 * - `P:free`      SET resources nobody owns (may hold stale entries; a claim re-checks the owner).
 * - `P:owner`     HASH resource → owning worker id.
 * - `P:token`     HASH resource → fencing token; +1 (HINCRBY) on every grant, never decreases.
 * - `P:owned:<w>` SET resources worker w owns.
 * - `P:handover`  HASH resource → the worker that asked its owner to release it.
 * - `P:release:<w>`  SET resources others asked w to release.
 * - `P:asked:<w>`    SET resources w asked for and has not received yet.
 * - `P:reserved:<w>` SET resources released for w, granted to it on its next tick.
 *
 * Checkpoint writes fenced by a lease read `P:owner` and `P:token` (see RedisCheckpointStore).
 *
 * @packageDocumentation
 */
import { LUA_PRELUDE, redisScript } from './redis-client.js';

const LEASE_PRELUDE = `${LUA_PRELUDE}
local function K(s) return P .. ':' .. s end
local function alive(w, now)
  local s = redis.call('ZSCORE', K('workers'), w)
  return s and tonumber(s) > now
end
local function grant(r, id)
  redis.call('HDEL', K('unclaimed'), r)
  local tok = redis.call('HINCRBY', K('token'), r, 1)
  redis.call('HSET', K('owner'), r, id)
  redis.call('SADD', K('owned:' .. id), r)
  return tok
end
-- r has just lost its owner: to the live worker that asked for it, else to the free pool.
local function to_pool(r, now)
  local t = redis.call('HGET', K('handover'), r)
  if t then
    redis.call('HDEL', K('handover'), r)
    if alive(t, now) then
      redis.call('SADD', K('reserved:' .. t), r)
      return
    end
    redis.call('SREM', K('asked:' .. t), r)
  end
  redis.call('SADD', K('free'), r)
end
-- w no longer lists anything (it left or died, after giving up what it owned): a resource no
-- live worker lists any more is retired.
local function unlist(w)
  for _, r in ipairs(redis.call('SMEMBERS', K('lists:' .. w))) do
    if redis.call('HINCRBY', K('refs'), r, -1) <= 0 then
      redis.call('HDEL', K('refs'), r)
      redis.call('HDEL', K('unclaimed'), r)
      redis.call('SREM', K('all'), r)
      redis.call('SREM', K('free'), r)
    end
  end
  redis.call('DEL', K('lists:' .. w))
end
-- Workers whose session expired lose everything they owned or were promised.
local function reap(now)
  local dead = redis.call('ZRANGEBYSCORE', K('workers'), '-inf', now)
  for _, w in ipairs(dead) do
    redis.call('ZREM', K('workers'), w)
    for _, r in ipairs(redis.call('SMEMBERS', K('owned:' .. w))) do
      if redis.call('HGET', K('owner'), r) == w then
        redis.call('HDEL', K('owner'), r)
        to_pool(r, now)
      end
    end
    for _, r in ipairs(redis.call('SMEMBERS', K('reserved:' .. w))) do
      if not redis.call('HGET', K('owner'), r) then redis.call('SADD', K('free'), r) end
    end
    redis.call('DEL', K('owned:' .. w), K('reserved:' .. w), K('asked:' .. w), K('release:' .. w))
    unlist(w)
  end
  return #dead
end
local function release(id, r, now)
  redis.call('SREM', K('release:' .. id), r)
  if redis.call('HGET', K('owner'), r) == id then
    redis.call('HDEL', K('owner'), r)
    redis.call('SREM', K('owned:' .. id), r)
    to_pool(r, now)
    return 1
  end
  return 0
end
`;

/** ARGV: prefix, worker id, ttl ms. Starts a session. Returns the server time (ms). */
export const JOIN = redisScript(`${LEASE_PRELUDE}
local now = now_ms()
redis.call('ZADD', K('workers'), now + tonumber(ARGV[3]), ARGV[2])
return now
`);

/**
 * ARGV: prefix, worker id, resource... The worker lists resources: each joins the shared set, and
 * one that nobody owns and that is not in the free pool goes there. Returns how many were new to
 * the set.
 */
export const REGISTER = redisScript(`${LEASE_PRELUDE}
local added = 0
for i = 3, #ARGV do
  local r = ARGV[i]
  if redis.call('SADD', K('lists:' .. ARGV[2]), r) == 1 then redis.call('HINCRBY', K('refs'), r, 1) end
  local new = redis.call('SADD', K('all'), r)
  added = added + new
  if new == 1 or ((not redis.call('HGET', K('owner'), r)) and redis.call('SISMEMBER', K('free'), r) == 0) then
    redis.call('SADD', K('free'), r)
  end
end
return added
`);

/**
 * ARGV: prefix, worker id, ttl ms, max steals per tick. One renewal-and-balance step:
 * renew the session (or return {0} when it already expired: everything may be someone else's),
 * reap dead workers, take what was handed over, claim free resources up to the fair share
 * (floor(total / live workers), +1 for the first total mod n workers), and when nothing is free ask the most loaded worker
 * that holds something the asker lists (of the three busiest) to hand over a few (never taking the asker past its share nor the
 * owner below the floor). Returns {1, {resource, token, ...granted}, {release requests}, owned count, live workers,
 * total resources}.
 */
export const TICK = redisScript(`${LEASE_PRELUDE}
local id, ttl, maxSteals = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local now = now_ms()
local score = redis.call('ZSCORE', K('workers'), id)
if (not score) or tonumber(score) <= now then return {0} end
redis.call('ZADD', K('workers'), now + ttl, id)
reap(now)
local granted = {}
for _, r in ipairs(redis.call('SMEMBERS', K('reserved:' .. id))) do
  if not redis.call('HGET', K('owner'), r) then
    granted[#granted + 1] = r
    granted[#granted + 1] = grant(r, id)
  end
  redis.call('SREM', K('asked:' .. id), r)
end
redis.call('DEL', K('reserved:' .. id))
local live = redis.call('ZRANGEBYSCORE', K('workers'), '(' .. now, '+inf')
local total = redis.call('SCARD', K('all'))
local n = math.max(#live, 1)
local floor_share = math.floor(total / n)
local extra = total - floor_share * n
local mine = redis.call('SCARD', K('owned:' .. id))
-- The fair share: floor(total / n), and one more for the first (total mod n) workers to get there.
local share = floor_share
if extra > 0 then
  local at_ceil = 0
  for _, w in ipairs(live) do
    if w ~= id and redis.call('SCARD', K('owned:' .. w)) > floor_share then at_ceil = at_ceil + 1 end
  end
  if at_ceil < extra or mine > floor_share then share = floor_share + 1 end
end
local pending = redis.call('SCARD', K('asked:' .. id))
local want = share - mine - pending
-- Free resources this worker lists: up to its share; beyond it, one no other live worker lists,
-- or one left free for a whole TTL (every live worker has renewed since, or it would have been
-- reaped, and none that lists it took it: the lists differ, so not every share can be met).
if redis.call('SCARD', K('free')) > 0 then
  for _, r in ipairs(redis.call('SINTER', K('free'), K('lists:' .. id))) do
    local claim = false
    if redis.call('HGET', K('owner'), r) then
      redis.call('SREM', K('free'), r)
    elseif want > 0 or tonumber(redis.call('HGET', K('refs'), r) or '0') <= 1 then
      claim = true
    else
      local since = redis.call('HGET', K('unclaimed'), r)
      if not since then redis.call('HSET', K('unclaimed'), r, now)
      elseif now - tonumber(since) >= ttl then claim = true end
    end
    if claim then
      redis.call('SREM', K('free'), r)
      granted[#granted + 1] = r
      granted[#granted + 1] = grant(r, id)
      want = want - 1
    end
  end
end
mine = redis.call('SCARD', K('owned:' .. id))
if pending == 0 and maxSteals > 0 and redis.call('SCARD', K('free')) == 0 then
  -- Victims: the workers holding more than one more than this one, busiest first. With the same
  -- list everywhere the first one serves; with lists that differ the busiest may hold nothing this
  -- one lists, so the next ones are asked too (a few per tick: each costs a sample of its set).
  local victims = {}
  for _, w in ipairs(live) do
    if w ~= id then
      local c = redis.call('SCARD', K('owned:' .. w)) - redis.call('SCARD', K('release:' .. w))
      if c > mine + 1 then victims[#victims + 1] = {w, c} end
    end
  end
  table.sort(victims, function(x, y) return x[2] > y[2] end)
  local asked = 0
  for i = 1, math.min(#victims, 3) do
    local victim, most = victims[i][1], victims[i][2]
    -- The thief up to its share, the victim not below the floor.
    local k = math.min(maxSteals, share - mine, most - floor_share)
    if k > 0 then
      for _, r in ipairs(redis.call('SRANDMEMBER', K('owned:' .. victim), k * 2 + 8)) do
        if asked >= k then break end
        if redis.call('SISMEMBER', K('lists:' .. id), r) == 1 and redis.call('HSETNX', K('handover'), r, id) == 1 then
          redis.call('SADD', K('release:' .. victim), r)
          redis.call('SADD', K('asked:' .. id), r)
          asked = asked + 1
        end
      end
    end
    if asked > 0 then break end
  end
end
return {1, granted, redis.call('SMEMBERS', K('release:' .. id)), mine, #live, total}
`);

/** ARGV: prefix, worker id, resource... Gives up resources the worker owns. Returns how many it owned. */
export const RELEASE = redisScript(`${LEASE_PRELUDE}
local now = now_ms()
local released = 0
for i = 3, #ARGV do released = released + release(ARGV[2], ARGV[i], now) end
return released
`);

/** ARGV: prefix, worker id. Ends the session, giving up everything. Returns how many it owned. */
export const LEAVE = redisScript(`${LEASE_PRELUDE}
local id = ARGV[2]
local now = now_ms()
redis.call('ZREM', K('workers'), id)
local released = 0
for _, r in ipairs(redis.call('SMEMBERS', K('owned:' .. id))) do released = released + release(id, r, now) end
for _, r in ipairs(redis.call('SMEMBERS', K('reserved:' .. id))) do
  if not redis.call('HGET', K('owner'), r) then redis.call('SADD', K('free'), r) end
end
redis.call('DEL', K('owned:' .. id), K('reserved:' .. id), K('asked:' .. id), K('release:' .. id))
unlist(id)
return released
`);

/** ARGV: prefix, worker id. What the worker owns: {resource, token, ...}. */
export const OWNED = redisScript(`${LEASE_PRELUDE}
local out = {}
for _, r in ipairs(redis.call('SMEMBERS', K('owned:' .. ARGV[2]))) do
  out[#out + 1] = r
  out[#out + 1] = redis.call('HGET', K('token'), r)
end
return out
`);
