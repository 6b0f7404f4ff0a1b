/**
 * Validation and defaults of the push-callback options (shared by every adapter built on it).
 * Errors name the option: `RangeError: statusFrequencyMinutes must be 1–1440`.
 *
 * @packageDocumentation
 */
import { type GapEvent, type Logger, type SourceLifecycleEvent } from '../../lib/index.js';
import { resolveLogger } from '../../lib/logger.js';
import type { ErrorContext, PushCallbackOptions } from './push-callback-types.js';
import { EXCHANGE_RETRY_SCHEDULE_MS } from './retry-schedule.js';
import { MAX_TIMER_MS, describeValue, intInRange, optionalAbortSignal, optionalFunction, requireObject } from '../../lib/validate.js';

/** Default of {@link PushCallbackOptions.maxBacklogNotifications}. */
export const DEFAULT_MAX_BACKLOG_NOTIFICATIONS = 10_000;

/** {@link PushCallbackOptions} checked, with defaults applied. */
export interface ResolvedPushCallbackOptions {
  readonly statusFrequencyMs: number;
  readonly statusFrequencyMinutes: number;
  readonly retryScheduleMs: readonly number[];
  readonly maxBacklogNotifications: number;
  readonly onError: ((error: unknown, context: ErrorContext) => void) | undefined;
  readonly onGap: ((gap: GapEvent) => void | PromiseLike<void>) | undefined;
  readonly onLifecycle: ((event: SourceLifecycleEvent) => void) | undefined;
  readonly signal: AbortSignal | undefined;
  readonly logger: Logger;
}

/**
 * Checks the options and applies the documented defaults.
 *
 * @throws TypeError / RangeError naming the option.
 */
export function resolvePushCallbackOptions(options: PushCallbackOptions): ResolvedPushCallbackOptions {
  requireObject(options, 'options');
  const minutes = intInRange(options.statusFrequencyMinutes, 'statusFrequencyMinutes', 30, 1, 1440);
  const schedule = options.retryScheduleMs ?? EXCHANGE_RETRY_SCHEDULE_MS;
  if (!Array.isArray(schedule) || schedule.length === 0) {
    throw new TypeError(`retryScheduleMs must be a non-empty array of milliseconds (got ${describeValue(schedule)})`);
  }
  schedule.forEach((ms: unknown, i) => {
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0) {
      throw new RangeError(`retryScheduleMs[${i}] must be a positive finite number of milliseconds (got ${describeValue(ms)})`);
    }
  });
  const maxBacklog = options.maxBacklogNotifications ?? DEFAULT_MAX_BACKLOG_NOTIFICATIONS;
  if (typeof maxBacklog !== 'number' || !(maxBacklog === Infinity || (Number.isInteger(maxBacklog) && maxBacklog >= 1))) {
    throw new RangeError(`maxBacklogNotifications must be an integer ≥ 1, or Infinity (got ${describeValue(maxBacklog)})`);
  }
  const signal = optionalAbortSignal(options.signal, 'signal');
  return {
    statusFrequencyMinutes: minutes,
    statusFrequencyMs: minutes * 60_000,
    // Past what a timer holds, a delay would fire at once.
    retryScheduleMs: (schedule as readonly number[]).map((ms) => Math.min(ms, MAX_TIMER_MS)),
    maxBacklogNotifications: maxBacklog,
    onError: optionalFunction(options.onError, 'onError'),
    onGap: optionalFunction(options.onGap, 'onGap'),
    onLifecycle: optionalFunction(options.onLifecycle, 'onLifecycle'),
    signal,
    logger: resolveLogger(options.logger),
  };
}
