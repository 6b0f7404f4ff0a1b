import { ExchangeService } from 'ews-javascript-api';
/**
 * Microsoft's "Pull notifications" sample (EWS Managed API) as ews-javascript-api apps write it:
 * subscribe, then call GetEvents on a timer, with its README's `.then(success, error)` style.
 * pull-app.ews.ts and pull-app.bridge.ts differ only in line 1.
 */
import { EventType, ExchangeVersion, FolderId, Uri, WebCredentials, WellKnownFolderName, type NotificationEvent, type PullSubscription } from 'ews-javascript-api';

export interface AppOutput {
  line(text: string): void;
  event(event: NotificationEvent): void;
}

export async function pullNotifications(
  url: string,
  user: string,
  password: string,
  pollMs: number,
  out: AppOutput,
): Promise<{ subscription: PullSubscription; stop: () => void }> {
  const service = new ExchangeService(ExchangeVersion.Exchange2013);
  service.Credentials = new WebCredentials(user, password);
  service.Url = new Uri(url);

  // Subscribe to pull notifications in the Inbox (ews-javascript-api types the watermark as string; the sample passes null).
  const subscription = await service.SubscribeToPullNotifications(
    [new FolderId(WellKnownFolderName.Inbox)],
    5,
    null as unknown as string,
    EventType.NewMail,
    EventType.Created,
    EventType.Deleted,
    EventType.Modified,
    EventType.Moved,
    EventType.Copied,
    EventType.FreeBusyChanged,
  );

  // Call GetEvents to retrieve events from the server.
  const timer = setInterval(() => {
    void subscription.GetEvents().then(
      (events) => {
        // Loop through all item-related events.
        for (const itemEvent of events.ItemEvents) {
          switch (itemEvent.EventType) {
            case EventType.NewMail:
              out.line('New mail: ' + itemEvent.ItemId.UniqueId);
              break;
            default:
              out.line(EventType[itemEvent.EventType] + ': ' + itemEvent.ItemId.UniqueId);
              break;
          }
          out.event(itemEvent);
        }
        // Loop through all folder-related events.
        for (const folderEvent of events.FolderEvents) {
          out.line(EventType[folderEvent.EventType] + ' folder: ' + folderEvent.FolderId.UniqueId);
          out.event(folderEvent);
        }
      },
      (error: { message?: string; Message?: string }) => {
        out.line('\n-----Error-----\n' + (error.Message ?? error.message ?? String(error)));
      },
    );
  }, pollMs);
  return { subscription, stop: () => clearInterval(timer) };
}
