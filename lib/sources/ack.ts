/**
 * How a consumer tells a watermark-keeping source (pull, hybrid) that it is done with a
 * notification, so the source may checkpoint it and fetch the next one.
 *
 * The design, in one place:
 * - The acknowledgement travels with the notification: the source attaches its handle to the
 *   emitted object under a registered symbol, non-enumerable, so the notification still prints,
 *   compares, serializes and spreads as the plain `PushNotification` it is (a copy has no ack of
 *   its own), and it reaches the consumer through any operator that passes the object on — a
 *   signal's `notification`, `notificationsOf`, an adapter. No registry, no global state.
 * - **`ackMode: 'auto'` (default)**: a notification is done when the subscriber's `next` callback
 *   *returns*. Right for synchronous consumers.
 * - An asynchronous consumer calls {@link deferAck} *during* that `next` call (directly, or in an
 *   operator that runs synchronously from it, like `mergeMap`/`concatMap`'s project function) and
 *   calls the returned function when it is done. This is what adapters do; it works with any
 *   source (streaming with a `checkpoint` store holds back its sync-state writes until then;
 *   streaming without one has nothing to hold: a no-op).
 * - **`ackMode: 'manual'`**: nothing is done until the consumer acks through {@link deferAck}, at
 *   any time — for pipelines that hand notifications on asynchronously (`observeOn`, `delay`).
 * - Back-pressure: the source holds one notification in flight. It does not call GetEvents again
 *   until that one is acknowledged and its watermark is checkpointed, so a slow consumer holds a
 *   bounded amount of memory. A notification that is never acknowledged holds the source (by
 *   design: skipping it would lose it); if you give up on one, unsubscribe — the next run resumes
 *   from the last checkpoint and delivers it again.
 *
 * @packageDocumentation
 */
import type { Logger } from '../logger.js';
import type { PushNotification } from '../model.js';

/**
 * Marks a notification done. Resolves once its watermark is checkpointed (durably, for a durable
 * store); rejects with the store's `EwsCheckpointError` if that write failed (the source then
 * redelivers or errors — the rejection needs no handler to be safe). Calling it again is harmless.
 */
export type AckFunction = () => Promise<void>;

/** How a source learns that a notification is done: see the module documentation. */
export type AckMode = 'auto' | 'manual';

const resolvedAck: AckFunction = () => Promise.resolve();

/** The source's side of one emitted notification. */
export class AckHandle {
  /** Set while the notification is being delivered synchronously (inside `subscriber.next`). */
  delivering = false;
  /** Whether the consumer took over acknowledging (by {@link deferAck}). */
  deferred = false;
  /** Whether the notification has been acknowledged (by the consumer, or by `auto` on return). */
  acked = false;
  /** Resolves when the notification is acknowledged. */
  readonly done: Promise<void>;
  readonly #markDone: () => void;
  readonly #written: Promise<void>;
  #settleWritten: { resolve: () => void; reject: (error: unknown) => void } | undefined;

  constructor(
    readonly mode: AckMode,
    private readonly logger: Logger,
  ) {
    let markDone!: () => void;
    this.done = new Promise<void>((resolve) => (markDone = resolve));
    this.#markDone = markDone;
    this.#written = new Promise<void>((resolve, reject) => (this.#settleWritten = { resolve, reject }));
    // The consumer may never look at the outcome of its ack: a failed write must not become an
    // unhandled rejection (the source reports it through its own error path).
    this.#written.catch(() => undefined);
  }

  /** The function handed to the consumer. */
  readonly ack: AckFunction = () => {
    if (!this.acked) {
      this.acked = true;
      this.#markDone();
    }
    return this.#written;
  };

  /** The source wrote the checkpoint that covers this notification. */
  written(): void {
    this.#settleWritten?.resolve();
    this.#settleWritten = undefined;
  }

  /** The checkpoint write failed, or the source stopped before it could happen. */
  failed(error: unknown): void {
    this.#settleWritten?.reject(error);
    this.#settleWritten = undefined;
  }

  /** Called by {@link deferAck}. */
  defer(): AckFunction {
    if (this.mode === 'auto' && !this.delivering && !this.deferred) {
      // Too late: `auto` already acknowledged it when next() returned.
      this.logger.warn(
        "deferAck() was called after the notification had been acknowledged on return; call it synchronously inside next(), or use ackMode: 'manual'",
      );
    }
    this.deferred = true;
    return this.ack;
  }
}

/**
 * The key under which a notification carries its handle. `Symbol.for`: each published entry point
 * (ESM and CommonJS builds of the root and the adapters) may hold its own copy of this module, and
 * an adapter's `deferAck` must read the handle a source (another copy) attached.
 */
const ACK = Symbol.for('ews-push-bridge.ack');
type Acknowledgeable = PushNotification & { [ACK]?: Pick<AckHandle, 'defer'> };

/** Attaches the handle of a notification about to be emitted (replacing an earlier one). */
export function attachAck(notification: PushNotification, handle: AckHandle): void {
  Object.defineProperty(notification, ACK, { value: handle, configurable: true, enumerable: false, writable: false });
}

/**
 * Emits `notification` through `emit` with a new handle attached: a {@link deferAck} during `emit`
 * defers it; in `auto` mode an undeferred one is acknowledged as `emit` returns.
 */
export function emitWithAck(notification: PushNotification, mode: AckMode, logger: Logger, emit: () => void): AckHandle {
  const handle = new AckHandle(mode, logger);
  attachAck(notification, handle);
  handle.delivering = true;
  try {
    emit();
  } finally {
    handle.delivering = false;
  }
  if (mode === 'auto' && !handle.deferred) void handle.ack();
  return handle;
}

/**
 * Takes over acknowledging `notification`: the source will not checkpoint it when your `next`
 * callback returns, but when you call the returned function. Call it synchronously while the
 * notification is being delivered (or at any time with `ackMode: 'manual'`).
 *
 * ```ts
 * pullNotifications(options).subscribe((n) => {
 *   const ack = deferAck(n);
 *   handle(n).then(ack, reportAndStop);
 * });
 * ```
 *
 * Works with every source: for a notification that has nothing to checkpoint (from streaming
 * without a store, or not emitted by a source at all) it returns a function that resolves at once;
 * a streaming source with a store writes no sync state past it until it is called. The match is by
 * object identity: a copy (`{ ...n }`) has no ack of its own.
 */
export function deferAck(notification: PushNotification): AckFunction {
  return (notification as Acknowledgeable)[ACK]?.defer() ?? resolvedAck;
}
