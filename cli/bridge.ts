/**
 * One mailbox bridged to a legacy push listener: a source (streaming, pull or hybrid) →
 * `pushCallback` → the soap-forwarder's POST, timed. Shared by `demo` and `forward`; it keeps the
 * mailbox's state (for `/healthz` and the start-up check) and reports what happens to an observer.
 *
 * @packageDocumentation
 */
import { performance } from 'node:perf_hooks';
import { pushCallback, type ErrorContext, type PushCallbackEnd, type PushCallbackHandle, type PushHandler } from '../adapters/push-callback.js';
import { createListenerPoster, type ListenerPosterOptions } from '../adapters/soap-forwarder.js';
import type { EwsBridgeError, GapEvent, Logger, PushNotification, SourceLifecycleEvent } from '../lib/index.js';
import { RetryStreak, type BridgeState } from './health.js';
import { libraryLogger } from './logger.js';
import { cliSourceSignals, type AgentTracker, type CliSourceOptions } from './sources.js';

/** What a bridge reports, all optional. Callbacks must not throw (they are the CLI's own code). */
export interface BridgeObserver {
  /** Every lifecycle signal of the source, in order. */
  readonly lifecycle?: (event: SourceLifecycleEvent) => void;
  /** The listener answered a post after `durationMs`. */
  readonly posted?: (notification: PushNotification, durationMs: number, synthesized: boolean) => void;
  /** A post failed (it will be retried on Exchange's schedule unless `context.fatal`). */
  readonly failed?: (error: unknown, context: ErrorContext) => void;
}

/** Options of {@link startMailboxBridge}. */
export interface MailboxBridgeOptions {
  readonly source: CliSourceOptions;
  /** The legacy listener (logger included). */
  readonly listener: ListenerPosterOptions;
  /** Push's StatusFrequency, 1–1440 minutes. */
  readonly statusFrequencyMinutes: number;
  /** Notifications held for a listener that falls behind; `undefined`: the adapter's default (10,000). */
  readonly maxBacklogNotifications?: number | undefined;
  /** Makes (and counts) the source's connection pools. */
  readonly tracker: AgentTracker;
  readonly observer?: BridgeObserver;
  readonly logger: Logger;
  /**
   * How long a connection must last to end a streak of failed EWS attempts (see
   * {@link MailboxBridge.retryingSince}): a source that connects and drops again at once is still
   * failing. Default `30_000` (`forward` passes `ews.startupTimeoutSeconds`).
   */
  readonly stableConnectionMs?: number;
}

/** The `code` of an error (its name when it has none), for logs and `/healthz`. */
function errorCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string') return error.code;
  return error instanceof Error ? error.name : undefined;
}

/** A running mailbox bridge. */
export class MailboxBridge {
  /** The impersonated mailbox, or `undefined` for the account's own. */
  readonly mailbox: string | undefined;
  /** Settles like `pushCallback`'s `done`. */
  readonly done: Promise<PushCallbackEnd>;
  state: BridgeState = 'starting';
  /** When `state` last changed. */
  stateSince = Date.now();
  /** Whether a connection was ever established. */
  connectedOnce = false;
  /** The error of the last failed attempt (cleared by a connection). */
  lastError: EwsBridgeError | undefined;
  /** The error that ended the bridge, if one did. */
  fatalError: unknown;
  /** Resolves at the first connection (or when the listener unsubscribed before one); never rejects. */
  readonly firstConnection: Promise<void>;
  /** Since when posts to the listener have been failing (epoch ms); `undefined` after an answered post. */
  listenerFailingSince: number | undefined;
  /** The `code` (or name) of the last failed post's error. */
  listenerErrorCode: string | undefined;
  private readonly streak: RetryStreak;

  private markConnected!: () => void;

  private readonly handle: PushCallbackHandle;
  private readonly closePoster: () => void;

  constructor(options: MailboxBridgeOptions) {
    this.mailbox = options.source.mailbox;
    this.streak = new RetryStreak(options.stableConnectionMs ?? 30_000);
    this.firstConnection = new Promise<void>((resolve) => (this.markConnected = resolve));
    const observer = options.observer ?? {};
    const poster = createListenerPoster(options.listener);
    this.closePoster = () => poster.close();
    const post: PushHandler = async (notification, context) => {
      const started = performance.now();
      const status = await poster.post(notification, context);
      this.listenerFailingSince = undefined;
      this.listenerErrorCode = undefined;
      observer.posted?.(notification, performance.now() - started, context.synthesized);
      return status;
    };
    try {
      this.handle = pushCallback(cliSourceSignals(options.source, options.tracker), post, {
        statusFrequencyMinutes: options.statusFrequencyMinutes,
        ...(options.maxBacklogNotifications === undefined ? {} : { maxBacklogNotifications: options.maxBacklogNotifications }),
        // The adapter's own warnings repeat what it reports to onError, which logs them below.
        logger: libraryLogger(options.logger),
        onLifecycle: (event) => {
          this.track(event);
          observer.lifecycle?.(event);
        },
        onGap: (gap: GapEvent) => {
          // Reported in order with the deliveries; the lifecycle callback has already counted it.
          if (gap.eventsMayBeLost) {
            options.logger.warn('events may have been missed in a gap', { mailbox: this.mailbox, reason: gap.reason, from: gap.from, to: gap.to });
          }
        },
        onError: (error, context) => {
          if (context.phase === 'handler') {
            this.listenerFailingSince ??= Date.now();
            this.listenerErrorCode = errorCode(error);
            observer.failed?.(error, context);
          }
          if (context.fatal) options.logger.error('the bridge stopped', { mailbox: this.mailbox, phase: context.phase, error });
          else if (context.phase === 'handler') options.logger.warn('the listener did not take a notification; retrying', { mailbox: this.mailbox, retryInMs: context.retryInMs, error });
          else options.logger.warn('bridge callback failed', { mailbox: this.mailbox, phase: context.phase, error });
        },
      });
    } catch (error) {
      poster.close();
      throw error;
    }
    this.done = this.handle.done.then(
      (end) => {
        this.setState(end.reason === 'unsubscribed' ? 'unsubscribed' : 'closed');
        if (end.reason === 'unsubscribed') this.markConnected();
        this.closePoster();
        return end;
      },
      (error: unknown) => {
        this.fatalError = error;
        this.setState('failed');
        this.closePoster();
        throw error;
      },
    );
    // `done` may be awaited by no one (e.g. after close()); its rejection is reported through state.
    this.done.catch(() => undefined);
  }

  /** Stops gracefully: posts in progress finish and are checkpointed, then the EWS subscription is removed. */
  async close(): Promise<void> {
    await this.handle.close();
  }

  private setState(state: BridgeState): void {
    if (this.state === state) return;
    if (this.state === 'failed' || this.state === 'closed' || this.state === 'unsubscribed') return;
    this.state = state;
    this.stateSince = Date.now();
  }

  /**
   * Since when EWS attempts have been failing (epoch ms): from the first `retrying` signal until a
   * connection has lasted `stableConnectionMs`, so a flapping source stays "retrying".
   * `undefined` while healthy.
   */
  get retryingSince(): number | undefined {
    return this.streak.since(Date.now());
  }

  private track(event: SourceLifecycleEvent): void {
    const now = Date.now();
    switch (event.type) {
      case 'connected':
      case 'keep-alive':
        this.connectedOnce = true;
        this.markConnected();
        this.lastError = undefined;
        this.streak.connected(now);
        this.setState('connected');
        return;
      case 'disconnected':
        this.streak.disconnected(now);
        this.setState('disconnected');
        return;
      case 'retrying':
        this.streak.failed(now);
        this.lastError = event.error;
        this.setState(this.connectedOnce ? 'disconnected' : 'starting');
        return;
      default:
        return;
    }
  }
}

/** Starts bridging one mailbox. @throws TypeError / RangeError naming a listener option. */
export function startMailboxBridge(options: MailboxBridgeOptions): MailboxBridge {
  return new MailboxBridge(options);
}
