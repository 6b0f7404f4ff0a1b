/**
 * How a source's teardown can be awaited. RxJS teardown is synchronous, but ours is not: EWS
 * Unsubscribe goes out after the connection closes and takes a round trip. A source keeps the
 * promise of that work on the Subscription it hands out, so an adapter whose `close()` promises
 * "resolves when the subscription is removed" can wait for exactly that.
 *
 * The key is a registered symbol (`Symbol.for`), so the ESM and CommonJS copies of the library in
 * one process (and the adapters' bundles) see the same one, with no global state.
 *
 * @internal
 */

const SOURCE_CLOSED: unique symbol = Symbol.for('ews-push-bridge.sourceClosed') as never;

/** What can be waited on: a function, or an object with `whenClosed()` (no closure per subscription). */
export type ClosedWaiter = (() => Promise<void>) | { whenClosed(): Promise<void> };

interface Closable {
  [SOURCE_CLOSED]?: ClosedWaiter;
}

/**
 * Records on `subscriber` (the Subscriber a source's subscribe function receives, which is the
 * Subscription `subscribe()` returns) how to wait for its teardown. `closed` (or its
 * `whenClosed()`) is called after the subscriber was unsubscribed and must never reject.
 */
export function setSourceClosed(subscriber: object, closed: ClosedWaiter): void {
  (subscriber as Closable)[SOURCE_CLOSED] = closed;
}

/**
 * Resolves once the teardown of a source subscription ended (for our sources: the EWS Unsubscribe
 * was answered or timed out after `unsubscribeTimeoutMs`, and the sockets are closed). Resolves at
 * once for subscriptions of other sources (or ours behind operators), which have nothing to wait for.
 * Never rejects.
 *
 * @example
 * ```ts
 * const subscription = streamingNotifications(options).subscribe(handle);
 * // on shutdown:
 * subscription.unsubscribe();
 * await sourceClosed(subscription); // EWS Unsubscribe answered (or timed out)
 * ```
 */
export function sourceClosed(subscription: unknown): Promise<void> {
  return waitClosed(typeof subscription === 'object' && subscription !== null ? (subscription as Closable)[SOURCE_CLOSED] : undefined);
}

/** What {@link sourceClosed} waits for, given the waiter itself. Never rejects. @internal */
export function waitClosed(closed: ClosedWaiter | undefined): Promise<void> {
  if (typeof closed === 'function') return closed().catch(() => undefined);
  if (typeof closed === 'object' && closed !== null && typeof closed.whenClosed === 'function') return closed.whenClosed().catch(() => undefined);
  return Promise.resolve();
}
