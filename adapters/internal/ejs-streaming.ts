/**
 * ews-javascript-api's streaming API — `SubscribeToStreamingNotifications` and
 * `StreamingSubscriptionConnection` — on the bridge's engine. The subscriptions an
 * `ExchangeService` makes share one {@link StreamingGroup} (one GetStreamingEvents connection per
 * 200 subscriptions), which reconnects, backs off and resubscribes by itself; this module only
 * turns its signals into the delegates and objects ews-javascript-api apps already handle.
 *
 * @packageDocumentation
 */
import type {
  EventType,
  Exception,
  ExchangeService,
  FolderId,
  NotificationEvent,
  NotificationEventArgs,
  StreamingSubscription,
  SubscriptionErrorEventArgs,
} from 'ews-javascript-api';
import type { Subscription as RxSubscription } from 'rxjs';
import { StreamingGroup, sourceClosed, type GapEvent, type Logger, type SourceSignal, type StreamingGroupMemberOptions, type StreamingGroupOptions } from '../../lib/index.js';
import type { DisconnectedEvent } from '../../lib/entry-types.js';
import { resolveLogger } from '../../lib/logger.js';
import { serviceEndpoint, watchedOf, type EjsModule } from './ejs-config.js';
import { toEjsEvents } from './ejs-events.js';
import { requireEjs } from './ejs-module.js';
import { describeValue, requireObject } from '../../lib/validate.js';

/** Options the `ExchangeService` decides (endpoint, credentials, impersonation, headers, version). */
type DecidedByService = 'url' | 'auth' | 'anchorMailbox' | 'headers' | 'requestServerVersion' | 'signal';

/** How the bridge holds an `ExchangeService`'s streaming subscriptions. Every field is optional. */
export interface StreamingBridgeOptions extends Omit<StreamingGroupOptions, DecidedByService> {
  /**
   * The `ConnectionTimeout` of the service's GetStreamingEvents connections, 1–30 minutes: how often
   * the server ends one with `Closed` (the bridge reopens it at once, and each such end fires
   * `OnDisconnect`). Default: the `lifetime` of the first `StreamingSubscriptionConnection` made
   * for the service, if it was made before the service's stream started; else `30`. (ews-javascript-api passes each
   * connection's `lifetime`; here the subscriptions exist, and stream, from the Subscribe call on,
   * before the app constructs its connection.)
   */
  readonly connectionTimeoutMinutes?: number;
  /**
   * Notifications a subscription keeps while none of its connections is open (before `Open()`,
   * after `Close()`); they are handed over, in order, on the next `Open()`. Beyond this many the
   * oldest are dropped and an `OnGap` reports it. Default `10_000`.
   */
  readonly maxBacklogNotifications?: number;
}

/**
 * ews-javascript-api's delegate of `OnNotificationEvent`.
 * The sender is typed `any` as ews-javascript-api types it, so handlers written against its
 * declarations (sender annotated as anything) fit unchanged.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- ews-javascript-api's own delegate type; see above
export type NotificationEventDelegate = (sender: any, args: NotificationEventArgs) => void;
/** ews-javascript-api's delegate of `OnSubscriptionError` and `OnDisconnect` (sender typed as it types it). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- ews-javascript-api's own delegate type
export type SubscriptionErrorDelegate = (sender: any, args: SubscriptionErrorEventArgs) => void;
/** ews-javascript-api's delegate of `OnResponseHeader`. */
export type ResponseHeaderDelegate = (header: unknown) => void;

/** What an `OnGap` delegate receives: a window in which the subscription's events may have been lost. */
export interface StreamingGapEventArgs {
  /** The subscription the window concerns. */
  readonly Subscription: StreamingSubscription;
  /** The bridge's gap signal: `from`/`to` (client clock), `reason`, whether the subscription was kept. */
  readonly Gap: GapEvent;
}
/** The bridge's extra delegate: events may have been lost (this module's documentation says when). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- same sender convention as ews-javascript-api's delegates
export type GapDelegate = (sender: any, args: StreamingGapEventArgs) => void;

/** An ews-javascript-api `Exception` that carries the bridge's error (with its stable `code`) as `cause`. */
export type BridgedException = Exception & { readonly cause: unknown; readonly code: string | undefined };

type Item =
  | { readonly kind: 'events'; readonly events: NotificationEvent[] }
  | { readonly kind: 'gap'; readonly gap: GapEvent }
  | { readonly kind: 'error'; readonly error: unknown };

const DEFAULT_MAX_BACKLOG = 10_000;

/** The ews-javascript-api `Exception` an app's error delegate gets for one of our errors. */
export function exceptionOf(ejs: EjsModule, error: unknown): BridgedException {
  const message = error instanceof Error ? error.message : String(error);
  const code = typeof (error as { code?: unknown } | null)?.code === 'string' ? (error as { code: string }).code : undefined;
  return Object.assign(new ejs.Exception(message), { cause: error, code });
}

type Construct<T, A extends unknown[]> = new (...args: A) => T;

// ---------------------------------------------------------------------------------------------
// One StreamingGroup per service and endpoint: the service's subscriptions share its connections.

interface GroupEntry {
  readonly group: StreamingGroup;
  members: number;
}

const groupsByService = new WeakMap<ExchangeService, Map<string, GroupEntry>>();
const lifetimeHints = new WeakMap<ExchangeService, number>();
const holders = new WeakMap<StreamingSubscription, StreamingHolder>();

function groupFor(ejs: EjsModule, service: ExchangeService, options: StreamingBridgeOptions): { entry: GroupEntry; release: () => Promise<void> } {
  const endpoint = serviceEndpoint(ejs, service);
  // The service's settings may change between Subscribe calls (another mailbox, new credentials):
  // such subscriptions get a group of their own. In memory only; never logged.
  const key = JSON.stringify([endpoint.url, endpoint.auth, endpoint.headers ?? null, endpoint.requestServerVersion, endpoint.mailbox !== undefined]);
  let byKey = groupsByService.get(service);
  if (!byKey) groupsByService.set(service, (byKey = new Map()));
  let entry = byKey.get(key);
  if (!entry) {
    const { connectionTimeoutMinutes, maxBacklogNotifications: _ignored, ...groupOptions } = options;
    entry = {
      group: new StreamingGroup({
        ...groupOptions,
        url: endpoint.url,
        auth: endpoint.auth,
        ...(endpoint.headers === undefined ? {} : { headers: endpoint.headers }),
        ...(endpoint.mailbox === undefined ? {} : { anchorMailbox: endpoint.mailbox }),
        requestServerVersion: endpoint.requestServerVersion,
        connectionTimeoutMinutes: connectionTimeoutMinutes ?? lifetimeHints.get(service) ?? 30,
      }),
      members: 0,
    };
    byKey.set(key, entry);
  }
  const held = entry;
  held.members++;
  let released = false;
  return {
    entry: held,
    // The last subscription gone: close the group (its pool too), so an idle service holds nothing.
    release: () => {
      if (released) return Promise.resolve();
      released = true;
      if (--held.members > 0) return Promise.resolve();
      if (byKey.get(key) === held) byKey.delete(key);
      return held.group.close();
    },
  };
}

/**
 * `SubscribeToStreamingNotifications(folderIds, ...eventTypes)` (or `…OnAllFolders` when
 * `folderIds` is undefined) for `service`: resolves with ews-javascript-api's own
 * `StreamingSubscription` once the EWS subscription exists; rejects as ews-javascript-api does
 * when the Subscribe fails (bad arguments, refused credentials).
 */
export async function subscribeToStreaming(
  service: ExchangeService,
  options: StreamingBridgeOptions,
  folderIds: readonly FolderId[] | undefined,
  eventTypes: readonly EventType[],
): Promise<StreamingSubscription> {
  const ejs = requireEjs();
  requireObject(options, 'options');
  const maxBacklog = options.maxBacklogNotifications ?? DEFAULT_MAX_BACKLOG;
  if (!(maxBacklog === Infinity || (Number.isInteger(maxBacklog) && maxBacklog >= 1))) {
    throw new RangeError(`maxBacklogNotifications must be an integer ≥ 1, or Infinity (got ${describeValue(maxBacklog)})`);
  }
  const mailbox = serviceEndpoint(ejs, service).mailbox;
  const member: StreamingGroupMemberOptions = {
    ...(mailbox === undefined ? {} : { mailbox }),
    ...watchedOf(ejs, folderIds, eventTypes),
  };
  const logger = resolveLogger(options.logger);
  const { entry, release } = groupFor(ejs, service, options);
  const subscription = new (ejs.StreamingSubscription as unknown as Construct<StreamingSubscription, [ExchangeService]>)(service);
  const holder = new StreamingHolder(ejs, service, subscription, logger, maxBacklog, release);
  holders.set(subscription, holder);
  // Its own Unsubscribe would ask ews-javascript-api's HTTP client; this one ends the bridge's.
  Object.defineProperty(subscription, 'Unsubscribe', { value: () => holder.unsubscribe(), configurable: true, writable: true });
  await holder.start(entry.group, member);
  return subscription;
}

/** One bridged subscription: its group membership, state, and what waits for an open connection. */
class StreamingHolder {
  readonly connections = new Set<StreamingSubscriptionConnection>();
  /** Whether its GetStreamingEvents connection is up. */
  connected = false;
  /** The fatal error that ended it, until a connection has told the app. */
  failure: { error: unknown } | undefined;
  private ended = false;
  private backlog: Item[] = [];
  private dropped: { from: Date; count: number } | undefined;
  private rx: RxSubscription | undefined;

  constructor(
    private readonly ejs: EjsModule,
    private readonly service: ExchangeService,
    readonly subscription: StreamingSubscription,
    readonly logger: Logger,
    private readonly maxBacklog: number,
    private readonly release: () => Promise<void>,
  ) {}

  /** Joins the group; resolves at the first `subscribed`, rejects when the member fails before it. */
  start(group: StreamingGroup, member: StreamingGroupMemberOptions): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let subscribed = false;
      this.rx = group.signals(member).subscribe({
        next: (signal) => {
          if (signal.type === 'subscribed') {
            this.subscription.Id = signal.subscriptionId;
            if (!subscribed) {
              subscribed = true;
              resolve();
            }
            return;
          }
          this.onSignal(signal);
        },
        error: (error: unknown) => {
          if (subscribed) this.fail(error);
          else {
            void this.finish();
            reject(error);
          }
        },
        complete: () => {
          if (!subscribed) reject(new Error('The streaming subscription ended before it was created'));
          void this.finish();
        },
      });
      if (this.ended) this.rx.unsubscribe();
    });
  }

  private onSignal(signal: Exclude<SourceSignal, { type: 'subscribed' }>): void {
    switch (signal.type) {
      case 'notification': {
        const events = toEjsEvents(this.ejs, this.service, signal.notification);
        if (events.length > 0) this.dispatch({ kind: 'events', events });
        return;
      }
      case 'connected':
        this.connected = true;
        for (const connection of this.connections) connection.streamConnected();
        return;
      case 'disconnected':
        this.connected = false;
        for (const connection of [...this.connections]) connection.streamDisconnected(signal);
        return;
      case 'gap':
        if (signal.eventsMayBeLost) this.dispatch({ kind: 'gap', gap: signal });
        return;
      default:
        return;
    }
  }

  private dispatch(item: Item): void {
    const open = [...this.connections].filter((c) => c.isOpenFor());
    if (open.length > 0) {
      for (const connection of open) connection.deliver(this, item);
      return;
    }
    this.backlog.push(item);
    if (this.backlog.length > this.maxBacklog) {
      this.backlog.shift();
      this.dropped ??= { from: new Date(), count: 0 };
      this.dropped.count++;
    }
  }

  /** Hands what waited for an open connection to `connection`, in order. */
  flushTo(connection: StreamingSubscriptionConnection): void {
    if (this.dropped) {
      const { from } = this.dropped;
      this.logger.warn('A streaming subscription dropped notifications while no connection was open', { dropped: this.dropped.count });
      this.dropped = undefined;
      const gap: GapEvent = {
        type: 'gap',
        subscriptionId: this.subscription.Id,
        reason: 'missed-events',
        from,
        to: new Date(),
        subscriptionKept: true,
        eventsMayBeLost: true,
      };
      connection.deliver(this, { kind: 'gap', gap });
    }
    const items = this.backlog;
    this.backlog = [];
    for (const item of items) connection.deliver(this, item);
    if (this.failure) connection.deliver(this, { kind: 'error', error: this.failure.error });
  }

  /** A fatal error ended the subscription: the app must act (new credentials, a new subscription). */
  private fail(error: unknown): void {
    this.logger.error('A streaming subscription failed', { subscriptionId: this.subscription.Id, code: (error as { code?: unknown } | null)?.code });
    const open = [...this.connections].filter((c) => c.isOpenFor());
    if (open.length > 0) for (const connection of open) connection.deliver(this, { kind: 'error', error });
    else this.failure = { error };
    void this.finish();
  }

  /**
   * The app's `subscription.Unsubscribe()`: ends it and removes it from Exchange; resolves once
   * EWS answered the Unsubscribe (or unsubscribeTimeoutMs passed), as ews-javascript-api's own
   * does, even while other members keep the group open. Never rejects.
   */
  async unsubscribe(): Promise<void> {
    const rx = this.rx;
    rx?.unsubscribe();
    for (const connection of [...this.connections]) connection.forget(this);
    await Promise.all([sourceClosed(rx), this.finish()]);
  }

  private finish(): Promise<void> {
    if (this.ended) return Promise.resolve();
    this.ended = true;
    this.connected = false;
    return this.release().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------

/**
 * A drop-in for ews-javascript-api's `StreamingSubscriptionConnection`, for subscriptions made by
 * this adapter's `ExchangeService` (or `notificationBridge(service)`). The same members, the same
 * delegates, ews-javascript-api's own `NotificationEventArgs`, `ItemEvent`, `FolderEvent` and
 * `SubscriptionErrorEventArgs` objects. Where it differs, on purpose:
 *
 * - **It stays open by itself.** The service's GetStreamingEvents connection is reopened at once
 *   when the server ends it (`Closed`, at `connectionTimeoutMinutes`), retried with back-off after
 *   cuts, HTTP errors and throttling (exactly `BackOffMilliseconds` when the server says), and a
 *   subscription the server lost is replaced. `OnDisconnect` still fires each time the stream ends
 *   (with a `null` `Exception` after a clean end, as before), and `IsOpen` stays `true`, so an
 *   old handler that calls `Open()` again is harmless (`Open()` on an open connection does
 *   nothing) — and one that checks `IsOpen` first does nothing.
 * - **`OnSubscriptionError` means the app must act**: only errors that ended a subscription for good
 *   (refused credentials, access denied, another client took the subscription, retries exhausted).
 *   The subscription is then removed from the connection, as ews-javascript-api does. Errors the
 *   bridge recovers from by itself are not reported there.
 * - **`OnGap` (new)**: a window in which the server may have dropped events (a lost subscription
 *   that was replaced, a cut connection, `ErrorMissedNotificationEvents`): time to resynchronise
 *   (`SyncFolderItems`). Streaming has no watermark: no client can close these windows.
 * - Events that arrive while no connection of a subscription is open (before `Open()`, after
 *   `Close()`) wait, and are handed over on the next `Open()` (Exchange holds them the same way).
 * - Nothing throws where it used to work: `Open()` on an open connection, `Close()` on a closed one
 *   and adding or removing subscriptions while open are accepted. `Open()` resolves once open and
 *   never rejects. A delegate that throws (or rejects) is logged and does not stop the others.
 * - `OnResponseHeader` is kept for compatibility and never called (the HTTP exchange is the bridge's).
 */
export class StreamingSubscriptionConnection {
  /** Occurs when notifications are received: ews-javascript-api's `NotificationEventArgs`. */
  OnNotificationEvent: NotificationEventDelegate[] = [];
  /** Occurs when a subscription ends for good; see the class documentation. */
  OnSubscriptionError: SubscriptionErrorDelegate[] = [];
  /** Occurs when the stream ends (the bridge reopens it by itself) and on `Close()`. */
  OnDisconnect: SubscriptionErrorDelegate[] = [];
  /** Kept for compatibility: never called. */
  OnResponseHeader: ResponseHeaderDelegate[] = [];
  /** The bridge's addition: events of a subscription may have been lost in a window. */
  OnGap: GapDelegate[] = [];

  private readonly ejs: EjsModule;
  private readonly members = new Set<StreamingHolder>();
  /** The bridge's logger (of the subscriptions added), where throwing delegates are reported. */
  private logger: Logger | undefined;
  private open = false;
  private disposed = false;
  /** Whether OnDisconnect already fired for the current outage (several subscriptions share it). */
  private outage = false;

  /**
   * As ews-javascript-api's: `(service, lifetime)` or `(service, subscriptions, lifetime)`.
   * `lifetime` (1–30 minutes) becomes the service's `connectionTimeoutMinutes` when this is the
   * first connection made for it before any subscription; see {@link StreamingBridgeOptions}.
   *
   * @throws TypeError for a missing service, RangeError for a lifetime outside 1–30 (as ews-javascript-api).
   */
  constructor(service: ExchangeService, lifetime: number);
  constructor(service: ExchangeService, subscriptions: StreamingSubscription[], lifetime: number);
  constructor(
    readonly service: ExchangeService,
    subscriptionsOrLifetime: StreamingSubscription[] | number,
    lifetimeMinutes?: number,
  ) {
    if (typeof service !== 'object' || service === null) throw new TypeError(`service must be an ExchangeService (got ${describeValue(service)})`);
    const lifetime = Array.isArray(subscriptionsOrLifetime) ? lifetimeMinutes : subscriptionsOrLifetime;
    if (typeof lifetime !== 'number' || !Number.isInteger(lifetime) || lifetime < 1 || lifetime > 30) {
      throw new RangeError(`lifetime must be 1–30 minutes (got ${describeValue(lifetime)})`);
    }
    this.ejs = requireEjs();
    if (!lifetimeHints.has(service)) lifetimeHints.set(service, lifetime);
    if (Array.isArray(subscriptionsOrLifetime)) for (const subscription of subscriptionsOrLifetime) this.AddSubscription(subscription);
  }

  /** The subscriptions on this connection. */
  get CurrentSubscriptions(): StreamingSubscription[] {
    return [...this.members].map((h) => h.subscription);
  }

  /** `true` from `Open()` until `Close()` (the bridge reconnects by itself in between). */
  get IsOpen(): boolean {
    this.ThrowIfDisposed();
    return this.open;
  }

  /**
   * Adds a subscription made by this adapter (also while open).
   *
   * @throws TypeError for a subscription made by ews-javascript-api's own `ExchangeService`: the
   *   bridge cannot stream, nor replace when lost, a subscription it did not make.
   */
  AddSubscription(subscription: StreamingSubscription): void {
    this.ThrowIfDisposed();
    const holder = holders.get(subscription);
    if (!holder) {
      throw new TypeError(
        "subscription was not made by ews-push-bridge: subscribe with the ExchangeService from 'ews-push-bridge/adapters/ews-javascript-api' (or notificationBridge(service))",
      );
    }
    if (this.members.has(holder)) return;
    this.logger ??= holder.logger;
    this.members.add(holder);
    holder.connections.add(this);
    if (this.open) holder.flushTo(this);
  }

  /** Removes a subscription from this connection (it stays subscribed; see `Unsubscribe()`). */
  RemoveSubscription(subscription: StreamingSubscription): void {
    this.ThrowIfDisposed();
    const holder = holders.get(subscription);
    if (holder) this.forget(holder);
  }

  /**
   * Starts handing events to the delegates, first those that waited. Resolves at once; never rejects.
   *
   * @throws as ews-javascript-api when no subscription was added.
   */
  Open(): Promise<void> {
    this.ThrowIfDisposed();
    if (this.members.size === 0) throw new this.ejs.ServiceLocalException('You must add at least one subscription to this connection before it can be opened.');
    if (this.open) return Promise.resolve();
    this.open = true;
    this.outage = false;
    for (const holder of [...this.members]) holder.flushTo(this);
    return Promise.resolve();
  }

  /** Stops handing events over (they wait for the next `Open()`); fires `OnDisconnect` as before. */
  Close(): void {
    this.ThrowIfDisposed();
    if (!this.open) return;
    this.open = false;
    this.fire(this.OnDisconnect, new (this.ejs.SubscriptionErrorEventArgs as unknown as ErrorArgs)(null, null), 'OnDisconnect');
  }

  /** Frees the connection (the subscriptions stay subscribed). */
  Dispose(): void {
    if (this.disposed) return;
    this.open = false;
    for (const holder of [...this.members]) this.forget(holder);
    this.disposed = true;
  }

  /** Throws, as ews-javascript-api does, once disposed. */
  ThrowIfDisposed(): void {
    if (this.disposed) throw new Error('ObjectDisposedException - StreamingSubscriptionConnection');
  }

  // -- what the subscriptions tell the connection (internal) --

  /** @internal */
  isOpenFor(): boolean {
    return this.open && !this.disposed;
  }

  /** @internal */
  forget(holder: StreamingHolder): void {
    this.members.delete(holder);
    holder.connections.delete(this);
  }

  /** @internal */
  streamConnected(): void {
    this.outage = false;
  }

  /** @internal A subscription's stream ended: OnDisconnect once, when the last one of the connection is down. */
  streamDisconnected(signal: DisconnectedEvent): void {
    if (!this.isOpenFor() || this.outage) return;
    for (const holder of this.members) if (holder.connected) return;
    this.outage = true;
    const clean = signal.reason === 'closed' || signal.reason === 'ended';
    const exception = clean ? null : exceptionOf(this.ejs, signal.error ?? new Error(`The streaming connection ended (${signal.reason})`));
    this.fire(this.OnDisconnect, new (this.ejs.SubscriptionErrorEventArgs as unknown as ErrorArgs)(null, exception), 'OnDisconnect');
  }

  /** @internal */
  deliver(holder: StreamingHolder, item: Item): void {
    const subscription = holder.subscription;
    switch (item.kind) {
      case 'events': {
        const args = new (this.ejs.NotificationEventArgs as unknown as Construct<NotificationEventArgs, [StreamingSubscription, NotificationEvent[]]>)(
          subscription,
          item.events,
        );
        this.fire(this.OnNotificationEvent, args, 'OnNotificationEvent');
        return;
      }
      case 'gap':
        this.fire(this.OnGap, { Subscription: subscription, Gap: item.gap }, 'OnGap');
        return;
      case 'error':
        holder.failure = undefined;
        this.forget(holder);
        this.fire(this.OnSubscriptionError, new (this.ejs.SubscriptionErrorEventArgs as unknown as ErrorArgs)(subscription, exceptionOf(this.ejs, item.error)), 'OnSubscriptionError');
        return;
    }
  }

  /** Calls each delegate (a snapshot: handlers may add or remove others); one that throws is logged. */
  private fire<A>(delegates: readonly ((sender: StreamingSubscriptionConnection, args: A) => void)[], args: A, what: string): void {
    const report = (error: unknown): void => {
      this.logger?.error(`A ${what} delegate threw`, { error: error instanceof Error ? error.message : String(error) });
    };
    for (const delegate of [...delegates]) {
      try {
        const result: unknown = delegate(this, args);
        if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
          (result as PromiseLike<unknown>).then(undefined, report);
        }
      } catch (error) {
        report(error);
      }
    }
  }
}

type ErrorArgs = Construct<SubscriptionErrorEventArgs, [StreamingSubscription | null, Exception | null]>;
