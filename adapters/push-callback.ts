/**
 * `ews-push-bridge/adapters/push-callback`: a legacy push handler — a function that receives a
 * `SendNotification` payload and answers `'OK'` or `'Unsubscribe'` — driven by any source
 * (streaming, pull or hybrid) with the push contract kept:
 *
 * - calls for one subscription never overlap and keep the wire order;
 * - `'Unsubscribe'` ends the source, which removes the EWS subscription;
 * - a handler that throws, rejects or answers anything else is retried with the same notification
 *   on Exchange's schedule (30 s, 1, 2, 4 … minutes) until the next retry would pass
 *   StatusFrequency; then the adapter ends with an `EwsListenerError`;
 * - at most `maxBacklogNotifications` notifications are held for a handler that falls behind a
 *   streaming source; one more ends the adapter with an `EwsListenerBacklogError`;
 * - a StatusEvent comes every `statusFrequencyMinutes` of idleness, for watchdogs;
 * - pull/hybrid watermarks are checkpointed only after the handler answered.
 *
 * ```ts
 * import { streamingSignals } from 'ews-push-bridge';
 * import { pushCallback } from 'ews-push-bridge/adapters/push-callback';
 *
 * const bridge = pushCallback(streamingSignals({ url, auth, folders: ['inbox'] }), async (n) => {
 *   for (const event of n.events) await crm.capture(event);
 *   return 'OK';
 * }, { statusFrequencyMinutes: 5, onError: (error) => log.warn(error) });
 * // … later
 * await bridge.close();
 * ```
 *
 * @packageDocumentation
 */
import type { PushNotification, SourceSignal } from '../lib/index.js';
import { DeliveryEngine } from './internal/delivery-engine.js';
import { resolvePushCallbackOptions } from './internal/options.js';
import type { PushCallbackHandle, PushCallbackOptions, PushHandler } from './internal/push-callback-types.js';
import type { PushSource } from './internal/source-input.js';

export type { PushSource } from './internal/source-input.js';
export { EXCHANGE_RETRY_SCHEDULE_MS } from './internal/retry-schedule.js';
export type {
  DeliveryContext,
  ErrorContext,
  ErrorPhase,
  PushCallbackEnd,
  PushCallbackHandle,
  PushCallbackOptions,
  PushHandler,
} from './internal/push-callback-types.js';

/**
 * Delivers a source's notifications to a legacy push handler, one call at a time per subscription,
 * with push's answers, retries and keep-alives. See the module documentation.
 *
 * The source is any Observable of `PushNotification`s or of `SourceSignal`s (`streamingSignals`,
 * `pullSignals`, `hybridSignals` …). With signals the adapter also knows subscriptions before
 * their first notification (keep-alives start at once), pauses keep-alives while the source is
 * disconnected (a watchdog then notices, as it would have with push), and reports gaps.
 * Source notifications that carry only a StatusEvent (pull's idle GetEvents answers) are
 * checkpointed but not handed to the handler: keep-alives come on the push schedule instead.
 *
 * @throws TypeError / RangeError naming the option, before subscribing to the source.
 */
export function pushCallback(
  source: PushSource<PushNotification | SourceSignal>,
  handler: PushHandler,
  options: PushCallbackOptions = {},
): PushCallbackHandle {
  if (typeof source !== 'object' || source === null || typeof source.subscribe !== 'function') {
    throw new TypeError('source must be an Observable (with a subscribe method)');
  }
  if (typeof handler !== 'function') throw new TypeError('handler must be a function');
  const resolved = resolvePushCallbackOptions(options);
  const engine = new DeliveryEngine(handler, resolved);
  engine.start(source);
  // A facade, so callers see the handle and nothing of the engine.
  return Object.freeze({
    close: () => engine.close(),
    done: engine.done,
    get closed() {
      return engine.closed;
    },
  });
}
