/**
 * One configured mailbox of `forward` bridged to the legacy listener, and how what it does becomes
 * metrics and log lines — the same for every mailbox of a plain `forward` and for each mailbox a
 * coordinated `forward` holds a lease on.
 *
 * @packageDocumentation
 */
import type { CheckpointStore, Logger, SourceLifecycleEvent, StreamingGroup } from '../lib/index.js';
import { startMailboxBridge, type BridgeObserver, type MailboxBridge } from './bridge.js';
import type { BridgeConfig, WatchedMailbox } from './config.js';
import { CliError, EXIT } from './exit-codes.js';
import type { HealthThresholds } from './health.js';
import { startMetricsServer, type BridgeMetrics, type Health, type MetricsServer } from './metrics.js';
import type { AgentTracker } from './sources.js';

/** What a mailbox's bridge shares with the others of its process. */
export interface ForwardBridgeContext {
  /** Where its positions (pull/hybrid watermarks, streaming sync states) live; `undefined`: memory. */
  readonly checkpoint: CheckpointStore | undefined;
  readonly metrics: BridgeMetrics;
  readonly tracker: AgentTracker;
  /** The group whose connections carry its streaming subscription or hybrid doorbell, if any. */
  readonly group: StreamingGroup | undefined;
  readonly logger: Logger;
}

/** Starts the bridge of one configured mailbox, its signals counted and logged. */
export function startForwardBridge(config: BridgeConfig, watched: WatchedMailbox, ctx: ForwardBridgeContext): MailboxBridge {
  const { logger } = ctx;
  return startMailboxBridge({
    source: {
      mode: config.mode,
      url: config.ews.url,
      auth: config.ews.auth,
      mailbox: watched.mailbox,
      folders: watched.folders,
      subscribeToAllFolders: watched.subscribeToAllFolders,
      eventTypes: watched.eventTypes,
      requestServerVersion: config.ews.requestServerVersion,
      ca: config.ews.ca,
      rejectUnauthorized: config.ews.rejectUnauthorized,
      anchorMailbox: config.ews.anchorMailbox,
      pollIntervalMs: config.pollIntervalMs,
      checkpoint: ctx.checkpoint,
      logger,
      group: ctx.group,
    },
    listener: {
      url: config.listener.url,
      ...(config.ews.requestServerVersion === undefined ? {} : { requestServerVersion: config.ews.requestServerVersion }),
      ...(config.listener.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: config.listener.requestTimeoutMs }),
      ...(config.listener.sharedSecret === undefined ? {} : { sharedSecret: config.listener.sharedSecret }),
      ...(config.listener.ca === undefined ? {} : { tls: { ca: config.listener.ca } }),
      logger,
    },
    statusFrequencyMinutes: config.listener.statusFrequencyMinutes,
    maxBacklogNotifications: config.listener.maxBacklogNotifications,
    tracker: ctx.tracker,
    logger,
    stableConnectionMs: config.ews.startupTimeoutMs,
    observer: forwardObserver(watched.mailbox, ctx.metrics, logger),
  });
}

/**
 * What `forward` makes of one mailbox's bridge: its metrics series (labelled with the impersonated
 * address, or `""` for the account's own, as `/healthz`) and one log line per retry, reconnect or
 * doorbell failure (the library's own lines about the same moments go to debug: see libraryLogger).
 */
export function forwardObserver(mailbox: string | undefined, metrics: BridgeMetrics, logger: Logger): BridgeObserver {
  const label = { mailbox: mailbox ?? '' };
  metrics.addMailbox(label.mailbox);
  // Doorbell trouble before the mailbox first connected is held back: when the same cause
  // (refused credentials, a wrong URL) then ends the start-up, the exit message says it once.
  let connected = false;
  const heldWarnings: (() => void)[] = [];
  const doorbell = (event: Extract<SourceLifecycleEvent, { type: 'doorbell' }>['event']): void => {
    // Hybrid's fast path: counted apart, so the pull side's series keep their meaning.
    switch (event.type) {
      case 'connected':
        metrics.doorbellConnected?.set(label, 1);
        return;
      case 'disconnected':
        metrics.doorbellConnected?.set(label, 0);
        metrics.doorbellReconnects?.inc(label);
        logger.info('doorbell disconnected; reconnecting (polling covers the gap)', { mailbox, reason: event.reason });
        return;
      case 'retrying':
        metrics.doorbellConnected?.set(label, 0);
        return;
      case 'failed': {
        metrics.doorbellConnected?.set(label, 0);
        const fields = { mailbox, code: 'code' in event.error ? event.error.code : undefined, reopenInMs: event.restartInMs };
        const warn = (): void => logger.warn('doorbell failed; polling only until it is reopened', fields);
        if (connected) warn();
        else heldWarnings.push(warn);
        return;
      }
      default:
        return;
    }
  };
  return {
    lifecycle: (event) => {
      switch (event.type) {
        case 'connected':
          metrics.connected.set(label, 1);
          logger.info('connected', { mailbox, subscriptionId: event.subscriptionId });
          connected = true;
          for (const warn of heldWarnings.splice(0)) warn();
          return;
        case 'disconnected':
          metrics.connected.set(label, 0);
          metrics.reconnects.inc(label);
          logger.info('disconnected; reconnecting', { mailbox, reason: event.reason });
          return;
        case 'retrying':
          metrics.connected.set(label, 0);
          metrics.retries.inc({ ...label, reason: event.reason });
          logger.warn('EWS attempt failed; retrying', { mailbox, reason: event.reason, code: event.error.code, delayMs: event.delayMs, attempt: event.attempt });
          return;
        case 'gap':
          metrics.gaps.inc({ ...label, events_may_be_lost: String(event.eventsMayBeLost) });
          return;
        case 'doorbell':
          doorbell(event.event);
          return;
        default:
          return;
      }
    },
    posted: (notification, durationMs) => {
      metrics.notificationsDelivered.inc(label);
      metrics.eventsDelivered.inc(label, notification.events.filter((e) => e.type !== 'Status').length);
      metrics.postSeconds.observe(label, durationMs / 1000);
    },
    failed: () => metrics.listenerFailures.inc(label),
  };
}

/**
 * Serves `/metrics` and `/healthz` when the configuration asks for them (`metrics.port`), with the
 * `/healthz` rules given the configured thresholds. A port that cannot be had is a configuration
 * problem: `cleanUp` runs, then a usage error naming `metrics.port` is thrown.
 */
export async function serveForwardMetrics(
  config: BridgeConfig,
  metrics: BridgeMetrics,
  health: (thresholds: HealthThresholds) => Health,
  logger: Logger,
  cleanUp: () => Promise<unknown>,
): Promise<MetricsServer | undefined> {
  const metricsConfig = config.metrics;
  if (metricsConfig === undefined) return undefined;
  const thresholds: HealthThresholds = { unhealthyAfterMs: metricsConfig.unhealthyAfterMs, startupWindowMs: config.ews.startupTimeoutMs };
  try {
    const server = await startMetricsServer({ port: metricsConfig.port, host: metricsConfig.host, metrics: () => metrics.render(), health: () => health(thresholds) });
    logger.info(`metrics on ${server.url}/metrics, health on ${server.url}/healthz`);
    return server;
  } catch (error) {
    await cleanUp();
    throw new CliError(EXIT.usage, `${error instanceof Error ? error.message : String(error)}: change metrics.port`, { cause: error });
  }
}
