/**
 * Several bridge processes sharing many mailboxes through Redis: each worker consumes the mailboxes
 * it holds a lease on, with a pull source whose checkpoints live in Redis and are fenced by the
 * lease. Start as many copies as you like (on one or many machines); kill one and its mailboxes
 * move to the others within twice the lease TTL, resuming from their checkpoints.
 *
 * Run it (examples are TypeScript, run with tsx, a dev dependency of this repo; ioredis is an
 * optional peer dependency of the package — install it in your app):
 *
 *   REDIS_URL=redis://127.0.0.1:6379 EWS_USERNAME=svc@contoso.com EWS_PASSWORD=… \
 *   MAILBOXES=room1@contoso.com,room2@contoso.com,… \
 *     npx tsx examples/redis-workers.ts https://mail.contoso.com/EWS/Exchange.asmx
 *
 *   Without a URL it starts an embedded EwsSimulator and runs two workers in this process against
 *   REDIS_URL (default redis://127.0.0.1:6379): mail flows, the first worker closes, the second
 *   takes over its mailboxes, and every event arrives.
 *
 * Ctrl+C closes the worker gracefully: every source is unsubscribed, its last checkpoint written,
 * then its leases released at once so the others take them on their next renewal.
 *
 * In your own app, import from 'ews-push-bridge' instead of the relative paths used here.
 */
import { Redis } from 'ioredis';
import type { Subscription } from 'rxjs';
import { EVENT_TYPES, checkpointKey, pullNotifications, type EwsAuth } from '../lib/index.js';
import { RedisCheckpointStore, RedisLeaseCoordinator, type FencedCheckpointStore } from '../lib/entry-redis.js';
import { EwsSimulator, sequenceOf } from '../lib/testing/index.js';

interface WorkerOptions {
  readonly name: string;
  readonly redisUrl: string;
  readonly ewsUrl: string;
  readonly auth: EwsAuth;
  readonly mailboxes: readonly string[];
  readonly onEvent: (mailbox: string, seq: number | undefined) => void;
  /** Key prefix shared by the store and the coordinator. Default `ews-bridge`. */
  readonly prefix?: string;
}

/** One worker: a coordinator whose leases start and stop pull sources. Returns its close(). */
async function startWorker(options: WorkerOptions): Promise<() => Promise<void>> {
  const redis = new Redis(options.redisUrl, { maxRetriesPerRequest: null, commandTimeout: 2_000 });
  redis.on('error', () => undefined); // ioredis reconnects; failed calls are retried by the sources
  const store = new RedisCheckpointStore({ redis, ...(options.prefix ? { prefix: options.prefix } : {}) });
  const running = new Map<string, { subscription: Subscription; checkpoints: FencedCheckpointStore }>();

  const coordinator = new RedisLeaseCoordinator({
    redis,
    resources: options.mailboxes,
    ...(options.prefix ? { prefix: options.prefix } : {}),
    workerName: options.name,
    leaseTtlMs: 10_000,
    onOwned: (lease) => {
      const checkpoints = store.fenced(lease); // writes carry the lease's fencing token
      const subscription = pullNotifications({
        url: options.ewsUrl,
        auth: options.auth,
        mailbox: lease.resource,
        checkpoint: checkpoints,
        pollIntervalMs: 1_000,
        emitStatusEvents: false,
      }).subscribe({
        next: (notification) => {
          for (const event of notification.events) options.onEvent(lease.resource, sequenceOf(event));
        },
        // EWS_LEASE_LOST here means another worker owns the mailbox now: nothing to do.
        error: (error: { code?: string }) => console.error(`${options.name}: ${lease.resource} stopped (${error.code ?? String(error)})`),
      });
      running.set(lease.resource, { subscription, checkpoints });
    },
    onLost: async (lease) => {
      const run = running.get(lease.resource);
      running.delete(lease.resource);
      run?.subscription.unsubscribe(); // Unsubscribe…
      await run?.checkpoints.idle(); // …and the final checkpoint, before the lease is released
    },
  });
  await coordinator.start();
  return async () => {
    await coordinator.close();
    redis.disconnect();
  };
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function demo(redisUrl: string): Promise<void> {
  const sim = await EwsSimulator.start();
  const mailboxes = Array.from({ length: 6 }, (_, i) => `room${i}@contoso.com`);
  const prefix = `example-${process.pid}`;
  const seen = new Set<string>();
  const onEvent = (mailbox: string, seq: number | undefined): void => {
    seen.add(`${mailbox}#${seq}`);
  };
  // Both workers use a fresh key prefix so the demo never meets state from an earlier run.
  const common = { redisUrl, prefix, ewsUrl: sim.url, auth: { type: 'basic', username: 'svc@contoso.com', password: 'x' } as const, mailboxes, onEvent };
  const closeA = await startWorker({ ...common, name: 'worker-a' });
  const closeB = await startWorker({ ...common, name: 'worker-b' });
  // Mail sent before a mailbox's first subscription is nobody's to deliver: wait until each has a
  // checkpoint (its starting watermark), written by whichever worker claimed it.
  const redis = new Redis(redisUrl);
  const store = new RedisCheckpointStore({ redis, prefix });
  const started = async (mailbox: string): Promise<boolean> =>
    (await store.get(checkpointKey({ mailbox, folders: ['inbox'], eventTypes: EVENT_TYPES }))) !== undefined;
  while (!(await Promise.all(mailboxes.map(started))).every(Boolean)) await pause(100);
  redis.disconnect();
  const sent: string[] = [];
  for (let i = 0; i < 30; i++) {
    const mailbox = mailboxes[i % mailboxes.length]!;
    sent.push(`${mailbox}#${sim.deliver(mailbox, { type: 'NewMail' }).seq}`);
  }
  await closeA(); // graceful: worker-b takes over worker-a's mailboxes from their checkpoints
  for (let i = 0; i < 30; i++) {
    const mailbox = mailboxes[i % mailboxes.length]!;
    sent.push(`${mailbox}#${sim.deliver(mailbox, { type: 'NewMail' }).seq}`);
  }
  const deadline = Date.now() + 30_000;
  while (sent.some((s) => !seen.has(s)) && Date.now() < deadline) await pause(100);
  await closeB();
  await sim.close();
  const missing = sent.filter((s) => !seen.has(s));
  console.log(`${sent.length} events sent, ${sent.length - missing.length} received across the hand-over`);
  if (missing.length > 0) process.exitCode = 1;
}

const [ewsUrl] = process.argv.slice(2);
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
if (ewsUrl === undefined) {
  await demo(redisUrl);
} else {
  const close = await startWorker({
    name: process.env.WORKER_NAME ?? `worker-${process.pid}`,
    redisUrl,
    ewsUrl,
    auth: { type: 'basic', username: process.env.EWS_USERNAME ?? '', password: process.env.EWS_PASSWORD ?? '' },
    mailboxes: (process.env.MAILBOXES ?? '').split(',').filter((m) => m !== ''),
    onEvent: (mailbox, seq) => console.log(mailbox, seq ?? ''),
  });
  process.once('SIGINT', () => void close());
}
