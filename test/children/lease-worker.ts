/**
 * Child process of test/lease-multiprocess.test.ts (and bench/lease-scale.ts): one bridge worker
 * sharing mailboxes through Redis. It consumes every mailbox it owns with a pull source whose
 * checkpoints are fenced by the lease, and reports on stdout, one line per write (pipe writes are
 * synchronous and atomic on Linux, so a SIGKILL cannot tear a line):
 *
 * - `R <workerId>` joined
 * - `O <mailbox> <token> <t>` owns the mailbox (t: process.hrtime, the same clock in every process)
 * - `E <mailbox> <token> <seq> <t>` handled an event (before it is acknowledged and checkpointed)
 * - `L <mailbox> <token> <reason> <t>` stopped consuming it (after Unsubscribe and the final checkpoint)
 * - `X <mailbox> <token> <code>` its source failed
 * - `S <stats JSON>` coordinator counters, every second and at exit
 *
 * SIGTERM closes gracefully (releases every lease) and exits 0.
 *
 * Usage: tsx test/children/lease-worker.ts '<config JSON>' (see WorkerConfig)
 */
import { Redis } from 'ioredis';
import type { Subscription } from 'rxjs';
import { RedisCheckpointStore, type FencedCheckpointStore } from '../../lib/checkpoint/redis-store.js';
import { RedisLeaseCoordinator, type MailboxLease } from '../../lib/coordination/lease-coordinator.js';
import { EwsBridgeError } from '../../lib/errors.js';
import { pullNotifications } from '../../lib/sources/pull.js';
import { sequenceOf } from '../../lib/testing/events.js';

/** What the parent passes. */
export interface WorkerConfig {
  readonly name: string;
  readonly redisPort: number;
  readonly ewsUrl: string;
  readonly prefix: string;
  readonly mailboxes: readonly string[];
  readonly leaseTtlMs: number;
  readonly renewIntervalMs: number;
  readonly pollIntervalMs: number;
  /** Skip the per-event lines (for the scale bench). */
  readonly quiet?: boolean;
}

const config = JSON.parse(process.argv[2] ?? '{}') as WorkerConfig;
const now = (): string => process.hrtime.bigint().toString();
const out = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

// Commands that Redis does not answer in time fail (and are retried by the source or the next
// renewal) instead of holding a checkpoint write, and with it the mailbox's delivery, for the
// whole outage.
const redis = new Redis(config.redisPort, '127.0.0.1', { maxRetriesPerRequest: null, commandTimeout: config.renewIntervalMs });
redis.on('error', () => undefined); // reconnects by itself; failures surface on the calls
const store = new RedisCheckpointStore({ redis, prefix: config.prefix });

interface Running {
  readonly subscription: Subscription;
  readonly checkpoints: FencedCheckpointStore;
}
const running = new Map<string, Running>();

function consume(lease: MailboxLease): void {
  const checkpoints = store.fenced(lease);
  const subscription = pullNotifications({
    url: config.ewsUrl,
    auth: { type: 'basic', username: 'svc@contoso.com', password: 'secret' },
    mailbox: lease.resource,
    checkpoint: checkpoints,
    pollIntervalMs: config.pollIntervalMs,
    emitStatusEvents: false,
    retry: { minDelayMs: 50, maxDelayMs: 500, maxAttempts: Number.POSITIVE_INFINITY },
  }).subscribe({
    next: (notification) => {
      if (config.quiet) return;
      for (const event of notification.events) out(`E ${lease.resource} ${lease.token} ${sequenceOf(event) ?? -1} ${now()}`);
    },
    error: (error: unknown) => {
      out(`X ${lease.resource} ${lease.token} ${error instanceof EwsBridgeError ? error.code : String(error).replace(/\s+/g, '_')}`);
    },
  });
  running.set(lease.resource, { subscription, checkpoints });
}

const coordinator = new RedisLeaseCoordinator({
  redis,
  resources: config.mailboxes,
  prefix: config.prefix,
  workerName: config.name,
  leaseTtlMs: config.leaseTtlMs,
  renewIntervalMs: config.renewIntervalMs,
  onOwned: (lease) => {
    out(`O ${lease.resource} ${lease.token} ${now()}`);
    consume(lease);
  },
  onLost: async (lease, reason) => {
    const run = running.get(lease.resource);
    running.delete(lease.resource);
    // Unsubscribe (stops polling, sends EWS Unsubscribe), then wait for the last checkpoint write.
    run?.subscription.unsubscribe();
    run?.checkpoints.close();
    await run?.checkpoints.idle();
    out(`L ${lease.resource} ${lease.token} ${reason} ${now()}`);
  },
});

const printStats = (): void => out(`S ${JSON.stringify(coordinator.stats())}`);
const statsTimer = setInterval(printStats, 1000);

process.on('SIGTERM', () => {
  void coordinator.close().then(() => {
    clearInterval(statsTimer);
    printStats();
    redis.disconnect();
    process.exit(0);
  });
});

coordinator.start().then(
  () => out(`R ${coordinator.workerId}`),
  (error: unknown) => {
    process.stderr.write(`worker could not join: ${String(error)}\n`);
    process.exit(1);
  },
);
