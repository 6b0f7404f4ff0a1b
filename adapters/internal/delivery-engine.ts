/**
 * The push-delivery engine behind every adapter: per-subscription lanes that hand notifications to
 * a handler one at a time, retry failures on Exchange's schedule, synthesize idle StatusEvents,
 * acknowledge (checkpoint) only after an answer, and end on `'Unsubscribe'`, on `close()`, when
 * the retries run out, or when the source ends.
 *
 * Invariants that keep the host safe: every handler call is awaited inside a try; every promise
 * the engine creates is either awaited or has a rejection handler; every timer is cleared when the
 * engine ends.
 *
 * @packageDocumentation
 */
import type { Unsubscribable } from 'rxjs';
import { EwsListenerBacklogError, EwsListenerError } from '../../lib/entry-errors.js';
import { deferAck, sourceClosed, type AckFunction, type GapEvent, type PushNotification, type SourceLifecycleEvent, type SourceSignal, type SubscriptionStatus } from '../../lib/index.js';
import type { ErrorContext, PushCallbackEnd, PushCallbackHandle, PushHandler } from './push-callback-types.js';
import type { ResolvedPushCallbackOptions } from './options.js';
import { retryAllowed, retryDelayMs } from './retry-schedule.js';
import { describeValue } from '../../lib/validate.js';
import { isSignal, isStatusOnly, type PushSource } from './source-input.js';
import { lastWatermark } from '../../lib/model.js';

interface QueuedNotification {
  readonly kind: 'notification';
  readonly notification: PushNotification;
  readonly ack: AckFunction;
  readonly synthesized: boolean;
}

interface QueuedGap {
  readonly kind: 'gap';
  readonly gap: GapEvent;
}

type Queued = QueuedNotification | QueuedGap;

/**
 * A FIFO with O(1) take: `Array.prototype.shift` copies the array once it is large, which made a
 * backlog of 100,000 notifications (a slow handler behind a busy streaming source) quadratic.
 */
class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head++;
    // Drop the consumed prefix once it is most of the array, so memory follows the backlog.
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}

/** One logical subscription: the same lane carries on when the source replaces a lost subscription. */
class Lane {
  /** The subscription id in use (the newest, after a replacement). */
  subscriptionId: string;
  mailbox: string | undefined;
  readonly queue = new Fifo<Queued>();
  /** Set from the moment a drain is scheduled until it has finished. */
  busy = false;
  running: Promise<void> | undefined;
  /** The watermark of the last notification handled (pull/hybrid), for synthesized StatusEvents. */
  watermark: string | undefined;
  /** When the handler last answered for this lane (or when the lane was made): idleness starts here. */
  lastPostAt: number;
  idleTimer: ReturnType<typeof setTimeout> | undefined;
  /** Whether the source says this subscription is reachable; keep-alives pause while it is not. */
  connected = true;

  constructor(subscriptionId: string, mailbox: string | undefined) {
    this.subscriptionId = subscriptionId;
    this.mailbox = mailbox;
    this.lastPostAt = Date.now();
  }
}

type State = 'running' | 'draining' | 'closing' | 'ended';

/** Outcome of one delivery inside a drain loop. */
type Step = 'next' | 'stop';

/** Resolves after `ms`, or early with `false` when `signal` aborts. Never rejects. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** @internal The engine; {@link PushCallbackHandle} is its public face. */
export class DeliveryEngine implements PushCallbackHandle {
  readonly done: Promise<PushCallbackEnd>;
  private settleDone!: { resolve: (end: PushCallbackEnd) => void; reject: (error: unknown) => void };
  private state: State = 'running';
  /** Lanes by every subscription id they have carried. */
  private readonly lanes = new Map<string, Lane>();
  private subscription: Unsubscribable | undefined;
  private sourceError: { readonly error: unknown } | undefined;
  /** Aborted when the engine stops: ends retry waits at once. */
  private readonly stopWaits = new AbortController();
  /** Checkpoint writes in progress, awaited before the source is unsubscribed. */
  private readonly pendingAcks = new Set<Promise<void>>();
  private closing: Promise<void> | undefined;
  /** Source notifications received and not yet finished (answered, skipped or given up), across lanes. */
  private held = 0;
  private readonly onAbort = (): void => void this.close();

  constructor(
    private readonly handler: PushHandler,
    private readonly options: ResolvedPushCallbackOptions,
  ) {
    this.done = new Promise<PushCallbackEnd>((resolve, reject) => (this.settleDone = { resolve, reject }));
    // `done` may never be awaited; its rejection (also reported to onError) must not crash the host.
    this.done.catch(() => undefined);
  }

  get closed(): boolean {
    return this.state === 'closing' || this.state === 'ended';
  }

  start(source: PushSource<PushNotification | SourceSignal>): void {
    const signal = this.options.signal;
    if (signal?.aborted) {
      void this.end({ reason: 'closed' });
      return;
    }
    signal?.addEventListener('abort', this.onAbort, { once: true });
    let subscription: Unsubscribable;
    try {
      subscription = source.subscribe({
        next: (value) => this.onValue(value),
        error: (error: unknown) => this.onSourceError(error),
        complete: () => this.onSourceComplete(),
      });
    } catch (error) {
      // A source whose subscribe() throws: report it like a source error.
      this.onSourceError(error);
      return;
    }
    this.subscription = subscription;
    // The source may have ended us synchronously, before `subscription` existed.
    if (this.state === 'ended') this.unsubscribeSource();
  }

  close(): Promise<void> {
    this.closing ??= this.closeGracefully();
    return this.closing;
  }

  // ---------------------------------------------------------------------------------------------
  // Source input

  private onValue(value: PushNotification | SourceSignal): void {
    const notification = !isSignal(value) ? value : value.type === 'notification' ? value.notification : undefined;
    // Taken over synchronously inside the source's next(), always: this is how a pull/hybrid
    // source learns that a notification is done only when we say so. One we do not deliver
    // (because we are closing) is never acknowledged, so the next run delivers it again.
    const ack = notification === undefined ? undefined : deferAck(notification);
    if (this.state !== 'running') return;
    if (notification !== undefined && ack !== undefined) this.onNotification(notification, ack);
    else if (isSignal(value) && value.type !== 'notification') this.onLifecycleEvent(value);
  }

  private onNotification(notification: PushNotification, ack: AckFunction): void {
    if (this.held >= this.options.maxBacklogNotifications) {
      this.backlogFull(notification);
      return;
    }
    this.held++;
    const lane = this.laneFor(notification.subscriptionId, notification.mailbox);
    lane.connected = true;
    if (notification.mailbox !== undefined) lane.mailbox = notification.mailbox;
    this.enqueue(lane, { kind: 'notification', notification, ack, synthesized: false });
  }

  private onLifecycleEvent(event: SourceLifecycleEvent): void {
    const listener = this.options.onLifecycle;
    if (listener) {
      try {
        listener(event);
      } catch (error) {
        this.report(error, { phase: 'lifecycle-listener', fatal: false, ...('subscriptionId' in event ? { subscriptionId: event.subscriptionId } : {}) });
      }
      if (this.state !== 'running') return;
    }
    switch (event.type) {
      case 'subscribed': {
        const previous = event.previousSubscriptionId === undefined ? undefined : this.lanes.get(event.previousSubscriptionId);
        if (previous) {
          // The replacement continues the old subscription's lane: same order, same keep-alive clock.
          previous.subscriptionId = event.subscriptionId;
          this.lanes.set(event.subscriptionId, previous);
          previous.connected = true;
          this.armIdle(previous);
        } else {
          this.laneFor(event.subscriptionId, undefined);
        }
        return;
      }
      case 'connected':
      case 'keep-alive': {
        const lane = this.laneFor(event.subscriptionId, undefined);
        if (!lane.connected) {
          lane.connected = true;
          this.armIdle(lane);
        }
        return;
      }
      case 'disconnected': {
        const lane = this.lanes.get(event.subscriptionId);
        if (lane) this.markDisconnected(lane);
        return;
      }
      case 'retrying':
        // Retries carry no subscription id; a source holds one subscription per lane it feeds.
        for (const lane of new Set(this.lanes.values())) this.markDisconnected(lane);
        return;
      case 'gap': {
        if (!this.options.onGap) return;
        this.enqueue(this.laneFor(event.subscriptionId, undefined), { kind: 'gap', gap: event });
        return;
      }
    }
  }

  /**
   * A source that does not wait for answers (streaming) outran the handler by the whole backlog.
   * Holding more would let memory grow without bound; dropping would lose mail silently. Exchange,
   * in the same place, ends the push subscription: so do we, saying how much was never answered.
   * The notification that did not fit is not acknowledged, so a pull/hybrid source (which cannot
   * get here in practice) would deliver it again on the next run.
   */
  private backlogFull(notification: PushNotification): void {
    const max = this.options.maxBacklogNotifications;
    const heldNotifications = this.held + 1;
    const error = new EwsListenerBacklogError(
      heldNotifications,
      max,
      `The push handler fell behind by maxBacklogNotifications (${max}); the subscription was ended as Exchange ends a push ` +
        `subscription whose listener does not keep up. ${heldNotifications} notifications received were never answered.`,
    );
    this.options.logger.warn('push adapter: backlog full; ending the subscription', {
      subscriptionId: notification.subscriptionId,
      heldNotifications,
      maxBacklogNotifications: max,
    });
    this.report(error, { phase: 'handler', fatal: true, subscriptionId: notification.subscriptionId });
    void this.end({ error });
  }

  private onSourceError(error: unknown): void {
    if (this.state === 'ended') return;
    this.options.logger.warn('push adapter: the source failed', { error: describeError(error) });
    this.report(error, { phase: 'source', fatal: true });
    this.sourceError = { error };
    this.sourceEnded();
  }

  private onSourceComplete(): void {
    if (this.state === 'ended') return;
    this.options.logger.debug('push adapter: the source completed');
    this.sourceEnded();
  }

  /** No more notifications: deliver what is queued, then end. */
  private sourceEnded(): void {
    this.subscription = undefined;
    if (this.state === 'running') this.state = 'draining';
    this.clearIdleTimers();
    this.endIfDrained();
  }

  // ---------------------------------------------------------------------------------------------
  // Lanes

  private laneFor(subscriptionId: string, mailbox: string | undefined): Lane {
    let lane = this.lanes.get(subscriptionId);
    if (!lane) {
      lane = new Lane(subscriptionId, mailbox);
      this.lanes.set(subscriptionId, lane);
      this.armIdle(lane);
    }
    return lane;
  }

  private markDisconnected(lane: Lane): void {
    lane.connected = false;
    this.clearIdle(lane);
  }

  private enqueue(lane: Lane, item: Queued): void {
    lane.queue.push(item);
    if (lane.busy) return;
    lane.busy = true;
    this.clearIdle(lane);
    // Started on a microtask, so the handler never runs inside the source's next().
    lane.running = Promise.resolve().then(() => this.drain(lane));
  }

  private async drain(lane: Lane): Promise<void> {
    try {
      while (this.state === 'running' || this.state === 'draining') {
        const item = lane.queue.shift();
        if (!item) break;
        const step = item.kind === 'gap' ? await this.deliverGap(item.gap) : await this.deliver(lane, item);
        if (item.kind === 'notification' && !item.synthesized) this.held--;
        if (step === 'stop') break;
      }
    } catch (error) {
      // Only a bug in the engine can get here; end loudly rather than leave a lane stuck.
      this.report(error, { phase: 'handler', fatal: true, subscriptionId: lane.subscriptionId });
      void this.end({ error });
    } finally {
      lane.busy = false;
      lane.running = undefined;
    }
    if (this.state === 'running') this.armIdle(lane);
    else this.endIfDrained();
  }

  private async deliverGap(gap: GapEvent): Promise<Step> {
    try {
      await this.options.onGap?.(gap);
    } catch (error) {
      this.report(error, { phase: 'gap-listener', fatal: false, subscriptionId: gap.subscriptionId });
    }
    return 'next';
  }

  /** Hands one notification to the handler until it is answered, given up on, or the engine stops. */
  private async deliver(lane: Lane, item: QueuedNotification): Promise<Step> {
    const notification = item.notification;
    if (!item.synthesized && isStatusOnly(notification)) {
      // Pull's idle answers: their watermark is worth keeping, but push posts a keep-alive only
      // after StatusFrequency of idleness, which the lane's own timer does.
      lane.watermark = lastWatermark(notification) ?? lane.watermark;
      this.ack(item);
      return 'next';
    }
    let retryElapsedMs = 0;
    for (let attempt = 1; ; attempt++) {
      let failure: unknown;
      let status: SubscriptionStatus | undefined;
      try {
        const answer: unknown = await this.handler(notification, { attempt, synthesized: item.synthesized });
        if (answer === 'OK' || answer === 'Unsubscribe') status = answer;
        else failure = new TypeError(`the handler must answer 'OK' or 'Unsubscribe' (got ${describeValue(answer)})`);
      } catch (error) {
        failure = error;
      }

      if (status !== undefined) {
        lane.lastPostAt = Date.now();
        lane.watermark = lastWatermark(notification) ?? lane.watermark;
        this.ack(item);
        if (status === 'Unsubscribe') {
          this.options.logger.info('push adapter: the handler answered Unsubscribe', { subscriptionId: notification.subscriptionId });
          void this.end({ reason: 'unsubscribed', subscriptionId: notification.subscriptionId });
          return 'stop';
        }
        return 'next';
      }

      const context = { phase: 'handler' as const, subscriptionId: notification.subscriptionId, notification, attempt };
      if (this.state === 'closing' || this.state === 'ended') {
        // Closing: the call in progress was allowed to finish, not to be retried.
        this.report(failure, { ...context, fatal: false });
        return 'stop';
      }
      const delayMs = retryDelayMs(this.options.retryScheduleMs, attempt - 1);
      if (!retryAllowed(retryElapsedMs, delayMs, this.options.statusFrequencyMs)) {
        const error = new EwsListenerError(
          `The push handler failed ${attempt} time${attempt === 1 ? '' : 's'} for subscription ${notification.subscriptionId}; ` +
            `gave up as Exchange does when the next retry would pass the status frequency (${this.options.statusFrequencyMinutes} min)`,
          { cause: failure },
        );
        this.report(error, { ...context, fatal: true });
        void this.end({ error });
        return 'stop';
      }
      this.options.logger.warn('push adapter: delivery failed; will retry', {
        subscriptionId: notification.subscriptionId,
        attempt,
        retryInMs: delayMs,
        error: describeError(failure),
      });
      this.report(failure, { ...context, fatal: false, retryInMs: delayMs });
      if (!(await sleep(delayMs, this.stopWaits.signal))) return 'stop';
      if (this.state !== 'running' && this.state !== 'draining') return 'stop';
      retryElapsedMs += delayMs;
    }
  }

  private ack(item: QueuedNotification): void {
    let written: Promise<void>;
    try {
      written = Promise.resolve(item.ack());
    } catch (error) {
      written = Promise.reject(error);
    }
    const tracked = written.then(
      () => undefined,
      (error: unknown) => {
        // The source reports a failed checkpoint through its own error path (and redelivers).
        this.options.logger.debug('push adapter: checkpoint after acknowledgement failed', { error: describeError(error) });
      },
    );
    this.pendingAcks.add(tracked);
    void tracked.finally(() => this.pendingAcks.delete(tracked));
  }

  // ---------------------------------------------------------------------------------------------
  // Keep-alives

  private armIdle(lane: Lane): void {
    this.clearIdle(lane);
    if (this.state !== 'running' || lane.busy || !lane.connected) return;
    const dueInMs = Math.max(0, lane.lastPostAt + this.options.statusFrequencyMs - Date.now());
    lane.idleTimer = setTimeout(() => this.onIdle(lane), dueInMs);
  }

  private onIdle(lane: Lane): void {
    lane.idleTimer = undefined;
    if (this.state !== 'running' || lane.busy || !lane.connected || lane.queue.length > 0) return;
    const watermark = lane.watermark;
    const status: PushNotification = {
      subscriptionId: lane.subscriptionId,
      ...(watermark === undefined ? {} : { previousWatermark: watermark }),
      moreEvents: false,
      events: [watermark === undefined ? { type: 'Status' } : { type: 'Status', watermark }],
      ...(lane.mailbox === undefined ? {} : { mailbox: lane.mailbox }),
    };
    this.enqueue(lane, { kind: 'notification', notification: status, ack: deferAck(status), synthesized: true });
  }

  private clearIdle(lane: Lane): void {
    if (lane.idleTimer !== undefined) clearTimeout(lane.idleTimer);
    lane.idleTimer = undefined;
  }

  private clearIdleTimers(): void {
    for (const lane of this.lanes.values()) this.clearIdle(lane);
  }

  // ---------------------------------------------------------------------------------------------
  // Ending

  private async closeGracefully(): Promise<void> {
    if (this.state !== 'ended') {
      if (this.state === 'running' || this.state === 'draining') this.state = 'closing';
      this.clearIdleTimers();
      this.stopWaits.abort();
      const running = [...new Set(this.lanes.values())].map((lane) => lane.running).filter((p): p is Promise<void> => p !== undefined);
      await Promise.all(running);
      await this.end({ reason: 'closed' });
    }
    await this.done.then(
      () => undefined,
      () => undefined,
    );
  }

  /** Ends once the source has ended and every lane has delivered what it had. */
  private endIfDrained(): void {
    if (this.state !== 'draining') return;
    for (const lane of this.lanes.values()) if (lane.busy || lane.queue.length > 0) return;
    const failed = this.sourceError;
    void this.end(failed ? { error: failed.error } : { reason: 'completed' });
  }

  private async end(outcome: PushCallbackEnd | { readonly error: unknown }): Promise<void> {
    if (this.state === 'ended') return;
    this.state = 'ended';
    this.clearIdleTimers();
    this.stopWaits.abort();
    this.options.signal?.removeEventListener('abort', this.onAbort);
    // Let the checkpoints of answered notifications land before the source goes away.
    await Promise.all([...this.pendingAcks]);
    const subscription = this.subscription;
    this.unsubscribeSource();
    // `close()` and `done` promise the EWS subscription is gone: wait for the Unsubscribe (bounded
    // by the source's unsubscribeTimeoutMs).
    await sourceClosed(subscription);
    if ('error' in outcome) this.settleDone.reject(outcome.error);
    else this.settleDone.resolve(outcome);
  }

  private unsubscribeSource(): void {
    const subscription = this.subscription;
    this.subscription = undefined;
    try {
      subscription?.unsubscribe();
    } catch (error) {
      this.options.logger.error('push adapter: unsubscribing from the source threw', { error: describeError(error) });
    }
  }

  private report(error: unknown, context: ErrorContext): void {
    const onError = this.options.onError;
    if (!onError) {
      this.options.logger.error('push adapter error', { phase: context.phase, fatal: context.fatal, subscriptionId: context.subscriptionId, error: describeError(error) });
      return;
    }
    try {
      onError(error, context);
    } catch (thrown) {
      this.options.logger.error('push adapter: onError threw', { error: describeError(thrown) });
    }
  }
}

/** An error's class and message for a log line (errors of this library never carry credentials). */
function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return describeValue(error);
}
