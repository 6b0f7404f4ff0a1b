/**
 * One logical GetStreamingEvents connection of a {@link StreamingGroup}: up to 200 subscriptions on
 * one chunked response, demultiplexed by `SubscriptionId`.
 *
 * EWS cannot add a subscription to a live response, so a membership change opens a new response
 * with the new id list **before** the old one is let go ("make before break"): the server moves
 * each subscription to the new response and says so on the old one
 * (`ErrorNewEventStreamConnectionOpened` for its id). Until then the old response may still carry
 * that subscription's last events, so they are delivered and the new response's notifications for
 * it wait (per subscription wire order holds, and nothing written into the old response is lost).
 * The old response is closed once every subscription it carried has been released.
 *
 * Failures of the whole response (cut socket, silence, 5xx, throttling) are retried with the
 * sources' back-off and reported to every member; errors naming `ErrorSubscriptionIds` concern only
 * those members.
 *
 * @internal
 */
import { EwsConnectionError, EwsConnectionTakenError, EwsResponseError, EwsBridgeError } from '../errors.js';
import type { ResponseMessage } from '../ews/messages.js';
import { SOAP_ACTIONS, buildGetStreamingEventsRequest, type ImpersonationTarget } from '../ews/requests.js';
import { responseMessageError } from '../ews/response-errors.js';
import { openStream, type EwsEndpointOptions } from '../ews/transport.js';
import type { ResolvedRetryOptions } from './backoff.js';
import { abortableDelay, livedLongEnough, planFor, retryingSignal, shortLivedConnection, withRetry, type FailurePlan, type RetryNotice } from './backoff.js';
import type { GroupMember, StreamRef } from './group-member.js';
import type { DisconnectReason } from './lifecycle.js';
import type { Logger } from '../logger.js';
import type { ExchangeVersion } from '../model.js';

/** What a connection needs from its group. */
export interface ConnectionHost {
  readonly settings: ConnectionSettings;
  /** Endpoint options for GetStreamingEvents (the group's pool, credentials, anchor, affinity). */
  endpoint(): EwsEndpointOptions;
  /** Whom GetStreamingEvents impersonates: the group's anchor mailbox, when members use impersonation. */
  streamImpersonation(): ImpersonationTarget | undefined;
  /** The member that holds `subscriptionId` now, if any. */
  memberOf(subscriptionId: string): GroupMember | undefined;
  /**
   * The server lost the member's subscription (`error` says how, for the member's `disconnected`
   * signal): take it off its connection and subscribe it anew — at once, or after the usual
   * back-off when `backOffFrom` (the error that lost it) is given.
   */
  lost(member: GroupMember, reason: DisconnectReason, error: unknown, backOffFrom: unknown): void;
  /** The member cannot go on: error its subscriber with `error`. */
  failMember(member: GroupMember, error: unknown): void;
  /** The connection has no member left and has stopped. */
  emptied(connection: GroupConnection): void;
}

/** The group's settings a connection uses. */
export interface ConnectionSettings {
  readonly connectionTimeoutMinutes: number;
  readonly heartbeatTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly requestServerVersion: ExchangeVersion;
  readonly onConnectionTaken: 'error' | 'reconnect';
  readonly regroupDelayMs: number;
  readonly retry: ResolvedRetryOptions;
  readonly logger: Logger;
}

/** Why we closed a response ourselves. */
class Released extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Released';
  }
}

/** One physical GetStreamingEvents response. */
class GroupStream implements StreamRef {
  readonly controller = new AbortController();
  finished = false;
  opened = false;
  /** It delivered at least one envelope. */
  healthy = false;
  /** When its request was sent: every envelope on it was produced later (the safe start of a gap). */
  readonly sentAt = new Date();
  /** `performance.now()` when the response started. */
  openedAtMs = 0;
  closedByServer = false;
  /** A newer response took its place; it only drains. */
  draining = false;
  inStreamError: EwsResponseError | undefined;
  drainTimer: NodeJS.Timeout | undefined;
  done!: Promise<void>;
  /** Settles once the response has started (the server took the request) or the stream ended. */
  readonly started: Promise<void>;
  markStarted!: () => void;

  constructor(readonly members: readonly GroupMember[]) {
    this.started = new Promise<void>((resolve) => (this.markStarted = resolve));
  }

  abort(reason: Error): void {
    this.controller.abort(reason);
  }
}

/** @internal */
export class GroupConnection {
  /**
   * Its members, in the order they were added: an array, not a Set (a hash entry per member of a
   * large group); whether a member is on this connection is `member.connection === this`. The
   * newest response shares this array when every member has a subscription (the idle case), so
   * it is replaced, not changed, once a response holds it (see {@link membersShared}).
   */
  members: readonly GroupMember[] = [];
  /** Whether a response holds {@link members} as its own list. */
  private membersShared = false;
  private readonly stopController = new AbortController();
  private readonly streams = new Set<GroupStream>();
  private running: Promise<void> | undefined;
  private reopenTimer: NodeJS.Timeout | undefined;
  private reopenDue = false;
  private wake: (() => void) | undefined;

  constructor(private readonly host: ConnectionHost) {}

  private get settings(): ConnectionSettings {
    return this.host.settings;
  }

  private get stopSignal(): AbortSignal {
    return this.stopController.signal;
  }

  /** Live physical responses (more than one only while a membership change drains the old one). */
  get streamCount(): number {
    return this.streams.size;
  }

  /** Adds a subscribed member; the connection (re)opens with it after `regroupDelayMs`. */
  add(member: GroupMember): void {
    if (member.connection !== this) {
      member.connection = this;
      this.ownMembers().push(member);
    }
    this.scheduleReopen(this.settings.regroupDelayMs);
    this.running ??= this.run();
  }

  /**
   * Takes a member off. Its id stays in the live response's list (EWS cannot shrink one), which is
   * harmless: the group ignores notifications for ids it no longer holds.
   */
  remove(member: GroupMember): void {
    if (member.connection !== this) return;
    member.connection = undefined;
    const members = this.ownMembers();
    members.splice(members.indexOf(member), 1);
    for (const stream of this.streams) if (stream.draining) this.releaseIfDrained(stream);
    if (this.members.length === 0) {
      for (const stream of this.streams) stream.abort(new Released('The connection has no member left'));
    }
  }

  /** {@link members}, copied first when a response shares it, to be changed. */
  private ownMembers(): GroupMember[] {
    if (this.membersShared) {
      this.members = [...this.members];
      this.membersShared = false;
    }
    return this.members as GroupMember[];
  }

  /** Whether `member` is on this connection. */
  has(member: GroupMember): boolean {
    return member.connection === this;
  }

  /** Asks for a new response (with the current id list) after `delayMs`. */
  scheduleReopen(delayMs: number): void {
    if (this.reopenTimer !== undefined || this.stopSignal.aborted) return;
    this.reopenTimer = setTimeout(() => {
      this.reopenTimer = undefined;
      this.reopenDue = true;
      this.wake?.();
    }, delayMs);
  }

  /** Stops everything now: every response closes, no signal is sent. */
  stop(): void {
    if (this.stopSignal.aborted) return;
    clearTimeout(this.reopenTimer);
    this.reopenTimer = undefined;
    this.stopController.abort(new Released('The group was closed'));
  }

  /** Settles once the connection's loop has ended. */
  async stopped(): Promise<void> {
    await this.running;
    await Promise.all([...this.streams].map((stream) => stream.done.catch(() => undefined)));
  }

  // -------------------------------------------------------------------------------------------

  private async run(): Promise<void> {
    try {
      // Members that join together (a service starting up) share the first response.
      await abortableDelay(this.settings.regroupDelayMs, this.stopSignal);
      while (!this.stopSignal.aborted && this.members.length > 0) {
        await withRetry(() => this.connectOnce(), {
          retry: this.settings.retry,
          signal: this.stopSignal,
          plan: (error) => this.plan(error),
          onRetry: (notice) => this.onRetry(notice),
          logger: this.settings.logger,
        });
      }
    } catch (error) {
      if (!this.stopSignal.aborted) {
        for (const member of [...this.members]) this.host.failMember(member, this.finalError(error, member));
      }
    } finally {
      this.running = undefined;
      if (!this.stopSignal.aborted) {
        if (this.members.length > 0) this.running = this.run();
        else {
          this.stop();
          this.host.emptied(this);
        }
      }
    }
  }

  private finalError(error: unknown, member: GroupMember): unknown {
    if (error instanceof EwsResponseError && error.action === 'connection-taken') {
      return new EwsConnectionTakenError([member.subscriptionId ?? ''], { cause: error });
    }
    return error;
  }

  private plan(error: unknown): FailurePlan {
    if (this.stopSignal.aborted) return { kind: 'fatal', reason: 'connection-error' };
    const plan = planFor(error);
    if (plan.kind === 'resubscribe') {
      for (const member of [...this.members]) this.host.lost(member, plan.reason, error, plan.backOff ? error : undefined);
    }
    if (plan.kind === 'connection-taken' && this.settings.onConnectionTaken === 'reconnect') return { kind: 'retry', reason: plan.reason };
    return plan;
  }

  private onRetry(notice: RetryNotice): void {
    const signal = retryingSignal(notice, this.settings.logger, 'streaming');
    if (signal) for (const member of [...this.members]) member.report(signal);
  }

  /**
   * One attempt: a response for the current members, replaced (make before break) whenever the
   * membership changes, held until the last one ends. Resolves after a healthy response ended (a
   * fresh streak follows), throws when it failed before that or the failure needs the retry logic.
   */
  private async connectOnce(): Promise<void> {
    if (this.members.length === 0) return;
    let stream = this.open();
    for (;;) {
      if (!(await this.reopenOrEnd(stream))) break;
      // The server must have taken this request before the next one goes out: taken in the other
      // order, the older response would take the subscriptions back from the newer one.
      await stream.started;
      if (stream.finished || this.members.length === 0) break;
      stream.draining = true;
      stream = this.open();
      for (const other of this.streams) if (other !== stream && other.draining) this.releaseIfDrained(other);
    }
    await this.settle(stream);
  }

  /** Resolves `true` when a new response is due, `false` when `stream` ended. */
  private reopenOrEnd(stream: GroupStream): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const wake = (): void => finish(true);
      const finish = (reopen: boolean): void => {
        // An older call's stream may end later: it must not take the current call's wake-up away.
        if (this.wake === wake) this.wake = undefined;
        resolve(reopen);
      };
      stream.done.then(
        () => finish(false),
        () => finish(false),
      );
      if (this.reopenDue) finish(true);
      else this.wake = wake;
    });
  }

  /** Accounts for the end of the current response the way a single-subscription source does. */
  private async settle(stream: GroupStream): Promise<void> {
    try {
      await stream.done;
      if (!stream.healthy) throw new EwsConnectionError('The server ended the streaming response without sending an envelope');
    } catch (caught) {
      if (this.stopSignal.aborted) throw this.stopSignal.reason;
      if (caught instanceof Released) return;
      const error = stream.inStreamError ?? caught;
      const plan = this.plan(error);
      if (stream.opened) this.disconnectMembers(stream, plan.reason, false, error instanceof EwsBridgeError ? error : undefined);
      if (stream.healthy && this.livedLongEnough(stream) && (plan.kind === 'retry' || plan.kind === 'resubscribe')) return;
      throw error;
    }
    this.disconnectMembers(stream, stream.closedByServer ? 'closed' : 'ended', true, undefined);
    // Ended cleanly, but so soon that reopening at once could become a request loop.
    const flapped = shortLivedConnection(performance.now() - stream.openedAtMs, this.settings.retry);
    if (flapped) throw flapped;
  }

  private livedLongEnough(stream: GroupStream): boolean {
    // Not through shortLivedConnection: route() asks this for every envelope, and an Error (a stack
    // trace and a message) per envelope of a young connection was a third of the CPU of a stream
    // of one-event envelopes.
    return stream.opened && livedLongEnough(performance.now() - stream.openedAtMs, this.settings.retry);
  }

  private disconnectMembers(stream: GroupStream, reason: DisconnectReason, clean: boolean, error: EwsBridgeError | undefined): void {
    const at = new Date();
    for (const member of stream.members) if (member.stream === stream && this.has(member)) member.disconnected(reason, clean, error, at);
  }

  /** Opens a response for every member that holds a subscription, and moves them onto it. */
  private open(): GroupStream {
    clearTimeout(this.reopenTimer);
    this.reopenTimer = undefined;
    this.reopenDue = false;
    // Every member has a subscription (nothing resubscribes): the response shares the list.
    let members = this.members;
    if (members.every((member) => member.subscriptionId !== undefined)) this.membersShared = true;
    else members = members.filter((member) => member.subscriptionId !== undefined);
    const stream = new GroupStream(members);
    for (const member of members) member.moveTo(stream);
    this.streams.add(stream);
    const onStop = (): void => stream.abort(this.stopSignal.reason as Error);
    this.stopSignal.addEventListener('abort', onStop, { once: true });
    const s = this.settings;
    const impersonation = this.host.streamImpersonation();
    const ids = members.map((member) => member.subscriptionId as string);
    const running =
      ids.length === 0
        ? Promise.reject(new Released('No subscription to stream'))
        : openStream(
            {
              soapAction: SOAP_ACTIONS.GetStreamingEvents,
              // Built each time it is sent, not kept: the response lives for up to 30 minutes, and
              // its request's XML (~130 bytes per subscription) would live as long.
              get envelope() {
                return buildGetStreamingEventsRequest({
                  subscriptionIds: ids,
                  connectionTimeoutMinutes: s.connectionTimeoutMinutes,
                  requestServerVersion: s.requestServerVersion,
                  ...(impersonation ? { impersonation } : {}),
                });
              },
            },
            {
              ...this.host.endpoint(),
              signal: stream.controller.signal,
              requestTimeoutMs: s.requestTimeoutMs,
              heartbeatTimeoutMs: s.heartbeatTimeoutMs,
              onOpen: () => this.opened(stream),
              onEnvelope: (envelope) => {
                if (envelope.body.type !== 'response') return;
                this.route(stream, envelope.body.messages);
              },
            },
          );
    stream.done = running.then(
      () => this.ended(stream, onStop, true),
      (error: unknown) => {
        this.ended(stream, onStop, this.endedCleanly(stream, error));
        throw error;
      },
    );
    // Draining responses are never awaited by the loop: their ends are handled in ended().
    stream.done.catch(() => undefined);
    return stream;
  }

  private endedCleanly(stream: GroupStream, error: unknown): boolean {
    if (error instanceof Released) return true;
    // The server moved our subscriptions to the newer response: nothing more was coming here.
    const taken = stream.inStreamError ?? error;
    return stream.draining && taken instanceof EwsResponseError && taken.action === 'connection-taken';
  }

  private ended(stream: GroupStream, onStop: () => void, clean: boolean): void {
    stream.finished = true;
    stream.markStarted();
    clearTimeout(stream.drainTimer);
    this.stopSignal.removeEventListener('abort', onStop);
    this.streams.delete(stream);
    for (const member of stream.members) member.release(stream, clean);
  }

  private opened(stream: GroupStream): void {
    stream.opened = true;
    stream.openedAtMs = performance.now();
    stream.markStarted();
    const at = new Date();
    this.settings.logger.info('EWS streaming group connection open', { subscriptions: stream.members.length });
    for (const member of stream.members) if (member.stream === stream && this.has(member)) member.connectedNow(at);
    // The server has the newer list now; an older response that never hands its subscriptions
    // over (no ErrorNewEventStreamConnectionOpened) is closed after the heartbeat timeout.
    for (const other of this.streams) {
      if (other === stream || !other.draining || other.drainTimer !== undefined) continue;
      other.drainTimer = setTimeout(() => other.abort(new EwsConnectionError('The replaced streaming response did not hand its subscriptions over')), this.settings.heartbeatTimeoutMs);
    }
  }

  /** Closes a draining response once none of its members waits for it. */
  private releaseIfDrained(stream: GroupStream): void {
    if (!stream.draining || stream.finished) return;
    const waiting = stream.members.some((member) => this.has(member) && member.drains(stream));
    if (!waiting) stream.abort(new Released('Every subscription moved to the newer response'));
  }

  /** Hands each message's content to the members it concerns. */
  private route(stream: GroupStream, messages: readonly ResponseMessage[]): void {
    // A receipt time only where a signal carries one: most envelopes (notifications) need none.
    let at: Date | undefined;
    let drained = false;
    let keepAlive = false;
    for (const message of messages) {
      if (message.kind !== 'GetStreamingEvents') continue;
      const error = responseMessageError(message);
      if (error) {
        if (error.subscriptionIds.length === 0) {
          // The whole response is over (the server says Closed with it): don't wait for its end.
          stream.inStreamError = error;
          stream.abort(error);
          return;
        }
        at ??= new Date();
        for (const id of error.subscriptionIds) this.memberError(stream, id, error, at);
        continue;
      }
      for (const notification of message.notifications) {
        const member = this.host.memberOf(notification.subscriptionId);
        if (member && this.has(member)) member.deliver(notification, stream);
        else this.settings.logger.debug('EWS streaming notification for a subscription no longer held; ignored', { subscriptionId: notification.subscriptionId });
      }
      if (message.connectionStatus === 'OK' && message.notifications.length === 0) keepAlive = true;
      if (message.notifications.length > 0 || message.connectionStatus === 'OK') drained = true;
      if (message.connectionStatus === 'Closed') stream.closedByServer = true;
    }
    stream.healthy = true;
    if (drained) {
      const lived = this.livedLongEnough(stream);
      const keepAliveAt = keepAlive ? (at ?? new Date()) : undefined;
      for (const member of stream.members) if (member.stream === stream && this.has(member)) member.alive(stream.sentAt, keepAliveAt, lived);
    }
  }

  private memberError(stream: GroupStream, subscriptionId: string, error: EwsResponseError, at: Date): void {
    const member = this.host.memberOf(subscriptionId);
    if (!member || !this.has(member)) {
      this.settings.logger.debug('EWS streaming error for a subscription no longer held; ignored', { responseCode: error.responseCode });
      return;
    }
    if (error.action === 'connection-taken') {
      if (member.stream !== stream) {
        // Our own newer response took it: the expected end of a membership change.
        member.release(stream, true);
        this.releaseIfDrained(stream);
        return;
      }
      if (this.settings.onConnectionTaken === 'error') {
        this.host.failMember(member, new EwsConnectionTakenError([subscriptionId], { cause: error }));
        return;
      }
      member.disconnected('connection-taken', false, error, at);
      // That response will carry nothing more of it: the next one must not wait for it to drain.
      member.detachFrom(stream);
      this.scheduleReopen(Math.max(this.settings.regroupDelayMs, this.settings.retry.minDelayMs));
      return;
    }
    if (error.action === 'recover-missed') {
      member.missedEvents(at);
      return;
    }
    const plan = planFor(error);
    if (plan.kind === 'fatal') {
      this.host.failMember(member, error);
      return;
    }
    // Lost, or a transient error of this one subscription: a new subscription is the only way on.
    const immediately = plan.kind === 'resubscribe' && !plan.backOff;
    this.host.lost(member, plan.kind === 'resubscribe' ? plan.reason : 'subscription-lost', error, immediately ? undefined : error);
  }
}
