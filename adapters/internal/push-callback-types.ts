/**
 * The types of the push-callback adapter's contract (its handler, options, context and handle),
 * in a module of their own so that the adapter (`push-callback.ts`) and its internals
 * (`options.ts`, `delivery-engine.ts`) all depend on them rather than on each other.
 * `ews-push-bridge/adapters/push-callback` re-exports every one.
 *
 * @packageDocumentation
 */
import type {
  GapEvent,
  Logger,
  PushNotification,
  SourceLifecycleEvent,
  SubscriptionStatus,
} from '../../lib/index.js';

/** What the adapter tells the handler about a call besides the notification. */
export interface DeliveryContext {
  /** 1 for the first call with this notification, 2 for the first retry, …. */
  readonly attempt: number;
  /**
   * `true` for a StatusEvent the adapter made because the subscription was idle for
   * `statusFrequencyMinutes` (Exchange's keep-alive post); `false` for notifications of the source.
   */
  readonly synthesized: boolean;
}

/**
 * The legacy push handler: answer `'OK'` to keep the subscription, `'Unsubscribe'` to end it.
 * Throwing, rejecting or answering anything else counts as a failed post and is retried.
 */
export type PushHandler = (
  notification: PushNotification,
  context: DeliveryContext,
) => SubscriptionStatus | PromiseLike<SubscriptionStatus>;

/** Where an error reported to {@link PushCallbackOptions.onError} came from. */
export type ErrorPhase =
  /** The handler failed (or, for the soap-forwarder, the listener's POST). */
  | 'handler'
  /** `onGap` threw or rejected. */
  | 'gap-listener'
  /** `onLifecycle` threw. */
  | 'lifecycle-listener'
  /** The source errored: no more notifications will come. */
  | 'source';

/** Context of an error reported to {@link PushCallbackOptions.onError}. */
export interface ErrorContext {
  readonly phase: ErrorPhase;
  /** `true` when the adapter ends because of this error (`done` then rejects with it). */
  readonly fatal: boolean;
  /** The subscription concerned, when known. */
  readonly subscriptionId?: string;
  /** The notification whose delivery failed (`phase: 'handler'`). */
  readonly notification?: PushNotification;
  /** Which attempt failed (`phase: 'handler'`): 1 for the first call. */
  readonly attempt?: number;
  /** When the same notification is tried again (`phase: 'handler'`, not fatal). */
  readonly retryInMs?: number;
}

/** Options of {@link pushCallback}. */
export interface PushCallbackOptions {
  /**
   * Push's `StatusFrequency`, in minutes, 1–1440: a StatusEvent is delivered after this long
   * without a handler call, and failed deliveries are retried only while the next retry stays
   * within it. Default `30` (Exchange's default).
   */
  readonly statusFrequencyMinutes?: number;
  /**
   * Delays before retry 1, 2, … of a failed delivery, in milliseconds; past the end of the list
   * each delay is twice the one before. Default {@link EXCHANGE_RETRY_SCHEDULE_MS}
   * (`[30_000, 60_000, 120_000, 240_000, 480_000, 960_000]`, Exchange's schedule).
   */
  readonly retryScheduleMs?: readonly number[];
  /**
   * How many notifications the adapter may hold — received from the source and not yet answered by
   * the handler, the one being retried included — an integer ≥ 1, or `Infinity` for no bound.
   * A pull or hybrid source waits for each answer, so it never holds more than one; a streaming
   * source cannot be slowed down, so while the handler keeps failing (or is slower than the
   * mailbox) its notifications pile up here. When one more arrives at the bound, the adapter ends
   * the subscription, as Exchange ends a push subscription whose listener does not keep up:
   * `done` rejects with `EwsListenerBacklogError` (`heldNotifications`: how many were never
   * answered), also reported to `onError` as fatal, and the source is unsubscribed. Nothing is
   * dropped silently. Default `10_000`.
   */
  readonly maxBacklogNotifications?: number;
  /**
   * Receives every error: each failed delivery (with `retryInMs` when it will be retried), a
   * throwing `onGap`/`onLifecycle`, the source's error, and the final `EwsListenerError` or
   * `EwsListenerBacklogError` (`fatal: true`). A throwing `onError` is logged. Default: the errors go to `logger.error`
   * (silent unless you pass a logger) — the fatal one also rejects `done`.
   */
  readonly onError?: (error: unknown, context: ErrorContext) => void;
  /**
   * Called with every gap the source reports (a window in which events may not have reached us),
   * in order with the handler calls of that subscription and awaited before the next one, so a
   * recovery (e.g. `SyncFolderItems`) runs before later notifications are handled. Errors go to
   * `onError`. Needs a signals source (`streamingSignals`, `pullSignals`, `hybridSignals`).
   * Default: none.
   */
  readonly onGap?: (gap: GapEvent) => void | PromiseLike<void>;
  /**
   * Called synchronously with every lifecycle signal of the source (subscribed, connected,
   * keep-alive, disconnected, retrying, gap; from a hybrid source also its doorbell's, wrapped as
   * `{ type: 'doorbell', event }`, which the adapter itself ignores) as it arrives. Default: none.
   */
  readonly onLifecycle?: (event: SourceLifecycleEvent) => void;
  /** Aborting it closes the adapter gracefully, like {@link PushCallbackHandle.close}. Default: none. */
  readonly signal?: AbortSignal;
  /** Where the adapter logs (never credentials). Default: silent. */
  readonly logger?: Logger;
}

/** How an adapter ended without an error. */
export interface PushCallbackEnd {
  /**
   * `'closed'`: `close()` or the abort signal; `'unsubscribed'`: the handler answered
   * `'Unsubscribe'`; `'completed'`: the source completed and every notification was delivered.
   */
  readonly reason: 'closed' | 'unsubscribed' | 'completed';
  /** The subscription whose handler answered `'Unsubscribe'`. */
  readonly subscriptionId?: string;
}

/** A running push-callback adapter. */
export interface PushCallbackHandle {
  /**
   * Ends the adapter gracefully: handler calls in progress finish (and are checkpointed), nothing
   * new is started, retries waiting are dropped (pull/hybrid deliver those notifications again on
   * the next run), then the source is unsubscribed, which removes the EWS subscription. Resolves
   * when that is done; never rejects. Idempotent.
   */
  close(): Promise<void>;
  /**
   * Settles when the adapter has ended: resolves with how it ended, or rejects with the error that
   * ended it (`EwsListenerError` after the retries ran out, `EwsListenerBacklogError` when
   * `maxBacklogNotifications` was reached, or the source's error). Safe to ignore:
   * a rejection no one awaits is not reported as unhandled (the error also went to `onError`).
   */
  readonly done: Promise<PushCallbackEnd>;
  /** Whether the adapter has ended (or is ending). */
  readonly closed: boolean;
}
