/**
 * The streaming source: an EWS streaming subscription held open for as long as someone subscribes,
 * as an Observable that never silently dies.
 *
 * Per subscriber: Subscribe (streaming) → GetStreamingEvents → one `PushNotification` per
 * `Notification` as each envelope arrives → on `ConnectionStatus Closed` or a clean end, reopen at
 * once → on silence, socket errors, 5xx and throttling, reconnect with back-off (exactly the
 * server's `BackOffMilliseconds`/`Retry-After` when given) → on a lost subscription, resubscribe →
 * on teardown, close the stream and send EWS Unsubscribe (best effort, bounded). Every window in
 * which events may have been missed is reported as a `gap` lifecycle signal.
 */
import { Observable } from 'rxjs';
import { EwsBridgeError, EwsConnectionError, EwsConnectionTakenError, EwsResponseError } from '../errors.js';
import type { GetStreamingEventsMessage } from '../ews/messages.js';
import {
  SOAP_ACTIONS,
  buildGetStreamingEventsRequest,
  buildStreamingSubscribeRequest,
} from '../ews/requests.js';
import { responseMessageError } from '../ews/response-errors.js';
import { openStream, type SoapRequest } from '../ews/transport.js';
import type { PushNotification } from '../model.js';
import { planFor, shortLivedConnection, type FailurePlan } from './backoff.js';
import { postStreamingSubscribe } from './endpoint.js';
import { sessionObservable, type SourceSession } from './session-observable.js';
import { SubscriptionSession } from './subscription-session.js';
import { notificationsOf } from './notifications-of.js';
import { StreamingGap, unrecoveredGap } from './streaming-gap.js';
import type { DisconnectReason, LifecycleListener, SourceSignal } from './lifecycle.js';
import { describeValue, intInRange, optionalFunction, positiveMs } from '../validate.js';
import { resolveSourceOptions, type ResolvedSourceOptions, type SourceOptions } from './options.js';
import type { CheckpointStore } from '../checkpoint/checkpoint-store.js';
import { GapRecovery, resolveGapRecoveryOptions, type GapRecoveryConfig, type GapRecoveryOptions } from './gap-recovery.js';
import type { GapUnrecoverableReason } from './lifecycle.js';
import { defaultCheckpointKey } from './pull-session.js';

/** Options of {@link streamingNotifications} and {@link streamingSignals}. */
export interface StreamingOptions extends SourceOptions {
  /**
   * Minutes the server keeps one GetStreamingEvents connection open before ending it with
   * `ConnectionStatus Closed` (the source then reopens at once), 1–30. Default `30`.
   */
  readonly connectionTimeoutMinutes?: number;
  /**
   * A connection that carries no complete envelope (notification or keep-alive) for this long is
   * declared dead and replaced; bytes that never finish an envelope do not count. Exchange sends
   * keep-alives well within it. Default `90_000` (what Microsoft's own client uses).
   */
  readonly heartbeatTimeoutMs?: number;
  /**
   * What to do when the server reports that another connection took over our subscription
   * (`ErrorNewEventStreamConnectionOpened`): `'error'` errors the Observable with
   * `EwsConnectionTakenError` (someone else is using our subscription; fighting over it would
   * starve both); `'reconnect'` reports it as a disconnect and takes the subscription back after
   * the usual back-off. Default `'error'`.
   */
  readonly onConnectionTaken?: 'error' | 'reconnect';
  /**
   * Receives the lifecycle signals (subscribed, connected, keep-alive, disconnected, retrying, gap)
   * of {@link streamingNotifications}, synchronously and in order with its notifications. A
   * listener that throws is logged, not fatal. Default: none. ({@link streamingSignals} emits
   * them in the stream instead.)
   */
  readonly onLifecycle?: LifecycleListener;
  /**
   * Where SyncFolderItems sync states live (one per watched folder, under `checkpointKey`): with a
   * store, every gap that may have lost events is recovered with SyncFolderItems and a restarted
   * source catches up on what changed while it was down (see docs/retry-and-gaps.md). The same
   * store a pull source uses works. Default: none — gaps are reported, not recovered.
   */
  readonly checkpoint?: CheckpointStore;
  /** The key of this subscription's sync states in the store. Default: `checkpointKey()` of the mailbox, folders and event types (as pull). */
  readonly checkpointKey?: string;
  /** `false` keeps the store unused (gaps reported, not recovered). Default `true` when `checkpoint` is given. */
  readonly recoverGaps?: boolean;
  /** Tuning of the recovery: re-baseline policy, page size. Default: see {@link GapRecoveryOptions}. */
  readonly recovery?: GapRecoveryOptions;
}

/** @internal */
export interface ResolvedStreamingOptions extends ResolvedSourceOptions {
  readonly connectionTimeoutMinutes: number;
  readonly heartbeatTimeoutMs: number;
  readonly onConnectionTaken: 'error' | 'reconnect';
  readonly subscribeRequest: SoapRequest;
  /** Set when gaps are recovered. */
  readonly recovery: GapRecoveryConfig | undefined;
}

/** Checks `checkpoint`/`checkpointKey`/`recoverGaps`/`recovery` of a streaming source (or group member). @internal */
export function resolveRecovery(
  options: Pick<StreamingOptions, 'checkpoint' | 'checkpointKey' | 'recoverGaps' | 'recovery'>,
  base: ResolvedSourceOptions,
): GapRecoveryConfig | undefined {
  const { checkpoint, recoverGaps } = options;
  if (recoverGaps !== undefined && typeof recoverGaps !== 'boolean') throw new TypeError('recoverGaps must be a boolean');
  const tuning = resolveGapRecoveryOptions(options.recovery);
  if (checkpoint === undefined) return undefined;
  if (typeof checkpoint !== 'object' || checkpoint === null || typeof checkpoint.get !== 'function' || typeof checkpoint.set !== 'function') {
    throw new TypeError('checkpoint must be a CheckpointStore (with get and set methods)');
  }
  const key = options.checkpointKey ?? defaultCheckpointKey(base);
  if (typeof key !== 'string' || key === '') throw new TypeError('checkpointKey must be a non-empty string');
  if (recoverGaps === false || base.subscribeToAllFolders) return undefined;
  return { source: base, store: checkpoint, key, ...tuning };
}

/**
 * The streaming part of the options on top of shared options already resolved: how a hybrid
 * source builds its doorbell from its own resolved options, without resolving them twice.
 * @internal
 */
export function resolveStreamingOptionsFrom(
  base: ResolvedSourceOptions,
  options: Pick<StreamingOptions, 'connectionTimeoutMinutes' | 'heartbeatTimeoutMs' | 'onConnectionTaken'>,
): Omit<ResolvedStreamingOptions, 'recovery'> {
  const connectionTimeoutMinutes = intInRange(options.connectionTimeoutMinutes, 'connectionTimeoutMinutes', 30, 1, 30);
  const heartbeatTimeoutMs = positiveMs(options.heartbeatTimeoutMs, 'heartbeatTimeoutMs', 90_000);
  const onConnectionTaken = options.onConnectionTaken ?? 'error';
  if (onConnectionTaken !== 'error' && onConnectionTaken !== 'reconnect') {
    throw new RangeError(`onConnectionTaken must be 'error' or 'reconnect' (got ${describeValue(onConnectionTaken)})`);
  }
  // Folders and event types were checked when `base` was resolved.
  const subscribeRequest: SoapRequest = {
    soapAction: SOAP_ACTIONS.Subscribe,
    envelope: buildStreamingSubscribeRequest({
      folders: base.folders,
      subscribeToAllFolders: base.subscribeToAllFolders,
      eventTypes: base.eventTypes,
      requestServerVersion: base.requestServerVersion,
      ...(base.impersonation ? { impersonation: base.impersonation } : {}),
    }),
  };
  return { ...base, connectionTimeoutMinutes, heartbeatTimeoutMs, onConnectionTaken, subscribeRequest };
}

function resolveStreamingOptions(options: StreamingOptions): ResolvedStreamingOptions {
  const base = resolveSourceOptions(options);
  optionalFunction(options.onLifecycle, 'onLifecycle');
  return { ...resolveStreamingOptionsFrom(base, options), recovery: resolveRecovery(options, base) };
}

/**
 * Notifications and lifecycle signals of a streaming subscription, in one ordered stream: what an
 * adapter that must account for gaps subscribes to. Cold: each subscriber gets its own EWS
 * subscription and connection. See {@link streamingNotifications} for the behaviour.
 *
 * Invalid options error the Observable at once with a `TypeError`/`RangeError` naming the option.
 */
export function streamingSignals(options: StreamingOptions): Observable<SourceSignal> {
  let resolved: ResolvedStreamingOptions;
  try {
    resolved = resolveStreamingOptions(options);
  } catch (error) {
    return new Observable<SourceSignal>((subscriber) => subscriber.error(error));
  }
  // Without recovery, a lossy gap says why it stays lossy.
  const unrecoverable: GapUnrecoverableReason = resolved.subscribeToAllFolders && options.checkpoint !== undefined && options.recoverGaps !== false ? 'all-folders' : 'no-store';
  return resolvedStreamingSignals(resolved, unrecoverable);
}

/**
 * {@link streamingSignals} on resolved options: the hybrid doorbell's entry (no recovery; its gaps
 * cost the pull side nothing). `unrecoverable` is what a lossy gap says without recovery.
 * @internal
 */
export function resolvedStreamingSignals(resolved: ResolvedStreamingOptions, unrecoverable: GapUnrecoverableReason): Observable<SourceSignal> {
  return sessionObservable(resolved.signal, (emit): SourceSession => {
    const recovery = resolved.recovery ? new GapRecovery(resolved.recovery, emit) : undefined;
    const session = recovery
      ? new StreamingSession(resolved, (signal) => recovery.onSignal(signal), () => recovery.prepare())
      : new StreamingSession(resolved, (signal) => emit(unrecoveredGap(signal, unrecoverable)));
    if (!recovery) return session;
    return {
      start: (fail, complete) => session.start(fail, complete),
      stop: () => {
        session.stop();
        recovery.stop();
      },
      closed: async () => {
        await session.closed();
        await recovery.closed();
      },
    };
  });
}

/**
 * `streamingNotifications(options)`: the mailbox's notifications over an EWS streaming subscription.
 *
 * - **Cold**: subscribing creates the EWS subscription and opens GetStreamingEvents; each subscriber
 *   has its own. Unsubscribing (or aborting `options.signal`, which completes the Observable)
 *   closes the HTTP response, sends EWS Unsubscribe (best effort, at most `unsubscribeTimeoutMs`)
 *   and leaves no timer or socket behind; `sourceClosed(subscription)` resolves when that is done.
 * - Emits one `PushNotification` per `Notification` element as each envelope arrives, in wire
 *   order, `moreEvents: false`, with `mailbox` set when watching through impersonation.
 * - `ConnectionStatus Closed` or a clean end → reopens at once with the same subscription, unless
 *   the connection lived less than `retry.minConnectionLifetimeMs` (then it counts as a failure).
 *   No complete envelope for `heartbeatTimeoutMs` → the connection is dead: reconnect.
 * - Socket errors, 5xx, throttling → reconnect with exponential back-off and jitter; the server's
 *   `BackOffMilliseconds` / `Retry-After` are honoured within [the back-off's current delay,
 *   `retry.maxServerDelayMs`]. The back-off resets once a connection delivered an envelope and
 *   lived `retry.minConnectionLifetimeMs`.
 * - Lost subscription (`ErrorSubscriptionNotFound`, `ErrorInvalidSubscription`,
 *   `ErrorExpiredSubscription`, `ErrorReadEventsFailed`, in-stream or on connect) → resubscribe,
 *   reopen, and report the gap (`eventsMayBeLost: true`).
 * - Fatal errors (401/403, `ErrorAccessDenied`, a 404, retries exhausted …) error the Observable
 *   with the typed error. Nothing becomes an unhandled rejection.
 *
 * Lifecycle signals go to `options.onLifecycle`; {@link streamingSignals} has them in-stream.
 */
export function streamingNotifications(options: StreamingOptions): Observable<PushNotification> {
  const valid = typeof options === 'object' && options !== null;
  return notificationsOf(streamingSignals(options), valid ? options.onLifecycle : undefined, valid ? options.logger : undefined);
}

// ---------------------------------------------------------------------------------------------

/** One subscriber's streaming subscription, its connection and its gap accounting. */
class StreamingSession extends SubscriptionSession {
  declare protected readonly options: ResolvedStreamingOptions;
  /**
   * A moment no later than the last one at which the server showed it had nothing more queued for
   * us: when the Subscribe request was sent, or when the request of the response that carried the
   * last notification or keep-alive envelope was sent (the server writes everything pending into
   * each, after it got the request). Receipt times would be too late: under load the client reads
   * an envelope long after the server wrote it, and an event lost in between would precede the gap.
   * A `Closed` envelope does not count: the server may still hold events then.
   */
  private aliveAt: Date | undefined;
  private readonly gap = new StreamingGap();

  constructor(
    options: ResolvedStreamingOptions,
    emit: (signal: SourceSignal) => void,
    private readonly prepare?: () => Promise<void>,
  ) {
    super(options, emit, 'streaming');
  }

  protected override finalError(error: unknown): unknown {
    if (error instanceof EwsResponseError && error.action === 'connection-taken') {
      return new EwsConnectionTakenError(error.subscriptionIds.length > 0 ? error.subscriptionIds : [this.subscriptionId ?? ''], { cause: error });
    }
    return error;
  }

  /** Runs streaks of attempts forever; each streak ends after a healthy connection, resetting the back-off. */
  protected async run(): Promise<void> {
    // Gap recovery takes its baseline before the first Subscribe (it rejects only when the store cannot be read).
    await this.prepare?.();
    while (!this.stopSignal.aborted) await this.streak(() => this.connectOnce());
  }

  /**
   * What a failure means here. Side effect: a lost subscription is forgotten (idempotently), so the
   * next attempt subscribes anew.
   */
  protected plan(error: unknown): FailurePlan {
    if (this.stopSignal.aborted) return { kind: 'fatal', reason: 'connection-error' };
    const plan = planFor(error);
    if (plan.kind === 'resubscribe') this.forgetSubscription(plan.reason);
    if (plan.kind === 'connection-taken' && this.options.onConnectionTaken === 'reconnect') return { kind: 'retry', reason: plan.reason };
    return plan;
  }


  private forgetSubscription(reason: DisconnectReason): void {
    if (this.subscriptionId === undefined) return;
    this.lostSubscriptionId = this.subscriptionId;
    this.subscriptionId = undefined;
    // The server that held it is no longer where the next subscription must go.
    this.affinity?.reset();
    this.gap.lost(reason, this.aliveAt ?? new Date());
  }

  /** The Subscribe (see `subscribe`: not aborted by stop()). */
  private async createSubscription(): Promise<string> {
    const sentAt = new Date();
    const subscriptionId = await postStreamingSubscribe(this.options.subscribeRequest, this.endpoint, this.options.requestTimeoutMs);
    const at = new Date();
    this.subscriptionId = subscriptionId;
    if (this.stopSignal.aborted) throw this.stopSignal.reason;
    // The server created it somewhere between sending and now: the earlier bound is the safe one.
    this.aliveAt = sentAt;
    const previous = this.lostSubscriptionId;
    this.lostSubscriptionId = undefined;
    this.options.logger.info('EWS streaming subscription created', { subscriptionId, replaces: previous });
    this.report({ type: 'subscribed', subscriptionId, ...(previous === undefined ? {} : { previousSubscriptionId: previous }), at });
    // Events between the old subscription's last sign of life and now went nowhere; from now on
    // the new subscription queues them until we connect.
    const gap = this.gap.closeOnSubscribed(subscriptionId, at);
    if (gap) this.report(gap);
    return subscriptionId;
  }

  /**
   * One attempt: subscribe if needed, then hold one GetStreamingEvents connection until it ends.
   * Resolves when the connection ended after being healthy (the caller starts a fresh streak);
   * throws when it failed before that, or when the failure needs a server-requested wait or is fatal.
   */
  private async connectOnce(): Promise<void> {
    const subscriptionId = this.subscriptionId ?? (await this.subscribe(() => this.createSubscription()));
    const connection = new AbortController();
    const onStop = (): void => connection.abort(this.stopSignal.reason);
    this.stopSignal.addEventListener('abort', onStop, { once: true });

    let opened = false;
    let openedAtMs = 0;
    // Every envelope of this response was produced after the request left: the safe start of a gap.
    const sentAt = new Date();
    let healthy = false;
    let closedByServer = false;
    let drained = false;
    let inStreamError: EwsResponseError | undefined;

    const onMessage = (message: GetStreamingEventsMessage): boolean => {
      const error = responseMessageError(message);
      if (error) {
        if (error.subscriptionIds.length > 0 && !error.subscriptionIds.includes(subscriptionId)) {
          this.options.logger.warn('EWS streaming error for a subscription not ours; ignored', { responseCode: error.responseCode });
          return true;
        }
        if (error.action === 'recover-missed') {
          const at = new Date();
          this.report({ type: 'gap', subscriptionId, reason: 'missed-events', from: this.aliveAt ?? at, to: at, subscriptionKept: true, eventsMayBeLost: true, ...this.gap.anchor() });
          return true;
        }
        inStreamError = error;
        return false;
      }
      for (const notification of message.notifications) {
        this.gap.delivered(notification);
        this.report({ type: 'notification', notification: this.options.mailbox === undefined ? notification : { ...notification, mailbox: this.options.mailbox } });
      }
      if (message.connectionStatus === 'OK' && message.notifications.length === 0) this.report({ type: 'keep-alive', subscriptionId, at: new Date() });
      if (message.notifications.length > 0 || message.connectionStatus === 'OK') drained = true;
      if (message.connectionStatus === 'Closed') closedByServer = true;
      return true;
    };

    try {
      await openStream(
        {
          soapAction: SOAP_ACTIONS.GetStreamingEvents,
          envelope: buildGetStreamingEventsRequest({
            subscriptionIds: [subscriptionId],
            connectionTimeoutMinutes: this.options.connectionTimeoutMinutes,
            requestServerVersion: this.options.requestServerVersion,
            ...(this.options.impersonation ? { impersonation: this.options.impersonation } : {}),
          }),
        },
        {
          ...this.endpoint,
          signal: connection.signal,
          requestTimeoutMs: this.options.requestTimeoutMs,
          heartbeatTimeoutMs: this.options.heartbeatTimeoutMs,
          onOpen: () => {
            opened = true;
            openedAtMs = performance.now();
            this.onConnected(subscriptionId);
          },
          onEnvelope: (envelope) => {
            // (Receipt times are taken where a signal needs one: most envelopes carry none.)
            if (envelope.body.type !== 'response') return;
            let ok = true;
            drained = false;
            for (const message of envelope.body.messages) {
              if (message.kind !== 'GetStreamingEvents') continue;
              if (!onMessage(message)) {
                ok = false;
                break;
              }
            }
            if (!ok) {
              // The server is done with this connection (it also says Closed); don't wait for its end.
              connection.abort(inStreamError);
              return;
            }
            healthy = true;
            if (drained) this.aliveAt = sentAt;
          },
        },
      );
      if (!healthy) throw new EwsConnectionError('The server ended the streaming response without sending an envelope');
    } catch (caught) {
      if (this.stopSignal.aborted) throw this.stopSignal.reason;
      const error = inStreamError ?? caught;
      const plan = this.plan(error);
      if (opened) this.onDisconnected(subscriptionId, plan.reason, error instanceof EwsBridgeError ? error : undefined);
      // After a healthy connection that lived long enough, an ordinary failure starts a fresh streak
      // (immediate reconnect, back-off reset); waits the server asked for and fatal errors still go
      // through the retry logic.
      const lived = opened && shortLivedConnection(performance.now() - openedAtMs, this.options.retry) === undefined;
      if (healthy && lived && (plan.kind === 'retry' || plan.kind === 'resubscribe')) return;
      throw error;
    } finally {
      this.stopSignal.removeEventListener('abort', onStop);
    }
    this.onDisconnected(subscriptionId, closedByServer ? 'closed' : 'ended', undefined);
    // Ended cleanly, but so soon that reopening at once could become a request loop.
    const flapped = shortLivedConnection(performance.now() - openedAtMs, this.options.retry);
    if (flapped) throw flapped;
  }

  private onConnected(subscriptionId: string): void {
    const at = new Date();
    this.options.logger.info('EWS streaming connection open', { subscriptionId });
    this.report({ type: 'connected', subscriptionId, at });
    const gap = this.gap.closeOnConnected(subscriptionId, at);
    if (gap) this.report(gap);
  }

  private onDisconnected(subscriptionId: string, reason: DisconnectReason, error: EwsBridgeError | undefined): void {
    const at = new Date();
    this.options.logger.info('EWS streaming connection ended', { subscriptionId, reason, code: error?.code });
    this.report({ type: 'disconnected', subscriptionId, reason, ...(error ? { error } : {}), at });
    this.gap.disconnected(reason, reason === 'closed' || reason === 'ended', this.aliveAt ?? at, this.subscriptionId !== undefined);
  }
}

