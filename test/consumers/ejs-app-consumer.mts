// Type-checked by test/package-exports.test.ts against the built package: an app typed against
// ews-javascript-api's own declarations (its StreamingSubscription, NotificationEventArgs,
// SubscriptionErrorEventArgs, PullSubscription, GetEventsResults, delegate arrays) compiles with the
// bridge's ExchangeService and StreamingSubscriptionConnection, the only names it imports from us.
import { ExchangeService, StreamingSubscriptionConnection } from 'ews-push-bridge/adapters/ews-javascript-api';
import * as ews from 'ews-javascript-api';

/** Code written for ews-javascript-api's ExchangeService takes the bridge's. */
function subscribeInbox(service: ews.ExchangeService): Promise<ews.StreamingSubscription> {
  return service.SubscribeToStreamingNotifications([new ews.FolderId(ews.WellKnownFolderName.Inbox)], ews.EventType.NewMail, ews.EventType.Created);
}

export async function streamingApp(url: string): Promise<StreamingSubscriptionConnection> {
  const service = new ExchangeService(ews.ExchangeVersion.Exchange2013);
  service.Credentials = new ews.WebCredentials('user', 'password');
  service.Url = new ews.Uri(url);
  const asEws: ews.ExchangeService = service;
  const subscription: ews.StreamingSubscription = await subscribeInbox(asEws);
  const all: ews.StreamingSubscription = await service.SubscribeToStreamingNotificationsOnAllFolders(ews.EventType.Deleted);

  const connection = new StreamingSubscriptionConnection(service, 30);
  const withList = new StreamingSubscriptionConnection(new ews.ExchangeService(ews.ExchangeVersion.Exchange2016), [subscription, all], 1);
  connection.AddSubscription(subscription);
  connection.OnNotificationEvent.push((sender: StreamingSubscriptionConnection, args: ews.NotificationEventArgs) => {
    const from: ews.StreamingSubscription = args.Subscription;
    for (const event of args.Events) {
      if (event instanceof ews.ItemEvent) console.log(from.Id, ews.EventType[event.EventType], event.ItemId.UniqueId, event.TimeStamp.ToISOString());
      else if (event instanceof ews.FolderEvent) console.log(event.FolderId.UniqueId, event.UnreadCount);
    }
    if (sender.CurrentSubscriptions.length === 0) sender.Close();
  });
  connection.OnSubscriptionError.push((_sender: unknown, args: ews.SubscriptionErrorEventArgs) => {
    const failed: ews.StreamingSubscription = args.Subscription;
    const error: ews.Exception = args.Exception;
    console.log(failed?.Id, error.Message);
  });
  connection.OnDisconnect.push((sender: StreamingSubscriptionConnection, _args: ews.SubscriptionErrorEventArgs) => {
    if (!sender.IsOpen) void sender.Open();
  });
  // Delegate lists typed with ews-javascript-api's own (unexported) delegate types fit.
  const handlers: ews.StreamingSubscriptionConnection['OnNotificationEvent'] = [];
  const onError: ews.StreamingSubscriptionConnection['OnSubscriptionError'] = [];
  connection.OnNotificationEvent.push(...handlers);
  connection.OnDisconnect = connection.OnDisconnect.concat(onError);
  const open: Promise<void> = connection.Open();
  const isOpen: boolean = connection.IsOpen;
  const current: ews.StreamingSubscription[] = withList.CurrentSubscriptions;
  connection.RemoveSubscription(all);
  const unsubscribed: Promise<void> = all.Unsubscribe();
  void [open, isOpen, current, unsubscribed];
  return connection;
}

export async function pullApp(service: ExchangeService): Promise<string> {
  const subscription: ews.PullSubscription = await service.SubscribeToPullNotifications(
    [new ews.FolderId(ews.WellKnownFolderName.Inbox)],
    5,
    null as unknown as string,
    ews.EventType.NewMail,
  );
  const results: ews.GetEventsResults = await subscription.GetEvents();
  for (const itemEvent of results.ItemEvents) console.log(itemEvent.ItemId.UniqueId);
  for (const folderEvent of results.FolderEvents) console.log(folderEvent.FolderId.UniqueId);
  const all: ews.NotificationEvent[] = results.AllEvents;
  const more: boolean = subscription.MoreEventsAvailable;
  const onAll: ews.PullSubscription = await service.SubscribeToPullNotificationsOnAllFolders(30, subscription.Watermark, ews.EventType.Created);
  await onAll.Unsubscribe();
  void [all, more];
  return subscription.Watermark;
}
