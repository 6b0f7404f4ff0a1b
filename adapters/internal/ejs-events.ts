/**
 * Turns the bridge's events into ews-javascript-api's own event objects — `ItemEvent` and
 * `FolderEvent` with `EventType`, `TimeStamp` (its `DateTime`), `ItemId`/`FolderId`,
 * `ParentFolderId`, `OldItemId`/`OldFolderId`/`OldParentFolderId` and `UnreadCount` — built by the
 * library itself: each object is constructed and filled by the same internal calls its
 * `GetEventsResults` makes when it reads a GetEvents response (`new ItemEvent(type, timeStamp)`
 * then `LoadFromXmlJsObject`), so it is indistinguishable from one its pull subscriptions return.
 * Those two calls are internal to ews-javascript-api (absent from its typings); the peer range pins
 * the versions they are tested with.
 *
 * @packageDocumentation
 */
import type { ExchangeService, FolderEvent, ItemEvent, NotificationEvent as EjsNotificationEvent } from 'ews-javascript-api';
import type { Id, MovedOrCopiedEvent, ObjectChangedEvent } from '../../lib/entry-types.js';
import type { PushNotification } from '../../lib/index.js';
import type { EjsModule } from './ejs-config.js';

/** The XML-as-JS shape ews-javascript-api's event loaders read (element names as keys, attributes as fields). */
type JsId = { Id: string; ChangeKey?: string };
type JsEvent = Record<string, JsId | string>;

/** The internal surface of ews-javascript-api's event classes that its own GetEvents reader uses. */
interface LoadableEvent {
  LoadFromXmlJsObject(jsEvent: JsEvent, service: ExchangeService): void;
}
type EventConstructor = new (eventType: number, timeStamp: unknown) => LoadableEvent;

/** The internal time conversion its readers use (UTC string → the service's time zone). */
interface TimeConverter {
  ConvertUniversalDateTimeStringToLocalDateTime?(value: string): unknown;
}

function jsId(id: Id): JsId {
  return id.changeKey === undefined ? { Id: id.id } : { Id: id.id, ChangeKey: id.changeKey };
}

function toJsEvent(event: ObjectChangedEvent | MovedOrCopiedEvent): JsEvent {
  const js: JsEvent = { TimeStamp: event.timeStamp, ParentFolderId: jsId(event.parentFolderId) };
  if (event.watermark !== undefined) js['Watermark'] = event.watermark;
  if (event.itemId) js['ItemId'] = jsId(event.itemId);
  if (event.folderId) js['FolderId'] = jsId(event.folderId);
  switch (event.type) {
    case 'Moved':
    case 'Copied':
      if (event.oldItemId) js['OldItemId'] = jsId(event.oldItemId);
      if (event.oldFolderId) js['OldFolderId'] = jsId(event.oldFolderId);
      js['OldParentFolderId'] = jsId(event.oldParentFolderId);
      break;
    default:
      if (event.unreadCount !== undefined) js['UnreadCount'] = String(event.unreadCount);
  }
  return js;
}

/** One event as ews-javascript-api's `ItemEvent` (item events) or `FolderEvent` (folder events). */
export function toEjsEvent(ejs: EjsModule, service: ExchangeService, event: ObjectChangedEvent | MovedOrCopiedEvent): ItemEvent | FolderEvent {
  const eventType = ejs.EventType[event.type];
  const converter = service as unknown as TimeConverter;
  const timeStamp =
    typeof converter.ConvertUniversalDateTimeStringToLocalDateTime === 'function'
      ? converter.ConvertUniversalDateTimeStringToLocalDateTime(event.timeStamp)
      : ejs.DateTime.Parse(event.timeStamp);
  const Ctor = (event.folderId !== undefined ? ejs.FolderEvent : ejs.ItemEvent) as unknown as EventConstructor;
  const made = new Ctor(eventType, timeStamp);
  made.LoadFromXmlJsObject(toJsEvent(event), service);
  return made as unknown as ItemEvent | FolderEvent;
}

/** The notification's item and folder events, in wire order (StatusEvents have no object, as in `GetEventsResults`). */
export function toEjsEvents(ejs: EjsModule, service: ExchangeService, notification: PushNotification): EjsNotificationEvent[] {
  const events: EjsNotificationEvent[] = [];
  for (const event of notification.events) {
    if (event.type !== 'Status') events.push(toEjsEvent(ejs, service, event));
  }
  return events;
}
