/**
 * Many bridge processes sharing many mailboxes: ownership leases in Redis, renewed by their owner,
 * balanced across live workers, with a fencing token per grant.
 *
 * @packageDocumentation
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { EwsLeaseLostError } from '../errors.js';
import { resolveLogger, type Logger } from '../logger.js';
import { JOIN, LEAVE, OWNED, REGISTER, RELEASE, TICK } from './lease-scripts.js';
import { checkPrefix, checkRedisClient, runScript, type RedisScript, type RedisScriptClient } from './redis-client.js';
import { MAX_TIMER_MS, intInRange } from '../validate.js';

/**
 * Why a worker stopped owning a resource.
 * - `rebalance`: another worker with fewer resources asked for it; the lease is released after
 *   `onLost` resolves (your final checkpoint), and the asker gets it.
 * - `closing`: {@link RedisLeaseCoordinator.close}; released after `onLost` resolves.
 * - `expired`: the lease could not be renewed in time (Redis unreachable, event loop stalled): the
 *   worker stops at once, before anyone else may take the resource; nothing to release.
 * - `revoked`: Redis no longer lists this worker as the owner (e.g. its data was reset).
 */
export type LeaseLostReason = 'rebalance' | 'closing' | 'expired' | 'revoked';

/** One resource this worker owns, from `onOwned` until it is lost. */
export interface MailboxLease {
  /** The resource: a mailbox address, or a key naming a group of mailboxes that move together. */
  readonly resource: string;
  /**
   * The fencing token of this grant: higher than every earlier grant of the resource. Pass the
   * lease to `RedisCheckpointStore.fenced` so checkpoint writes carry it.
   */
  readonly token: number;
  /** The worker session that holds it. */
  readonly workerId: string;
  /** Aborted when the lease is lost (before `onLost` runs); `reason` is an `EwsLeaseLostError`. */
  readonly signal: AbortSignal;
}

/** Options of {@link RedisLeaseCoordinator}. */
export interface RedisLeaseCoordinatorOptions {
  /** The connection (an `ioredis` `Redis` instance). Owned by the caller: never connected or quit here. */
  readonly redis: RedisScriptClient;
  /**
   * The resources this worker can serve (mailbox addresses, or group keys), registered in Redis
   * when it joins. The workers share the union of their lists, and a worker is only ever given a
   * resource it lists. A resource no live worker lists any more (removed from every worker's
   * configuration, the last one restarted) is retired: nobody claims it again, and its fencing
   * token is kept should it come back. Give every worker the same list for even shares; while lists
   * differ (a rolling change), each resource goes to a worker that lists it, a resource only one
   * worker lists goes to that worker even past its fair share, and balancing is best effort.
   */
  readonly resources: Iterable<string>;
  /** Prefix of every key; the `RedisCheckpointStore` that fences by these leases must use the same. Default `ews-bridge`. */
  readonly prefix?: string;
  /** A readable name for this worker; its session id is `<workerName>:<random>`. Default `<hostname>:<pid>`. */
  readonly workerName?: string;
  /**
   * How long a lease lives without renewal. A worker that stops renewing loses its resources to
   * the others within 2× this. Lower is faster takeover and more Redis traffic. Default `15_000`.
   */
  readonly leaseTtlMs?: number;
  /** How often the worker renews and balances (one Lua script a time). At most half the TTL. Default `leaseTtlMs / 3`. */
  readonly renewIntervalMs?: number;
  /**
   * How long a joining worker waits before its first claim, so workers started together see each
   * other and each claims its share instead of the first taking all. Below the TTL. Default `renewIntervalMs`.
   */
  readonly joinDelayMs?: number;
  /**
   * At most how many resources a worker asks a busier one to hand over per renewal (stealing
   * moves a mailbox: an Unsubscribe and a Subscribe, so it is paced). Resources nobody owns are
   * claimed up to the fair share at once. `0` disables stealing. Default `500`.
   */
  readonly maxStealsPerCycle?: number;
  /** How long a graceful `onLost` (rebalance, closing) may take before the lease is released anyway. Default `leaseTtlMs`. */
  readonly releaseTimeoutMs?: number;
  /**
   * This worker now owns `lease.resource`: start consuming it (from its checkpoint, through
   * `store.fenced(lease)`). Must not throw; a throw is logged and the resource released.
   */
  readonly onOwned: (lease: MailboxLease) => void;
  /**
   * This worker stops owning `lease.resource` (`lease.signal` is already aborted): stop consuming
   * it — Unsubscribe, then wait for the final checkpoint (`FencedCheckpointStore.idle()`). For
   * `rebalance` and `closing` the lease is released once the returned promise settles (or after
   * `releaseTimeoutMs`), so the next owner starts from that checkpoint. Default: nothing.
   */
  readonly onLost?: (lease: MailboxLease, reason: LeaseLostReason) => void | Promise<void>;
  /** Aborting it closes the coordinator (like {@link RedisLeaseCoordinator.close}). */
  readonly signal?: AbortSignal;
  /** Default: silent. */
  readonly logger?: Logger;
}

/** Counters of one coordinator, for metrics and tests. */
export interface LeaseCoordinatorStats {
  /** The current session id. */
  readonly workerId: string;
  /** Resources owned now. */
  readonly owned: number;
  /** Renew-and-balance scripts run (each is one Redis command). */
  readonly ticks: number;
  /** Ticks that failed or timed out. */
  readonly tickFailures: number;
  /** Redis commands (script calls) sent, all kinds. */
  readonly commands: number;
  /** Grants received (each with a new fencing token). */
  readonly claims: number;
  /** Resources given up gracefully. */
  readonly releases: number;
  /** Times every lease was dropped because renewal came too late. */
  readonly expiries: number;
  /** Live workers and shared resources, as of the last successful tick. */
  readonly liveWorkers: number;
  /** Resources shared among the live workers, as of the last successful tick. */
  readonly totalResources: number;
  /**
   * Since when every renewal has failed (Redis unreachable, timing out, refusing), or `undefined`
   * while the last one succeeded: what a health check judges, since a worker that cannot reach
   * Redis holds nothing and would otherwise look idle and fine.
   */
  readonly failingSince: Date | undefined;
}

interface Held {
  readonly lease: MailboxLease;
  readonly controller: AbortController;
}

const REGISTER_BATCH = 1000;

/** A duration in whole milliseconds from `min` up to what a timer holds. */
const positiveInt = (value: unknown, name: string, fallback: number, min = 1): number => intInRange(value, name, fallback, min, MAX_TIMER_MS);

class CommandTimeout extends Error {}

/**
 * One worker of a group sharing resources (mailboxes) through Redis, the way Event Hubs consumers
 * share partitions:
 *
 * - Each worker has a session renewed every `renewIntervalMs` with a TTL of `leaseTtlMs`; its
 *   leases live as long as its session. A worker that stops renewing (crash, SIGKILL, partition)
 *   is reaped by the next renewal of any other worker after the TTL, and its resources go to the
 *   others (claimed at once, up to their fair share) — within TTL + one renewal interval.
 * - Every grant increments the resource's fencing token; `RedisCheckpointStore.fenced(lease)`
 *   writes only while the token is current, so a worker that lost a resource cannot overwrite the
 *   new owner's checkpoint.
 * - A worker stops using its leases locally once `leaseTtlMs` (less a 10 % margin) has passed
 *   since the start of its last successful renewal — before Redis can let anyone else take them —
 *   so two live workers never consume one resource at once, even when Redis is unreachable. During
 *   a shorter outage it keeps delivering what it owns and claims nothing.
 * - Balance: each renewal claims free resources up to ceil(total / live workers) and, when none are
 *   free, asks the busiest worker that holds something it lists (of the three busiest) to hand over
 *   up to `maxStealsPerCycle` (never taking the asker past its share nor the owner below the
 *   floor). The owner stops consuming them (`onLost(lease, 'rebalance')`), then releases them
 *   to the asker: a move costs no duplicate deliveries. All decisions are made inside one atomic
 *   Lua script, so workers started together never over-claim.
 * - `close()` stops, runs `onLost(…, 'closing')` for every lease, then releases everything at
 *   once; `destroy()` stops without releasing (the leases expire).
 *
 * Cost: one Redis command per worker per renewal interval while balanced, plus one per
 * hand-over batch.
 */
export class RedisLeaseCoordinator {
  readonly #redis: RedisScriptClient;
  readonly #prefix: string;
  readonly #resources: readonly string[];
  readonly #name: string;
  readonly #ttlMs: number;
  readonly #renewMs: number;
  readonly #joinDelayMs: number;
  readonly #maxSteals: number;
  readonly #releaseTimeoutMs: number;
  readonly #onOwned: RedisLeaseCoordinatorOptions['onOwned'];
  readonly #onLost: NonNullable<RedisLeaseCoordinatorOptions['onLost']> | undefined;
  readonly #signal: AbortSignal | undefined;
  readonly #logger: Logger;

  #id: string;
  #joined = false;
  #state: 'new' | 'running' | 'closing' | 'closed' = 'new';
  readonly #held = new Map<string, Held>();
  /** Resources being handed over: lost locally, not yet released in Redis. */
  readonly #draining = new Set<string>();
  /** Resources whose release has not been confirmed by Redis yet: retried every tick. */
  readonly #unreleased = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #expiryTimer: NodeJS.Timeout | undefined;
  #ticking: Promise<void> | undefined;
  #failingSince: Date | undefined;
  #closing: Promise<void> | undefined;
  #stats = { ticks: 0, tickFailures: 0, commands: 0, claims: 0, releases: 0, expiries: 0, liveWorkers: 0, totalResources: 0 };
  readonly #onAbort = (): void => {
    void this.close();
  };

  constructor(options: RedisLeaseCoordinatorOptions) {
    this.#redis = checkRedisClient(options?.redis);
    this.#prefix = checkPrefix(options.prefix);
    const resources = options.resources;
    if (resources === null || typeof resources !== 'object' || typeof (resources as Iterable<string>)[Symbol.iterator] !== 'function') {
      throw new TypeError('resources must be an iterable of strings');
    }
    this.#resources = [...new Set(resources)];
    if (!this.#resources.every((r) => typeof r === 'string' && r !== '')) throw new TypeError('resources must be non-empty strings');
    const name = options.workerName ?? `${hostname()}:${process.pid}`;
    if (typeof name !== 'string' || name === '') throw new TypeError('workerName must be a non-empty string');
    this.#name = name;
    this.#ttlMs = positiveInt(options.leaseTtlMs, 'leaseTtlMs', 15_000, 100);
    this.#renewMs = positiveInt(options.renewIntervalMs, 'renewIntervalMs', Math.floor(this.#ttlMs / 3), 10);
    if (this.#renewMs * 2 > this.#ttlMs) throw new RangeError('renewIntervalMs must be at most half of leaseTtlMs');
    this.#joinDelayMs = positiveInt(options.joinDelayMs, 'joinDelayMs', this.#renewMs, 0);
    if (this.#joinDelayMs >= this.#ttlMs) throw new RangeError('joinDelayMs must be shorter than leaseTtlMs');
    this.#maxSteals = positiveInt(options.maxStealsPerCycle, 'maxStealsPerCycle', 500, 0);
    this.#releaseTimeoutMs = positiveInt(options.releaseTimeoutMs, 'releaseTimeoutMs', this.#ttlMs, 0);
    if (typeof options.onOwned !== 'function') throw new TypeError('onOwned must be a function');
    if (options.onLost !== undefined && typeof options.onLost !== 'function') throw new TypeError('onLost must be a function');
    this.#onOwned = options.onOwned;
    this.#onLost = options.onLost;
    this.#signal = options.signal;
    this.#logger = resolveLogger(options.logger);
    this.#id = this.#newId();
  }

  /** The current session id (`<workerName>:<random>`; a new one after an expiry). */
  get workerId(): string {
    return this.#id;
  }

  /**
   * Joins the group: registers the resources and starts renewing. Resolves once joined; claims
   * start after `joinDelayMs`. Rejects when Redis cannot be reached (nothing keeps running then).
   */
  async start(): Promise<void> {
    if (this.#state !== 'new') throw new Error('start() may be called once');
    if (this.#signal?.aborted) {
      this.#state = 'closed';
      return;
    }
    this.#state = 'running';
    this.#signal?.addEventListener('abort', this.#onAbort, { once: true });
    try {
      await this.#join();
    } catch (error) {
      this.#state = 'closed';
      this.#signal?.removeEventListener('abort', this.#onAbort);
      throw error;
    }
    this.#schedule(this.#joinDelayMs);
  }

  /** What this worker owns now. */
  leases(): MailboxLease[] {
    return [...this.#held.values()].map((h) => h.lease);
  }

  /** Counters (see {@link LeaseCoordinatorStats}). */
  stats(): LeaseCoordinatorStats {
    return { workerId: this.#id, owned: this.#held.size, ...this.#stats, failingSince: this.#failingSince };
  }

  /**
   * Graceful stop: no more renewals or claims; `onLost(lease, 'closing')` for every lease (each
   * bounded by `releaseTimeoutMs`), then every lease is released at once and the session ends, so
   * the others take the resources on their next renewal. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  /**
   * Abrupt stop: timers cleared, every lease aborted (`closing`, `onLost` not awaited), nothing
   * sent to Redis: the leases expire after the TTL as if the process had died.
   */
  destroy(): void {
    this.#stopTimers();
    this.#state = 'closed';
    this.#signal?.removeEventListener('abort', this.#onAbort);
    for (const resource of [...this.#held.keys()]) void this.#lose(resource, 'closing', false);
  }

  async #close(): Promise<void> {
    if (this.#state === 'new' || this.#state === 'closed') {
      this.#state = 'closed';
      return;
    }
    this.#state = 'closing';
    this.#stopTimers();
    this.#signal?.removeEventListener('abort', this.#onAbort);
    await this.#ticking?.catch(() => undefined);
    await Promise.all([...this.#held.keys()].map((r) => this.#lose(r, 'closing', false)));
    if (this.#joined) {
      try {
        const released = await this.#call(LEAVE, [this.#prefix, this.#id], this.#renewMs * 2);
        this.#stats.releases += Number(released);
        this.#logger.info('lease coordinator left the group', { workerId: this.#id, released });
      } catch (error) {
        this.#logger.warn('could not release leases on close; they expire after the TTL', { workerId: this.#id, error: String(error) });
      }
    }
    this.#unreleased.clear();
    this.#state = 'closed';
  }

  #newId(): string {
    return `${this.#name}:${randomBytes(4).toString('hex')}`;
  }

  async #join(): Promise<void> {
    const started = performance.now();
    await this.#call(JOIN, [this.#prefix, this.#id, this.#ttlMs], this.#ttlMs);
    for (let i = 0; i < this.#resources.length; i += REGISTER_BATCH) {
      await this.#call(REGISTER, [this.#prefix, this.#id, ...this.#resources.slice(i, i + REGISTER_BATCH)], this.#ttlMs);
    }
    this.#joined = true;
    this.#renewed(started);
    this.#logger.info('lease coordinator joined', { workerId: this.#id, resources: this.#resources.length });
  }

  #schedule(delayMs: number): void {
    if (this.#state !== 'running') return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#ticking = this.#tick().finally(() => {
        this.#ticking = undefined;
      });
    }, delayMs);
  }

  #stopTimers(): void {
    clearTimeout(this.#timer);
    clearTimeout(this.#expiryTimer);
    this.#timer = undefined;
    this.#expiryTimer = undefined;
  }

  /** A renewal that started at `startedAt` succeeded: the leases are ours until TTL − 10 % after it. */
  #renewed(startedAt: number): void {
    const validForMs = Math.floor(this.#ttlMs * 0.9) - (performance.now() - startedAt);
    clearTimeout(this.#expiryTimer);
    this.#expiryTimer = setTimeout(() => this.#expire('the lease was not renewed in time'), Math.max(0, validForMs));
  }

  async #tick(): Promise<void> {
    const started = performance.now();
    let nextInMs: number | undefined;
    try {
      nextInMs = await this.#step(started);
      this.#failingSince = undefined;
    } catch (error) {
      this.#stats.tickFailures++;
      this.#failingSince ??= new Date();
      this.#logger.warn('lease renewal failed; retrying', { workerId: this.#id, error: error instanceof Error ? error.message : String(error) });
    }
    this.#schedule(nextInMs ?? Math.max(0, this.#renewMs - (performance.now() - started)));
  }

  /** One renewal (or rejoin); returns a delay when the next one must not follow the usual interval. */
  async #step(started: number): Promise<number | undefined> {
    if (!this.#joined) {
      await this.#join();
      // Like a fresh start: let the workers that come back together see each other first.
      return this.#joinDelayMs;
    }
    if (this.#unreleased.size > 0) await this.#flushReleases();
    const id = this.#id;
    const reply = await this.#call(TICK, [this.#prefix, id, this.#ttlMs, this.#maxSteals], this.#renewMs);
    this.#stats.ticks++;
    // The session expired locally while the call was out: its answer concerns a session we left.
    if (this.#state !== 'running' || id !== this.#id) return 0;
    if (!Array.isArray(reply) || Number(reply[0]) !== 1) {
      this.#expire('Redis no longer has this worker\u2019s session');
      return 0;
    }
    this.#renewed(started);
    const [, granted, requests, owned, live, total] = reply as [number, unknown[], unknown[], number, number, number];
    this.#stats.liveWorkers = Number(live);
    this.#stats.totalResources = Number(total);
    for (let i = 0; i + 1 < granted.length; i += 2) this.#own(String(granted[i]), Number(granted[i + 1]));
    for (const request of requests) this.#handOver(String(request));
    // A grant whose reply was lost (timeout) is ours in Redis and unknown here: look it up.
    if (Number(owned) !== this.#held.size + this.#draining.size + this.#unreleased.size) await this.#reconcile();
    return undefined;
  }

  #own(resource: string, token: number): void {
    const current = this.#held.get(resource);
    if (current !== undefined) {
      if (current.lease.token === token) return;
      void this.#lose(resource, 'revoked', false);
    }
    this.#draining.delete(resource);
    this.#unreleased.delete(resource);
    const controller = new AbortController();
    const lease: MailboxLease = { resource, token, workerId: this.#id, signal: controller.signal };
    this.#held.set(resource, { lease, controller });
    this.#stats.claims++;
    try {
      this.#onOwned(lease);
    } catch (error) {
      this.#logger.error('onOwned threw; releasing the resource', { resource, error: String(error) });
      void this.#lose(resource, 'rebalance', true);
    }
  }

  #handOver(resource: string): void {
    if (this.#draining.has(resource)) return;
    if (this.#held.has(resource)) {
      void this.#lose(resource, 'rebalance', true);
    } else {
      // Not ours (any more): answering clears the request.
      this.#unreleased.add(resource);
    }
  }

  /** Stops using `resource` locally; when `release`, gives it up in Redis once `onLost` settled. */
  async #lose(resource: string, reason: LeaseLostReason, release: boolean): Promise<void> {
    const held = this.#held.get(resource);
    if (held === undefined) return;
    this.#held.delete(resource);
    const { lease, controller } = held;
    controller.abort(
      new EwsLeaseLostError(resource, lease.token, undefined, `The lease on ${JSON.stringify(resource)} (fencing token ${lease.token}) ended: ${reason}`),
    );
    const graceful = reason === 'rebalance' || reason === 'closing';
    if (release) this.#draining.add(resource);
    try {
      const done = Promise.resolve(this.#onLost?.(lease, reason));
      if (graceful) await withTimeout(done, this.#releaseTimeoutMs).catch((error: unknown) => {
        this.#logger.warn('onLost did not finish in time or failed; releasing anyway', { resource, reason, error: String(error) });
      });
      else done.catch((error: unknown) => this.#logger.warn('onLost failed', { resource, reason, error: String(error) }));
    } catch (error) {
      this.#logger.warn('onLost threw', { resource, reason, error: String(error) });
    }
    if (!release || !this.#draining.delete(resource)) return;
    this.#unreleased.add(resource);
    await this.#flushReleases().catch((error: unknown) => {
      this.#logger.warn('release failed; retried on the next renewal', { resource, error: String(error) });
    });
  }

  async #flushReleases(): Promise<void> {
    if (this.#unreleased.size === 0 || !this.#joined) return;
    const batch = [...this.#unreleased];
    const released = await this.#call(RELEASE, [this.#prefix, this.#id, ...batch], this.#renewMs);
    for (const r of batch) this.#unreleased.delete(r);
    this.#stats.releases += Number(released);
  }

  async #reconcile(): Promise<void> {
    const id = this.#id;
    const reply = await this.#call(OWNED, [this.#prefix, id], this.#renewMs);
    if (id !== this.#id || this.#state !== 'running' || !Array.isArray(reply)) return;
    const inRedis = new Map<string, number>();
    for (let i = 0; i + 1 < reply.length; i += 2) inRedis.set(String(reply[i]), Number(reply[i + 1]));
    for (const resource of [...this.#held.keys()]) if (!inRedis.has(resource)) void this.#lose(resource, 'revoked', false);
    for (const [resource, token] of inRedis) {
      if (this.#draining.has(resource) || this.#unreleased.has(resource)) continue;
      if (this.#held.get(resource)?.lease.token !== token) {
        this.#logger.info('found a lease this worker did not know it held', { resource, token });
        this.#own(resource, token);
      }
    }
  }

  /** The leases can no longer be trusted: drop them all now, and rejoin as a new session. */
  #expire(why: string): void {
    if (this.#state !== 'running' || !this.#joined) return;
    this.#stats.expiries++;
    const old = this.#id;
    this.#logger.warn('lease coordinator lost its session; every lease is dropped', { workerId: old, why, owned: this.#held.size });
    for (const resource of [...this.#held.keys()]) void this.#lose(resource, 'expired', false);
    this.#draining.clear();
    this.#unreleased.clear();
    this.#joined = false;
    this.#id = this.#newId();
    // Best effort: hand the old session's resources to the others at once instead of after its TTL.
    this.#call(LEAVE, [this.#prefix, old], this.#ttlMs).catch(() => undefined);
  }

  async #call(script: RedisScript, args: Array<string | number>, timeoutMs: number): Promise<unknown> {
    this.#stats.commands++;
    return withTimeout(runScript(this.#redis, script, args), timeoutMs);
  }
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new CommandTimeout(`no answer from Redis within ${timeoutMs} ms`)), timeoutMs);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
