/**
 * The one notification shape every source emits and every adapter consumes: the payload of a
 * push-era `SendNotification` (equally, of one `GetEvents` or `GetStreamingEvents` `Notification`).
 *
 * Rules the whole library keeps: events stay in wire order, every field the wire carries is kept,
 * item and folder events are told apart, and nothing is invented (a streaming event has no
 * watermark on the wire, so it has none here either).
 *
 * @packageDocumentation
 */

/** An EWS item or folder id with its optional change key. */
export interface Id {
  /** The id (`Id` attribute), opaque. */
  readonly id: string;
  /** The change key (`ChangeKey` attribute), when the server sent one. */
  readonly changeKey?: string;
}

/** The event types a subscription can ask for (`t:EventType` minus the status event). */
export type EventType = 'NewMail' | 'Created' | 'Deleted' | 'Modified' | 'Moved' | 'Copied' | 'FreeBusyChanged';

/** Every event type, in schema order. */
export const EVENT_TYPES: readonly EventType[] = [
  'Copied',
  'Created',
  'Deleted',
  'Modified',
  'Moved',
  'NewMail',
  'FreeBusyChanged',
];

/** Exchange's keep-alive event: nothing happened, but the subscription is alive. */
export interface StatusEvent {
  /** Discriminant: a StatusEvent. */
  readonly type: 'Status';
  /** Present on pull and push (the watermark to resume from); absent on streaming. */
  readonly watermark?: string;
}

/** Fields shared by every item/folder event (`t:BaseObjectChangedEventType`). */
interface ObjectEventBase {
  /** Present on pull and push; absent on streaming. */
  readonly watermark?: string;
  /** ISO-8601 timestamp as the server wrote it. */
  readonly timeStamp: string;
  /** Set for item events; exactly one of `itemId` / `folderId` is present. */
  readonly itemId?: Id;
  /** Set for folder events. */
  readonly folderId?: Id;
  /** The folder that holds the item or folder. */
  readonly parentFolderId: Id;
  /**
   * Set on events a streaming source recovered with SyncFolderItems after a gap rather than
   * received on the stream. Such an event carries what SyncFolderItems gives: the item's id and
   * change key (of its latest version: changes inside one gap are coalesced per item) and its
   * folder; its `timeStamp` is when the recovery found it (the server gives none).
   */
  readonly recovered?: true;
}

/** NewMail, Created, Deleted, Modified and FreeBusyChanged events. */
export interface ObjectChangedEvent extends ObjectEventBase {
  /** Discriminant: what happened to the item or folder. */
  readonly type: 'NewMail' | 'Created' | 'Deleted' | 'Modified' | 'FreeBusyChanged';
  /** Only on Modified events of folders: the folder's unread count after the change. */
  readonly unreadCount?: number;
}

/** Moved and Copied events carry where the object came from. */
export interface MovedOrCopiedEvent extends ObjectEventBase {
  /** Discriminant: the object was moved or copied. */
  readonly type: 'Moved' | 'Copied';
  /** For item events: the item's id before the move or copy. */
  readonly oldItemId?: Id;
  /** For folder events: the folder's id before the move or copy. */
  readonly oldFolderId?: Id;
  /** The folder that held the object before. */
  readonly oldParentFolderId: Id;
}

/** One event of a notification, discriminated by `type`. */
export type NotificationEvent = StatusEvent | ObjectChangedEvent | MovedOrCopiedEvent;

/** One `SendNotification` / `GetEvents` / `GetStreamingEvents` notification. */
export interface PushNotification {
  /** The EWS subscription the events belong to. */
  readonly subscriptionId: string;
  /** The watermark the events follow (pull, hybrid and push); absent on pure streaming. */
  readonly previousWatermark?: string;
  /** `true` when the server has more events queued (pull: call GetEvents again at once). */
  readonly moreEvents: boolean;
  /** In wire order, never regrouped. */
  readonly events: readonly NotificationEvent[];
  /** Which mailbox, when the bridge watches several. */
  readonly mailbox?: string;
}

/** The legacy push listener's answer: keep the subscription, or end it. */
export type SubscriptionStatus = 'OK' | 'Unsubscribe';

/**
 * Distinguished folder names accepted by EWS (`t:DistinguishedFolderIdNameType`), the common ones.
 * Any other schema-valid name is accepted too, as a plain string.
 */
export type DistinguishedFolderName =
  | 'inbox'
  | 'calendar'
  | 'contacts'
  | 'deleteditems'
  | 'drafts'
  | 'journal'
  | 'notes'
  | 'outbox'
  | 'sentitems'
  | 'tasks'
  | 'msgfolderroot'
  | 'root'
  | 'junkemail'
  | 'searchfolders'
  | 'voicemail'
  | 'archiveinbox'
  | (string & {});

/** A folder to watch: a distinguished name like `'inbox'`, or an explicit folder id. */
export type FolderRef = DistinguishedFolderName | Id;

/** Exchange versions we can put in `RequestServerVersion`. */
export type ExchangeVersion =
  | 'Exchange2010_SP1'
  | 'Exchange2010_SP2'
  | 'Exchange2013'
  | 'Exchange2013_SP1'
  | 'Exchange2015'
  | 'Exchange2016';

/**
 * The watermark to resume from after `notification`: its last event's in wire order (a
 * StatusEvent's too), or `undefined` when no event carries one (streaming). Where the next
 * GetEvents starts, and what a checkpoint stores. @internal
 */
export function lastWatermark(notification: Pick<PushNotification, 'events'>): string | undefined {
  const { events } = notification;
  for (let i = events.length - 1; i >= 0; i--) {
    const watermark = events[i]?.watermark;
    if (watermark !== undefined) return watermark;
  }
  return undefined;
}
