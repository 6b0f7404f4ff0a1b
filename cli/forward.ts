/**
 * `ews-push-bridge forward --config bridge.json`: the sidecar for a legacy push listener nobody may
 * change. Holds one subscription per configured mailbox, POSTs every notification to the listener
 * as Exchange's `SendNotification` would, checkpoints pull/hybrid watermarks only after the
 * listener answered, serves `/metrics` and `/healthz`, and on SIGINT/SIGTERM closes every
 * subscription (EWS Unsubscribe) after flushing the checkpoints.
 *
 * @packageDocumentation
 */
import { FileCheckpointStore, StreamingGroup, type CheckpointStore, type Logger } from '../lib/index.js';
import type { MailboxBridge } from './bridge.js';
import type { BridgeConfig } from './config.js';
import { CliError, EXIT, toCliError, type ExitCode } from './exit-codes.js';
import { serveForwardMetrics, startForwardBridge } from './forward-bridge.js';
import { healthOf } from './health.js';
import { libraryLogger } from './logger.js';
import { BridgeMetrics } from './metrics.js';
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
      const bridge = startForwardBridge(config, watched, { checkpoint, metrics, tracker, group, logger });
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

  const server = await serveForwardMetrics(config, metrics, (thresholds) => healthOf(bridges, thresholds), logger, stopAll);

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
