/**
 * `ews-push-bridge forward --config bridge.json`: the sidecar for a legacy push listener nobody may
 * change. Holds one subscription per configured mailbox, POSTs every notification to the listener
 * as Exchange's `SendNotification` would, checkpoints pull/hybrid watermarks only after the
 * listener answered, serves `/metrics` and `/healthz`, and on SIGINT/SIGTERM closes every
 * subscription (EWS Unsubscribe) after flushing the checkpoints.
 *
 * @packageDocumentation
 */
import { FileCheckpointStore, StreamingGroup, type CheckpointStore, type Logger } from '../index.js';
import { startMailboxBridge, type MailboxBridge } from './bridge.js';
import type { BridgeConfig } from './config.js';
import { CliError, EXIT, toCliError, type ExitCode } from './exit-codes.js';
import { healthOf } from './health.js';
import { libraryLogger } from './logger.js';
import { BridgeMetrics, startMetricsServer, type MetricsServer } from './metrics.js';
import { AgentTracker, cliTls } from './sources.js';

/** Options of {@link runForward}. */
export interface ForwardRunOptions {
  /** Aborted on SIGINT/SIGTERM: the bridge closes gracefully. Required. */
  readonly signal: AbortSignal;
  /** Where the bridge logs. Required. */
  readonly logger: Logger;
  /** Longest wait for the EWS Unsubscribe calls at shutdown. Default `7_000` (the sources give each call 5 s). */
  readonly unsubscribeWaitMs?: number;
}

/** A URL as it may be logged: no query, no fragment. */
export function shownUrl(value: string): string {
  const url = new URL(value);
  return `${url.origin}${url.pathname}`;
}

/** Resolves when `signal` aborts (immediately if it already has). */
function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

function sleep(ms: number): { promise: Promise<void>; cancel: () => void } {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  return { promise, cancel: () => clearTimeout(timer) };
}

/**
 * Runs the bridge until `options.signal` aborts, a mailbox fails for good, or every listener
 * answered Unsubscribe. Returns the exit code.
 *
 * Start-up: each mailbox must connect within `ews.startupTimeoutSeconds`, else the command fails
 * with the last error's exit code (3 cannot authenticate, 4 cannot reach the server). After that,
 * outages are retried without end (watch `/healthz`).
 */
export async function runForward(config: BridgeConfig, options: ForwardRunOptions): Promise<ExitCode> {
  // Several processes sharing the mailboxes through Redis leases: forward-coordinated.ts (main.ts chooses).
  if (config.coordinator !== undefined) throw new Error('runForward: a configuration with a coordinator runs through runCoordinatedForward');
  const { logger, signal } = options;
  const endpoint = shownUrl(config.ews.url);
  const metrics = new BridgeMetrics({ doorbell: config.mode === 'hybrid' });
  const tracker = new AgentTracker();
  let checkpoint: CheckpointStore | undefined;
  if (config.checkpointFile !== undefined) {
    // Pull/hybrid keep watermarks there; streaming keeps SyncFolderItems sync states and recovers
    // every gap (and the time it was down) with them.
    checkpoint = new FileCheckpointStore({ path: config.checkpointFile, logger });
    if (config.mode === 'streaming' && config.mailboxes.some((m) => m.subscribeToAllFolders)) {
      logger.warn('subscribeToAllFolders cannot be recovered with SyncFolderItems (it works folder by folder): gaps of those mailboxes are reported, not recovered; list the folders to make them loss-free', {
        file: config.checkpointFile,
      });
    }
  } else if (config.mode !== 'streaming') {
    logger.warn('no checkpoint.file: after a restart the bridge starts from "now" and events that happened while it was down are not forwarded');
  } else {
    logger.warn('no checkpoint.file: streaming gaps (a cut connection, a lost subscription) and the time the bridge is down are reported, not recovered; set checkpoint.file to recover them with SyncFolderItems');
  }

  // Several impersonated mailboxes share GetStreamingEvents connections (up to 200 subscriptions
  // each) for their streaming subscriptions or hybrid doorbells, instead of holding one each.
  const grouped = config.mode !== 'pull' && config.mailboxes.length > 1 && config.mailboxes.every((m) => m.mailbox !== undefined);
  const group = grouped ? newGroup(config, tracker, logger) : undefined;

  const bridges: MailboxBridge[] = [];
  const stopAll = async (): Promise<boolean> => {
    await Promise.all(bridges.map((b) => b.close()));
    // The members' Unsubscribes went out through the group; closing it waits for them, then
    // destroys its pool.
    await group?.close();
    return tracker.allDestroyed(options.unsubscribeWaitMs ?? 7_000);
  };

  try {
    for (const watched of config.mailboxes) {
      // One label convention: the impersonated address, or "" for the account's own (as /healthz).
      const mailboxLabel = { mailbox: watched.mailbox ?? '' };
      metrics.addMailbox(mailboxLabel.mailbox);
      // Doorbell trouble before the mailbox first connected is held back: when the same cause
      // (refused credentials, a wrong URL) then ends the start-up, the exit message says it once.
      let sourceConnected = false;
      const heldWarnings: (() => void)[] = [];
      const bridge = startMailboxBridge({
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
          checkpoint,
          logger,
          group,
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
        tracker,
        logger,
        stableConnectionMs: config.ews.startupTimeoutMs,
        observer: {
          lifecycle: (event) => {
            switch (event.type) {
              case 'connected':
                metrics.connected.set(mailboxLabel, 1);
                logger.info('connected', { mailbox: watched.mailbox, subscriptionId: event.subscriptionId });
                sourceConnected = true;
                for (const warn of heldWarnings.splice(0)) warn();
                return;
              case 'disconnected':
                metrics.connected.set(mailboxLabel, 0);
                metrics.reconnects.inc(mailboxLabel);
                logger.info('disconnected; reconnecting', { mailbox: watched.mailbox, reason: event.reason });
                return;
              case 'retrying':
                metrics.connected.set(mailboxLabel, 0);
                metrics.retries.inc({ ...mailboxLabel, reason: event.reason });
                // The one line per retry (the source's own goes to debug: see libraryLogger).
                logger.warn('EWS attempt failed; retrying', {
                  mailbox: watched.mailbox,
                  reason: event.reason,
                  code: event.error.code,
                  delayMs: event.delayMs,
                  attempt: event.attempt,
                });
                return;
              case 'gap':
                metrics.gaps.inc({ ...mailboxLabel, events_may_be_lost: String(event.eventsMayBeLost) });
                return;
              case 'doorbell':
                // Hybrid's fast path: counted apart, so the pull side's series keep their meaning.
                switch (event.event.type) {
                  case 'connected':
                    metrics.doorbellConnected?.set(mailboxLabel, 1);
                    return;
                  case 'disconnected':
                    metrics.doorbellConnected?.set(mailboxLabel, 0);
                    metrics.doorbellReconnects?.inc(mailboxLabel);
                    logger.info('doorbell disconnected; reconnecting (polling covers the gap)', { mailbox: watched.mailbox, reason: event.event.reason });
                    return;
                  case 'retrying':
                    metrics.doorbellConnected?.set(mailboxLabel, 0);
                    return;
                  case 'failed': {
                    metrics.doorbellConnected?.set(mailboxLabel, 0);
                    const fields = {
                      mailbox: watched.mailbox,
                      code: 'code' in event.event.error ? event.event.error.code : undefined,
                      reopenInMs: event.event.restartInMs,
                    };
                    const warn = (): void => logger.warn('doorbell failed; polling only until it is reopened', fields);
                    if (sourceConnected) warn();
                    else heldWarnings.push(warn);
                    return;
                  }
                  default:
                    return;
                }
              default:
                return;
            }
          },
          posted: (notification, durationMs) => {
            metrics.notificationsDelivered.inc(mailboxLabel);
            metrics.eventsDelivered.inc(mailboxLabel, notification.events.filter((e) => e.type !== 'Status').length);
            metrics.postSeconds.observe(mailboxLabel, durationMs / 1000);
          },
          failed: () => metrics.listenerFailures.inc(mailboxLabel),
        },
      });
      bridges.push(bridge);
    }
  } catch (error) {
    // A listener option the poster refused (after the config schema passed): a config problem.
    await stopAll();
    throw toCliError(error, endpoint);
  }

  logger.info(`forwarding ${bridges.length} mailbox${bridges.length === 1 ? '' : 'es'} (${config.mode}${group ? ', on shared connections' : ''})`, {
    from: endpoint,
    to: shownUrl(config.listener.url),
    checkpoints: checkpoint ? config.checkpointFile : undefined,
  });

  let server: MetricsServer | undefined;
  const metricsConfig = config.metrics;
  if (metricsConfig !== undefined) {
    try {
      server = await startMetricsServer({
        port: metricsConfig.port,
        host: metricsConfig.host,
        metrics: () => metrics.render(),
        health: () => healthOf(bridges, { unhealthyAfterMs: metricsConfig.unhealthyAfterMs, startupWindowMs: config.ews.startupTimeoutMs }),
      });
      logger.info(`metrics on ${server.url}/metrics, health on ${server.url}/healthz`);
    } catch (error) {
      await stopAll();
      throw new CliError(EXIT.usage, `${error instanceof Error ? error.message : String(error)}: change metrics.port`, { cause: error });
    }
  }

  try {
    return await supervise(bridges, config, signal, logger, endpoint);
  } finally {
    logger.info('stopping: closing subscriptions');
    const unsubscribed = await stopAll();
    if (!unsubscribed) logger.warn('some EWS Unsubscribe calls did not finish in time; the server drops those subscriptions when they expire');
    await server?.close();
    logger.info('stopped');
  }
}

/** Waits for start-up, then for a stop signal or the end of the bridges. Returns the exit code. */
async function supervise(bridges: readonly MailboxBridge[], config: BridgeConfig, signal: AbortSignal, logger: Logger, endpoint: string): Promise<ExitCode> {
  const ended = Promise.all(bridges.map((b) => b.done.then(() => undefined, () => undefined)));
  const firstFailure = Promise.race(bridges.map((b) => b.done.then(() => new Promise<never>(() => undefined), (error: unknown) => error)));
  const stop = aborted(signal);

  // Start-up: every mailbox connected, or one failed for good, or time is up.
  const startup = sleep(config.ews.startupTimeoutMs);
  try {
    const first = await Promise.race([
      Promise.all(bridges.map((b) => b.firstConnection)).then(() => ({ kind: 'connected' as const })),
      firstFailure.then((error) => ({ kind: 'failed' as const, error })),
      startup.promise.then(() => ({ kind: 'timeout' as const })),
      stop.then(() => ({ kind: 'stopped' as const })),
    ]);
    if (first.kind === 'stopped') return EXIT.ok;
    if (first.kind === 'failed') throw toCliError(first.error, endpoint);
    if (first.kind === 'timeout') {
      const late = bridges.find((b) => !b.connectedOnce && b.state !== 'unsubscribed');
      const who = late?.mailbox ?? 'the account’s own mailbox';
      if (late?.lastError) throw toCliError(late.lastError, endpoint);
      throw new CliError(EXIT.unreachable, `No connection to ${endpoint} for ${who} within ${config.ews.startupTimeoutMs / 1000} s (ews.startupTimeoutSeconds).`);
    }
  } finally {
    startup.cancel();
  }
  logger.info('all subscriptions connected');

  const outcome = await Promise.race([
    firstFailure.then((error) => ({ kind: 'failed' as const, error })),
    ended.then(() => ({ kind: 'ended' as const })),
    stop.then(() => ({ kind: 'stopped' as const })),
  ]);
  if (outcome.kind === 'failed') throw toCliError(outcome.error, endpoint);
  if (outcome.kind === 'stopped') return EXIT.ok;
  // Every bridge has ended. `ended` and `firstFailure` settle in the same turn when the last one
  // fails, and either may win the race: the bridges' own record decides, not the race.
  const failed = bridges.find((b) => b.state === 'failed');
  if (failed) throw toCliError(failed.fatalError, endpoint);
  if (bridges.every((b) => b.state === 'unsubscribed')) {
    logger.info('every listener answered Unsubscribe; nothing left to forward');
    return EXIT.ok;
  }
  throw new CliError(EXIT.failure, 'Every mailbox bridge ended without an error or an Unsubscribe from the listener (the sources completed); nothing is being forwarded.');
}

/** The StreamingGroup of a streaming or hybrid `forward` over several impersonated mailboxes. */
export function newGroup(config: BridgeConfig, tracker: AgentTracker, logger: Logger): StreamingGroup {
  const tls = cliTls(config.ews);
  return new StreamingGroup({
    url: config.ews.url,
    auth: config.ews.auth,
    ...(config.ews.requestServerVersion === undefined ? {} : { requestServerVersion: config.ews.requestServerVersion }),
    ...(config.ews.anchorMailbox === undefined ? {} : { anchorMailbox: config.ews.anchorMailbox }),
    createAgent: () => tracker.create(config.ews.url, tls, logger),
    logger: libraryLogger(logger),
  });
}
