/**
 * RedisLeaseCoordinator against a real redis-server, several workers in this process: fair
 * shares, takeover after a worker stops renewing, stealing by a new worker with hand-over, graceful
 * close, fencing of a stale owner's checkpoint writes, and a Redis outage. A shared ledger checks
 * at every grant that no other worker holds the resource.
 */
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisCheckpointStore } from '../lib/checkpoint/redis-store.js';
import { RedisLeaseCoordinator, type LeaseLostReason, type MailboxLease, type RedisLeaseCoordinatorOptions } from '../lib/coordination/lease-coordinator.js';
import { Redis as IoRedis } from 'ioredis';
import { redisServerMissing, startPartitionProxy, startRedisServer, type RedisServer } from './helpers/redis-server.js';
import { until } from './helpers/until.js';

const missing = redisServerMissing();
if (missing !== undefined) console.warn(missing);

const TTL_MS = 900;
const RENEW_MS = 150;

/** {@link until} (test/helpers/until.ts), with the workers' stats, when given, as the diagnosis of a hang. */
const waitFor = (predicate: () => boolean, debug?: () => unknown): Promise<void> =>
  until(predicate, 'the leases to settle', { intervalMs: 10, describe: debug && (() => JSON.stringify(debug())) });

/** Who holds what, across all workers of a test; a grant to a second holder is recorded as a violation. */
class Ledger {
  readonly holder = new Map<string, { worker: string; token: number }>();
  readonly violations: string[] = [];
  readonly lost: Array<{ worker: string; resource: string; reason: LeaseLostReason }> = [];
  readonly tokens = new Map<string, number>();

  owned(worker: string, lease: MailboxLease): void {
    const current = this.holder.get(lease.resource);
    if (current !== undefined) this.violations.push(`${lease.resource} granted to ${worker} while ${current.worker} holds it`);
    const last = this.tokens.get(lease.resource) ?? 0;
    if (lease.token <= last) this.violations.push(`${lease.resource} token ${lease.token} not above ${last}`);
    this.tokens.set(lease.resource, lease.token);
    this.holder.set(lease.resource, { worker, token: lease.token });
  }

  released(worker: string, lease: MailboxLease, reason: LeaseLostReason): void {
    if (this.holder.get(lease.resource)?.worker === worker) this.holder.delete(lease.resource);
    this.lost.push({ worker, resource: lease.resource, reason });
  }
}

describe.skipIf(missing !== undefined)('RedisLeaseCoordinator', () => {
  let server: RedisServer;
  const clients: Redis[] = [];
  const workers: RedisLeaseCoordinator[] = [];
  let prefixes = 0;

  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterEach(() => {
    for (const w of workers.splice(0)) w.destroy();
    for (const c of clients.splice(0)) c.disconnect();
  });
  afterAll(async () => {
    await server?.stop();
  });

  function client(): Redis {
    const c = server.client({ maxRetriesPerRequest: null });
    clients.push(c);
    return c;
  }

  function worker(name: string, ledger: Ledger, options: Partial<RedisLeaseCoordinatorOptions> & { resources: readonly string[]; prefix: string }): RedisLeaseCoordinator {
    const w = new RedisLeaseCoordinator({
      redis: client(),
      workerName: name,
      leaseTtlMs: TTL_MS,
      renewIntervalMs: RENEW_MS,
      onOwned: (lease) => ledger.owned(name, lease),
      onLost: (lease, reason) => ledger.released(name, lease, reason),
      ...options,
    });
    workers.push(w);
    return w;
  }

  const mailboxes = (n: number): string[] => Array.from({ length: n }, (_, i) => `user${i}@contoso.com`);

  it('splits resources fairly among workers started together, one grant each, token 1', async () => {
    const prefix = `p${++prefixes}`;
    const ledger = new Ledger();
    const resources = mailboxes(31);
    const ws = ['a', 'b', 'c'].map((n) => worker(n, ledger, { resources, prefix }));
    await Promise.all(ws.map((w) => w.start()));
    await waitFor(() => ledger.holder.size === 31);
    const counts = ws.map((w) => w.leases().length).sort();
    expect(counts).toEqual([10, 10, 11]);
    expect([...ledger.tokens.values()].every((t) => t === 1)).toBe(true);
    // Balanced: renewals go on without moving anything.
    const ticks = ws[0]!.stats().ticks;
    await waitFor(() => ws[0]!.stats().ticks >= ticks + 5);
    expect(ws.map((w) => w.stats().claims).reduce((a, b) => a + b)).toBe(31);
    expect(ws[0]!.stats().commands - ws[0]!.stats().ticks).toBeLessThanOrEqual(3); // join + register (+ nothing else)
    expect(ledger.violations).toEqual([]);
  });

  it('moves a silent worker\u2019s resources to the others with new tokens; a newcomer steals a fair share by hand-over; close releases at once', async () => {
    const prefix = `p${++prefixes}`;
    const ledger = new Ledger();
    const resources = mailboxes(60);
    const redis = client();
    const store = new RedisCheckpointStore({ redis, prefix });
    const [a, b, c] = ['a', 'b', 'c'].map((n) => worker(n, ledger, { resources, prefix })) as [RedisLeaseCoordinator, RedisLeaseCoordinator, RedisLeaseCoordinator];
    await Promise.all([a.start(), b.start(), c.start()]);
    await waitFor(() => ledger.holder.size === 60 && [a, b, c].every((w) => w.leases().length === 20));

    // b checkpoints under its leases, then goes silent (as if SIGKILLed: nothing sent to Redis).
    const bLeases = b.leases();
    for (const lease of bLeases) await store.fenced(lease).set(`cp:${lease.resource}`, { watermark: `b-${lease.resource}` });
    const silentAt = performance.now();
    b.destroy();
    await waitFor(() => a.leases().length + c.leases().length === 60);
    const takeoverMs = performance.now() - silentAt;
    expect(a.leases().length).toBe(30);
    for (const lease of bLeases) {
      expect(ledger.tokens.get(lease.resource)).toBe(2);
      // The old owner's writes are refused; the checkpoint it wrote is there for the new owner.
      await expect(store.fenced(lease).set(`cp:${lease.resource}`, { watermark: 'stale' })).rejects.toMatchObject({ code: 'EWS_LEASE_LOST' });
      expect((await store.get(`cp:${lease.resource}`))?.watermark).toBe(`b-${lease.resource}`);
    }

    // A newcomer takes its share from the busiest, by hand-over: the owner lets go first.
    const d = worker('d', ledger, { resources, prefix, maxStealsPerCycle: 4 });
    await d.start();
    await waitFor(() => [a, c, d].every((w) => w.leases().length === 20));
    const rebalanced = ledger.lost.filter((l) => l.reason === 'rebalance');
    expect(rebalanced.length, JSON.stringify({ rebalanced, stats: [a, c, d].map((w) => w.stats()) })).toBe(20);
    expect(d.stats().claims).toBe(20);

    // close(): onLost('closing') for each, released at once — the others take them on their next
    // renewal, long before a TTL would have run out.
    const closedAt = performance.now();
    await a.close();
    expect(await redis.scard(`${prefix}:owned:${a.workerId}`)).toBe(0);
    expect(await redis.zscore(`${prefix}:workers`, a.workerId)).toBeNull();
    await waitFor(() => c.leases().length + d.leases().length === 60);
    const afterCloseMs = performance.now() - closedAt;
    expect(ledger.lost.filter((l) => l.worker === 'a' && l.reason === 'closing').length).toBe(20);
    expect(ledger.violations).toEqual([]);
    console.info(
      `leases (TTL ${TTL_MS} ms, renewal ${RENEW_MS} ms): takeover after silence ${takeoverMs.toFixed(0)} ms, ` +
        `after close ${afterCloseMs.toFixed(0)} ms; commands a=${a.stats().commands} ticks a=${a.stats().ticks}`,
    );
  });

  it('keeps its leases through a Redis outage shorter than the TTL, claims nothing during it, and drops them before anyone may take them over in a longer one', async () => {
    const prefix = `p${++prefixes}`;
    const ledger = new Ledger();
    const resources = mailboxes(12);
    const ttl = 2_400;
    const opts = { resources, prefix, leaseTtlMs: ttl, renewIntervalMs: 300 };
    const [a, b] = ['a', 'b'].map((n) => worker(n, ledger, opts)) as [RedisLeaseCoordinator, RedisLeaseCoordinator];
    await Promise.all([a.start(), b.start()]);
    await waitFor(() => a.leases().length === 6 && b.leases().length === 6);

    // Short outage: renewals fail, nothing is lost, nothing moves.
    const failures = a.stats().tickFailures;
    server.pause();
    await waitFor(() => a.stats().tickFailures >= failures + 2, () => [a.stats(), b.stats()]);
    server.resume();
    const ticks = a.stats().ticks;
    await waitFor(() => a.stats().ticks >= ticks + 3 && b.stats().ticks >= 3, () => [a.stats(), b.stats()]);
    expect(ledger.lost).toEqual([]);
    expect(a.stats().expiries).toBe(0);

    // Longer outage: each worker drops its leases at TTL − 10 % after its last renewal began,
    // rejoins as a new session when Redis is back, and the resources are granted again with
    // higher tokens, never to two holders.
    server.pause();
    await waitFor(() => a.stats().expiries === 1 && b.stats().expiries === 1, () => [a.stats(), b.stats()]);
    expect(ledger.holder.size).toBe(0);
    server.resume();
    await waitFor(() => ledger.holder.size === 12 && a.leases().length === 6 && b.leases().length === 6, () => [a.stats(), b.stats()]);
    expect(ledger.lost.every((l) => l.reason === 'expired')).toBe(true);
    // Above the first grant's token; not exactly 2: a claim sent just before the pause may run
    // when Redis resumes, after its client gave up on the answer, and spend a token. The ledger
    // checks at every grant that tokens only grow.
    expect([...ledger.tokens.values()].every((t) => t >= 2)).toBe(true);
    expect(ledger.violations).toEqual([]);
  });

  it('a worker cut off from Redis stops before the others may take its mailboxes, and rejoins after the partition heals', async () => {
    const prefix = `p${++prefixes}`;
    const ledger = new Ledger();
    const resources = mailboxes(10);
    const proxy = await startPartitionProxy(server.port);
    const behindProxy = new IoRedis(proxy.port, '127.0.0.1', { maxRetriesPerRequest: null });
    behindProxy.on('error', () => undefined);
    clients.push(behindProxy);
    try {
      const a = worker('a', ledger, { resources, prefix, redis: behindProxy });
      const b = worker('b', ledger, { resources, prefix });
      await Promise.all([a.start(), b.start()]);
      await waitFor(() => a.leases().length === 5 && b.leases().length === 5);
      const aHad = a.leases().map((l) => l.resource);

      proxy.partition();
      // b gets a's mailboxes only after a dropped them itself (the ledger would record a second holder).
      await waitFor(() => b.leases().length === 10);
      expect(ledger.lost.filter((l) => l.worker === 'a').map((l) => l.reason)).toEqual(aHad.map(() => 'expired'));
      expect(a.stats().expiries).toBe(1);

      proxy.heal();
      await waitFor(() => a.leases().length === 5 && b.leases().length === 5);
      expect(ledger.violations).toEqual([]);
      expect(ledger.lost.filter((l) => l.worker === 'b').every((l) => l.reason === 'rebalance')).toBe(true);
    } finally {
      await proxy.close();
    }
  });

  it('gives a worker only the resources it lists; past its fair share, one only it lists at once and one nobody else took within a TTL', async () => {
    const prefix = `p${++prefixes}`;
    const ledger = new Ledger();
    const all = mailboxes(8);
    const lists = { a: all, b: all.slice(0, 4), c: [] as string[] };
    const ws = (['a', 'b', 'c'] as const).map((n) => worker(n, ledger, { resources: lists[n], prefix }));
    await Promise.all(ws.map((w) => w.start()));
    const claims = (): number => ws.map((w) => w.stats().claims).reduce((x, y) => x + y);
    // Settled: every resource held, and five renewals move nothing more (a hand-over may come first).
    await waitFor(() => ledger.holder.size === 8, () => ws.map((w) => w.stats()));
    for (let settled = false; !settled; ) {
      const before = claims();
      const ticks = ws[0]!.stats().ticks;
      await waitFor(() => ws[0]!.stats().ticks >= ticks + 5);
      settled = claims() === before && ledger.holder.size === 8;
    }
    for (const [resource, { worker: owner }] of ledger.holder) expect(lists[owner as 'a' | 'b' | 'c'], `${resource} held by ${owner}`).toContain(resource);
    expect(ws[2]!.leases()).toHaveLength(0);
    // The four only a lists are a's; the four both list are split by who took them first (3 of 8
    // is each one's share among three live workers; the one left over waited a TTL): b holds 3 or 4.
    for (const r of all.slice(4)) expect(ledger.holder.get(r)?.worker).toBe('a');
    expect([3, 4]).toContain(ws[1]!.leases().length);
    // A mark of one that waited a TTL went with its grant.
    expect(await client().hlen(`${prefix}:unclaimed`)).toBe(0);
    expect(ledger.violations).toEqual([]);
  });

  it('with lists that differ, a newcomer takes its share from a busy worker that holds what it lists when the busiest holds nothing it does', async () => {
    const prefix = `p${++prefixes}`;
    const ledger = new Ledger();
    const all = mailboxes(10);
    const onlyA = all.slice(0, 6);
    const shared = all.slice(6);
    // a serves six mailboxes nobody else lists; b the other four, which c will list too.
    const a = worker('a', ledger, { resources: onlyA, prefix });
    const b = worker('b', ledger, { resources: shared, prefix });
    await Promise.all([a.start(), b.start()]);
    await waitFor(() => a.leases().length === 6 && b.leases().length === 4, () => [a, b].map((w) => w.stats()));
    // c joins: a is the busiest (6) but holds nothing c lists; b (4) does. Three live workers share
    // ten: the floor is 3, so b hands over one (before this change c asked only a and stayed at 0).
    const c = worker('c', ledger, { resources: shared, prefix });
    await c.start();
    await waitFor(() => c.leases().length === 1 && b.leases().length === 3, () => [a, b, c].map((w) => w.stats()));
    // Settled: five more renewals of c move nothing (b is at the floor).
    const ticks = c.stats().ticks;
    await waitFor(() => c.stats().ticks >= ticks + 5);
    expect([a, b, c].map((w) => w.leases().length)).toEqual([6, 3, 1]);
    for (const lease of c.leases()) expect(shared).toContain(lease.resource);
    expect(ledger.lost.filter((l) => l.reason === 'rebalance').map((l) => l.worker)).toEqual(['b']);
    expect(ledger.violations).toEqual([]);
  });

  it('retires a resource no live worker lists any more (a mailbox removed from every configuration), after a close and after a crash', async () => {
    const prefix = `p${++prefixes}`;
    const ledger = new Ledger();
    const redis = client();
    const old = mailboxes(6);
    const next = old.slice(0, 4);
    // Rolling change: a runs the old list, b already the new one.
    const a = worker('a', ledger, { resources: old, prefix });
    const b = worker('b', ledger, { resources: next, prefix });
    await Promise.all([a.start(), b.start()]);
    await waitFor(() => ledger.holder.size === 6);
    for (const r of old.slice(4)) expect(ledger.holder.get(r)?.worker).toBe('a');
    // a restarts with the new list: the two removed mailboxes are nobody's any more.
    await a.close();
    const a2 = worker('a2', ledger, { resources: next, prefix });
    await a2.start();
    await waitFor(() => ledger.holder.size === 4 && a2.leases().length === 2 && b.leases().length === 2, () => [a2, b].map((w) => w.stats()));
    expect((await redis.smembers(`${prefix}:all`)).sort()).toEqual([...next].sort());
    expect(await redis.smembers(`${prefix}:free`)).toEqual([]);
    expect(a2.stats().totalResources).toBe(4);
    // Its token stays: should it come back, its next grant is fenced above every earlier one.
    expect(Number(await redis.hget(`${prefix}:token`, old[5]!))).toBeGreaterThanOrEqual(1);
    expect(await redis.hexists(`${prefix}:refs`, old[5]!)).toBe(0);
    expect(Number(await redis.hget(`${prefix}:refs`, old[0]!))).toBe(2);

    // A crash: c lists one more mailbox and dies without leaving; once it is reaped, that mailbox is retired.
    const extra = 'extra@contoso.com';
    const c = worker('c', ledger, { resources: [...next, extra], prefix });
    await c.start();
    await waitFor(() => ledger.holder.get(extra)?.worker === 'c');
    c.destroy();
    await waitFor(() => !ledger.holder.has(extra) && [a2, b].every((w) => w.stats().liveWorkers === 2 && w.stats().totalResources === 4));
    await waitFor(() => ledger.holder.size === 4);
    expect(await redis.sismember(`${prefix}:all`, extra)).toBe(0);
    expect(await redis.sismember(`${prefix}:free`, extra)).toBe(0);
    expect(ledger.violations).toEqual([]);
  });

  it('checks its options, naming them', () => {
    const base = { redis: {} as never, resources: [], onOwned: () => undefined };
    expect(() => new RedisLeaseCoordinator(base)).toThrow(/redis must be/);
    const redis = client();
    expect(() => new RedisLeaseCoordinator({ ...base, redis, leaseTtlMs: 10 })).toThrow(/^leaseTtlMs must be 100–2147483647 \(got 10\)$/);
    // Longer than a timer holds: refused rather than firing at once.
    expect(() => new RedisLeaseCoordinator({ ...base, redis, leaseTtlMs: 30 * 24 * 3_600_000 })).toThrow(/^leaseTtlMs must be 100–2147483647/);
    expect(() => new RedisLeaseCoordinator({ ...base, redis, leaseTtlMs: 1000, renewIntervalMs: 600 })).toThrow(/renewIntervalMs must be at most half/);
    expect(() => new RedisLeaseCoordinator({ ...base, redis, resources: [''] })).toThrow(/resources must be/);
    expect(() => new RedisLeaseCoordinator({ ...base, redis, onOwned: undefined as never })).toThrow(/onOwned/);
  });
});
