/**
 * One worker of bench/lease-scale.ts (forked with `--import tsx --expose-gc`; loads dist/, so
 * `npm run build` first): a
 * RedisLeaseCoordinator over the task's mailboxes; in `pull` mode each owned mailbox also gets an
 * idle pull subscription (long poll interval) whose checkpoints are fenced by the lease.
 *
 * Sends over IPC: `{ type: 'joined', rss, baseRss }` (`baseRss`: after full GCs, before the coordinator
 * was made), `{ type: 'owned', owned, connected, at }` whenever
 * those change (at most every 50 ms), `{ type: 'memory', rss, heapUsed, owned }` when asked
 * (`'memory'` message; measured after two full GCs), `{ type: 'stats', stats }` when asked.
 */
import { Redis } from 'ioredis';
import type { Subscription } from 'rxjs';
import { shipped } from './shipped.js';

/** What the parent passes (as argv[2], JSON). */
export interface LeaseChildTask {
  readonly name: string;
  readonly redisPort: number;
  readonly ewsUrl: string;
  readonly mailboxes: number;
  readonly mode: 'leases' | 'pull';
  readonly leaseTtlMs: number;
  readonly maxConcurrentSubscribes: number;
}

// The built bundle, as users run it (see shipped.ts: tsx's keepNames costs heap per closure).
const { RedisCheckpointStore, RedisLeaseCoordinator, pullNotifications } = await shipped();
const task = JSON.parse(process.argv[2] ?? '{}') as LeaseChildTask;
const send = (message: object): void => {
  process.send?.(message);
};
const redis = new Redis(task.redisPort, '127.0.0.1', { maxRetriesPerRequest: null, commandTimeout: 5_000 });
redis.on('error', () => undefined);
const store = new RedisCheckpointStore({ redis, prefix: 'scale' });
const subscriptions = new Map<string, Subscription>();
const connected = new Set<string>();

// Subscribes are paced (a real deployment would be throttled by Exchange otherwise).
const queue: Array<() => void> = [];
let inFlight = 0;
function pace(start: (done: () => void) => void): void {
  const run = (): void => {
    inFlight++;
    let finished = false;
    start(() => {
      if (finished) return;
      finished = true;
      inFlight--;
      queue.shift()?.();
    });
  };
  if (inFlight < task.maxConcurrentSubscribes) run();
  else queue.push(run);
}

let dirty = false;
const report = (): void => {
  dirty = true;
};
setInterval(() => {
  if (!dirty) return;
  dirty = false;
  send({ type: 'owned', owned: coordinator.leases().length, connected: connected.size, at: process.hrtime.bigint().toString() });
}, 50).unref();

// The worker before any lease work: its code loaded, Redis connected (after full GCs).
await redis.ping();
const gc = (globalThis as { gc?: () => void }).gc;
gc?.();
gc?.();
const baseRss = process.memoryUsage().rss;

const coordinator = new RedisLeaseCoordinator({
  redis,
  resources: Array.from({ length: task.mailboxes }, (_, i) => `room${i}@contoso.com`),
  prefix: 'scale',
  workerName: task.name,
  leaseTtlMs: task.leaseTtlMs,
  onOwned: (lease) => {
    report();
    if (task.mode !== 'pull') return;
    pace((done) => {
      if (lease.signal.aborted) {
        done();
        return;
      }
      const subscription = pullNotifications({
        url: task.ewsUrl,
        auth: { type: 'basic', username: 'svc@contoso.com', password: 'x' },
        mailbox: lease.resource,
        checkpoint: store.fenced(lease),
        pollIntervalMs: 600_000,
        subscriptionTimeoutMinutes: 30,
        emitStatusEvents: false,
        onLifecycle: (signal) => {
          if (signal.type === 'connected') {
            connected.add(lease.resource);
            report();
            done();
          }
        },
      }).subscribe({ error: () => done() });
      subscriptions.set(lease.resource, subscription);
    });
  },
  onLost: (lease) => {
    subscriptions.get(lease.resource)?.unsubscribe();
    subscriptions.delete(lease.resource);
    connected.delete(lease.resource);
    report();
  },
});

process.on('message', (message) => {
  if (message === 'memory') {
    gc?.();
    gc?.();
    const m = process.memoryUsage();
    send({ type: 'memory', rss: m.rss, heapUsed: m.heapUsed, owned: coordinator.leases().length });
  } else if (message === 'stats') {
    send({ type: 'stats', stats: coordinator.stats() });
  } else if (message === 'close') {
    void coordinator.close().then(() => process.exit(0));
  }
});

await coordinator.start();
send({ type: 'joined', rss: process.memoryUsage().rss, baseRss });
