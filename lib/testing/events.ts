/**
 * What a test makes happen in a simulated mailbox ({@link SimulatedEvent}), what the simulator
 * records for it ({@link DeliveredEvent}), and how to recognise it again in a received notification
 * ({@link sequenceOf}).
 */
import type { MovedOrCopiedEvent, NotificationEvent, ObjectChangedEvent } from '../model.js';
import { decodeChangeKey, decodeWatermark } from './ids.js';

/** Fields every simulated event may set. */
interface SimulatedEventBase {
  /**
   * Whether the event concerns an item (a message, appointment…) or a folder.
   * @defaultValue `'item'`
   */
  readonly on?: 'item' | 'folder';
  /**
   * The item the event concerns (an id from an earlier {@link DeliveredEvent}). By default NewMail
   * and Created make a new item; the other types use the newest item of the folder (a new id when
   * the folder has none).
   */
  readonly itemId?: string;
  /**
   * The event's `TimeStamp`.
   * @defaultValue the current time, to the second, as Exchange writes it
   */
  readonly timeStamp?: Date | string;
}

/**
 * An event that happens in one folder. `folder` is a distinguished folder name (`'inbox'`,
 * `'calendar'`…), the display name of a custom folder (made under `msgfolderroot` on first use), or
 * a folder id from {@link EwsSimulator.folderId}.
 */
export interface SimulatedFolderEvent extends SimulatedEventBase {
  readonly type: 'NewMail' | 'Created' | 'Deleted' | 'Modified' | 'FreeBusyChanged';
  /** @defaultValue `'inbox'` */
  readonly folder?: string;
  /** Modified events of folders: the folder's unread count, written as `UnreadCount`. */
  readonly unreadCount?: number;
  /** Modified events of items: a read-flag change, reported by SyncFolderItems as `ReadFlagChange`. */
  readonly isRead?: boolean;
}

/**
 * An object moved or copied from one folder to another. Moves and copies give items a new id (as
 * Exchange does); the old one is reported as `OldItemId`. With `on: 'folder'`, `folder` names the
 * folder that moves (it keeps its id).
 */
export interface SimulatedMoveEvent extends SimulatedEventBase {
  readonly type: 'Moved' | 'Copied';
  readonly from: string;
  readonly to: string;
  /** With `on: 'folder'`: the folder that is moved or copied. */
  readonly folder?: string;
}

/** Something that happens in a mailbox: `{ type: 'NewMail' }`, `{ type: 'Moved', from: 'inbox', to: 'archive' }`… */
export type SimulatedEvent = SimulatedFolderEvent | SimulatedMoveEvent;

/**
 * An event as the simulator stored it: exactly what a pull or push subscriber receives on the wire
 * (streaming subscribers receive the same minus `watermark`), plus its identity.
 */
export type DeliveredEvent = (ObjectChangedEvent | MovedOrCopiedEvent) & {
  /** The mailbox's sequence number of this event: 1, 2, 3… per mailbox, never reused. */
  readonly seq: number;
  /** The mailbox the event happened in (lower-cased). */
  readonly mailbox: string;
  /** The watermark just after this event (pull/push subscribers see it on the event). */
  readonly watermark: string;
};

/**
 * Reads back the {@link DeliveredEvent.seq} of an event received from the simulator, from the wire
 * alone: every event the simulator writes carries a change key (`ItemId/@ChangeKey`, or
 * `FolderId/@ChangeKey` for folder events) that encodes it, and pull/push events also carry it in
 * their watermark. Returns `undefined` for status events and for events from anywhere else.
 *
 * Sequence numbers are per mailbox: to prove that nothing was lost or duplicated, collect them per
 * mailbox and compare with what `deliver()` returned.
 */
export function sequenceOf(event: NotificationEvent): number | undefined {
  if (event.type === 'Status') return undefined;
  const key = event.itemId?.changeKey ?? event.folderId?.changeKey;
  const fromKey = key === undefined ? undefined : decodeChangeKey(key);
  if (fromKey !== undefined) return fromKey;
  return event.watermark === undefined ? undefined : decodeWatermark(event.watermark)?.seq;
}
