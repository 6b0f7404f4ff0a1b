/**
 * Client (a): `streamingNotifications`, with a subscriber that records each event's key.
 */
import type { NotificationEvent } from '../lib/model.js';
import { shipped } from './shipped.js';
import { BENCH_PASSWORD, BENCH_USER, Recorder, type ConsumeOptions, type ConsumeResult } from './recorder.js';
import { eventKeyOf } from './stream-fixture.js';

/** The in-order check's key of one of our events (none for status events). */
export function keyOf(event: NotificationEvent): string | undefined {
  if (event.type === 'Status') return undefined;
  const id = event.itemId?.id ?? event.folderId?.id ?? '';
  return eventKeyOf(id, 'unreadCount' in event ? event.unreadCount : undefined);
}

/** Consumes one stream with `streamingNotifications`. */
export async function consumeOurs(options: ConsumeOptions): Promise<ConsumeResult> {
  // The built bundle, as users run it (see shipped.ts).
  const { streamingNotifications } = await shipped();
  const controller = new AbortController();
  const recorder = new Recorder(options, () => controller.abort());
  let connections = 0;
  streamingNotifications({
    url: options.url,
    auth: { type: 'basic', username: BENCH_USER, password: BENCH_PASSWORD },
    folders: ['inbox'],
    signal: controller.signal,
    retry: { maxAttempts: 1 },
    onLifecycle: (signal) => {
      if (signal.type === 'connected') connections++;
      // Everything the first connection carried has been delivered by the time it ends.
      if (signal.type === 'disconnected' && connections === 1) recorder.finish('disconnected');
    },
  }).subscribe({
    next: (notification) => {
      const at = recorder.arrived();
      for (const event of notification.events) recorder.add(keyOf(event), at);
      recorder.checkComplete();
    },
    error: (error: unknown) => recorder.finish('error', error),
    complete: () => recorder.finish('disconnected'),
  });
  return recorder.done;
}

