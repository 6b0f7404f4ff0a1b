/**
 * The bridge from a source's `…Signals()` Observable to its `…Notifications()` Observable.
 */
import { Observable } from 'rxjs';
import type { Logger } from '../logger.js';
import type { PushNotification } from '../model.js';
import type { LifecycleListener, SourceSignal } from './lifecycle.js';
import { setSourceClosed, sourceClosed } from './source-closed.js';

/**
 * Splits a signal stream into notifications (emitted) and lifecycle signals (handed to `listener`).
 * Notifications pass through synchronously and as the same objects, so `deferAck` keeps working.
 *
 * @internal
 */
export function notificationsOf(
  signals: Observable<SourceSignal>,
  listener: LifecycleListener | undefined,
  logger: Logger | undefined,
): Observable<PushNotification> {
  return new Observable<PushNotification>((subscriber) => {
    const inner = signals.subscribe({
      next: (signal) => {
        if (signal.type === 'notification') {
          subscriber.next(signal.notification);
          return;
        }
        if (!listener) return;
        try {
          listener(signal);
        } catch (error) {
          logger?.error('onLifecycle listener threw', { error, signal: signal.type });
        }
      },
      error: (error: unknown) => subscriber.error(error),
      complete: () => subscriber.complete(),
    });
    setSourceClosed(subscriber, () => sourceClosed(inner));
    return inner;
  });
}
