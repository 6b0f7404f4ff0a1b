/**
 * The streaming source: an EWS streaming subscription held open for as long as someone subscribes,
 * as an Observable that never silently dies.
 *
 * Per subscriber: Subscribe (streaming) → GetStreamingEvents → one `PushNotification` per
 * `Notification` as each envelope arrives → on `ConnectionStatus Closed` or a clean end, reopen at
 * once → on silence, socket errors, 5xx and throttling, reconnect with back-off (exactly the
 * server's `BackOffMilliseconds`/`Retry-After` when given) → on a lost subscription, resubscribe →
 * on teardown, close the stream and send EWS Unsubscribe (best effort, bounded). Every window in
 * which events may have been missed is reported as a `gap` lifecycle signal.
 *
 * One engine serves this source and {@link StreamingGroup}: each subscriber's subscription is the
 * one member of a private group with a connection of its own (see `soloStreamingSignals`).
 */
import type { Observable } from 'rxjs';
import type { PushNotification } from '../model.js';
import type { SourceSignal } from './lifecycle.js';
import { openResolved } from './session-observable.js';
import { notificationsOf } from './notifications-of.js';
import { soloStreamingSignals } from './streaming-group.js';
import { resolveStreamingOptions, type StreamingOptions } from './streaming-options.js';

export type { StreamingOptions } from './streaming-options.js';

/**
 * Notifications and lifecycle signals of a streaming subscription, in one ordered stream: what an
 * adapter that must account for gaps subscribes to. Cold: each subscriber gets its own EWS
 * subscription and connection. See {@link streamingNotifications} for the behaviour.
 *
 * Invalid options error the Observable at once with a `TypeError`/`RangeError` naming the option.
 */
export function streamingSignals(options: StreamingOptions): Observable<SourceSignal> {
  return openResolved(
    () => resolveStreamingOptions(options),
    // Without recovery, a lossy gap says why it stays lossy.
    (resolved) => soloStreamingSignals(resolved, resolved.subscribeToAllFolders && options.checkpoint !== undefined && options.recoverGaps !== false ? 'all-folders' : 'no-store'),
  );
}

/**
 * `streamingNotifications(options)`: the mailbox's notifications over an EWS streaming subscription.
 *
 * - **Cold**: subscribing creates the EWS subscription and opens GetStreamingEvents; each subscriber
 *   has its own. Unsubscribing (or aborting `options.signal`, which completes the Observable)
 *   closes the HTTP response, sends EWS Unsubscribe (best effort, at most `unsubscribeTimeoutMs`)
 *   and leaves no timer or socket behind; `sourceClosed(subscription)` resolves when that is done.
 * - Emits one `PushNotification` per `Notification` element as each envelope arrives, in wire
 *   order, `moreEvents: false`, with `mailbox` set when watching through impersonation.
 * - `ConnectionStatus Closed` or a clean end → reopens at once with the same subscription, unless
 *   the connection lived less than `retry.minConnectionLifetimeMs` (then it counts as a failure).
 *   No complete envelope for `heartbeatTimeoutMs` → the connection is dead: reconnect.
 * - Socket errors, 5xx, throttling → reconnect with exponential back-off and jitter; the server's
 *   `BackOffMilliseconds` / `Retry-After` are honoured within [the back-off's current delay,
 *   `retry.maxServerDelayMs`]. The back-off resets once a connection delivered an envelope and
 *   lived `retry.minConnectionLifetimeMs`.
 * - Lost subscription (`ErrorSubscriptionNotFound`, `ErrorInvalidSubscription`,
 *   `ErrorExpiredSubscription`, `ErrorReadEventsFailed`, in-stream or on connect) → resubscribe,
 *   reopen, and report the gap (`eventsMayBeLost: true`); the first loss after a healthy connection
 *   resubscribes at once, each further one after a growing back-off.
 * - Fatal errors (401/403, `ErrorAccessDenied`, a 404, retries exhausted …) error the Observable
 *   with the typed error. Nothing becomes an unhandled rejection.
 *
 * Lifecycle signals go to `options.onLifecycle`; {@link streamingSignals} has them in-stream.
 */
export function streamingNotifications(options: StreamingOptions): Observable<PushNotification> {
  return notificationsOf(streamingSignals(options), options);
}
