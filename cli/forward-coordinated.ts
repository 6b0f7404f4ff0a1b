/**
 * `forward` with a coordinator (`coordinator` in the file, or `--coordinator redis://…`): several
 * processes on the same configuration share its mailboxes through Redis leases
 * (`RedisLeaseCoordinator`). Each process bridges only the mailboxes it holds a lease on: a grant
 * starts the mailbox's bridge, with its pull/hybrid checkpoints in `RedisCheckpointStore` fenced by
 * the lease; a loss (handed over, expired, revoked, closing) stops it — Unsubscribe and the final
 * checkpoint — before the lease is released. SIGINT/SIGTERM stops every bridge that way, then
 * releases every lease at once, so the other processes take the mailboxes on their next renewal.
 *
 * @packageDocumentation
 */
import { Counter, Gauge } from 'prom-client';
import { RedisCheckpointStore, RedisLeaseCoordinator, type FencedCheckpointStore, type LeaseLostReason, type MailboxLease } from '../lib/entry-redis.js';
import type { MailboxBridge } from './bridge.js';
import { shownRedisUrl, type BridgeConfig, type CoordinatorConfig, type WatchedMailbox } from './config.js';
import { EXIT, toCliError, type ExitCode } from './exit-codes.js';
import { newGroup, shownUrl, type ForwardRunOptions } from './forward.js';
import { serveForwardMetrics, startForwardBridge } from './forward-bridge.js';
import { healthOf, type HealthReason, type HealthThresholds } from './health.js';
import { BridgeMetrics, type Health, type MetricsServer } from './metrics.js';
import { connectRedis, loadIoredis, redisStartError, type RedisImporter } from './redis-peer.js';
import { AgentTracker } from './sources.js';

/** Every reason a lease ends: the label values `ews_bridge_lease_losses_total` starts at zero. */
const LOSS_REASONS: readonly LeaseLostReason[] = ['rebalance', 'closing', 'expired', 'revoked'];

/** Options of {@link runCoordinatedForward} beyond `forward`'s. */
export interface CoordinatedForwardOptions extends ForwardRunOptions {
  /** How `ioredis` is imported. Default: `import('ioredis')` (tests inject a failing one). */
  readonly importRedis?: RedisImporter;
}

/** One mailbox this process holds a lease on. */
interface Held {
  readonly lease: MailboxLease;
  readonly bridge: MailboxBridge;
  /** Its checkpoints, fenced by the lease. */
  readonly checkpoints: FencedCheckpointStore;
  /** Set when a checkpoint write was refused: another process owns the mailbox now. */
  leaseLost: boolean;
}

function codeOf(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
}

/**
 * Runs `forward` as one of the processes sharing `config`'s mailboxes through `coordinator`, until
 * `options.signal` aborts or a mailbox fails for good (not for a lost lease). Returns the exit code.
 *
 * Start-up ends once the process has joined the group: a Redis that cannot be reached is exit 4
 * (refused credentials 3), ioredis missing is `EWS_PEER_MISSING` (exit 1). A mailbox granted later
 * that cannot connect keeps retrying and shows in `/healthz`, as after a `forward` start-up.
 */
export async function runCoordinatedForward(config: BridgeConfig, coordinator: CoordinatorConfig, options: CoordinatedForwardOptions): Promise<ExitCode> {
  const { logger, signal } = options;
  const endpoint = shownUrl(config.ews.url);
  const redisShown = shownRedisUrl(coordinator.url);
  const Redis = await loadIoredis(options.importRedis);
  if (signal.aborted) return EXIT.ok;

  const metrics = new BridgeMetrics({ doorbell: config.mode === 'hybrid' });
  const registers = [metrics.registry];
  const leasesHeld = new Gauge({ name: 'ews_bridge_leases_held', help: 'Mailboxes this process holds a coordinator lease on (and bridges).', registers });
  const leaseGrants = new Counter({ name: 'ews_bridge_lease_grants_total', help: 'Leases granted to this process (each with a new fencing token).', registers });
  const leaseLosses = new Counter({
    name: 'ews_bridge_lease_losses_total',
    help: 'Leases this process stopped holding, by reason (rebalance, closing, expired, revoked).',
    labelNames: ['reason'] as const,
    registers,
  });
  leasesHeld.set(0);
  leaseGrants.inc(0);
  for (const reason of LOSS_REASONS) leaseLosses.inc({ reason }, 0);

  // Commands Redis does not answer within a renewal fail (the sources and the next renewal retry
  // them) instead of holding a mailbox's delivery for a whole outage; ioredis reconnects by itself.
  const redis = new Redis(coordinator.url, {
    lazyConnect: true,
    maxRetriesPerRequest: null,
    commandTimeout: coordinator.renewIntervalMs,
    connectionName: 'ews-push-bridge',
  });
  await connectRedis(redis, coordinator, config.ews.startupTimeoutMs, 'ews.startupTimeoutSeconds');
  let redisDown = false;
  redis.on('error', (error) => {
    if (redisDown) return;
    redisDown = true;
    logger.warn('lost the connection to the coordinator’s Redis; reconnecting (owned mailboxes keep forwarding until their leases run out)', {
      redis: redisShown,
      error: error.message,
    });
  });
  redis.on('ready', () => {
    if (!redisDown) return;
    redisDown = false;
    logger.info('connected to the coordinator’s Redis again', { redis: redisShown });
  });

  const store = new RedisCheckpointStore({ redis, prefix: coordinator.prefix });
  const tracker = new AgentTracker();
  const grouped = config.mode !== 'pull' && config.mailboxes.length > 1;
  const group = grouped ? newGroup(config, tracker, logger) : undefined;
  const watchedOf = new Map<string, WatchedMailbox>(config.mailboxes.map((m) => [m.mailbox ?? '', m]));
  const held = new Map<string, Held>();

  // The first mailbox that fails for good (other than a lost lease) ends the process, as in forward.
  let fail!: (error: unknown) => void;
  const fatal = new Promise<never>((_, reject) => (fail = reject));
  fatal.catch(() => undefined);

  const onOwned = (lease: MailboxLease): void => {
    const mailbox = lease.resource;
    const watched = watchedOf.get(mailbox);
    if (watched === undefined) {
      // The coordinator grants only what this process registered: this is a defect, not a config drift.
      logger.error('granted a lease on a mailbox this configuration does not list; releasing it', {
        mailbox,
        token: lease.token,
      });
      throw new Error(`unknown mailbox ${mailbox}`);
    }
    logger.info('lease granted: forwarding the mailbox', { mailbox, token: lease.token, workerId: lease.workerId });
    leasesHeld.inc();
    leaseGrants.inc();
    // Handed to the source in every mode: pull/hybrid keep their watermarks in it, streaming its
    // SyncFolderItems sync states (for gap recovery).
    const checkpoints = store.fenced(lease);
    let bridge: MailboxBridge;
    try {
      bridge = startForwardBridge(config, watched, { checkpoint: checkpoints, metrics, tracker, group, logger });
    } catch (error) {
      // A listener option the poster refused (after the config schema passed): a config problem.
      fail(toCliError(error, endpoint));
      throw error;
    }
    const entry: Held = { lease, bridge, checkpoints, leaseLost: false };
    held.set(mailbox, entry);
    bridge.done.catch((error: unknown) => {
      if (held.get(mailbox) !== entry) return; // stopped on purpose (lease lost)
      if (codeOf(error) === 'EWS_LEASE_LOST') {
        // Redis says another process owns it now: the next renewal revokes the lease here.
        entry.leaseLost = true;
        logger.warn('a checkpoint write was refused: another process owns the mailbox now; it stopped here', { mailbox, token: lease.token });
        return;
      }
      fail(error);
    });
  };

  const onLost = async (lease: MailboxLease, reason: LeaseLostReason): Promise<void> => {
    const entry = held.get(lease.resource);
    if (entry === undefined || entry.lease.token !== lease.token) return;
    held.delete(lease.resource);
    leasesHeld.dec();
    leaseLosses.inc({ reason });
    const fields = { mailbox: lease.resource, token: lease.token, reason };
    if (reason === 'expired' || reason === 'revoked') logger.warn('lease lost: stopping the mailbox', fields);
    else logger.info('lease lost: stopping the mailbox', fields);
    // Posts in progress finish and are checkpointed, then the EWS subscription is removed; the
    // coordinator releases the lease only after this resolves (rebalance, closing).
    await entry.bridge.close();
    await entry.checkpoints.idle();
    entry.checkpoints.close();
    metrics.connected.set({ mailbox: lease.resource }, 0);
    metrics.doorbellConnected?.set({ mailbox: lease.resource }, 0);
    logger.debug('mailbox stopped', fields);
  };

  const leases = new RedisLeaseCoordinator({
    redis,
    resources: watchedOf.keys(),
    prefix: coordinator.prefix,
    ...(coordinator.workerName === undefined ? {} : { workerName: coordinator.workerName }),
    leaseTtlMs: coordinator.leaseTtlMs,
    renewIntervalMs: coordinator.renewIntervalMs,
    onOwned,
    onLost,
    logger,
  });

  let server: MetricsServer | undefined = undefined;
  const shutdown = async (): Promise<void> => {
    logger.info('stopping: closing subscriptions, then releasing leases');
    // onLost(…, 'closing') for every lease (Unsubscribe, final checkpoint), then one release of all.
    await leases.close();
    await group?.close();
    const unsubscribed = await tracker.allDestroyed(options.unsubscribeWaitMs ?? 7_000);
    if (!unsubscribed) logger.warn('some EWS Unsubscribe calls did not finish in time; the server drops those subscriptions when they expire');
    await server?.close();
    await redis.quit().catch(() => redis.disconnect());
    logger.info('stopped');
  };

  try {
    await leases.start();
  } catch (error) {
    await group?.close();
    redis.disconnect();
    throw redisStartError(error, coordinator);
  }
  logger.info(`sharing ${config.mailboxes.length} mailbox${config.mailboxes.length === 1 ? '' : 'es'} with the other forward processes (${config.mode}); forwarding those this process holds a lease on`, {
    workerId: leases.workerId,
    coordinator: redisShown,
    prefix: coordinator.prefix,
    from: endpoint,
    to: shownUrl(config.listener.url),
  });

  server = await serveForwardMetrics(config, metrics, (thresholds) => coordinatedHealth(leases, [...held.values()], thresholds), logger, shutdown);

  let failure: unknown;
  try {
    await Promise.race([fatal, aborted(signal)]);
  } catch (error) {
    failure = error;
  }
  await shutdown();
  if (failure !== undefined) throw toCliError(failure, endpoint);
  return EXIT.ok;
}

/**
 * `/healthz` with a coordinator: only the mailboxes this process holds count (one held elsewhere
 * is not unhealthy here), and the body says what this process holds. A process that has not
 * reached Redis for longer than `metrics.unhealthyAfterSeconds` is unhealthy
 * (`coordinator-unreachable`): it holds nothing and cannot take anything, which would otherwise
 * look like an idle, healthy worker.
 */
function coordinatedHealth(leases: RedisLeaseCoordinator, held: readonly Held[], thresholds: HealthThresholds, now = Date.now()): Health {
  const health = healthOf(
    held.filter((h) => !h.leaseLost).map((h) => h.bridge),
    thresholds,
    now,
  );
  const stats = leases.stats();
  const details = health.details as { readonly reasons: readonly HealthReason[] } & Record<string, unknown>;
  const failingForMs = stats.failingSince === undefined ? 0 : now - stats.failingSince.getTime();
  const unreachable: (HealthReason & { readonly message: string })[] =
    failingForMs > thresholds.unhealthyAfterMs
      ? [{ reason: 'coordinator-unreachable', forMs: failingForMs, message: `no lease renewal has reached Redis for ${Math.round(failingForMs / 1000)} s` }]
      : [];
  const healthy = health.healthy && unreachable.length === 0;
  return {
    healthy,
    details: {
      ...details,
      status: healthy ? 'ok' : 'unhealthy',
      reasons: [...unreachable, ...details.reasons],
      coordinator: {
        workerId: stats.workerId,
        leasesHeld: stats.owned,
        liveWorkers: stats.liveWorkers,
        sharedMailboxes: stats.totalResources,
        ...(stats.failingSince === undefined ? {} : { unreachableSince: stats.failingSince.toISOString() }),
      },
    },
  };
}

/** Resolves when `signal` aborts (immediately if it already has). */
function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

