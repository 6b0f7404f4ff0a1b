/**
 * Many streaming subscriptions on few connections: what a service that watches hundreds of
 * mailboxes needs. Exchange allows 3 (2013) to 10 (2016+) streaming connections per mailbox and
 * up to 200 subscriptions per GetStreamingEvents, and Microsoft's guidance is to group mailboxes
 * that share a mailbox server behind one anchor mailbox. A `StreamingGroup` is one such group.
 *
 * @packageDocumentation
 */
import type { Agent } from 'node:http';
import { Observable, type Subscriber } from 'rxjs';
import { EwsBridgeError, EwsProtocolError } from '../errors.js';
import type { SubscriptionAffinity } from '../ews/affinity.js';
import { SOAP_ACTIONS, buildStreamingSubscribeRequest, type ImpersonationTarget } from '../ews/requests.js';
import type { EwsEndpointOptions, SoapRequest } from '../ews/transport.js';
import { EVENT_TYPES, type PushNotification } from '../model.js';
import { planForCall, retryingSignal, withRetry, type FailurePlan } from './backoff.js';
import { postStreamingSubscribe, sourceEndpoint, unsubscribeQuietly } from './endpoint.js';
import { GroupConnection, type ConnectionHost, type ConnectionSettings } from './group-connection.js';
import { GroupMember, type MemberHost, type MemberScope } from './group-member.js';
import { SIGNALS, deliver, type MemberOutput } from './notifications-of.js';
import type { DisconnectReason, LifecycleListener, SourceSignal } from './lifecycle.js';
import { Limiter } from './limiter.js';
import { setSourceClosed, waitClosed, type ClosedWaiter } from './source-closed.js';
import { openResolved } from './session-observable.js';
import { intInRange, nonNegativeMs, optionalAbortSignal, optionalFunction, requireObject } from '../validate.js';
import { resolveConnectionOptions, resolveScope, type ConnectionOptions, type ResolvedConnectionOptions, type SubscriptionScopeOptions } from './options.js';
import { GapRecovery, type GapRecoveryConfig } from './gap-recovery.js';
import type { GapUnrecoverableReason } from './lifecycle.js';
import {
  resolveRecovery,
  resolveStreamSettings,
  type ResolvedStreamingOptions,
  type StreamingConnectionOptions,
  type StreamingRecoveryOptions,
} from './streaming-options.js';

/** Options of a {@link StreamingGroup}: where the mailboxes are and how the group's connections behave. */
export interface StreamingGroupOptions extends ConnectionOptions, StreamingConnectionOptions {
  /**
   * The group's anchor: sent as `X-AnchorMailbox` on every call, and impersonated by
   * GetStreamingEvents when members watch other mailboxes. Give the first mailbox of an affinity
   * group (mailboxes with the same Autodiscover `GroupingInformation`). Default: the `mailbox` of
   * the first member that joins.
   */
  readonly anchorMailbox?: string;
  /** Subscriptions per GetStreamingEvents connection, 1–200. Default `200` (the EWS maximum). */
  readonly maxSubscriptionsPerConnection?: number;
  /**
   * How long membership changes are collected before a connection is opened or replaced: members
   * that join within it share one new response. Default `100`.
   */
  readonly regroupDelayMs?: number;
  /** Subscribe requests in flight at once (the server throttles bursts). Default `8`. */
  readonly maxConcurrentSubscribes?: number;
  /** Closing: aborting it is {@link StreamingGroup.close}. Default: none. */
  readonly signal?: AbortSignal;
}

/** What one member of a {@link StreamingGroup} watches (in one group either every member gives a `mailbox` or none does). */
export interface StreamingGroupMemberOptions extends SubscriptionScopeOptions, StreamingRecoveryOptions {
  /** Stops this member: its Observable completes and its subscription is removed. Default: none. */
  readonly signal?: AbortSignal;
  /** Lifecycle signals of {@link StreamingGroup.notifications} (see `streamingNotifications`). Default: none. */
  readonly onLifecycle?: LifecycleListener;
}

/** What a {@link StreamingGroup} holds right now. */
export interface StreamingGroupStats {
  /** Members whose subscription exists on the server. */
  readonly subscriptions: number;
  /** Members, subscribed or still subscribing. */
  readonly members: number;
  /** Logical connections (each up to `maxSubscriptionsPerConnection` subscriptions). */
  readonly connections: number;
  /** Open GetStreamingEvents responses (briefly one more per connection while membership changes). */
  readonly streams: number;
}

interface ResolvedGroupOptions extends ConnectionSettings {
  readonly source: ResolvedConnectionOptions;
  readonly maxSubscriptionsPerConnection: number;
  readonly maxConcurrentSubscribes: number;
  /** Whom GetStreamingEvents impersonates, when not the anchor (a single source: its own mailbox). */
  readonly streamImpersonation?: ImpersonationTarget;
}

/** Options resolved by a single streaming source for its private group (not resolved again). */
class PreResolved {
  constructor(readonly options: ResolvedGroupOptions) {}
}

/**
 * A single streaming source's group: one member, its own connection opened at once (no regroup
 * delay), one Subscribe at a time, GetStreamingEvents as the member's mailbox; closed by the source's
 * subscriber, so the group's own signal is not the source's (that one completes the member).
 */
function soloGroupOptions(resolved: ResolvedStreamingOptions): ResolvedGroupOptions {
  return {
    source: { ...resolved, signal: undefined },
    connectionTimeoutMinutes: resolved.connectionTimeoutMinutes,
    heartbeatTimeoutMs: resolved.heartbeatTimeoutMs,
    requestTimeoutMs: resolved.requestTimeoutMs,
    requestServerVersion: resolved.requestServerVersion,
    onConnectionTaken: resolved.onConnectionTaken,
    regroupDelayMs: 0,
    retry: resolved.retry,
    logger: resolved.logger,
    maxSubscriptionsPerConnection: 1,
    maxConcurrentSubscribes: 1,
    ...(resolved.impersonation ? { streamImpersonation: resolved.impersonation } : {}),
  };
}

let solo: ((resolved: ResolvedStreamingOptions, unrecoverable: GapUnrecoverableReason) => Observable<SourceSignal>) | undefined;

/**
 * The single streaming source (`streamingSignals`) on the group's engine: per subscriber, a private
 * group whose one member is the subscription. The subscriber's teardown is the member's (EWS
 * Unsubscribe) and then the group's close (its pool); `sourceClosed()` waits for both.
 * `unrecoverable` is what a lossy gap says without recovery.
 *
 * @internal
 */
export function soloStreamingSignals(resolved: ResolvedStreamingOptions, unrecoverable: GapUnrecoverableReason): Observable<SourceSignal> {
  return (solo as NonNullable<typeof solo>)(resolved, unrecoverable);
}

function resolveGroupOptions(options: StreamingGroupOptions): ResolvedGroupOptions {
  requireObject(options, 'options');
  for (const member of ['mailbox', 'folders', 'subscribeToAllFolders', 'eventTypes'] as const) {
    if (member in options) throw new TypeError(`${member} is a member option: give it to group.notifications() / group.signals()`);
  }
  const source = resolveConnectionOptions(options);
  // Capped at MAX_TIMER_MS by nonNegativeMs: a longer one would fire at once.
  const regroupDelayMs = nonNegativeMs(options.regroupDelayMs, 'regroupDelayMs', 100);
  return {
    source,
    ...resolveStreamSettings(options),
    requestTimeoutMs: source.requestTimeoutMs,
    requestServerVersion: source.requestServerVersion,
    regroupDelayMs,
    retry: source.retry,
    logger: source.logger,
    maxSubscriptionsPerConnection: intInRange(options.maxSubscriptionsPerConnection, 'maxSubscriptionsPerConnection', 200, 1, 200),
    maxConcurrentSubscribes: intInRange(options.maxConcurrentSubscribes, 'maxConcurrentSubscribes', 8, 1, 1000),
  };
}

/** What every member that gives no folders, subscribeToAllFolders, eventTypes or checkpoint watches. */
const DEFAULT_FOLDERS = Object.freeze(['inbox'] as const);

/** The scope a group shares among every member that gives no folders, subscribeToAllFolders, eventTypes or checkpoint. */
function defaultScope(host: MemberHost): MemberScope {
  return Object.freeze({ folders: DEFAULT_FOLDERS, subscribeToAllFolders: false, eventTypes: EVENT_TYPES, unrecoverable: 'no-store', host });
}

/** A member's options, checked. */
interface MemberOptions {
  readonly mailbox: string | undefined;
  readonly scope: MemberScope;
  readonly signal: AbortSignal | undefined;
  /** Its gap recovery, when it gave a checkpoint store (and recovery applies). */
  readonly recovery: GapRecoveryConfig | undefined;
}

/** A member's Subscribe request, built when it is sent, so that idle members hold no XML. */
function subscribeRequest(group: ResolvedGroupOptions, mailbox: string | undefined, scope: MemberScope): SoapRequest {
  return {
    soapAction: SOAP_ACTIONS.Subscribe,
    envelope: buildStreamingSubscribeRequest({
      folders: scope.folders,
      subscribeToAllFolders: scope.subscribeToAllFolders,
      eventTypes: scope.eventTypes,
      requestServerVersion: group.requestServerVersion,
      ...(mailbox === undefined ? {} : { impersonation: { smtpAddress: mailbox } }),
    }),
  };
}

/** A member's options checked (with the group's rules). */
function resolveMember(group: ResolvedGroupOptions, shared: MemberScope, options: StreamingGroupMemberOptions): MemberOptions {
  requireObject(options, 'member options');
  const scope = resolveScope(options);
  const signal = optionalAbortSignal(options.signal, 'signal');
  optionalFunction(options.onLifecycle, 'onLifecycle');
  const { mailbox, folders, subscribeToAllFolders, eventTypes } = scope;
  // A store cannot recover a subscription to every folder (SyncFolderItems works per folder).
  const unrecoverable: GapUnrecoverableReason = subscribeToAllFolders && options.checkpoint !== undefined && options.recoverGaps !== false ? 'all-folders' : 'no-store';
  const memberScope =
    options.folders === undefined && options.subscribeToAllFolders === undefined && options.eventTypes === undefined
      ? shared
      : { folders, subscribeToAllFolders, eventTypes, unrecoverable, host: shared.host };
  // The member's own view of the source options, for its gap recovery: the group's connection
  // with the member's scope (SyncFolderItems anchored on its mailbox).
  const recovery =
    options.checkpoint === undefined && options.recoverGaps === undefined && options.recovery === undefined
      ? undefined
      : resolveRecovery(options, { ...group.source, ...scope, anchorMailbox: mailbox ?? group.source.anchorMailbox, signal: undefined });
  return { mailbox, scope: memberScope, signal, recovery };
}

/**
 * A group of streaming subscriptions that share GetStreamingEvents connections: up to
 * `maxSubscriptionsPerConnection` (200) subscriptions per connection, demultiplexed by
 * `SubscriptionId` to one cold Observable per member.
 *
 * ```ts
 * const group = new StreamingGroup({ url, auth, anchorMailbox: 'room-001@contoso.com' });
 * for (const mailbox of mailboxes) group.notifications({ mailbox }).subscribe(handle);
 * // …
 * await group.close(); // completes every member, unsubscribes, closes the connections
 * ```
 *
 * Each member behaves like `streamingNotifications` (same signals, same gap accounting, same
 * errors), with these group rules:
 *
 * - All members share one endpoint, credentials, pool and affinity: one `X-AnchorMailbox`, one
 *   `X-BackEndOverrideCookie`. Put mailboxes of different mailbox servers (Autodiscover
 *   `GroupingInformation`) in different groups.
 * - Joining or leaving never loses an event of another member: a connection whose membership grows
 *   opens its new response before it lets the old one go, and keeps delivering from the old one
 *   until the server has handed each subscription over. A member that leaves is unsubscribed; its
 *   connection carries on.
 * - A failure of a whole connection (cut, silence, 5xx, throttling) is retried with back-off and
 *   reported to each member on it; an error naming some subscriptions concerns only those members
 *   (resubscribed, or errored when fatal).
 *
 * Throws `TypeError`/`RangeError` naming the option when `options` are invalid.
 */
export class StreamingGroup {
  private readonly options: ResolvedGroupOptions;
  private readonly limiter: Limiter;
  /**
   * Every member is in exactly one of these while it is in the group (`member.joined`): by its
   * subscription id once it has one, in `unplaced` while it subscribes (or resubscribes). A large
   * idle group holds one hash entry per member.
   */
  private readonly bySubscription = new Map<string, GroupMember>();
  private readonly unplaced = new Set<GroupMember>();
  /**
   * Members that joined while every Subscribe slot was taken, in join order, from `parkedFrom` on.
   * They wait here for their first Subscribe holding nothing else: started at once, each waiting
   * member held its retry loop, a place in the limiter's queue and a stop signal with its
   * listener (~3.8 KB per member, 38 MB for a burst of 10,000 joins).
   */
  private parked: GroupMember[] = [];
  private parkedFrom = 0;
  /** Members in the group (joined, not yet left). */
  private memberCount = 0;
  private readonly connections = new Set<GroupConnection>();
  private readonly cleanups = new Set<Promise<void>>();
  private link: { agent: Agent; endpoint: EwsEndpointOptions; affinity: SubscriptionAffinity | undefined; anchor: string | undefined } | undefined;
  /** Whether members use impersonation, fixed by the first member. */
  private impersonating: boolean | undefined;
  private state: 'open' | 'closing' | 'destroyed' = 'open';
  private readonly onAbort = (): void => void this.close();
  /** What the connections see of the group. */
  private readonly host: ConnectionHost;
  /** What the members see of it (through their scope). */
  private readonly memberHost: MemberHost;
  /** The scope of every member with the default folders, event types and no checkpoint. */
  private readonly defaultScope: MemberScope;

  constructor(options: StreamingGroupOptions) {
    this.options = options instanceof PreResolved ? options.options : resolveGroupOptions(options);
    this.host = {
      settings: this.options,
      endpoint: () => this.requireLink().endpoint,
      streamImpersonation: () => {
        if (this.options.streamImpersonation) return this.options.streamImpersonation;
        const anchor = this.link?.anchor;
        return this.impersonating === true && anchor !== undefined ? { smtpAddress: anchor } : undefined;
      },
      memberOf: (subscriptionId) => this.bySubscription.get(subscriptionId),
      lost: (member, reason, error, backOffFrom) => this.lost(member, reason, error, backOffFrom),
      failMember: (member, error) => this.failMember(member, error),
      emptied: (connection) => {
        this.connections.delete(connection);
      },
    };
    this.memberHost = { logger: this.options.logger, leave: (member) => this.leave(member) };
    this.defaultScope = defaultScope(this.memberHost);
    this.limiter = new Limiter(this.options.maxConcurrentSubscribes);
    this.limiter.onFree = () => this.admitParked();
    const signal = this.options.source.signal;
    if (signal?.aborted) this.state = 'closing';
    else signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /** Whether `close()` or `destroy()` was called (or the group's `signal` aborted). */
  get closed(): boolean {
    return this.state !== 'open';
  }

  /** Counts of what the group holds now. */
  stats(): StreamingGroupStats {
    let streams = 0;
    for (const connection of this.connections) streams += connection.streamCount;
    return { subscriptions: this.bySubscription.size, members: this.memberCount, connections: this.connections.size, streams };
  }

  /**
   * One member's notifications and lifecycle signals, in order (like `streamingSignals`). Cold:
   * each subscriber is its own member with its own EWS subscription. Unsubscribing removes the
   * subscription; the member's connection carries on for the others. Invalid member options error
   * the Observable at once; on a closed group it completes at once.
   */
  signals(member: StreamingGroupMemberOptions = {}): Observable<SourceSignal> {
    return this.observe<SourceSignal>(member, SIGNALS);
  }

  /**
   * One member's notifications (like `streamingNotifications`); lifecycle signals go to
   * `member.onLifecycle`.
   */
  notifications(member: StreamingGroupMemberOptions = {}): Observable<PushNotification> {
    const valid = typeof member === 'object' && member !== null;
    return this.observe<PushNotification>(member, valid ? member.onLifecycle : undefined);
  }

  /**
   * Graceful end: completes every member's Observable, unsubscribes every subscription (bounded by
   * `unsubscribeTimeoutMs` each, at most `maxConcurrentSubscribes` at once), closes the connections
   * and the pool. Idempotent; resolves when all of it is done. Never rejects.
   */
  async close(): Promise<void> {
    if (this.state === 'open') this.state = 'closing';
    this.endAll();
    await this.settled();
  }

  /**
   * Abrupt end: closes every connection now and completes every member, without EWS Unsubscribe
   * (the server expires the subscriptions itself). Idempotent.
   */
  destroy(): void {
    this.state = 'destroyed';
    this.endAll();
    this.link?.agent.destroy();
  }

  /** Stops every connection and completes every member (each member's leave then unsubscribes it, unless destroyed). */
  private endAll(): void {
    this.options.source.signal?.removeEventListener('abort', this.onAbort);
    for (const connection of this.connections) connection.stop();
    for (const member of this.joinedMembers()) member.complete();
    this.dropParked();
  }

  /** The members in the group now, as an array (completing them changes the maps). */
  private joinedMembers(): GroupMember[] {
    const members: GroupMember[] = [];
    for (const member of this.unplaced) if (member.joined) members.push(member);
    for (const member of this.bySubscription.values()) if (member.joined) members.push(member);
    return members;
  }

  // -------------------------------------------------------------------------------------------

  /** A member's Observable: its subscriber is told what `output` says (see `MemberOutput` in group-member.ts). */
  private observe<T>(member: StreamingGroupMemberOptions, output: MemberOutput): Observable<T> {
    return openResolved(
      () => resolveMember(this.options, this.defaultScope, member),
      (options) =>
        new Observable<T>((subscriber) => {
          this.attach(subscriber as Subscriber<never>, options, output);
        }),
    );
  }

  /**
   * Runs a member for `subscriber` (the body of a member's Observable); returns what
   * `sourceClosed()` waits for, which it also records on the subscriber.
   */
  private attach(subscriber: Subscriber<never>, options: MemberOptions, output: MemberOutput): ClosedWaiter | undefined {
    if (this.closed || options.signal?.aborted) {
      subscriber.complete();
      return undefined;
    }
    const impersonating = options.mailbox !== undefined;
    if (this.impersonating !== undefined && this.impersonating !== impersonating) {
      subscriber.error(new TypeError('mailbox: in one StreamingGroup either every member gives a mailbox (impersonation) or none does'));
      return undefined;
    }
    this.impersonating = impersonating;
    const config = options.recovery;
    if (config === undefined) {
      const joined = new GroupMember(options.mailbox, options.scope, options.signal, subscriber, output);
      // The member is its own teardown (leave the group) and what sourceClosed() waits on.
      attachTeardown(subscriber, joined);
      setSourceClosed(subscriber, joined);
      this.join(joined);
      return joined;
    }
    // With a checkpoint store, the member's signals go through its gap recovery, which passes
    // them on (and what it recovers) as `output` says. It takes its baseline before the member
    // subscribes; an unreadable store errors the member.
    const recovery = new GapRecovery(config, (signal) => deliver(subscriber, output, signal, this.options.logger));
    const joined = new GroupMember(options.mailbox, options.scope, options.signal, subscriber, recovery);
    subscriber.add(() => recovery.stop());
    subscriber.add(joined);
    const closed = async (): Promise<void> => {
      await joined.whenClosed();
      await recovery.closed();
    };
    setSourceClosed(subscriber, closed);
    recovery.prepare().then(
      () => {
        if (joined.stopped) return;
        if (this.closed) joined.complete();
        else this.join(joined);
      },
      (error: unknown) => joined.fail(error),
    );
    return closed;
  }

  static {
    solo = (resolved, unrecoverable) =>
      new Observable<SourceSignal>((subscriber) => {
        const group = new StreamingGroup(new PreResolved(soloGroupOptions(resolved)) as unknown as StreamingGroupOptions);
        const { folders, subscribeToAllFolders, eventTypes } = resolved;
        const scope: MemberScope = { folders, subscribeToAllFolders, eventTypes, unrecoverable, host: group.memberHost };
        const member: MemberOptions = { mailbox: resolved.mailbox, scope, signal: resolved.signal, recovery: resolved.recovery };
        const memberClosed = group.attach(subscriber as Subscriber<never>, member, SIGNALS);
        // After the member's own teardown (its Unsubscribe), the group's: its pool.
        subscriber.add(() => void group.close());
        setSourceClosed(subscriber, async () => {
          await waitClosed(memberClosed);
          await group.close();
        });
      });
  }

  private async settled(): Promise<void> {
    while (this.cleanups.size > 0) await Promise.all([...this.cleanups]);
    await Promise.all([...this.connections].map((connection) => connection.stopped()));
    this.link?.agent.destroy();
  }

  private requireLink(): NonNullable<StreamingGroup['link']> {
    if (!this.link) throw new Error('StreamingGroup: no member has joined yet');
    return this.link;
  }

  /** The pool, endpoint options and affinity, made when the first member joins (it may name the anchor). */
  private endpointFor(member: GroupMember): NonNullable<StreamingGroup['link']> {
    if (this.link) return this.link;
    const source = this.options.source;
    const anchor = source.anchorMailbox ?? member.mailbox;
    const { agent, endpoint, affinity } = sourceEndpoint({ ...source, anchorMailbox: anchor });
    this.link = { agent, endpoint, affinity, anchor };
    return this.link;
  }

  private join(member: GroupMember): void {
    member.joined = true;
    this.memberCount++;
    this.unplaced.add(member);
    this.endpointFor(member);
    // In join order: behind those already waiting, and only while a Subscribe can start at once.
    if (this.parkedFrom === this.parked.length && this.limiter.free) this.subscribe(member, undefined);
    else this.parked.push(member);
  }

  /** Forgets the parked members (the group closed: they left without subscribing). */
  private dropParked(): void {
    this.parked = [];
    this.parkedFrom = 0;
  }

  /** Starts the first Subscribe of parked members while slots are free (each start takes one at once). */
  private admitParked(): void {
    while (this.parkedFrom < this.parked.length && this.limiter.free) {
      const member = this.parked[this.parkedFrom]!;
      this.parked[this.parkedFrom++] = undefined as unknown as GroupMember;
      // One that left meanwhile (or a closed group's) has nothing to subscribe.
      if (member.joined && !member.stopped && !this.closed) this.subscribe(member, undefined);
    }
    if (this.parkedFrom === this.parked.length) {
      this.parked = [];
      this.parkedFrom = 0;
    } else if (this.parkedFrom > 1024 && this.parkedFrom * 2 > this.parked.length) {
      this.parked = this.parked.slice(this.parkedFrom);
      this.parkedFrom = 0;
    }
  }

  /** Takes a member out; resolves once its subscription is removed (Unsubscribe answered or timed out). */
  private leave(member: GroupMember): Promise<void> {
    member.stop();
    if (!member.joined) return Promise.resolve();
    member.joined = false;
    this.memberCount--;
    this.unplaced.delete(member);
    this.detach(member);
    if (this.state === 'destroyed') return Promise.resolve();
    const cleanup = this.unsubscribe(member).finally(() => this.cleanups.delete(cleanup));
    this.cleanups.add(cleanup);
    return cleanup;
  }

  private async unsubscribe(member: GroupMember): Promise<void> {
    // A Subscribe still in flight may yet create a subscription: wait for it, then remove it.
    await member.pendingSubscribe?.catch(() => undefined);
    const subscriptionId = member.subscriptionId;
    const link = this.link;
    if (subscriptionId === undefined || link === undefined || this.state === 'destroyed') return;
    this.bySubscription.delete(subscriptionId);
    await this.limiter
      .run(() =>
        unsubscribeQuietly(subscriptionId, link.endpoint, {
          requestServerVersion: this.options.requestServerVersion,
          impersonation: member.impersonation,
          unsubscribeTimeoutMs: this.options.source.unsubscribeTimeoutMs,
          logger: this.options.logger,
        }),
      )
      .catch(() => undefined);
  }

  /** Takes a member off its connection. Its id stays known until its Unsubscribe (see unsubscribe()). */
  private detach(member: GroupMember): void {
    (member.connection as GroupConnection | undefined)?.remove(member);
  }

  /**
   * Subscribes a member (with retry), then places it on a connection with room. With
   * `backOffFrom`, the error that lost the previous subscription counts as the first failed attempt,
   * so the first Subscribe waits the usual back-off (the cause may repeat) and the `retrying`
   * signal names the real error; `priorFailures` are the back-offs the member's streak already
   * waited (see `GroupMember.lostAgain`).
   */
  private subscribe(member: GroupMember, backOffFrom: unknown, priorFailures = 0): void {
    let pending = backOffFrom;
    withRetry(
      () => {
        if (pending !== undefined) {
          const cause = pending;
          pending = undefined;
          return Promise.reject(cause instanceof Error ? cause : new Error(String(cause)));
        }
        return this.limiter.run(() => this.createSubscription(member), member.stopSignal);
      },
      {
        retry: this.options.retry,
        signal: member.stopSignal,
        priorFailures,
        plan: (error) => this.subscribePlan(error),
        logger: this.options.logger,
        onRetry: (notice) => {
          const signal = retryingSignal(notice, this.options.logger, 'streaming');
          if (signal) member.report(signal);
        },
      },
    ).then(
      (subscriptionId) => {
        member.releaseStopSignal();
        member.pendingSubscribe = undefined;
        this.place(member, subscriptionId);
      },
      (error: unknown) => {
        if (!member.stopped && !this.closed) this.failMember(member, error);
      },
    );
  }

  private subscribePlan(error: unknown): FailurePlan {
    return this.closed ? { kind: 'fatal', reason: 'connection-error' } : planForCall(error);
  }

  private createSubscription(member: GroupMember): Promise<string> {
    const pending = this.postSubscribe(member);
    member.pendingSubscribe = pending;
    return pending;
  }

  private async postSubscribe(member: GroupMember): Promise<string> {
    const link = this.endpointFor(member);
    // Not aborted by the member leaving: once sent, only the id lets leave() remove it.
    const sentAt = new Date();
    const request = subscribeRequest(this.options, member.mailbox, member.scope);
    // A copy of its own: the id as parsed is a slice of the whole response text, which it would keep alive.
    const subscriptionId = ownString(await postStreamingSubscribe(request, link.endpoint, this.options.requestTimeoutMs));
    const at = new Date();
    if (member.stopped) {
      member.subscriptionId = subscriptionId;
      throw member.stopSignal.reason;
    }
    // Two members with one id would make an invalid GetStreamingEvents and mix their events.
    const holder = this.bySubscription.get(subscriptionId);
    if (holder !== undefined && holder !== member) {
      throw new EwsProtocolError('SubscriptionId', `The Subscribe response repeated subscription id ${JSON.stringify(subscriptionId.slice(0, 60))}, which another member of the group holds`);
    }
    this.bySubscription.set(subscriptionId, member);
    this.unplaced.delete(member);
    this.options.logger.info('EWS streaming subscription created', { subscriptionId });
    member.subscribed(subscriptionId, at, sentAt);
    return subscriptionId;
  }

  private place(member: GroupMember, subscriptionId: string): void {
    if (member.stopped || member.subscriptionId !== subscriptionId) return;
    let target: GroupConnection | undefined;
    for (const connection of this.connections) {
      if (connection.members.length < this.options.maxSubscriptionsPerConnection) {
        target = connection;
        break;
      }
    }
    if (!target) {
      target = new GroupConnection(this.host);
      this.connections.add(target);
    }
    target.add(member);
  }

  private failMember(member: GroupMember, error: unknown): void {
    this.detach(member);
    member.fail(error);
  }

  private lost(member: GroupMember, reason: DisconnectReason, error: unknown, backOffFrom: unknown): void {
    if (member.stopped) return;
    this.detach(member);
    if (member.subscriptionId !== undefined) this.bySubscription.delete(member.subscriptionId);
    this.unplaced.add(member);
    member.forgetSubscription(reason, error instanceof EwsBridgeError ? error : undefined);
    // When no subscription of the group is left, the server that held them is no longer where the
    // next ones must go.
    if (this.bySubscription.size === 0) this.link?.affinity?.reset();
    // The first loss of a streak resubscribes at once (unless its cause asks for a back-off); each
    // further one waits a back-off that grows with the streak, and `retry.maxAttempts` ends it.
    const losses = member.lostAgain();
    if (backOffFrom !== undefined) this.subscribe(member, backOffFrom, losses - 1);
    else this.subscribe(member, losses > 1 ? error : undefined, Math.max(0, losses - 2));
  }

}

/**
 * A string that shares no memory with another: V8 keeps a substring as a slice of its parent, so a
 * subscription id read out of a Subscribe response would keep the whole response text alive.
 */
function ownString(text: string): string {
  return Buffer.from(text, 'utf8').toString('utf8');
}

/**
 * `subscriber.add(teardown)`, without a finalizer list when it can. RxJS 7 keeps a subscription's
 * finalizers in an array (an Array and its backing store, 56 bytes per member of a large group),
 * but it also calls `parent.remove(subscription)` on each parent when a subscription ends, before
 * its finalizers. A fresh subscriber (no parent yet, the usual `observable.subscribe(observer)`)
 * gets the member as its parent (`teardown.remove()` is its teardown), which costs nothing more;
 * otherwise (an operator's subscriber already has a parent, or another RxJS keeps parents
 * differently) the teardown is added as a finalizer, in a one-element array.
 */
function attachTeardown(subscriber: Subscriber<unknown>, teardown: { unsubscribe(): void; remove(): void }): void {
  const internal = subscriber as unknown as { _parentage?: unknown; _finalizers?: unknown; _addParent?: unknown; _removeParent?: unknown };
  if (internal._parentage === null && internal._finalizers === null && typeof internal._addParent === 'function' && typeof internal._removeParent === 'function' && !subscriber.closed) {
    internal._parentage = teardown;
    return;
  }
  subscriber.add(teardown);
  const finalizers = internal._finalizers;
  if (Array.isArray(finalizers) && finalizers.length === 1 && finalizers[0] === teardown) internal._finalizers = [teardown];
}
