/**
 * The pull clients: (a) `pullNotifications` (GetEvents from the checkpointed watermark, the next
 * call as soon as the consumer's callback returned, `MoreEvents` followed at once), and (b)
 * ews-javascript-api's PullSubscription driven the way its users do — `GetEvents()` again while
 * `MoreEventsAvailable`. Both record each event's key for the in-order check.
 *
 * ews-javascript-api regroups a page's events by type, and takes the watermark of the last event
 * of its regrouped list as the next position: not the page's last event, so the next page starts
 * earlier and repeats events.
 */
import * as ews from 'ews-javascript-api';
import { shipped } from './shipped.js';
import { ejaKey } from './client-eja.js';
import { keyOf } from './client-ours.js';
import { BENCH_PASSWORD, BENCH_USER, Recorder, type ConsumeOptions, type ConsumeResult } from './recorder.js';

/** Consumes a pull subscription's events with `pullNotifications`. */
export async function consumePullOurs(options: ConsumeOptions): Promise<ConsumeResult> {
  // The built bundle, as users run it (see shipped.ts).
  const { pullNotifications } = await shipped();
  const controller = new AbortController();
  const recorder = new Recorder(options, () => controller.abort());
  pullNotifications({
    url: options.url,
    auth: { type: 'basic', username: BENCH_USER, password: BENCH_PASSWORD },
    folders: ['inbox'],
    signal: controller.signal,
    retry: { maxAttempts: 1 },
  }).subscribe({
    next: (notification) => {
      const at = recorder.arrived();
      for (const event of notification.events) {
        const key = keyOf(event);
        if (key !== undefined) recorder.add(key, at);
      }
      recorder.checkComplete();
    },
    error: (error: unknown) => recorder.finish('error', error),
    complete: () => recorder.finish('disconnected'),
  });
  return recorder.done;
}

/** Consumes a pull subscription's events with ews-javascript-api's PullSubscription. */
export async function consumePullEja(options: ConsumeOptions): Promise<ConsumeResult> {
  const service = new ews.ExchangeService(ews.ExchangeVersion.Exchange2013);
  service.Credentials = new ews.WebCredentials(BENCH_USER, BENCH_PASSWORD);
  service.Url = new ews.Uri(options.url);
  let stopped = false;
  const recorder = new Recorder(options, () => {
    stopped = true;
  });
  try {
    const subscription = await service.SubscribeToPullNotifications(
      [new ews.FolderId(ews.WellKnownFolderName.Inbox)],
      30,
      null as unknown as string,
      ews.EventType.NewMail,
      ews.EventType.Created,
      ews.EventType.Deleted,
      ews.EventType.Modified,
      ews.EventType.Moved,
      ews.EventType.Copied,
      ews.EventType.FreeBusyChanged,
    );
    while (!stopped) {
      const results = await subscription.GetEvents();
      const at = recorder.arrived();
      for (const event of results.AllEvents) recorder.add(ejaKey(event), at);
      // It may fetch events twice (see client-pull's header), so the count proves nothing: it is
      // done when the server has nothing more.
      if (!subscription.MoreEventsAvailable) recorder.finish('complete');
    }
    await subscription.Unsubscribe().catch(() => undefined);
  } catch (error) {
    recorder.finish('error', error);
  }
  return recorder.done;
}
