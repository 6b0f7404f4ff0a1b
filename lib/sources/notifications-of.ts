/**
 * The bridge from a source's `…Signals()` Observable to its `…Notifications()` Observable: where each
 * signal goes, for the sources and for each member of a `StreamingGroup`.
 */
import { Observable, type Subscriber } from 'rxjs';
import type { Logger } from '../logger.js';
import type { PushNotification } from '../model.js';
import type { LifecycleListener, SourceSignal } from './lifecycle.js';
import { setSourceClosed, sourceClosed } from './source-closed.js';

/**
 * Where a source's signals go: `SIGNALS`, every signal to the subscriber (`…Signals()`, `group.signals()`);
 * otherwise notifications to the subscriber and the other signals to this listener, if any
 * (`…Notifications()`, `group.notifications()`).
 */
export const SIGNALS = true;
export type MemberOutput = typeof SIGNALS | LifecycleListener | undefined;

/**
 * Hands one signal to a subscriber as `output` says. Notifications pass through
 * synchronously and as the same objects, so `deferAck` keeps working.
 */
export function deliver(subscriber: Subscriber<never>, output: MemberOutput, signal: SourceSignal, logger: Logger | undefined): void {
  if (output === SIGNALS) {
    (subscriber as Subscriber<SourceSignal>).next(signal);
    return;
  }
  if (signal.type === 'notification') {
    (subscriber as Subscriber<PushNotification>).next(signal.notification);
    return;
  }
  if (!output) return;
  try {
    output(signal);
  } catch (error) {
    logger?.error('onLifecycle listener threw', { error, signal: signal.type });
  }
}

/**
 * Splits a signal stream into notifications (emitted) and lifecycle signals (handed to the source
 * options' `onLifecycle`, whose throws go to their `logger`).
 * Notifications pass through synchronously and as the same objects, so `deferAck` keeps working.
 *
 * @internal
 */
export function notificationsOf(
  signals: Observable<SourceSignal>,
  options: { readonly onLifecycle?: LifecycleListener; readonly logger?: Logger } | undefined,
): Observable<PushNotification> {
  // Invalid options error `signals`; the listener and logger are only read here.
  const valid = typeof options === 'object' && options !== null;
  const listener = valid ? options.onLifecycle : undefined;
  const logger = valid ? options.logger : undefined;
  return new Observable<PushNotification>((subscriber) => {
    const inner = signals.subscribe({
      next: (signal) => deliver(subscriber as Subscriber<never>, listener, signal, logger),
      error: (error: unknown) => subscriber.error(error),
      complete: () => subscriber.complete(),
    });
    setSourceClosed(subscriber, () => sourceClosed(inner));
    return inner;
  });
}
