/**
 * One subscriber of a {@link StreamingGroup}: its EWS subscription, what it has been told
 * (connected or not, the open gap), and the notifications it must hold back while its subscription
 * moves from one connection to the next.
 *
 * @internal
 */
import type { EwsBridgeError } from '../errors.js';
import type { SoapRequest } from '../ews/transport.js';
import type { ImpersonationTarget } from '../ews/requests.js';
import type { PushNotification } from '../model.js';
import type { DisconnectReason, SourceSignal } from './lifecycle.js';
import { StreamingGap } from './streaming-gap.js';

/** The subscriber's side of the Observable. */
export interface MemberSink {
  next(signal: SourceSignal): void;
  error(error: unknown): void;
  complete(): void;
}

/** What one member subscribes to. */
export interface MemberScope {
  /** The impersonated mailbox, set on every notification. */
  readonly mailbox: string | undefined;
  readonly impersonation: ImpersonationTarget | undefined;
  /**
   * The member's Subscribe request. Built (and so checked) once before any I/O, then again for each
   * Subscribe, so a thousand idle members don't each hold a kilobyte of XML.
   */
  subscribeRequest(): SoapRequest;
}

/**
 * A physical GetStreamingEvents response as a member sees it: whether it is still running.
 *
 * @internal
 */
export interface StreamRef {
  readonly finished: boolean;
}

/** @internal */
export class GroupMember {
  /** Made only while something waits on it (a Subscribe and its retries): idle members hold none. */
  private stopController: AbortController | undefined;
  private isStopped = false;
  subscriptionId: string | undefined;
  /** The subscription the server lost, reported as `previousSubscriptionId` by the next `subscribed`. */
  private lostSubscriptionId: string | undefined;
  /**
   * No later than the last moment the server showed it had nothing more queued for this
   * subscription: when the Subscribe, or the request of the response that carried the last
   * notification or keep-alive for it, was sent (see `GapEvent.from`).
   */
  aliveAt: Date | undefined;
  private readonly gap = new StreamingGap();
  private connected = false;
  /** The stream that carries the subscription now (or will, once it opens). */
  stream: StreamRef | undefined;
  /**
   * Older streams that carried the subscription and may still deliver its last events: until each
   * has released it, notifications from {@link stream} wait in {@link held}, so wire order holds.
   */
  private draining: Set<StreamRef> | undefined;
  private held: PushNotification[] | undefined;
  /** The last Subscribe sent, so teardown can wait for it and remove what it created. */
  pendingSubscribe: Promise<unknown> | undefined;

  constructor(
    readonly scope: MemberScope,
    private readonly sink: MemberSink,
  ) {}

  /** Aborted when the member leaves (its subscriber unsubscribed, errored or completed). */
  get stopSignal(): AbortSignal {
    this.stopController ??= new AbortController();
    if (this.isStopped && !this.stopController.signal.aborted) this.stopController.abort(new Error('The group member left'));
    return this.stopController.signal;
  }

  /** Drops the stop signal once nothing waits on it (it is made again when needed). */
  releaseStopSignal(): void {
    if (!this.isStopped) this.stopController = undefined;
  }

  get stopped(): boolean {
    return this.isStopped;
  }

  /** Marks the member gone; nothing more reaches its subscriber. Idempotent. */
  stop(): void {
    if (this.isStopped) return;
    this.isStopped = true;
    this.stopController?.abort(new Error('The group member left'));
  }

  /** Whether the subscription still waits for `stream` to hand it over. */
  drains(stream: StreamRef): boolean {
    return this.draining?.has(stream) ?? false;
  }

  report(signal: SourceSignal): void {
    if (!this.stopped) this.sink.next(signal);
  }

  /** Errors the subscriber (once) and stops the member. */
  fail(error: unknown): void {
    if (this.stopped) return;
    this.stop();
    this.sink.error(error);
  }

  /** Completes the subscriber (once) and stops the member. */
  complete(): void {
    if (this.stopped) return;
    this.stop();
    this.sink.complete();
  }

  /** A new subscription exists (its Subscribe was sent at `sentAt`): say so, and close a gap left by a lost one. */
  subscribed(subscriptionId: string, at: Date, sentAt: Date): void {
    this.subscriptionId = subscriptionId;
    this.aliveAt = sentAt;
    const previous = this.lostSubscriptionId;
    this.lostSubscriptionId = undefined;
    this.report({ type: 'subscribed', subscriptionId, ...(previous === undefined ? {} : { previousSubscriptionId: previous }), at });
    const gap = this.gap.closeOnSubscribed(subscriptionId, at);
    if (gap) this.report(gap);
  }

  /** The server lost the subscription: the next one starts a gap with events lost. Idempotent. */
  forgetSubscription(reason: DisconnectReason): void {
    if (this.subscriptionId === undefined) return;
    this.lostSubscriptionId = this.subscriptionId;
    this.subscriptionId = undefined;
    this.stream = undefined;
    // A lost subscription has nothing left to drain: what was held is delivered now.
    this.flushHeld();
    if (this.connected) {
      this.connected = false;
      this.report({ type: 'disconnected', subscriptionId: this.lostSubscriptionId, reason, at: new Date() });
    }
    this.gap.lost(reason, this.aliveAt ?? new Date());
  }

  /** The member's stream opened. A member moved from one open stream to the next hears nothing. */
  connectedNow(at: Date): void {
    const subscriptionId = this.subscriptionId;
    if (this.connected || subscriptionId === undefined) return;
    this.connected = true;
    this.report({ type: 'connected', subscriptionId, at });
    const gap = this.gap.closeOnConnected(subscriptionId, at);
    if (gap) this.report(gap);
  }

  /** The member's stream ended; `clean` when the server finished it properly (nothing can be lost). */
  disconnected(reason: DisconnectReason, clean: boolean, error: EwsBridgeError | undefined, at: Date): void {
    const subscriptionId = this.subscriptionId;
    if (subscriptionId === undefined) return;
    if (this.connected) {
      this.connected = false;
      this.report({ type: 'disconnected', subscriptionId, reason, ...(error ? { error } : {}), at });
    }
    this.gap.disconnected(reason, clean, this.aliveAt ?? at, true);
  }

  /** A keep-alive or a notification, on a response requested at `sentAt`, showed the server has nothing more queued. */
  alive(sentAt: Date, at: Date, keepAlive: boolean): void {
    this.aliveAt = sentAt;
    if (keepAlive && this.subscriptionId !== undefined && this.connected) this.report({ type: 'keep-alive', subscriptionId: this.subscriptionId, at });
  }

  /** The server said it dropped events but kept the subscription. */
  missedEvents(at: Date): void {
    if (this.subscriptionId === undefined) return;
    this.report({ type: 'gap', subscriptionId: this.subscriptionId, reason: 'missed-events', from: this.aliveAt ?? at, to: at, subscriptionKept: true, eventsMayBeLost: true, ...this.gap.anchor() });
  }

  /** A notification for this member's subscription arrived on `from`. */
  deliver(notification: PushNotification, from: StreamRef): void {
    const value = this.scope.mailbox === undefined ? notification : { ...notification, mailbox: this.scope.mailbox };
    this.gap.delivered(notification);
    // Events on the new stream happened after those still in flight on older ones.
    if (from === this.stream && this.draining !== undefined) {
      (this.held ??= []).push(value);
      return;
    }
    this.report({ type: 'notification', notification: value });
  }

  /** Moves the subscription to `next`; the stream it leaves drains first if still running. */
  moveTo(next: StreamRef): void {
    const previous = this.stream;
    if (previous === next) return;
    if (previous && !previous.finished) (this.draining ??= new Set()).add(previous);
    this.stream = next;
  }

  /** `stream` lost the subscription to someone else: it has nothing left to drain for us. */
  detachFrom(stream: StreamRef): void {
    if (this.stream === stream) this.stream = undefined;
  }

  /**
   * `stream` will carry nothing more of this subscription: the server moved it (a clean release),
   * or the stream ended. When it ended uncleanly, envelopes it swallowed may have held events.
   */
  release(stream: StreamRef, clean: boolean): void {
    if (!this.draining?.delete(stream)) return;
    if (!clean && this.subscriptionId !== undefined) {
      const at = new Date();
      this.report({ type: 'gap', subscriptionId: this.subscriptionId, reason: 'connection-error', from: this.aliveAt ?? at, to: at, subscriptionKept: true, eventsMayBeLost: true, ...this.gap.anchor() });
    }
    if (this.draining.size === 0) this.flushHeld();
  }

  private flushHeld(): void {
    this.draining = undefined;
    const held = this.held;
    this.held = undefined;
    for (const notification of held ?? []) this.report({ type: 'notification', notification });
  }
}
