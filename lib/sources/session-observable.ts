/**
 * The one Observable wrapper of the single-subscription sources (streaming, pull, hybrid): a cold
 * Observable that owns one session per subscriber, in the way of rxjs's `fromFetch` owning its
 * AbortController. Subscribing starts the session; the session's fatal error errors the
 * Observable; aborting the caller's `signal` completes it; unsubscribing stops the session, and
 * `sourceClosed(subscription)` resolves once the session's teardown (EWS Unsubscribe) is done.
 *
 * @internal
 */
import { Observable, throwError } from 'rxjs';
import type { SourceSignal } from './lifecycle.js';
import { setSourceClosed } from './source-closed.js';

/** What {@link sessionObservable} runs for each subscriber. */
export interface SourceSession {
  /** Starts the work; calls `fail` with a fatal error or `complete` when the source ends by itself. */
  start(fail: (error: unknown) => void, complete: () => void): void;
  /** Stops the work (synchronously; the rest of the teardown continues in the background). */
  stop(): void;
  /** Resolves once the teardown is done. Never rejects. */
  closed(): Promise<void>;
}

/**
 * A cold Observable running `open(emit)`'s session per subscriber. `signal` (the caller's
 * `options.signal`): aborted before subscribing, the Observable completes at once without opening
 * a session; aborted later, it completes (which stops the session).
 */
export function sessionObservable(
  signal: AbortSignal | undefined,
  open: (emit: (signal: SourceSignal) => void) => SourceSession,
): Observable<SourceSignal> {
  return new Observable<SourceSignal>((subscriber) => {
    if (signal?.aborted) {
      subscriber.complete();
      return undefined;
    }
    const session = open((s) => subscriber.next(s));
    const onAbort = (): void => subscriber.complete();
    signal?.addEventListener('abort', onAbort, { once: true });
    setSourceClosed(subscriber, () => session.closed());
    session.start(
      (error) => subscriber.error(error),
      () => subscriber.complete(),
    );
    return () => {
      signal?.removeEventListener('abort', onAbort);
      session.stop();
    };
  });
}

/**
 * `open(resolve())`, or — when `resolve` throws (invalid options) — an Observable that errors with
 * that error when subscribed: a source's factory never throws, its Observable errors.
 */
export function openResolved<R, T>(resolve: () => R, open: (resolved: R) => Observable<T>): Observable<T> {
  let resolved: R;
  try {
    resolved = resolve();
  } catch (error) {
    return throwError(() => error);
  }
  return open(resolved);
}
