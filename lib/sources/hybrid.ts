/**
 * The hybrid source: pull's watermarks at streaming's latency. A streaming subscription on the same
 * folders serves only as a doorbell: whenever it brings anything, the pull subscription calls
 * GetEvents at once. Everything emitted comes from the pull side (watermarks, checkpoints,
 * at-least-once, back-pressure — exactly as {@link pullNotifications}); a slow poll is the safety
 * net for whatever the doorbell misses.
 *
 * @packageDocumentation
 */
import type { Observable, Subscription } from 'rxjs';
import { EwsBridgeError } from '../errors.js';
import type { PushNotification } from '../model.js';
import type { SourceSignal } from './lifecycle.js';
import { describeValue, positiveMs } from '../validate.js';
import { notificationsOf } from './notifications-of.js';
import { openResolved } from './session-observable.js';
import { sourceClosed } from './source-closed.js';
import { resolvePullOptions, sessionSignals, type PullOptions } from './pull.js';
import type { ResolvedPullOptions } from './pull-session.js';
import { StreamingGroup, soloStreamingSignals } from './streaming-group.js';
import { resolveStreamSettings, type ResolvedStreamingOptions } from './streaming-options.js';

/** Options of {@link hybridNotifications} and {@link hybridSignals}. */
export interface HybridOptions extends PullOptions {
  /**
   * The safety-net poll: GetEvents this long after the last one when the doorbell stays quiet.
   * Bounds the delay of anything the doorbell misses. Default `60_000`.
   */
  readonly pollIntervalMs?: number;
  /** The doorbell's GetStreamingEvents `ConnectionTimeout`, 1–30 minutes. Default `30`. */
  readonly connectionTimeoutMinutes?: number;
  /** The doorbell connection is replaced after this long without a byte. Default `90_000`. */
  readonly heartbeatTimeoutMs?: number;
  /**
   * After the doorbell fails for good (a fatal error such as a taken connection or exhausted
   * retries), the source keeps polling and opens a new doorbell after this long. Default `60_000`.
   */
  readonly doorbellRestartMs?: number;
  /**
   * Carries the doorbell's streaming subscription on a {@link StreamingGroup}'s shared
   * GetStreamingEvents connections (up to 200 doorbells each) instead of a connection of its own:
   * for many mailboxes. The group's connection settings then apply (`connectionTimeoutMinutes` and
   * `heartbeatTimeoutMs` here are not used), and closing the group ends the doorbell (polling goes
   * on). Default: none.
   */
  readonly doorbellGroup?: StreamingGroup;
}

interface ResolvedHybridOptions {
  readonly pull: ResolvedPullOptions;
  readonly doorbell: ResolvedStreamingOptions;
  readonly doorbellRestartMs: number;
  readonly doorbellGroup: StreamingGroup | undefined;
}

function resolveHybridOptions(options: HybridOptions): ResolvedHybridOptions {
  const pull = resolvePullOptions(options, { pollIntervalMs: 60_000 });
  // The doorbell watches exactly what the pull subscription watches, with the pull side's resolved
  // options. No `signal`: its life is tied to the hybrid subscriber's, torn down with it. No
  // recovery: a doorbell's gap costs the pull side nothing.
  const doorbell: ResolvedStreamingOptions = {
    ...pull,
    signal: undefined,
    ...resolveStreamSettings(options),
    recovery: undefined,
  };
  const doorbellRestartMs = positiveMs(options.doorbellRestartMs, 'doorbellRestartMs', 60_000);
  const doorbellGroup = options.doorbellGroup;
  if (doorbellGroup !== undefined && !(doorbellGroup instanceof StreamingGroup)) {
    throw new TypeError(`doorbellGroup must be a StreamingGroup (got ${describeValue(doorbellGroup)})`);
  }
  return { pull, doorbell, doorbellRestartMs, doorbellGroup };
}

/**
 * Notifications and lifecycle signals of the hybrid source, in one ordered stream. The lifecycle
 * signals are the pull subscription's (its gaps are the ones that matter: the doorbell's gaps only
 * delay delivery until the next poll), plus the doorbell's own, each wrapped in a
 * `{ type: 'doorbell', event }` signal (`DoorbellEvent`): its subscribed, connected, keep-alive,
 * disconnected, retrying and gap signals, and `failed` when it gives up until `doorbellRestartMs`.
 * See {@link hybridNotifications}.
 *
 * Invalid options error the Observable at once with a `TypeError`/`RangeError` naming the option.
 */
export function hybridSignals(options: HybridOptions): Observable<SourceSignal> {
  return openResolved(() => resolveHybridOptions(options), hybridSession);
}

/** The pull session of {@link hybridSignals} with its doorbell. */
function hybridSession({ pull, doorbell, doorbellRestartMs, doorbellGroup }: ResolvedHybridOptions): Observable<SourceSignal> {
  const doorbellSignals = (): Observable<SourceSignal> =>
    doorbellGroup
      ? doorbellGroup.signals({
          ...(doorbell.mailbox === undefined ? {} : { mailbox: doorbell.mailbox }),
          folders: doorbell.folders,
          subscribeToAllFolders: doorbell.subscribeToAllFolders,
          eventTypes: doorbell.eventTypes,
        })
      : soloStreamingSignals(doorbell, 'no-store');
  const logger = pull.logger;
  return sessionSignals(pull, (session, report) => {
    let ring: Subscription | undefined;
    let restart: NodeJS.Timeout | undefined;
    let stopped = false;
    const open = (): void => {
      restart = undefined;
      if (stopped) return;
      ring = doorbellSignals().subscribe({
        next: (signal) => {
          if (stopped) return;
          if (signal.type === 'notification') {
            // Anything new: fetch now. The doorbell's notifications are never emitted.
            session.wake();
            return;
          }
          // A streaming source has no doorbell of its own; the type allows it, nothing emits it.
          if (signal.type === 'doorbell') return;
          // Wrapped, so consumers that track the pull side by `type` never mistake the doorbell's
          // subscription or connection for it.
          // A doorbell's gap costs the pull side nothing (it resumes from its watermark): it has no
          // "unrecoverable" to report, whatever the streaming source says without a store.
          if (signal.type === 'gap' && signal.unrecoverable !== undefined) {
            const { unrecoverable: _dropped, ...gap } = signal;
            report({ type: 'doorbell', event: gap });
          } else report({ type: 'doorbell', event: signal });
          // A doorbell back after a gap may have missed rings: fetch now.
          if (signal.type === 'connected') session.wake();
          else if (signal.type === 'disconnected') logger.debug('hybrid doorbell disconnected; polling covers the gap', { reason: signal.reason });
        },
        error: (error: unknown) => {
          const code = error instanceof EwsBridgeError ? error.code : undefined;
          // A refused credential is the pull side's too, which ends the source with it: a warning
          // about the doorbell first would only bury the real message.
          (code === 'EWS_AUTH_FAILED' ? logger.debug : logger.warn).call(logger, 'hybrid doorbell failed; polling every pollIntervalMs until it is reopened', {
            code,
            reopenInMs: doorbellRestartMs,
          });
          if (stopped) return;
          restart = setTimeout(open, doorbellRestartMs);
          const failure = error instanceof Error ? error : new Error(`The doorbell failed with a non-Error value (${typeof error})`);
          report({ type: 'doorbell', event: { type: 'failed', error: failure, restartInMs: doorbellRestartMs, at: new Date() } });
        },
      });
    };
    open();
    return () => {
      stopped = true;
      clearTimeout(restart);
      ring?.unsubscribe();
      return sourceClosed(ring);
    };
  });
}

/**
 * `hybridNotifications(options)`: a pull subscription rung by a streaming doorbell — streaming's
 * latency with pull's watermarks, durable checkpoints and at-least-once delivery.
 *
 * - Per subscriber: one EWS pull subscription (the source of every notification, with everything
 *   {@link pullNotifications} promises) and one streaming subscription on the same folders and
 *   event types, whose notifications are not emitted: each one triggers an immediate GetEvents
 *   (or one right after the current cycle, so a ring is never lost).
 * - The doorbell reconnects and resubscribes on its own (the streaming source's lifecycle, reported
 *   as `doorbell` signals); when it comes back after a gap, the source fetches at once. If it fails for good, the source keeps
 *   polling every `pollIntervalMs` and opens a new doorbell after `doorbellRestartMs`.
 * - Nothing is lost when the doorbell is cut: the pull subscription holds every event until a
 *   poll fetches it.
 * - Costs two subscriptions and one hanging connection per subscriber (it counts against
 *   Exchange's per-mailbox streaming connection budget).
 *
 * Lifecycle signals go to `options.onLifecycle`: the pull side's as usual, the doorbell's wrapped
 * as `{ type: 'doorbell', event }` (see {@link hybridSignals}), so an outage of the fast path is
 * visible; {@link hybridSignals} has them in-stream.
 */
export function hybridNotifications(options: HybridOptions): Observable<PushNotification> {
  return notificationsOf(hybridSignals(options), options);
}
