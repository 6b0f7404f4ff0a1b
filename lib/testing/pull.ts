/**
 * Pull notifications: GetEvents reads a subscription's events after the watermark the client sends,
 * at most 50 per call, with `PreviousWatermark` = that watermark, `MoreEvents` when more are queued,
 * and a `StatusEvent` (with a watermark to store) when nothing happened.
 */
import { decodeWatermark } from './ids.js';
import { NO_ERROR, type MessageStatus, type WireNotification } from './response-writer.js';
import type { Subscription } from './subscriptions.js';

/** Exchange returns at most this many events per GetEvents. */
export const MAX_EVENTS_PER_GET_EVENTS = 50;

/** The answer to one GetEvents. */
export interface GetEventsAnswer {
  readonly status: MessageStatus;
  readonly notification?: WireNotification;
}

/**
 * Resolves a watermark to a sequence number of `sub`'s mailbox; `undefined` when it is not one of
 * this simulator's watermarks for that mailbox, or points past the newest event or before the
 * subscription began (all `ErrorInvalidWatermark`).
 */
export function watermarkSeq(sub: Subscription, watermark: string, serverId: number): number | undefined {
  const position = decodeWatermark(watermark);
  if (!position || position.serverId !== serverId || position.mailboxNo !== sub.mailbox.no) return undefined;
  if (position.seq > sub.mailbox.seq) return undefined;
  return position.seq;
}

/** Answers GetEvents for a live pull subscription. */
export function getEvents(sub: Subscription, watermark: string, serverId: number): GetEventsAnswer {
  const seq = watermarkSeq(sub, watermark, serverId);
  if (seq === undefined) return { status: { code: 'ErrorInvalidWatermark' } };
  if (sub.missedPending) {
    sub.missedPending = false;
    return { status: { code: 'ErrorMissedNotificationEvents' } };
  }
  sub.cursor = Math.max(sub.cursor, seq);
  const { events, more } = sub.pending(seq, MAX_EVENTS_PER_GET_EVENTS);
  if (events.length === 0) {
    // Nothing for this subscription: the status event moves the client past whatever it skipped.
    return {
      status: NO_ERROR,
      notification: {
        subscriptionId: sub.id,
        previousWatermark: watermark,
        moreEvents: false,
        events: [{ type: 'Status', watermark: sub.mailbox.watermarkAt(sub.mailbox.seq) }],
      },
    };
  }
  return { status: NO_ERROR, notification: { subscriptionId: sub.id, previousWatermark: watermark, moreEvents: more, events } };
}
