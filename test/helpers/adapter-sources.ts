/**
 * Hand-driven sources for adapter tests: a Subject-like source that records whether it is
 * subscribed, and a fake watermark source that acknowledges exactly as the pull source does
 * (`AckHandle`: auto on return unless the consumer called `deferAck` inside `next`), so tests can
 * see when an adapter acknowledges.
 */
import { Observable, type Subscriber } from 'rxjs';
import { silentLogger } from '../../lib/logger.js';
import type { NotificationEvent, PushNotification } from '../../lib/model.js';
import { AckHandle, attachAck } from '../../lib/sources/ack.js';
import type { SourceSignal } from '../../lib/sources/lifecycle.js';

export interface ManualSource {
  readonly source: Observable<SourceSignal>;
  /** Whether someone is subscribed right now. */
  readonly subscribed: () => boolean;
  /** How many times the source was torn down. */
  readonly teardowns: () => number;
  emit(signal: SourceSignal): void;
  notify(notification: PushNotification): void;
  /** Emits a notification the way a watermark source does and returns its handle (see `acked`). */
  notifyWithAck(notification: PushNotification): AckHandle;
  error(error: unknown): void;
  complete(): void;
}

export function manualSource(): ManualSource {
  let subscriber: Subscriber<SourceSignal> | undefined;
  let teardowns = 0;
  const source = new Observable<SourceSignal>((s) => {
    subscriber = s;
    return () => {
      teardowns++;
      subscriber = undefined;
    };
  });
  const require = (): Subscriber<SourceSignal> => {
    if (!subscriber) throw new Error('manualSource: nobody is subscribed');
    return subscriber;
  };
  return {
    source,
    subscribed: () => subscriber !== undefined && !subscriber.closed,
    teardowns: () => teardowns,
    emit: (signal) => require().next(signal),
    notify: (notification) => require().next({ type: 'notification', notification }),
    notifyWithAck(notification) {
      const handle = new AckHandle('auto', silentLogger);
      attachAck(notification, handle);
      handle.delivering = true;
      try {
        require().next({ type: 'notification', notification });
      } finally {
        handle.delivering = false;
      }
      if (!handle.deferred) void handle.ack();
      // The fake store "writes" as soon as the consumer is done.
      void handle.done.then(() => handle.written());
      return handle;
    },
    error: (error) => require().error(error),
    complete: () => require().complete(),
  };
}

let nextItem = 1;

/** A NewMail item event (streaming shape: no watermark unless given). */
export function newMail(watermark?: string): NotificationEvent {
  const n = nextItem++;
  return {
    type: 'NewMail',
    ...(watermark === undefined ? {} : { watermark }),
    timeStamp: '2024-05-01T10:20:30Z',
    itemId: { id: `item-${n}`, changeKey: `ck-${n}` },
    parentFolderId: { id: 'inbox-id', changeKey: 'AQAAAA==' },
  };
}

/** A notification of `subscriptionId` with `events` (default: one NewMail). */
export function notification(subscriptionId: string, events: readonly NotificationEvent[] = [newMail()], extra: Partial<PushNotification> = {}): PushNotification {
  return { subscriptionId, moreEvents: false, events, ...extra };
}

/** A promise with its resolve/reject exposed. */
export interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets pending promise callbacks run (microtasks and a macrotask turn), real or fake timers alike. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}
