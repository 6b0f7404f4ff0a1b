/**
 * The legacy app's subscription, 2015 style: ask Exchange (through ews-javascript-api) to push to
 * the listener. Since the 2019 security update Exchange pushes anonymously, and many
 * organisations block push altogether — this is the part that moves to the bridge.
 */
import { EventType, ExchangeService, ExchangeVersion, FolderId, Uri, WebCredentials, WellKnownFolderName, type PushSubscription } from 'ews-javascript-api';

export function subscribe(ewsUrl: string, user: string, password: string, listenerUrl: string): Promise<PushSubscription> {
  const service = new ExchangeService(ExchangeVersion.Exchange2013);
  service.Url = new Uri(ewsUrl);
  service.Credentials = new WebCredentials(user, password);
  return service.SubscribeToPushNotifications(
    [new FolderId(WellKnownFolderName.Inbox)],
    new Uri(listenerUrl),
    1,
    null as unknown as string,
    EventType.NewMail, EventType.Created, EventType.Deleted, EventType.Modified, EventType.Moved, EventType.Copied,
  );
}
