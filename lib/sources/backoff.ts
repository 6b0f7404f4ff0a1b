/**
 * The retry discipline every source follows (streaming, pull, hybrid, StreamingGroup), in one
 * place: how an error decides what happens next (give up, wait what the server asked, resubscribe,
 * or back off exponentially with jitter, via p-retry), and the bounds on every wait.
 *
 * Every wait is bounded on both sides. After a failure the source never waits less than the
 * back-off's current delay (a server that says "retry in 0 ms" gets the same floor as one that says
 * nothing), and never more than `maxServerDelayMs` for a wait the server asked for or `maxDelayMs`
 * for one we computed; nothing above {@link MAX_TIMER_MS} ever reaches a timer.
 */
import pRetry from 'p-retry';
import { EwsBridgeError, EwsConnectionError, EwsHttpError, EwsResponseError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { DisconnectReason, RetryingEvent } from './lifecycle.js';
import { MAX_TIMER_MS } from '../validate.js';

/** How a source retries after failures. Every field is optional. */
export interface RetryOptions {
  /** Delay before the first retry of a failing streak, and the floor of every wait after a failure; must be > 0. Default `1_000`. */
  readonly minDelayMs?: number;
  /** Upper bound of one computed delay, at most 2^31 − 1 (Node's longest timer). Default `60_000`. */
  readonly maxDelayMs?: number;
  /**
   * Upper bound of a wait the server asked for (`Retry-After`, `BackOffMilliseconds`), at most
   * 2^31 − 1 (Node's longest timer). A longer request is clamped to it (and logged at warn level): a proxy that
   * says "come back in three years" must not silence the bridge. A shorter one is honoured, but never
   * below the back-off's current delay. Default `300_000` (5 minutes).
   */
  readonly maxServerDelayMs?: number;
  /**
   * A streaming connection that ends (cleanly, with `Closed`, or cut) before it lived this long
   * counts as a failed attempt for the back-off, whatever it carried. Real Exchange ends a healthy
   * stream only at `connectionTimeoutMinutes`; a connection ending sooner is a load balancer or
   * proxy cutting it, and reopening at once each time would hammer the server. Raise it behind a
   * proxy with a known idle timeout. Default `1_000`.
   */
  readonly minConnectionLifetimeMs?: number;
  /** Growth of the delay per consecutive failure. Default `2`. */
  readonly factor?: number;
  /** Multiply each computed delay by a random factor in [1, 2), so many clients do not retry in step. Default `true`. */
  readonly jitter?: boolean;
  /**
   * Give up (error the Observable with the last error) after this many consecutive failed attempts.
   * Waits the server asked for count too. Default `Infinity`: never give up on a retriable error.
   */
  readonly maxAttempts?: number;
  /** Give up after failing continuously for this long. Default `Infinity`. */
  readonly maxElapsedMs?: number;
}

/** {@link RetryOptions} with defaults applied. */
export type ResolvedRetryOptions = Required<RetryOptions>;


/** Defaults of {@link RetryOptions}. */
export const DEFAULT_RETRY_OPTIONS: ResolvedRetryOptions = {
  minDelayMs: 1_000,
  maxDelayMs: 60_000,
  maxServerDelayMs: 300_000,
  minConnectionLifetimeMs: 1_000,
  factor: 2,
  jitter: true,
  maxAttempts: Infinity,
  maxElapsedMs: Infinity,
};

/** What to do about a failure. */
export type FailurePlan =
  /** Retrying cannot help: error the Observable. */
  | { readonly kind: 'fatal'; readonly reason: DisconnectReason }
  /** Wait what the server asked (`BackOffMilliseconds`/`Retry-After`, as `delayMs`, bounded by the back-off), then retry. */
  | { readonly kind: 'server-delay'; readonly reason: DisconnectReason; readonly delayMs: number }
  /** The subscription is gone: make a new one, then reconnect. */
  | { readonly kind: 'resubscribe'; readonly reason: DisconnectReason; readonly backOff: boolean }
  /** Another client took the subscription. */
  | { readonly kind: 'connection-taken'; readonly reason: DisconnectReason }
  /** Retry with exponential back-off. */
  | { readonly kind: 'retry'; readonly reason: DisconnectReason };

/** Whether a streaming connection open for `livedMs` lived long enough to count as healthy (`minConnectionLifetimeMs`). */
export function livedLongEnough(livedMs: number, retry: ResolvedRetryOptions): boolean {
  return livedMs >= retry.minConnectionLifetimeMs;
}

/**
 * When a streaming connection that was open for `livedMs` did not live long enough
 * ({@link livedLongEnough}), the error its end counts as, so the back-off grows.
 */
export function shortLivedConnection(livedMs: number, retry: ResolvedRetryOptions): EwsConnectionError | undefined {
  if (livedLongEnough(livedMs, retry)) return undefined;
  return new EwsConnectionError(
    `The streaming connection ended after ${Math.round(livedMs)} ms, sooner than retry.minConnectionLifetimeMs (${retry.minConnectionLifetimeMs} ms): ` +
      'a proxy or load balancer may be ending it; backing off',
  );
}

/** The wait a server demanded, if any: `BackOffMilliseconds` of an EWS error, or `Retry-After`. */
export function serverDelayMs(error: unknown): number | undefined {
  if (error instanceof EwsResponseError) return error.backOffMs;
  if (error instanceof EwsHttpError) return error.retryAfterMs;
  return undefined;
}

/**
 * Decides what a failure means, from the error's type and the response-code table (never from
 * message text).
 */
export function planFor(error: unknown): FailurePlan {
  if (!(error instanceof EwsBridgeError)) return { kind: 'fatal', reason: 'server-error' };
  const delayMs = serverDelayMs(error);
  if (error instanceof EwsResponseError) {
    switch (error.action) {
      case 'backoff':
        return delayMs === undefined ? { kind: 'retry', reason: 'server-busy' } : { kind: 'server-delay', reason: 'server-busy', delayMs };
      case 'resubscribe':
      case 'resubscribe-without-watermark':
        return { kind: 'resubscribe', reason: 'subscription-lost', backOff: false };
      case 'rediscover':
        // No Autodiscover here: the same URL usually proxies to the new site once the move is
        // done, so resubscribe there, but not in a tight loop.
        return { kind: 'resubscribe', reason: 'subscription-lost', backOff: true };
      case 'connection-taken':
        return { kind: 'connection-taken', reason: 'connection-taken' };
      case 'fatal':
        return { kind: 'fatal', reason: 'server-error' };
      case 'ok':
      case 'retry':
      case 'recover-missed':
        return delayMs === undefined ? { kind: 'retry', reason: 'server-error' } : { kind: 'server-delay', reason: 'server-error', delayMs };
    }
  }
  if (!error.retriable) return { kind: 'fatal', reason: error instanceof EwsHttpError ? 'server-error' : 'connection-error' };
  if (error instanceof EwsHttpError) {
    const reason: DisconnectReason = error.status === 503 || error.status === 429 ? 'server-busy' : 'server-error';
    return delayMs === undefined ? { kind: 'retry', reason } : { kind: 'server-delay', reason, delayMs };
  }
  switch (error.code) {
    case 'EWS_HEARTBEAT_TIMEOUT':
      return { kind: 'retry', reason: 'heartbeat-timeout' };
    case 'EWS_CONNECTION_FAILED':
      return { kind: 'retry', reason: 'connection-error' };
    // Only a token function that failed in passing is a retriable auth failure: its endpoint was
    // unreachable for a moment, not the server refusing us.
    case 'EWS_AUTH_FAILED':
      return { kind: 'retry', reason: 'connection-error' };
    // An empty watermark or id from the server (EwsProtocolError): like ErrorInvalidWatermark,
    // a new subscription (the pull source also drops a watermark it cannot trust) and a gap.
    case 'EWS_PROTOCOL_VIOLATION':
      return { kind: 'resubscribe', reason: 'server-error', backOff: false };
    default:
      return { kind: 'retry', reason: 'server-error' };
  }
}

/**
 * {@link planFor} for a call that holds no subscription of ours (a Subscribe, a SyncFolderItems):
 * what means "resubscribe" or "connection taken" elsewhere can only be a transient server state
 * here, so it is a plain retry.
 */
export function planForCall(error: unknown): FailurePlan {
  const plan = planFor(error);
  return plan.kind === 'resubscribe' || plan.kind === 'connection-taken' ? { kind: 'retry', reason: plan.reason } : plan;
}

/**
 * The `retrying` lifecycle signal for a failed attempt, logged at info level; `undefined` for an
 * error that is not ours (such an error is fatal and never retried).
 */
export function retryingSignal(notice: RetryNotice, logger: Logger, source: 'streaming' | 'pull'): RetryingEvent | undefined {
  const error = notice.error;
  if (!(error instanceof EwsBridgeError)) return undefined;
  logger.info(`EWS ${source} attempt failed; retrying`, {
    reason: notice.plan.reason,
    code: error.code,
    delayMs: notice.delayMs,
    attempt: notice.attempt,
  });
  return {
    type: 'retrying',
    reason: notice.plan.reason,
    error,
    attempt: notice.attempt,
    delayMs: notice.delayMs,
    serverRequested: notice.serverRequested,
    at: new Date(),
  };
}

/** What {@link withRetry} announces before each wait. */
export interface RetryNotice {
  readonly error: unknown;
  readonly plan: FailurePlan;
  /** Failed attempts of this streak so far (1 for the first). */
  readonly attempt: number;
  /** The whole wait before the next attempt. */
  readonly delayMs: number;
  /**
   * Whether the wait is the server's (`BackOffMilliseconds`/`Retry-After`), honoured within
   * [the back-off's current delay, `maxServerDelayMs`].
   */
  readonly serverRequested: boolean;
}

/** Hooks of {@link withRetry}. */
export interface WithRetryOptions {
  readonly retry: ResolvedRetryOptions;
  /** Stops retrying: pending waits end and the promise rejects with `signal.reason`. */
  readonly signal: AbortSignal;
  /** Decides about one failure (and may update the caller's state, e.g. forget a lost subscription). */
  readonly plan: (error: unknown) => FailurePlan;
  /** Called before every wait, with the wait's exact length. */
  readonly onRetry: (notice: RetryNotice) => void;
  /** Told when a server asked for a wait longer than `maxServerDelayMs` (which is waited instead). */
  readonly logger?: Logger;
  /** Source of jitter, for tests. Default `Math.random`. */
  readonly random?: () => number;
  /**
   * Failures that already happened in this streak (a group member's earlier losses since its last
   * healthy connection): the back-off continues from them, `maxAttempts` counts them, and no
   * immediate resubscribe is left. Default `0`.
   */
  readonly priorFailures?: number;
}

/** Resolves after `ms`, or rejects with `signal.reason` as soon as it aborts; leaves no timer behind. */
export function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(
      () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      },
      Math.min(ms, MAX_TIMER_MS),
    );
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * The back-off's delay for the `failures`-th failure of a streak (1 for the first):
 * `minDelayMs · factor^(failures − 1)`, capped at `maxDelayMs`, before jitter.
 */
export function backOffFloorMs(retry: ResolvedRetryOptions, failures: number): number {
  return Math.min(Math.round(retry.minDelayMs * retry.factor ** Math.max(0, failures - 1)), retry.maxDelayMs);
}

/**
 * Runs `attempt` until it succeeds, with p-retry. One call covers one streak of failures: the
 * caller starts a new call after a healthy period, which resets the back-off.
 *
 * - `retry` plans back off exponentially (`minDelayMs · factor^n`, capped at `maxDelayMs`), with
 *   jitter in [1, 2) when enabled; they count toward `maxAttempts`.
 * - `server-delay` plans wait what the server asked, but no less than the back-off's delay for
 *   this failure of the streak ({@link backOffFloorMs}: every failure, the server's included, raises
 *   it) and no more than `maxServerDelayMs`. They do not count toward `maxAttempts`
 *   (`maxElapsedMs` still bounds them).
 * - `resubscribe` plans retry at once the first time in a streak, then back off like `retry`.
 * - `fatal` and `connection-taken` plans end the streak: the promise rejects with the error.
 */
export function withRetry<T>(attempt: (attemptNumber: number) => Promise<T>, options: WithRetryOptions): Promise<T> {
  const { retry, signal } = options;
  const random = options.random ?? Math.random;
  const startedAt = performance.now();
  let decision: { plan: FailurePlan; consume: boolean } | undefined;
  const prior = options.priorFailures ?? 0;
  let immediateResubscribeUsed = prior > 0;
  /** Failures of this streak so far, whatever their kind: the server's waits raise the floor too. */
  let failures = prior;

  return pRetry(attempt, {
    retries: retry.maxAttempts === Infinity ? Infinity : Math.max(0, retry.maxAttempts - 1 - prior),
    factor: retry.factor,
    minTimeout: retry.minDelayMs,
    maxTimeout: retry.maxDelayMs,
    // Jitter is added here (below) rather than by p-retry, so the announced delay is the real one.
    randomize: false,
    maxRetryTime: retry.maxElapsedMs,
    signal,
    onFailedAttempt: async ({ error, attemptNumber, retriesLeft, retriesConsumed }) => {
      failures++;
      const plan = options.plan(error);
      let consume: boolean;
      switch (plan.kind) {
        case 'fatal':
        case 'connection-taken':
          decision = { plan, consume: true };
          return;
        case 'server-delay':
          consume = false;
          break;
        case 'resubscribe':
          consume = plan.backOff || immediateResubscribeUsed;
          immediateResubscribeUsed = true;
          break;
        case 'retry':
          consume = true;
          break;
      }
      decision = { plan, consume };
      const elapsedMs = performance.now() - startedAt;
      // p-retry gives up after this hook in these cases: announce nothing, wait for nothing.
      if (elapsedMs >= retry.maxElapsedMs || retriesLeft <= 0) return;

      let delayMs = 0;
      let ownWaitMs = 0;
      if (plan.kind === 'server-delay') {
        delayMs = serverWaitMs(plan.delayMs, backOffFloorMs(retry, failures), retry, options.logger);
        ownWaitMs = delayMs;
      } else if (consume) {
        // p-retry (randomize off) waits exactly `waited`; we add the rest (earlier failures, jitter).
        const waited = backOffFloorMs(retry, retriesConsumed + 1);
        const base = backOffFloorMs(retry, retriesConsumed + 1 + prior);
        delayMs = retry.jitter ? Math.min(Math.round(base * (1 + random())), retry.maxDelayMs) : base;
        ownWaitMs = delayMs - waited;
      }
      options.onRetry({ error, plan, attempt: attemptNumber + prior, delayMs, serverRequested: plan.kind === 'server-delay' });
      if (ownWaitMs > 0) await abortableDelay(ownWaitMs, signal);
    },
    shouldConsumeRetry: () => decision?.consume ?? true,
    shouldRetry: () => decision !== undefined && decision.plan.kind !== 'fatal' && decision.plan.kind !== 'connection-taken',
  });
}

/** A server-requested wait within [`floorMs`, `maxServerDelayMs`]; an over-long request is logged. */
function serverWaitMs(requestedMs: number, floorMs: number, retry: ResolvedRetryOptions, logger: Logger | undefined): number {
  // NaN or negative means "no wait"; Infinity means "very long": both end up within the bounds.
  const requested = Number.isNaN(requestedMs) || requestedMs < 0 ? 0 : requestedMs;
  if (requested > retry.maxServerDelayMs) {
    logger?.warn('The server asked for a longer wait than retry.maxServerDelayMs; waiting that instead', {
      requestedMs: requested,
      maxServerDelayMs: retry.maxServerDelayMs,
    });
  }
  return Math.min(Math.max(requested, floorMs), retry.maxServerDelayMs, MAX_TIMER_MS);
}
