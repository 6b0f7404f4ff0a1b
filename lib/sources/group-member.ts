/**
 * One subscriber of a {@link StreamingGroup}: its EWS subscription, what it has been told
 * (connected or not, the open gap), and the notifications it must hold back while its subscription
 * moves from one connection to the next.
 *
 * An idle member is what a group of 10,000 mailboxes holds 10,000 of, so it is one object that
 * holds only what it needs now: its subscriber directly (no sink object, no second Observable
 * chain for `notifications()`), its mailbox and a scope shared by every member that watches the
 * default folders and event types, and no AbortController, gap, Set, array or request XML until
 * one is needed. It is also its subscriber's teardown (`unsubscribe()`), its signal's abort
 * listener (`handleEvent()`) and what `sourceClosed()` asks (`whenClosed()`), so that none of those
 * needs a closure per member.
 *
 * @internal
 */
import type { Subscriber } from 'rxjs';
import type { EwsBridgeError } from '../errors.js';
import type { FolderSpec, ImpersonationTarget } from '../ews/requests.js';
import type { Logger } from '../logger.js';
import type { EventType, PushNotification } from '../model.js';
import type { DisconnectReason, GapUnrecoverableReason, SourceSignal } from './lifecycle.js';
import { StreamingGap, unrecoveredGap } from './streaming-gap.js';
import { deliver, type MemberOutput } from './notifications-of.js';

/** What one member subscribes to (one object shared by every member with the defaults). */
export interface MemberScope {
  readonly folders: readonly FolderSpec[];
  readonly subscribeToAllFolders: boolean;
  readonly eventTypes: readonly EventType[];
  /** What a lossy gap says when no gap recovery covers the member (see `GapEvent.unrecoverable`). */
  readonly unrecoverable: GapUnrecoverableReason;
  /** The member's group (in the scope, which its group shares among its members, so no member holds it). */
  readonly host: MemberHost;
}

/** What a member needs from its group. */
export interface MemberHost {
  readonly logger: Logger;
  /** Takes the member out; resolves once its subscription is removed. */
  leave(member: GroupMember): Promise<void>;
}

/**
 * What a member with gap recovery reports to instead of its subscriber: it gets every signal as the
 * engine saw it (gaps unmarked) and passes them on, with what it recovered, through {@link deliver}.
 */
export interface MemberTap {
  onSignal(signal: SourceSignal): void;
}

/**
 * A physical GetStreamingEvents response as a member sees it: whether it is still running.
 *
 * @internal
 */
export interface StreamRef {
  readonly finished: boolean;
}

/** A subscription moving between responses: the older ones it waits for, what it holds back meanwhile. */
interface Handover {
  readonly draining: Set<StreamRef>;
  held: PushNotification[] | undefined;
}

const STOPPED = 1;
const CONNECTED = 2;
const JOINED = 4;

/**
 * What a member holds only at times (subscribing, after a loss, moving between responses, after an
 * event or a gap, leaving, or with a signal of its own): one object, made the first time one is
 * needed, so an idle member that never needed any holds none.
 */
class MemberExtra {
  /** The member's flags while it holds this object (see `GroupMember.state`). */
  flags: number;
  /** Stops the member when aborted (the member is its listener). */
  signal: AbortSignal | undefined = undefined;
  /** Made only while something waits on it (a Subscribe and its retries). */
  stopController: AbortController | undefined = undefined;
  /** The subscription the server lost, reported as `previousSubscriptionId` by the next `subscribed`. */
  lostSubscriptionId: string | undefined = undefined;
  /** The open gap and the last event delivered: made once a gap opens or an event is delivered. */
  gap: StreamingGap | undefined = undefined;
  /**
   * While older streams that carried the subscription may still deliver its last events:
   * notifications from the member's `stream` wait in `held` until each has released it, so wire
   * order holds.
   */
  handover: Handover | undefined = undefined;
  /** The last Subscribe sent, until it succeeded, so teardown can wait for it and remove what it created. */
  pendingSubscribe: Promise<unknown> | undefined = undefined;
  /** The teardown's work (the Unsubscribe), once the subscriber left. */
  left: Promise<void> | undefined = undefined;
  /**
   * Subscriptions lost since the member's last healthy connection that lived
   * `retry.minConnectionLifetimeMs` (its streak, as a single source counts one): a repeated loss
   * resubscribes only after a back-off that grows with it, so a server that loses every new
   * subscription at once is not hammered. Held only while the streak lasts.
   */
  losses: number | undefined = undefined;

  constructor(flags: number) {
    this.flags = flags;
  }

  /** Whether it holds nothing but the flags (and can be dropped). */
  get empty(): boolean {
    return (
      this.signal === undefined &&
      this.stopController === undefined &&
      this.lostSubscriptionId === undefined &&
      this.gap === undefined &&
      this.handover === undefined &&
      this.pendingSubscribe === undefined &&
      this.left === undefined &&
      this.losses === undefined
    );
  }
}

/** @internal */
export class GroupMember {
  /**
   * The {@link STOPPED}, {@link CONNECTED} and {@link JOINED} bits, or, while the member needs one,
   * its {@link MemberExtra}, which holds them then: one field for both, as an idle member has no
   * extra.
   */
  private state: number | MemberExtra = 0;
  subscriptionId: string | undefined;
  /**
   * No later than the last moment the server showed it had nothing more queued for this
   * subscription: when the Subscribe, or the request of the response that carried the last
   * notification or keep-alive for it, was sent (see `GapEvent.from`).
   */
  aliveAt: Date | undefined;
  /** The stream that carries the subscription now (or will, once it opens). */
  stream: StreamRef | undefined;
  /** The group connection the member is on (set and cleared by the connection). */
  connection: object | undefined;

  constructor(
    /** The impersonated mailbox (the caller's string), set on every notification. */
    readonly mailbox: string | undefined,
    readonly scope: MemberScope,
    /** Stops the member when aborted (the member is its listener). */
    signal: AbortSignal | undefined,
    private readonly subscriber: Subscriber<never>,
    /** Where its signals go: see {@link MemberOutput}; a {@link MemberTap} when it recovers gaps. */
    private readonly output: MemberOutput | MemberTap,
  ) {
    if (signal !== undefined) {
      this.more().signal = signal;
      signal.addEventListener('abort', this, { once: true });
    }
  }

  private get host(): MemberHost {
    return this.scope.host;
  }

  private get flags(): number {
    const state = this.state;
    return typeof state === 'number' ? state : state.flags;
  }

  private set flags(value: number) {
    if (typeof this.state === 'number') this.state = value;
    else this.state.flags = value;
  }

  private get extra(): MemberExtra | undefined {
    const state = this.state;
    return typeof state === 'number' ? undefined : state;
  }

  private more(): MemberExtra {
    const state = this.state;
    if (typeof state !== 'number') return state;
    const extra = new MemberExtra(state);
    this.state = extra;
    return extra;
  }

  /** Sets one of the {@link MemberExtra} fields; drops the object once it holds nothing. */
  private setExtra<K extends Exclude<keyof MemberExtra, 'empty' | 'signal' | 'flags'>>(key: K, value: MemberExtra[K]): void {
    if (value !== undefined) {
      this.more()[key] = value;
      return;
    }
    const extra = this.extra;
    if (extra === undefined) return;
    extra[key] = value;
    if (extra.empty) this.state = extra.flags;
  }

  /** The open gap, made when first needed. */
  private openGap(): StreamingGap {
    const extra = this.more();
    return (extra.gap ??= new StreamingGap());
  }

  /** See {@link MemberExtra.pendingSubscribe}. */
  get pendingSubscribe(): Promise<unknown> | undefined {
    return this.extra?.pendingSubscribe;
  }

  set pendingSubscribe(value: Promise<unknown> | undefined) {
    this.setExtra('pendingSubscribe', value);
  }

  /** Counts one more lost subscription in the member's streak; returns the count. */
  lostAgain(): number {
    const losses = (this.extra?.losses ?? 0) + 1;
    this.setExtra('losses', losses);
    return losses;
  }

  /** Whom the member's calls impersonate. */
  get impersonation(): ImpersonationTarget | undefined {
    return this.mailbox === undefined ? undefined : { smtpAddress: this.mailbox };
  }

  /** The member's signal aborted (EventListener). */
  handleEvent(): void {
    this.complete();
  }

  /** The subscriber's teardown (rxjs calls it once the subscriber unsubscribed, errored or completed). */
  unsubscribe(): void {
    this.extra?.signal?.removeEventListener('abort', this);
    this.setExtra('left', this.host.leave(this));
  }

  /**
   * The same teardown, when the member is its subscriber's parent rather than a finalizer (RxJS 7
   * calls `parent.remove(subscription)` when a subscription with a parent ends; see
   * `attachTeardown` in streaming-group.ts).
   */
  remove(): void {
    this.unsubscribe();
  }

  /** For `sourceClosed()`: resolves once the teardown's work is done. */
  whenClosed(): Promise<void> {
    return this.extra?.left ?? Promise.resolve();
  }

  /** Aborted when the member leaves (its subscriber unsubscribed, errored or completed). */
  get stopSignal(): AbortSignal {
    const extra = this.more();
    const controller = (extra.stopController ??= new AbortController());
    if (this.stopped && !controller.signal.aborted) controller.abort(new Error('The group member left'));
    return controller.signal;
  }

  /** Drops the stop signal once nothing waits on it (it is made again when needed). */
  releaseStopSignal(): void {
    if (!this.stopped) this.setExtra('stopController', undefined);
  }

  get stopped(): boolean {
    return (this.flags & STOPPED) !== 0;
  }

  /** Whether the member is in its group (joined, not yet left). */
  get joined(): boolean {
    return (this.flags & JOINED) !== 0;
  }

  set joined(value: boolean) {
    this.flags = value ? this.flags | JOINED : this.flags & ~JOINED;
  }

  private get connected(): boolean {
    return (this.flags & CONNECTED) !== 0;
  }

  private set connected(value: boolean) {
    this.flags = value ? this.flags | CONNECTED : this.flags & ~CONNECTED;
  }

  /** Marks the member gone; nothing more reaches its subscriber. Idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.flags |= STOPPED;
    this.extra?.stopController?.abort(new Error('The group member left'));
  }

  /** Whether the subscription still waits for `stream` to hand it over. */
  drains(stream: StreamRef): boolean {
    return this.extra?.handover?.draining.has(stream) ?? false;
  }

  report(signal: SourceSignal): void {
    if (this.stopped) return;
    const output = this.output;
    if (typeof output === 'object') {
      output.onSignal(signal);
      return;
    }
    deliver(this.subscriber, output, unrecoveredGap(signal, this.scope.unrecoverable), this.host.logger);
  }

  /** Errors the subscriber (once) and stops the member. */
  fail(error: unknown): void {
    if (this.stopped) return;
    this.stop();
    this.subscriber.error(error);
  }

  /** Completes the subscriber (once) and stops the member. */
  complete(): void {
    if (this.stopped) return;
    this.stop();
    this.subscriber.complete();
  }

  /** A new subscription exists (its Subscribe was sent at `sentAt`): say so, and close a gap left by a lost one. */
  subscribed(subscriptionId: string, at: Date, sentAt: Date): void {
    this.subscriptionId = subscriptionId;
    this.aliveAt = sentAt;
    const previous = this.extra?.lostSubscriptionId;
    this.setExtra('lostSubscriptionId', undefined);
    this.report({ type: 'subscribed', subscriptionId, ...(previous === undefined ? {} : { previousSubscriptionId: previous }), at });
    const gap = this.extra?.gap?.closeOnSubscribed(subscriptionId, at);
    if (gap) this.report(gap);
  }

  /** The server lost the subscription: the next one starts a gap with events lost. Idempotent. */
  forgetSubscription(reason: DisconnectReason, error?: EwsBridgeError): void {
    if (this.subscriptionId === undefined) return;
    const lost = this.subscriptionId;
    this.setExtra('lostSubscriptionId', lost);
    this.subscriptionId = undefined;
    this.stream = undefined;
    // A lost subscription has nothing left to drain: what was held is delivered now.
    this.flushHeld();
    if (this.connected) {
      this.connected = false;
      this.report({ type: 'disconnected', subscriptionId: lost, reason, ...(error ? { error } : {}), at: new Date() });
    }
    this.openGap().lost(reason, this.aliveAt ?? new Date());
  }

  /** The member's stream opened. A member moved from one open stream to the next hears nothing. */
  connectedNow(at: Date): void {
    const subscriptionId = this.subscriptionId;
    if (this.connected || subscriptionId === undefined) return;
    this.connected = true;
    this.report({ type: 'connected', subscriptionId, at });
    const gap = this.extra?.gap?.closeOnConnected(subscriptionId, at);
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
    this.openGap().disconnected(reason, clean, this.aliveAt ?? at, true);
  }

  /**
   * A keep-alive (received at `keepAliveAt`) or a notification, on a response requested at
   * `sentAt`, showed the server has nothing more queued; `lived` when that response has been open
   * `retry.minConnectionLifetimeMs` (a healthy connection: the member's streak of losses is over).
   */
  alive(sentAt: Date, keepAliveAt: Date | undefined, lived: boolean): void {
    this.aliveAt = sentAt;
    if (lived && this.extra?.losses !== undefined) this.setExtra('losses', undefined);
    if (keepAliveAt !== undefined && this.subscriptionId !== undefined && this.connected) this.report({ type: 'keep-alive', subscriptionId: this.subscriptionId, at: keepAliveAt });
  }

  /** The server said it dropped events but kept the subscription. */
  missedEvents(at: Date): void {
    if (this.subscriptionId === undefined) return;
    this.report({ type: 'gap', subscriptionId: this.subscriptionId, reason: 'missed-events', from: this.aliveAt ?? at, to: at, subscriptionKept: true, eventsMayBeLost: true, ...this.extra?.gap?.anchor() });
  }

  /** A notification for this member's subscription arrived on `from`. */
  deliver(notification: PushNotification, from: StreamRef): void {
    const value = this.mailbox === undefined ? notification : { ...notification, mailbox: this.mailbox };
    this.openGap().delivered(notification);
    // Events on the new stream happened after those still in flight on older ones.
    const handover = this.extra?.handover;
    if (from === this.stream && handover !== undefined) {
      (handover.held ??= []).push(value);
      return;
    }
    this.report({ type: 'notification', notification: value });
  }

  /** Moves the subscription to `next`; the stream it leaves drains first if still running. */
  moveTo(next: StreamRef): void {
    const previous = this.stream;
    if (previous === next) return;
    if (previous && !previous.finished) (this.more().handover ??= { draining: new Set(), held: undefined }).draining.add(previous);
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
    const handover = this.extra?.handover;
    if (!handover?.draining.delete(stream)) return;
    if (!clean && this.subscriptionId !== undefined) {
      const at = new Date();
      this.report({ type: 'gap', subscriptionId: this.subscriptionId, reason: 'connection-error', from: this.aliveAt ?? at, to: at, subscriptionKept: true, eventsMayBeLost: true, ...this.extra?.gap?.anchor() });
    }
    if (handover.draining.size === 0) this.flushHeld();
  }

  private flushHeld(): void {
    const held = this.extra?.handover?.held;
    this.setExtra('handover', undefined);
    for (const notification of held ?? []) this.report({ type: 'notification', notification });
  }
}
