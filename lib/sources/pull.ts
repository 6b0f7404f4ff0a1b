/**
 * The pull source: an EWS pull subscription polled with GetEvents, with push semantics
 * (`PreviousWatermark`, `MoreEvents`, per-event watermarks) and a durable position, so a restarted
 * process resumes where it stopped without losing an event.
 *
 * @packageDocumentation
 */
import type { Observable } from 'rxjs';
import { requireCheckpointKey, requireCheckpointStore, type CheckpointStore } from '../checkpoint/checkpoint-store.js';
import { MemoryCheckpointStore } from '../checkpoint/memory-store.js';
import type { PushNotification } from '../model.js';
import type { AckMode } from './ack.js';
import type { LifecycleListener, SourceSignal } from './lifecycle.js';
import { booleanOption, intInRange, oneOf, optionalFunction, optionalNonEmptyString, positiveMs } from '../validate.js';
import { resolveSourceOptions, type SourceOptions } from './options.js';
import { notificationsOf } from './notifications-of.js';
import { openResolved, sessionObservable, type SourceSession } from './session-observable.js';
import { DEFAULT_DEDUPE_WINDOW, PullSession, defaultCheckpointKey, type ResolvedPullOptions } from './pull-session.js';

/** Options of {@link pullNotifications} and {@link pullSignals} (and, with more, of the hybrid source). */
export interface PullOptions extends SourceOptions {
  /**
   * How long to wait after a GetEvents that brought nothing more (`MoreEvents` false) before the
   * next one. Must be shorter than `subscriptionTimeoutMinutes`. Default `10_000` (pull);
   * `60_000` for the hybrid source, where it is only the safety net behind the doorbell.
   */
  readonly pollIntervalMs?: number;
  /**
   * Minutes the server keeps the pull subscription without a GetEvents call (`t:Timeout`), 1–1440.
   * When a consumer holds a notification longer than this, the subscription expires and is
   * recreated from the last watermark (nothing is lost). Default `30`.
   */
  readonly subscriptionTimeoutMinutes?: number;
  /**
   * Where to start when the checkpoint store has nothing for this subscription: a watermark kept
   * from elsewhere (e.g. the last one a push listener saw). Default: none (start from "now").
   */
  readonly watermark?: string;
  /**
   * Where the position lives between runs: the watermark of the last notification the consumer
   * acknowledged. Use a `FileCheckpointStore` (or your own store) to survive restarts.
   * Default: a `MemoryCheckpointStore` per `pullNotifications()` call, so re-subscribing (e.g.
   * with RxJS `retry`) resumes, but a restart starts from "now".
   */
  readonly checkpoint?: CheckpointStore;
  /**
   * The key of this subscription's checkpoint in the store. Default: `checkpointKey()` of the
   * mailbox (or the basic-auth user name when no `mailbox` is set), the folders and the event types.
   * Set it when several consumers watch the same mailbox through one store.
   */
  readonly checkpointKey?: string;
  /**
   * When a notification counts as done (see `deferAck`): `'auto'` when the subscriber's `next`
   * returns unless it called `deferAck(notification)` during it; `'manual'` only when the consumer
   * calls the function `deferAck` returns — every emitted notification, status ones included, or
   * the source waits forever (by design: it never skips an unacknowledged notification).
   * Default `'auto'`.
   */
  readonly ackMode?: AckMode;
  /**
   * Whether GetEvents answers that carry only a StatusEvent are emitted as notifications (the
   * push-era keep-alive; they arrive every poll). Their watermark is checkpointed either way, and
   * they are always reported as `keep-alive` lifecycle signals. Default `true`.
   */
  readonly emitStatusEvents?: boolean;
  /**
   * How many acknowledged event watermarks are remembered in this run to drop events the server
   * delivers twice (e.g. after a resubscription), 0–10,000,000. Default `10_000`.
   */
  readonly dedupeWindow?: number;
  /**
   * Receives the lifecycle signals (subscribed, connected, keep-alive, disconnected, retrying, gap)
   * synchronously and in order with the notifications. A listener that throws is logged, not fatal.
   * Default: none. ({@link pullSignals} emits them in the stream instead.)
   */
  readonly onLifecycle?: LifecycleListener;
}

/**
 * Checks the pull options and applies defaults.
 *
 * @throws TypeError or RangeError naming the option.
 */
export function resolvePullOptions(options: PullOptions, defaults: { pollIntervalMs: number }): ResolvedPullOptions {
  const base = resolveSourceOptions(options);
  const subscriptionTimeoutMinutes = intInRange(options.subscriptionTimeoutMinutes, 'subscriptionTimeoutMinutes', 30, 1, 1440);
  const pollIntervalMs = positiveMs(options.pollIntervalMs, 'pollIntervalMs', Math.min(defaults.pollIntervalMs, subscriptionTimeoutMinutes * 30_000));
  if (pollIntervalMs >= subscriptionTimeoutMinutes * 60_000) {
    throw new RangeError(`pollIntervalMs must be shorter than subscriptionTimeoutMinutes (${subscriptionTimeoutMinutes} min), or the subscription expires between polls (got ${pollIntervalMs})`);
  }
  const watermark = optionalNonEmptyString(options.watermark, 'watermark');
  const checkpoint = requireCheckpointStore(options.checkpoint ?? new MemoryCheckpointStore());
  const key = requireCheckpointKey(options.checkpointKey ?? defaultCheckpointKey(base));
  const ackMode = oneOf(options.ackMode, 'ackMode', ['auto', 'manual'], 'auto');
  const emitStatusEvents = booleanOption(options.emitStatusEvents, 'emitStatusEvents', true);
  const dedupeWindow = intInRange(options.dedupeWindow, 'dedupeWindow', DEFAULT_DEDUPE_WINDOW, 0, 10_000_000);
  optionalFunction(options.onLifecycle, 'onLifecycle');
  return {
    ...base,
    pollIntervalMs,
    subscriptionTimeoutMinutes,
    watermark,
    checkpoint,
    checkpointKey: key,
    ackMode,
    emitStatusEvents,
    dedupeWindow,
  };
}

/**
 * Runs a {@link PullSession} per subscriber as an Observable of signals. `attach` lets the hybrid
 * source hang its doorbell on the session; it returns its own teardown.
 *
 * @internal
 */
export function sessionSignals(
  resolved: ResolvedPullOptions,
  attach?: (session: PullSession, report: (signal: SourceSignal) => void) => () => Promise<void>,
): Observable<SourceSignal> {
  return sessionObservable(resolved.signal, (emit): SourceSession => {
    const session = new PullSession(resolved, emit);
    if (!attach) return session;
    const detach = attach(session, emit);
    let detached: Promise<void> | undefined;
    return {
      start: (fail, complete) => session.start(fail, complete),
      stop: () => {
        detached = detach();
        session.stop();
      },
      closed: async () => {
        await Promise.all([session.closed(), detached]);
      },
    };
  });
}

/**
 * Notifications and lifecycle signals of a pull subscription, in one ordered stream: what an
 * adapter that must account for gaps subscribes to. See {@link pullNotifications}.
 *
 * Invalid options error the Observable at once with a `TypeError`/`RangeError` naming the option.
 */
export function pullSignals(options: PullOptions): Observable<SourceSignal> {
  return openResolved(() => resolvePullOptions(options, { pollIntervalMs: 10_000 }), (resolved) => sessionSignals(resolved));
}

/**
 * `pullNotifications(options)`: the mailbox's notifications over an EWS pull subscription, with
 * push semantics and at-least-once delivery across restarts.
 *
 * - **Cold**: each subscriber gets its own EWS pull subscription. It starts from the checkpointed
 *   watermark (else `options.watermark`, else "now", whose watermark is checkpointed at once).
 *   Unsubscribing (or aborting `options.signal`, which completes the Observable) stops polling,
 *   sends EWS Unsubscribe (best effort) and leaves no timer or socket behind.
 * - One `PushNotification` per GetEvents answer, exactly as the wire has it (`previousWatermark`,
 *   `moreEvents`, events in wire order with their watermarks; `mailbox` set when impersonating).
 *   `MoreEvents` → the next GetEvents at once; otherwise after `pollIntervalMs`.
 * - **At-least-once**: a notification's watermark (its last event's, in wire order — a
 *   StatusEvent's too) is checkpointed only after the consumer is done with it (see `deferAck`
 *   and `ackMode`), and only then is the next GetEvents sent: one notification in flight, so a
 *   slow consumer cannot make memory grow. After a crash, the notification that was being handled
 *   is delivered again with the same event watermarks: make handlers idempotent by event
 *   `watermark` (or store the handled watermarks with your side effects). Within a run, events
 *   already acknowledged are dropped by watermark if the server sends them again.
 * - Lost subscription (`ErrorSubscriptionNotFound`, `ErrorExpiredSubscription`,
 *   `ErrorReadEventsFailed`, …) → resubscribe **from the last watermark**: nothing is lost; a `gap`
 *   signal with `subscriptionKept: false, eventsMayBeLost: false` reports the window.
 *   `ErrorInvalidWatermark` (too old, other database) → resubscribe without it, and a `gap` with
 *   `eventsMayBeLost: true` from the last known-good moment (this run's last answer, else the
 *   checkpoint's `updatedAt`).
 * - Socket errors, 5xx, throttling → retried with the streaming source's back-off
 *   (`BackOffMilliseconds` / `Retry-After` honoured within the back-off's floor and
 *   `retry.maxServerDelayMs`). `MoreEvents` is chased at once only while pages bring events. Fatal errors (401/403, `ErrorAccessDenied`, a corrupt
 *   checkpoint file, retries exhausted) error the Observable with the typed error.
 *
 * Lifecycle signals go to `options.onLifecycle`; {@link pullSignals} has them in-stream.
 */
export function pullNotifications(options: PullOptions): Observable<PushNotification> {
  return notificationsOf(pullSignals(options), options);
}
