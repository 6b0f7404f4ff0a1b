/**
 * What a source tells its consumer besides notifications: when it (re)subscribed, connected, lost
 * the connection, is about to retry, and — most important for legacy apps — every **gap**, a time
 * window in which events may not have reached us.
 *
 * A source emits these in order with its notifications (see `streamingSignals()`), so a consumer
 * knows exactly which notifications came before and after a gap. An adapter that must not miss
 * mail reacts to `gap` events with `eventsMayBeLost: true` (e.g. `SyncFolderItems` from a stored
 * sync state, or telling its user).
 */
import type { EwsBridgeError } from '../errors.js';
import type { Id, PushNotification } from '../model.js';

/** Why a connection ended or an attempt failed. */
export type DisconnectReason =
  /** The server ended the connection at its `ConnectionTimeout` (`ConnectionStatus Closed`). */
  | 'closed'
  /** The server ended the response without saying `Closed`. */
  | 'ended'
  /** No complete envelope for longer than `heartbeatTimeoutMs`. */
  | 'heartbeat-timeout'
  /** The socket failed or was cut (mid-envelope or between envelopes), or could not connect. */
  | 'connection-error'
  /** The server is throttling us (`ErrorServerBusy`, HTTP 503/429 …): we wait as told. */
  | 'server-busy'
  /** Another HTTP status or a transient EWS error. */
  | 'server-error'
  /** The server no longer knows our subscription (`ErrorSubscriptionNotFound` & co.): we resubscribe. */
  | 'subscription-lost'
  /** Another client opened a stream for our subscription (`ErrorNewEventStreamConnectionOpened`). */
  | 'connection-taken'
  /** The server dropped events but kept the subscription (`ErrorMissedNotificationEvents`). */
  | 'missed-events';

/** A subscription was created: the first one, or a replacement after the server lost the previous one. */
export interface SubscribedEvent {
  /** Discriminant. */
  readonly type: 'subscribed';
  /** The new subscription's id. */
  readonly subscriptionId: string;
  /** Set when this subscription replaces one the server lost. */
  readonly previousSubscriptionId?: string;
  /** When the source saw it (client clock). */
  readonly at: Date;
}

/** A connection is open and the server is answering (streaming: the response has started). */
export interface ConnectedEvent {
  /** Discriminant. */
  readonly type: 'connected';
  /** The subscription the connection serves. */
  readonly subscriptionId: string;
  /** When the source saw it (client clock). */
  readonly at: Date;
}

/** The server said "still alive, nothing new" (streaming `ConnectionStatus OK`). */
export interface KeepAliveEvent {
  /** Discriminant. */
  readonly type: 'keep-alive';
  /** The subscription the connection serves. */
  readonly subscriptionId: string;
  /** When the source saw it (client clock). */
  readonly at: Date;
}

/** An open connection ended. A reconnect follows unless the source stops. */
export interface DisconnectedEvent {
  /** Discriminant. */
  readonly type: 'disconnected';
  /** The subscription the connection served. */
  readonly subscriptionId: string;
  /** Why it ended. */
  readonly reason: DisconnectReason;
  /** The error behind it, when there was one (a `Closed` ending has none). */
  readonly error?: EwsBridgeError;
  /** When the source saw it (client clock). */
  readonly at: Date;
}

/** An attempt (subscribe or connect) failed; the next one starts after `delayMs`. */
export interface RetryingEvent {
  /** Discriminant. */
  readonly type: 'retrying';
  /** Why the attempt failed. */
  readonly reason: DisconnectReason;
  /** The failure. */
  readonly error: EwsBridgeError;
  /** Consecutive failed attempts so far (1 for the first failure). */
  readonly attempt: number;
  /** How long the source waits before the next attempt; exactly the server's demand when it made one. */
  readonly delayMs: number;
  /** Whether `delayMs` came from the server (`BackOffMilliseconds` or `Retry-After`). */
  readonly serverRequested: boolean;
  /** When the source saw it (client clock). */
  readonly at: Date;
}

/**
 * A window in which events may not have reached us, reported when it closes.
 *
 * - `subscriptionKept: true`: the same subscription carried on. Exchange holds a subscription's
 *   events while it has no connection and sends them once one is open again. After a clean end
 *   (`Closed`, or a completed response) nothing is lost (`eventsMayBeLost: false`); after a cut,
 *   a heartbeat timeout or a taken connection, envelopes the server wrote into the dying connection
 *   count as delivered on its side, so events may be lost (`eventsMayBeLost: true`).
 * - `subscriptionKept: false`: the server lost the subscription and a new one was made; events
 *   between `from` (the last moment the old one was known to work) and `to` (the moment the new one
 *   existed) are not delivered (`eventsMayBeLost: true`).
 * - `reason: 'missed-events'`: the server said it dropped events (`eventsMayBeLost: true`); the
 *   window is our best bound: from the previous healthy traffic to that message.
 * - Pull and hybrid sources resume from a watermark: a failed GetEvents or a replaced subscription
 *   loses nothing (`eventsMayBeLost: false`, also with `subscriptionKept: false`); only a watermark
 *   the server rejects (`ErrorInvalidWatermark`) or `missed-events` gives `eventsMayBeLost: true`.
 *
 * `from` and `to` are the client's clock, chosen so the window can only be too wide, never too
 * narrow: `from` is no later than the moment the server produced the last envelope we received
 * complete (for streaming, when the request that carried it was sent — a receipt time would be
 * too late under load, since the server wrote the envelope before we read it), `to` no earlier than
 * the moment the server queued for us again. `lastDelivered` anchors `from` on the server's clock.
 */
export interface GapEvent {
  /** Discriminant. */
  readonly type: 'gap';
  /** The subscription in use after the gap. */
  readonly subscriptionId: string;
  /** What opened the window. */
  readonly reason: DisconnectReason;
  /** No later than the start of the window (client clock). */
  readonly from: Date;
  /** No earlier than its end (client clock). */
  readonly to: Date;
  /** Whether the same subscription carried on (`false`: a new one replaced one the server lost). */
  readonly subscriptionKept: boolean;
  /** Whether events of the window may never be delivered (see the cases above). */
  readonly eventsMayBeLost: boolean;
  /**
   * Streaming sources: the last event delivered before the gap, with the server's own `timeStamp`
   * and its ids. Everything the server stamped up to it reached us. Absent when no event was
   * delivered before the gap.
   */
  readonly lastDelivered?: DeliveredEventRef;
  /**
   * Streaming sources with a `checkpoint` store: how many events the gap's SyncFolderItems
   * recovery emitted (marked `recovered: true`, before this signal). When the recovery covered the
   * whole window, `eventsMayBeLost` is `false`. Absent when no recovery ran.
   */
  readonly recovered?: number;
  /** SyncFolderItems calls the recovery made for this gap (retries included). */
  readonly recoveryRequests?: number;
  /** Why (part of) the window could not be recovered; `eventsMayBeLost` stays `true` then. */
  readonly unrecoverable?: GapUnrecoverableReason;
  /** The error behind `unrecoverable`, when there was one. */
  readonly recoveryError?: EwsBridgeError;
}

/** A gap still open, as its `gap` signal will describe it when it closes (pull and streaming). @internal */
export type OpenGap = { -readonly [K in 'from' | 'reason' | 'subscriptionKept' | 'eventsMayBeLost']: GapEvent[K] };

/**
 * Why a streaming gap could not be recovered with SyncFolderItems.
 * - `no-store`: the source has no `checkpoint` store (or `recoverGaps: false`).
 * - `all-folders`: `subscribeToAllFolders` — SyncFolderItems works folder by folder; not supported.
 * - `no-baseline`: the window reaches back before the first sync state was taken.
 * - `invalid-sync-state`: the server rejected the stored state (`ErrorInvalidSyncStateData`); a new
 *   baseline was taken, changes before it are unknown.
 * - `folder-deleted`: a watched folder no longer exists (`ErrorFolderNotFound`).
 * - `access-denied`: the account may no longer read a watched folder.
 * - `failed`: the sync failed otherwise (retries exhausted, a fatal error): see `recoveryError`.
 *   The stored states are kept, so the next recovery also covers this window.
 */
export type GapUnrecoverableReason = 'no-store' | 'all-folders' | 'no-baseline' | 'invalid-sync-state' | 'folder-deleted' | 'access-denied' | 'failed';

/** Which event was delivered last before a gap, as the server described it. */
export interface DeliveredEventRef {
  /** The event's `TimeStamp`, on the server's clock (ISO 8601 as the server wrote it). */
  readonly timeStamp: string;
  /** The event's type, e.g. `NewMail`. */
  readonly type: string;
  /** The item, for an item event. */
  readonly itemId?: Id;
  /** The folder, for a folder event. */
  readonly folderId?: Id;
}

/**
 * The hybrid source's doorbell gave up (a fatal error such as a taken connection or a refused
 * credential, or its retries ran out). The source keeps polling every `pollIntervalMs` and opens a
 * new doorbell after `restartInMs` (`doorbellRestartMs`).
 */
export interface DoorbellFailedEvent {
  /** Discriminant. */
  readonly type: 'failed';
  /** Why the doorbell gave up. */
  readonly error: Error;
  /** When a new doorbell opens, in milliseconds from now. */
  readonly restartInMs: number;
  /** When the source saw it (client clock). */
  readonly at: Date;
}

/**
 * Hybrid source only: a lifecycle signal of its streaming **doorbell**, the fast path. Every signal
 * the doorbell's streaming source emits comes wrapped in one of these (plus `failed` when it gives
 * up), so a consumer can see that the fast path is down while the pull side — whose signals a
 * hybrid source reports as usual, unwrapped — is fine. A doorbell outage loses nothing (the pull
 * subscription holds every event until a poll fetches it); it only makes delivery wait for the
 * safety-net poll. Consumers that look only at the other `type`s are unaffected.
 */
export interface DoorbellEvent {
  /** Discriminant. */
  readonly type: 'doorbell';
  /** What happened to the doorbell: its streaming source's own signal, or `failed`. */
  readonly event: SubscribedEvent | ConnectedEvent | KeepAliveEvent | DisconnectedEvent | RetryingEvent | GapEvent | DoorbellFailedEvent;
}

/** Every lifecycle signal a source emits (`doorbell` only from the hybrid source). */
export type SourceLifecycleEvent = SubscribedEvent | ConnectedEvent | KeepAliveEvent | DisconnectedEvent | RetryingEvent | GapEvent | DoorbellEvent;

/** A notification, as a signal among lifecycle signals. */
export interface NotificationSignal {
  /** Discriminant. */
  readonly type: 'notification';
  /** The notification. */
  readonly notification: PushNotification;
}

/** What `streamingSignals()` (and later the pull and hybrid sources) emit, in order. */
export type SourceSignal = NotificationSignal | SourceLifecycleEvent;

/** Receives lifecycle signals next to a notifications-only Observable. */
export type LifecycleListener = (event: SourceLifecycleEvent) => void;
