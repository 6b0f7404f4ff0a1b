/**
 * The engine of the pull and hybrid sources: one EWS pull subscription, polled with GetEvents from
 * the last checkpointed watermark, one notification in flight at a time.
 *
 * Cycle: (load the checkpoint) → (Subscribe, from the watermark when there is one) → GetEvents →
 * drop events already acknowledged in this run → emit → wait for the acknowledgement → checkpoint
 * the last event's watermark (wire order; a StatusEvent's too) → `MoreEvents` ? again at once :
 * wait for the poll interval or a {@link PullSession.wake} (the hybrid doorbell).
 *
 * Failures go through the same response-code table and back-off as streaming (`withRetry`): a lost
 * or expired subscription is recreated from the last watermark, so nothing is lost; an invalid
 * watermark is dropped (a fresh subscription from "now") and reported as a gap that may have lost
 * events.
 */
import type { Agent } from 'node:http';
import { checkpointKey, type CheckpointStore } from '../checkpoint/checkpoint-store.js';
import { EwsBridgeError, EwsConnectionError, EwsParseError, EwsProtocolError, EwsResponseError } from '../errors.js';
import type { GetEventsMessage, SubscribeMessage } from '../ews/messages.js';
import { SOAP_ACTIONS, buildGetEventsRequest, buildPullSubscribeRequest } from '../ews/requests.js';
import type { SubscriptionAffinity } from '../ews/affinity.js';
import type { EwsEndpointOptions, SoapRequest } from '../ews/transport.js';
import { firstMessage, sourceEndpoint, unsubscribeAndClose } from './endpoint.js';
import { lastWatermark, type PushNotification } from '../model.js';
import { emitWithAck, type AckHandle, type AckMode } from './ack.js';
import { abortableDelay, planFor, retryingSignal, withRetry, type FailurePlan } from './backoff.js';
import type { DisconnectReason, OpenGap, SourceSignal } from './lifecycle.js';
import type { ResolvedSourceOptions } from './options.js';
import type { SourceSession } from './session-observable.js';

/** What the session needs beyond the shared source options (validated by pull.ts/hybrid.ts). */
export interface ResolvedPullOptions extends ResolvedSourceOptions {
  readonly pollIntervalMs: number;
  readonly subscriptionTimeoutMinutes: number;
  readonly watermark: string | undefined;
  readonly checkpoint: CheckpointStore;
  readonly checkpointKey: string;
  readonly ackMode: AckMode;
  readonly emitStatusEvents: boolean;
  /** Watermarks of acknowledged events remembered for de-duplication. */
  readonly dedupeWindow: number;
}

/** The default number of acknowledged watermarks remembered for de-duplication. */
export const DEFAULT_DEDUPE_WINDOW = 10_000;

/** The key a source uses when none is given: mailbox (or basic-auth user), folders, event types. */
export function defaultCheckpointKey(options: ResolvedSourceOptions): string {
  const account = options.mailbox ?? (options.auth.type === 'basic' || options.auth.type === 'ntlm' ? options.auth.username : undefined);
  return checkpointKey({
    ...(account === undefined ? {} : { mailbox: account }),
    folders: options.folders.map((f) => (typeof f === 'string' ? f : 'id' in f ? { id: f.id } : `${f.distinguishedId}@${f.mailbox}`)),
    subscribeToAllFolders: options.subscribeToAllFolders,
    eventTypes: options.eventTypes,
  });
}

/** The abort reason used when the consumer stops the source. */
class SessionStopped extends Error {
  constructor() {
    super('The pull source was stopped');
    this.name = 'SessionStopped';
  }
}

/**
 * One subscriber's pull subscription on its own connection pool, its watermark and retry state:
 * run as streaks of attempts under the retry discipline (`withRetry`), stopped once, and torn down
 * in order — the loop settles, any Subscribe in flight settles (so no Subscribe lands after our
 * Unsubscribe), then Unsubscribe and the pool closes.
 */
export class PullSession implements SourceSession {
  readonly #stopController = new AbortController();
  private readonly agent: Agent;
  private readonly endpoint: EwsEndpointOptions;
  private readonly affinity: SubscriptionAffinity | undefined;
  /** The live subscription, once Subscribe answered. */
  private subscriptionId: string | undefined;
  /** The subscription the server lost, reported as `previousSubscriptionId` by the next `subscribed`. */
  private lostSubscriptionId: string | undefined;
  #running: Promise<void> | undefined;
  /** The last Subscribe sent, so teardown can wait for it and remove what it created. */
  #pendingSubscribe: Promise<string> | undefined;
  /** The teardown started by {@link stop}. */
  #cleaning: Promise<void> | undefined;
  private loaded = false;
  /** Where the next GetEvents (or Subscribe) starts: the last watermark of an acknowledged notification. */
  private watermark: string | undefined;
  /** The watermark known to be in the checkpoint store. */
  private checkpointed: string | undefined;
  /** When the stored checkpoint was written: the start of a gap if the server rejects its watermark. */
  private checkpointAt: Date | undefined;
  /** Whether GetEvents has succeeded since the last (re)subscribe or failure. */
  private connected = false;
  private aliveAt: Date | undefined;
  private gap: OpenGap | undefined;
  /** Acknowledged event watermarks, oldest first (a Set keeps insertion order). */
  private readonly seen = new Set<string>();
  /** A wake-up arrived while no wait was pending: the next wait returns at once. */
  private woken = false;
  private wakeWaiter: (() => void) | undefined;

  constructor(
    private readonly options: ResolvedPullOptions,
    private readonly emit: (signal: SourceSignal) => void,
  ) {
    ({ agent: this.agent, endpoint: this.endpoint, affinity: this.affinity } = sourceEndpoint(options));
  }

  private get stopSignal(): AbortSignal {
    return this.#stopController.signal;
  }

  /** Starts the loop; exactly one of the callbacks is called, unless {@link stop} comes first. */
  start(onError: (error: unknown) => void, onComplete: () => void): void {
    this.#running = this.run().then(
      () => {
        if (!this.stopSignal.aborted) onComplete();
      },
      (error: unknown) => {
        if (!this.stopSignal.aborted) onError(error);
      },
    );
  }

  /** Idempotent teardown: aborts everything now, then (in the background) unsubscribes and closes the pool. */
  stop(): void {
    if (this.stopSignal.aborted) return;
    this.#stopController.abort(new SessionStopped());
    this.wakeWaiter?.();
    this.#cleaning = this.#cleanUp().catch((error: unknown) => this.options.logger.error('EWS pull teardown failed', { error }));
  }

  /** Settles once the teardown {@link stop} started is over (Unsubscribe answered or timed out); at once before that. */
  closed(): Promise<void> {
    return this.#cleaning ?? Promise.resolve();
  }

  async #cleanUp(): Promise<void> {
    await this.#running;
    await this.#pendingSubscribe?.catch(() => undefined);
    await unsubscribeAndClose(this.subscriptionId, { agent: this.agent, endpoint: this.endpoint, affinity: this.affinity }, this.options);
  }

  /** Emits a signal unless the session was stopped. */
  private report(signal: SourceSignal): void {
    if (!this.stopSignal.aborted) this.emit(signal);
  }

  /**
   * Asks for a GetEvents now (the hybrid doorbell): ends the current poll wait, or — when a cycle is
   * running — makes the next wait return at once, so a ring is never lost.
   */
  wake(): void {
    if (this.wakeWaiter) this.wakeWaiter();
    else this.woken = true;
  }

  private requestBase(): { requestServerVersion: ResolvedSourceOptions['requestServerVersion']; impersonation?: NonNullable<ResolvedSourceOptions['impersonation']> } {
    return {
      requestServerVersion: this.options.requestServerVersion,
      ...(this.options.impersonation ? { impersonation: this.options.impersonation } : {}),
    };
  }

  /** Cycles forever; each successful cycle ends a failure streak, so the back-off resets. */
  private async run(): Promise<void> {
    while (!this.stopSignal.aborted) {
      const more = await withRetry(() => this.cycle(), {
        retry: this.options.retry,
        signal: this.stopSignal,
        plan: (error) => this.plan(error),
        onRetry: (notice) => {
          const signal = retryingSignal(notice, this.options.logger, 'pull');
          if (signal) this.report(signal);
        },
        logger: this.options.logger,
      });
      if (!more) await this.waitForPoll();
    }
  }

  /** Waits `pollIntervalMs`, or less when {@link wake} is called. */
  private async waitForPoll(): Promise<void> {
    // A stop that came while the cycle finished a write (it is not aborted mid-checkpoint) has
    // already fired its abort event: the listener below would never hear it, and the teardown
    // would wait a whole poll interval before its Unsubscribe.
    this.stopSignal.throwIfAborted();
    if (this.woken) {
      this.woken = false;
      return;
    }
    const early = new AbortController();
    this.wakeWaiter = () => early.abort();
    const onStop = (): void => early.abort();
    this.stopSignal.addEventListener('abort', onStop, { once: true });
    try {
      await abortableDelay(this.options.pollIntervalMs, early.signal).catch(() => undefined);
    } finally {
      this.wakeWaiter = undefined;
      this.stopSignal.removeEventListener('abort', onStop);
    }
    this.stopSignal.throwIfAborted();
  }

  /**
   * What a failure means here. Side effect: a lost subscription is forgotten (idempotently), so the
   * next attempt subscribes anew — from the last watermark, unless the server rejected it.
   */
  private plan(error: unknown): FailurePlan {
    if (this.stopSignal.aborted) return { kind: 'fatal', reason: 'connection-error' };
    let plan = planFor(error);
    const missed = error instanceof EwsResponseError && error.action === 'recover-missed';
    // ErrorMissedNotificationEvents: the server dropped events but keeps the subscription; carry
    // on from the same watermark, and say that something was lost.
    if (missed) plan = { kind: 'retry', reason: 'missed-events' };
    if (plan.kind === 'resubscribe') {
      const watermarkLost = (error instanceof EwsResponseError || error instanceof EwsProtocolError) && error.action === 'resubscribe-without-watermark';
      this.forgetSubscription(plan.reason, watermarkLost);
    }
    // Pull has no connection to take; such a code can only be a server oddity: retry.
    if (plan.kind === 'connection-taken') return { kind: 'retry', reason: 'server-error' };
    if (this.connected && plan.kind !== 'fatal') {
      this.connected = false;
      const subscriptionId = this.subscriptionId ?? this.lostSubscriptionId ?? '';
      this.report({ type: 'disconnected', subscriptionId, reason: plan.reason, ...(error instanceof EwsBridgeError ? { error } : {}), at: new Date() });
    }
    // A failure before the first success opens no gap: nothing was running yet.
    if (plan.kind !== 'fatal' && this.aliveAt !== undefined) {
      this.gap ??= { from: this.aliveAt, reason: plan.reason, subscriptionKept: true, eventsMayBeLost: false };
    }
    if (missed) {
      const gap = (this.gap ??= { from: this.aliveAt ?? this.checkpointAt ?? new Date(), reason: 'missed-events', subscriptionKept: true, eventsMayBeLost: true });
      gap.eventsMayBeLost = true;
      gap.reason = 'missed-events';
    }
    return plan;
  }


  private forgetSubscription(reason: DisconnectReason, watermarkLost: boolean): void {
    if (this.subscriptionId !== undefined) {
      this.lostSubscriptionId = this.subscriptionId;
      this.subscriptionId = undefined;
      // The server that held it is no longer where the next subscription must go.
      this.affinity?.reset();
      const gap = (this.gap ??= { from: this.aliveAt ?? new Date(), reason, subscriptionKept: false, eventsMayBeLost: false });
      gap.subscriptionKept = false;
      gap.reason = reason;
    }
    if (watermarkLost && this.watermark !== undefined) {
      this.options.logger.warn('EWS rejected the watermark; resubscribing from now — events since it may be lost', {
        checkpointKey: this.options.checkpointKey,
      });
      this.watermark = undefined;
      // From the last moment our position was known good: the last healthy GetEvents of this run,
      // else when the stored checkpoint was written.
      const gap = (this.gap ??= { from: this.aliveAt ?? this.checkpointAt ?? new Date(), reason, subscriptionKept: false, eventsMayBeLost: true });
      gap.subscriptionKept = false;
      gap.eventsMayBeLost = true;
      gap.reason = reason;
    }
  }

  /**
   * One cycle: returns whether to call GetEvents again at once — `MoreEvents` on a page that made
   * progress. A page with no event but status ones, or one that leaves the watermark where it was,
   * waits for the poll like an empty one: a server saying `MoreEvents` without ever moving on
   * would otherwise be asked again and again with no pause.
   */
  private async cycle(): Promise<boolean> {
    if (!this.loaded) {
      let stored = await this.options.checkpoint.get(this.options.checkpointKey);
      this.checkpointAt = stored === undefined ? undefined : new Date(stored.updatedAt);
      if (stored?.watermark !== undefined && stored.watermark.trim() === '') {
        // Written by an older version that stored what a broken server sent: not a position.
        // Start from now and say that events since the checkpoint may be lost.
        this.options.logger.warn('The stored watermark is empty; subscribing from now — events since it may be lost', { checkpointKey: this.options.checkpointKey });
        this.gap = { from: this.checkpointAt ?? new Date(), reason: 'server-error', subscriptionKept: false, eventsMayBeLost: true };
        stored = { updatedAt: stored.updatedAt };
      }
      this.watermark = stored?.watermark ?? this.options.watermark;
      this.checkpointed = stored?.watermark;
      this.loaded = true;
      this.options.logger.debug('EWS pull source starts', { resumed: stored?.watermark !== undefined, fromOption: stored === undefined && this.options.watermark !== undefined });
    }
    // Not aborted by stop(): once the request is out the server may have created the subscription,
    // and only its id lets the teardown remove it (`requestTimeoutMs` bounds it instead).
    const subscriptionId = this.subscriptionId ?? (await (this.#pendingSubscribe = this.createSubscription()));
    const watermark = this.watermark as string;
    // A fresh subscription's starting point (or a start watermark from the options): nothing
    // precedes it, so it is stored at once and a restart resumes here rather than from "now" again.
    if (watermark !== this.checkpointed) await this.checkpoint(watermark);
    const notification = await this.getEvents(subscriptionId, watermark);
    this.onHealthy(subscriptionId);
    await this.handle(notification);
    if (!notification.moreEvents) return false;
    const progressed = notification.events.some((e) => e.type !== 'Status') && lastWatermark(notification) !== watermark;
    if (!progressed) this.options.logger.debug('EWS said MoreEvents without moving on; waiting for the poll', { subscriptionId });
    return progressed;
  }

  private async call<M extends SubscribeMessage | GetEventsMessage>(request: SoapRequest, kind: M['kind'], abortable = true): Promise<M> {
    const signal = abortable ? this.stopSignal : undefined;
    const message = await firstMessage(request, { ...this.endpoint, requestTimeoutMs: this.options.requestTimeoutMs, ...(signal ? { signal } : {}) });
    if (message?.kind !== kind) throw new EwsParseError(`The ${kind} response carried no ${kind} response message`);
    return message as M;
  }

  /** The Subscribe (not aborted by stop(), see cycle()). */
  private async createSubscription(): Promise<string> {
    const message = await this.call<SubscribeMessage>(
      {
        soapAction: SOAP_ACTIONS.Subscribe,
        envelope: buildPullSubscribeRequest({
          folders: this.options.folders,
          subscribeToAllFolders: this.options.subscribeToAllFolders,
          eventTypes: this.options.eventTypes,
          timeoutMinutes: this.options.subscriptionTimeoutMinutes,
          ...(this.watermark === undefined ? {} : { watermark: this.watermark }),
          ...this.requestBase(),
        }),
      },
      'Subscribe',
      false,
    );
    const subscriptionId = message.subscriptionId;
    if (subscriptionId === undefined) throw new EwsConnectionError('The Subscribe response carried no SubscriptionId');
    if (this.stopSignal.aborted) {
      this.subscriptionId = subscriptionId;
      throw this.stopSignal.reason;
    }
    if (this.watermark === undefined) {
      if (message.watermark === undefined) throw new EwsConnectionError('The pull Subscribe response carried no Watermark');
      this.watermark = message.watermark;
    }
    const at = new Date();
    this.subscriptionId = subscriptionId;
    this.aliveAt = at;
    this.connected = false;
    const previous = this.lostSubscriptionId;
    this.lostSubscriptionId = undefined;
    this.options.logger.info('EWS pull subscription created', { subscriptionId, replaces: previous });
    this.report({ type: 'subscribed', subscriptionId, ...(previous === undefined ? {} : { previousSubscriptionId: previous }), at });
    return subscriptionId;
  }

  private async getEvents(subscriptionId: string, watermark: string): Promise<PushNotification> {
    const message = await this.call<GetEventsMessage>(
      { soapAction: SOAP_ACTIONS.GetEvents, envelope: buildGetEventsRequest({ subscriptionId, watermark, ...this.requestBase() }) },
      'GetEvents',
    );
    if (message.notification === undefined) throw new EwsParseError('The GetEvents response carried no Notification');
    return message.notification;
  }

  /** GetEvents answered: the subscription works. Reports `connected` and closes an open gap. */
  private onHealthy(subscriptionId: string): void {
    const at = new Date();
    this.aliveAt = at;
    if (this.connected) return;
    this.connected = true;
    this.report({ type: 'connected', subscriptionId, at });
    const gap = this.gap;
    if (gap) {
      this.gap = undefined;
      this.report({ type: 'gap', subscriptionId, reason: gap.reason, from: gap.from, to: at, subscriptionKept: gap.subscriptionKept, eventsMayBeLost: gap.eventsMayBeLost });
    }
  }

  /** Emits the notification (minus already-acknowledged events), waits for its ack, checkpoints. */
  private async handle(received: PushNotification): Promise<void> {
    const next = lastWatermark(received);
    // Status events are keep-alives, not something a consumer handles twice: never dropped.
    const events = received.events.filter((e) => e.type === 'Status' || e.watermark === undefined || !this.seen.has(e.watermark));
    if (events.length < received.events.length) {
      this.options.logger.debug('dropped events already acknowledged', { count: received.events.length - events.length });
    }
    const statusOnly = events.every((e) => e.type === 'Status');
    if (received.events.every((e) => e.type === 'Status')) {
      this.report({ type: 'keep-alive', subscriptionId: received.subscriptionId, at: new Date() });
    }
    let handle: AckHandle | undefined;
    if (events.length > 0 && (!statusOnly || this.options.emitStatusEvents)) {
      const notification: PushNotification = {
        ...received,
        events,
        ...(this.options.mailbox === undefined ? {} : { mailbox: this.options.mailbox }),
      };
      handle = await this.deliver(notification);
    }
    try {
      if (next !== undefined && next !== this.checkpointed) await this.checkpoint(next);
    } catch (error) {
      // The watermark stays where it was: the retry fetches the same events again, and the ones
      // just acknowledged are dropped as duplicates.
      handle?.failed(error);
      throw error;
    }
    handle?.written();
  }

  private async checkpoint(watermark: string): Promise<void> {
    await this.options.checkpoint.set(this.options.checkpointKey, { watermark });
    this.checkpointed = watermark;
    this.watermark = watermark;
  }

  /** Emits one notification and resolves once the consumer has acknowledged it. */
  private async deliver(notification: PushNotification): Promise<AckHandle> {
    const handle = emitWithAck(notification, this.options.ackMode, this.options.logger, () => this.report({ type: 'notification', notification }));
    if (!handle.acked) {
      const stop = this.stopSignal;
      try {
        await new Promise<void>((resolve, reject) => {
          if (stop.aborted) {
            reject(stop.reason);
            return;
          }
          const onStop = (): void => reject(stop.reason);
          stop.addEventListener('abort', onStop, { once: true });
          void handle.done.then(() => {
            stop.removeEventListener('abort', onStop);
            resolve();
          });
        });
      } catch (error) {
        handle.failed(error);
        throw error;
      }
    }
    for (const event of notification.events) if (event.type !== 'Status' && event.watermark !== undefined) this.remember(event.watermark);
    return handle;
  }

  private remember(watermark: string): void {
    this.seen.add(watermark);
    if (this.seen.size > this.options.dedupeWindow) {
      const oldest = this.seen.values().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
  }
}
