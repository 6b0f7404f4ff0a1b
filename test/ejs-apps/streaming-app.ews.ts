import { ExchangeService, StreamingSubscriptionConnection } from 'ews-javascript-api';
/**
 * Microsoft's "Stream notifications about mailbox events by using EWS" sample (EWS Managed API),
 * as ews-javascript-api apps write it. Console output goes to `out`; `out.event` also gets each
 * event (for the test's counts). streaming-app.ews.ts and streaming-app.bridge.ts differ only in line 1.
 */
import {
  EventType,
  ExchangeVersion,
  type FolderEvent,
  FolderId,
  ItemEvent,
  Uri,
  WebCredentials,
  WellKnownFolderName,
  type NotificationEvent,
  type NotificationEventArgs,
  type StreamingSubscription,
  type SubscriptionErrorEventArgs,
} from 'ews-javascript-api';

export interface AppOutput {
  line(text: string): void;
  event(event: NotificationEvent): void;
}

export async function setStreamingNotifications(
  url: string,
  user: string,
  password: string,
  out: AppOutput,
): Promise<{ connection: StreamingSubscriptionConnection; subscription: StreamingSubscription }> {
  const service = new ExchangeService(ExchangeVersion.Exchange2013);
  service.Credentials = new WebCredentials(user, password);
  service.Url = new Uri(url);

  // Subscribe to streaming notifications in the Inbox.
  const streamingSubscription = await service.SubscribeToStreamingNotifications(
    [new FolderId(WellKnownFolderName.Inbox)],
    EventType.NewMail,
    EventType.Created,
    EventType.Deleted,
    EventType.Modified,
    EventType.Moved,
    EventType.Copied,
    EventType.FreeBusyChanged,
  );

  // Create a streaming connection to the service object, over which events are returned to the client.
  // Keep the streaming connection open for 30 minutes.
  const connection = new StreamingSubscriptionConnection(service, 30);
  connection.AddSubscription(streamingSubscription);
  connection.OnNotificationEvent.push(onEvent);
  connection.OnSubscriptionError.push(onError);
  connection.OnDisconnect.push(onDisconnect);
  void connection.Open();
  return { connection, subscription: streamingSubscription };

  function onDisconnect(sender: StreamingSubscriptionConnection, _args: SubscriptionErrorEventArgs): void {
    // Cast the sender as a StreamingSubscriptionConnection object.
    const connection = sender;
    out.line('The connection to the subscription is disconnected.');
    // Reconnect.
    void connection.Open();
  }

  function onEvent(_sender: StreamingSubscriptionConnection, args: NotificationEventArgs): void {
    // Loop through all item-related events.
    for (const notification of args.Events) {
      switch (notification.EventType) {
        case EventType.NewMail:
          out.line('\n-------------Mail created:-------------');
          break;
        case EventType.Created:
          out.line('\n-------------Item or folder created:-------------');
          break;
        case EventType.Deleted:
          out.line('\n-------------Item or folder deleted:-------------');
          break;
        default:
          break;
      }
      // Display the notification identifier.
      if (notification instanceof ItemEvent) {
        // The NotificationEvent for an email message is an ItemEvent.
        out.line('\nItemId: ' + notification.ItemId.UniqueId);
      } else {
        // The NotificationEvent for a folder is a FolderEvent.
        const folderEvent = notification as FolderEvent;
        out.line('\nFolderId: ' + folderEvent.FolderId.UniqueId);
      }
      out.event(notification);
    }
  }

  function onError(_sender: StreamingSubscriptionConnection, args: SubscriptionErrorEventArgs): void {
    // Handle error conditions.
    const e = args.Exception;
    out.line('\n-----Error-----\n' + e.Message);
  }
}
