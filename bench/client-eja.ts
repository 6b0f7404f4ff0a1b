/**
 * Client (b): ews-javascript-api driven the way its users do — ExchangeService with WebCredentials,
 * SubscribeToStreamingNotifications, a StreamingSubscriptionConnection whose OnNotificationEvent
 * records each event's key. An event whose ids did not survive its parsing is recorded as
 * `corrupt:<type>` (the check counts it as unrecognised).
 */
import * as ews from 'ews-javascript-api';
import { BENCH_PASSWORD, BENCH_USER, Recorder, type ConsumeOptions, type ConsumeResult } from './recorder.js';
import { eventKeyOf } from './stream-fixture.js';

/** The in-order check's key of one ews-javascript-api event. */
export function ejaKey(event: ews.NotificationEvent): string {
  // A chunk boundary next to whitespace makes it parse `<t:ItemIdId="…"` (it trims every chunk):
  // the event arrives with an empty ItemId, so its identity is gone.
  if (event instanceof ews.ItemEvent) {
    const id: string | undefined = event.ItemId?.UniqueId;
    return id ? eventKeyOf(id) : `corrupt:${ews.EventType[event.EventType]}`;
  }
  if (event instanceof ews.FolderEvent) {
    const id: string | undefined = event.FolderId?.UniqueId;
    return id ? eventKeyOf(id, event.UnreadCount ?? undefined) : `corrupt:${ews.EventType[event.EventType]}`;
  }
  return 'corrupt:unknown';
}

/** Consumes one stream with ews-javascript-api's StreamingSubscriptionConnection. */
export async function consumeEja(options: ConsumeOptions): Promise<ConsumeResult> {
  const service = new ews.ExchangeService(ews.ExchangeVersion.Exchange2013);
  service.Credentials = new ews.WebCredentials(BENCH_USER, BENCH_PASSWORD);
  service.Url = new ews.Uri(options.url);
  const subscription = await service.SubscribeToStreamingNotifications(
    [new ews.FolderId(ews.WellKnownFolderName.Inbox)],
    ews.EventType.NewMail,
    ews.EventType.Created,
    ews.EventType.Deleted,
    ews.EventType.Modified,
    ews.EventType.Moved,
    ews.EventType.Copied,
    ews.EventType.FreeBusyChanged,
  );
  const connection = new ews.StreamingSubscriptionConnection(service, 30);
  const recorder = new Recorder(options, () => {
    if (connection.IsOpen) connection.Close();
    // What its users do when they are done; not awaited (not part of the measurement).
    subscription.Unsubscribe().catch(() => undefined);
  });
  connection.AddSubscription(subscription);
  connection.OnNotificationEvent.push((_sender, args) => {
    const at = recorder.arrived();
    for (const event of args.Events) recorder.add(ejaKey(event), at);
    recorder.checkComplete();
  });
  connection.OnSubscriptionError.push((_sender, args) => recorder.finish('error', args.Exception));
  connection.OnDisconnect.push((_sender, args) => recorder.finish('disconnected', args.Exception ?? undefined));
  connection.Open().catch((error: unknown) => recorder.finish('error', error));
  return recorder.done;
}

