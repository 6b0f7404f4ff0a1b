/**
 * `ews-push-bridge/adapters/event-emitter`: a source's notifications as Node events, for plain
 * callback code — `on('newMail', …)`, `on('moved', …)`, `on('status', …)`, `on('gap', …)`.
 * Built on the push-callback engine: events of one subscription come in wire order, one
 * notification at a time; StatusEvents come every `statusFrequencyMinutes` of idleness; pull/hybrid
 * watermarks are checkpointed after the listeners ran.
 *
 * ```ts
 * import { streamingSignals } from 'ews-push-bridge';
 * import { pushEvents } from 'ews-push-bridge/adapters/event-emitter';
 *
 * const mail = pushEvents(streamingSignals({ url, auth, folders: ['inbox'] }));
 * mail.on('newMail', (event) => console.log('new mail', event.itemId?.id));
 * mail.on('gap', (gap) => gap.eventsMayBeLost && resync(gap.from));
 * mail.on('error', (error, context) => log.warn(error, context));
 * ```
 *
 * Listener semantics (chosen to keep push's at-least-once and never crash the host):
 * - Listeners run synchronously, as with any `EventEmitter`. One that **throws** makes the whole
 *   notification count as a failed push post: it is emitted again (all its events) on Exchange's
 *   retry schedule, and given up on with an `EwsListenerError` like push-callback does.
 * - A listener that returns a promise is not awaited (EventEmitter does not wait); its rejection is
 *   reported as `'error'` (captured rejections) and does not cause a redelivery. For asynchronous
 *   work that must finish before a watermark is checkpointed, use push-callback instead.
 * - **`'error'` with no listener does not crash the host.** Node's `EventEmitter` throws an
 *   `'error'` event that nobody listens to; an adapter that runs for months must not take its host
 *   down because a listener was forgotten, so this emitter emits `'error'` only when someone
 *   listens, and otherwise writes the error to `logger.error`. The error that ends it also rejects
 *   `done` (safe to ignore) and is emitted as `'end'`.
 *
 * @packageDocumentation
 */
import { EventEmitter } from 'node:events';
import { type GapEvent, type NotificationEvent, type PushNotification, type SourceLifecycleEvent, type SourceSignal } from '../lib/index.js';
import type { MovedOrCopiedEvent, ObjectChangedEvent, StatusEvent } from '../lib/entry-types.js';
import { resolveLogger } from '../lib/logger.js';
import { resolvePushCallbackOptions } from './internal/options.js';
import {
  pushCallback,
  type DeliveryContext,
  type ErrorContext,
  type PushCallbackEnd,
  type PushCallbackHandle,
  type PushCallbackOptions,
  type PushSource,
} from './push-callback.js';

/** How a {@link PushEventEmitter} ended: as push-callback's handle, or with the error that ended it. */
export type PushEventsEnd = PushCallbackEnd | { readonly reason: 'failed'; readonly error: unknown };

/** The events of a {@link PushEventEmitter} and their listener arguments. */
export interface PushEventMap {
  /** A `NewMailEvent`. */
  newMail: [event: ObjectChangedEvent, notification: PushNotification];
  /** A `CreatedEvent` (item or folder: see `itemId` / `folderId`). */
  created: [event: ObjectChangedEvent, notification: PushNotification];
  /** A `DeletedEvent`. */
  deleted: [event: ObjectChangedEvent, notification: PushNotification];
  /** A `ModifiedEvent` (`unreadCount` on folder events). */
  modified: [event: ObjectChangedEvent, notification: PushNotification];
  /** A `MovedEvent`, with `oldItemId`/`oldFolderId` and `oldParentFolderId`. */
  moved: [event: MovedOrCopiedEvent, notification: PushNotification];
  /** A `CopiedEvent`, with `oldItemId`/`oldFolderId` and `oldParentFolderId`. */
  copied: [event: MovedOrCopiedEvent, notification: PushNotification];
  /** A `FreeBusyChangedEvent`. */
  freeBusyChanged: [event: ObjectChangedEvent, notification: PushNotification];
  /** A StatusEvent: the keep-alive after `statusFrequencyMinutes` of idleness (`context.synthesized`). */
  status: [event: StatusEvent, notification: PushNotification, context: DeliveryContext];
  /** Every notification, before its events are emitted one by one. */
  notification: [notification: PushNotification, context: DeliveryContext];
  /** A window in which events may not have reached us (see `GapEvent`), in order with the events. */
  gap: [gap: GapEvent];
  /** Every lifecycle signal of the source, as it arrives. */
  lifecycle: [event: SourceLifecycleEvent];
  /** A failure (a listener that threw, the source's error, the final `EwsListenerError`…). */
  error: [error: unknown, context: ErrorContext];
  /** The emitter has ended; emitted once. */
  end: [end: PushEventsEnd];
}

/** Options of {@link pushEvents}: push-callback's, minus the callbacks that became events. */
export type PushEventsOptions = Omit<PushCallbackOptions, 'onError' | 'onGap' | 'onLifecycle'>;

const EVENT_NAMES = {
  NewMail: 'newMail',
  Created: 'created',
  Deleted: 'deleted',
  Modified: 'modified',
  Moved: 'moved',
  Copied: 'copied',
  FreeBusyChanged: 'freeBusyChanged',
} as const;

/**
 * A typed `EventEmitter` over a source. Create it with {@link pushEvents}. Listeners attached in
 * the same tick as its creation see every event: the source is subscribed on the next microtask.
 */
export class PushEventEmitter extends EventEmitter<PushEventMap> {
  /** Settles when the emitter has ended, as push-callback's `done` (a rejection no one awaits is harmless). */
  readonly done: Promise<PushCallbackEnd>;
  #handle: PushCallbackHandle | undefined;
  #closeRequested = false;
  readonly #logger;

  /** @internal Use {@link pushEvents}. */
  constructor(source: PushSource<PushNotification | SourceSignal>, options: PushEventsOptions) {
    // Captured rejections of async listeners come to [captureRejectionSymbol] below.
    super({ captureRejections: true });
    if (typeof source !== 'object' || source === null || typeof source.subscribe !== 'function') {
      throw new TypeError('source must be an Observable (with a subscribe method)');
    }
    resolvePushCallbackOptions(options);
    this.#logger = resolveLogger(options.logger);
    let settle!: { resolve: (end: PushCallbackEnd) => void; reject: (error: unknown) => void };
    this.done = new Promise<PushCallbackEnd>((resolve, reject) => (settle = { resolve, reject }));
    this.done.catch(() => undefined);
    queueMicrotask(() => {
      const handle = pushCallback(source, (n, context) => this.#deliver(n, context), {
        ...options,
        onError: (error, context) => this.#reportError(error, context),
        onGap: (gap) => void this.emit('gap', gap),
        onLifecycle: (event) => void this.emit('lifecycle', event),
      });
      this.#handle = handle;
      void handle.done.then(
        (end) => {
          settle.resolve(end);
          this.#emitEnd(end);
        },
        (error: unknown) => {
          settle.reject(error);
          this.#emitEnd({ reason: 'failed', error });
        },
      );
      if (this.#closeRequested) void handle.close();
    });
  }

  /** Whether the emitter has ended (or is ending). */
  get closed(): boolean {
    return this.#closeRequested || (this.#handle?.closed ?? false);
  }

  /**
   * Ends gracefully: the notification being emitted finishes, nothing new starts, the source is
   * unsubscribed (removing the EWS subscription). Resolves when done; never rejects. Idempotent.
   */
  async close(): Promise<void> {
    this.#closeRequested = true;
    if (this.#handle) await this.#handle.close();
    else await this.done.then(noop, noop);
  }

  /** Node calls this for a rejected promise returned by a listener (`captureRejections`). */
  override [EventEmitter.captureRejectionSymbol](error: unknown, event: unknown, ..._args: unknown[]): void {
    this.#reportError(error, { phase: event === 'gap' ? 'gap-listener' : event === 'lifecycle' ? 'lifecycle-listener' : 'handler', fatal: false });
  }

  #deliver(notification: PushNotification, context: DeliveryContext): 'OK' {
    // A throwing listener propagates out of emit() and makes this delivery fail (and be retried).
    this.emit('notification', notification, context);
    for (const event of notification.events) this.#emitEvent(event, notification, context);
    return 'OK';
  }

  #emitEvent(event: NotificationEvent, notification: PushNotification, context: DeliveryContext): void {
    switch (event.type) {
      case 'Status':
        this.emit('status', event, notification, context);
        return;
      case 'Moved':
      case 'Copied':
        this.emit(EVENT_NAMES[event.type], event, notification);
        return;
      default:
        this.emit(EVENT_NAMES[event.type], event, notification);
    }
  }

  #reportError(error: unknown, context: ErrorContext): void {
    if (this.listenerCount('error') > 0) {
      this.emit('error', error, context);
      return;
    }
    this.#logger.error('event-emitter adapter error (no error listener)', {
      phase: context.phase,
      fatal: context.fatal,
      subscriptionId: context.subscriptionId,
      error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
    });
  }

  #emitEnd(end: PushEventsEnd): void {
    try {
      this.emit('end', end);
    } catch (error) {
      this.#logger.error("event-emitter adapter: an 'end' listener threw", { error: error instanceof Error ? error.message : String(error) });
    }
  }
}

function noop(): void {}

/**
 * Emits a source's notifications as typed Node events. See the module documentation.
 *
 * @throws TypeError / RangeError naming the option, at once.
 */
export function pushEvents(source: PushSource<PushNotification | SourceSignal>, options: PushEventsOptions = {}): PushEventEmitter {
  return new PushEventEmitter(source, options);
}
