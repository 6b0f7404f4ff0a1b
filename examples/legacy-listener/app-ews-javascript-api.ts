/**
 * Migration 3 — for code built on ews-javascript-api: subscribe-2015.ts with one line changed
 * (`service.SubscribeToPushNotifications(` → `pushBridge(service).SubscribeToPushNotifications(`),
 * and the listener URL replaced by a callback that gets ews-javascript-api's own `ItemEvent` /
 * `FolderEvent` objects. (Keeping `new Uri(listenerUrl)` instead keeps listener-2015.ts working
 * unchanged: then only the one line changes.)
 */
import { EventType, ExchangeService, ExchangeVersion, FolderEvent, FolderId, ItemEvent, Uri, WebCredentials, WellKnownFolderName } from 'ews-javascript-api';
// In an app: from 'ews-push-bridge/adapters/ews-javascript-api'.
import { pushBridge, type BridgedPushSubscription } from '../../adapters/ews-javascript-api.js';
import type { Crm } from './crm.js';

export function subscribe(crm: Crm, ewsUrl: string, user: string, password: string): Promise<BridgedPushSubscription> {
  const service = new ExchangeService(ExchangeVersion.Exchange2013);
  service.Url = new Uri(ewsUrl);
  service.Credentials = new WebCredentials(user, password);
  return pushBridge(service).SubscribeToPushNotifications(
    [new FolderId(WellKnownFolderName.Inbox)],
    function (args) {
      if (args.IsStatusEvent) crm.heartbeat();
      for (const event of args.Events) {
        const id = event instanceof ItemEvent ? event.ItemId : event instanceof FolderEvent ? event.FolderId : undefined;
        if (!id) continue;
        crm.file({ subscriptionId: args.SubscriptionId, type: EventType[event.EventType], kind: event instanceof ItemEvent ? 'item' : 'folder', id: id.UniqueId, changeKey: id.ChangeKey });
      }
      return crm.answer();
    },
    1,
    null,
    EventType.NewMail, EventType.Created, EventType.Deleted, EventType.Modified, EventType.Moved, EventType.Copied,
  );
}
