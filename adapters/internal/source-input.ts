/**
 * What an adapter consumes: any Observable of notifications or of source signals.
 *
 * @packageDocumentation
 */
import type { Subscribable } from 'rxjs';
import type { PushNotification, SourceSignal } from '../../lib/index.js';

/**
 * A source of notifications: an RxJS `Observable` (or anything with the same `subscribe`), of
 * `PushNotification`s (`streamingNotifications`, `pullNotifications` …) or of `SourceSignal`s
 * (`streamingSignals`, `pullSignals`, `hybridSignals`).
 */
export type PushSource<T> = Subscribable<T>;

/** Tells a lifecycle/notification signal from a bare notification (which has no `type`). */
export function isSignal(value: PushNotification | SourceSignal): value is SourceSignal {
  return typeof (value as { type?: unknown }).type === 'string';
}

/** A notification that carries nothing but StatusEvents (pull's idle GetEvents answer). */
export function isStatusOnly(notification: PushNotification): boolean {
  return notification.events.length > 0 && notification.events.every((e) => e.type === 'Status');
}


