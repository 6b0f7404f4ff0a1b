/**
 * The open gap of one streaming subscription: opened when events may stop reaching us (a lost
 * subscription, an ended connection), reported as a `gap` signal when it closes (a new
 * subscription, a new connection). Shared by the streaming source and StreamingGroup members.
 *
 * @internal
 */
import type { PushNotification } from '../model.js';
import type { DeliveredEventRef, DisconnectReason, GapEvent, GapUnrecoverableReason, OpenGap, SourceSignal } from './lifecycle.js';

interface OpenStreamingGap extends OpenGap {
  /** The last event delivered before it opened: where the server-side window starts. */
  lastDelivered: DeliveredEventRef | undefined;
}

/** @internal */
export class StreamingGap {
  private open: OpenStreamingGap | undefined;
  /** The last event delivered, kept as the notification that carried it (no copy per event). */
  private lastNotification: PushNotification | undefined;

  /** A notification was delivered: its last event is the server-side anchor of the next gap. */
  delivered(notification: PushNotification): void {
    for (const event of notification.events) {
      if (event.type !== 'Status') {
        this.lastNotification = notification;
        return;
      }
    }
  }

  /** `{ lastDelivered }` for a gap signal made now, or nothing when no event was delivered yet. */
  anchor(): { lastDelivered?: DeliveredEventRef } {
    const lastDelivered = this.open?.lastDelivered ?? this.lastDeliveredNow();
    return lastDelivered === undefined ? {} : { lastDelivered };
  }

  private lastDeliveredNow(): DeliveredEventRef | undefined {
    const events = this.lastNotification?.events;
    if (events === undefined) return undefined;
    for (let i = events.length - 1; i >= 0; i--) {
      const event = events[i];
      if (event === undefined || event.type === 'Status') continue;
      return {
        timeStamp: event.timeStamp,
        type: event.type,
        ...(event.itemId === undefined ? {} : { itemId: event.itemId }),
        ...(event.folderId === undefined ? {} : { folderId: event.folderId }),
      };
    }
    return undefined;
  }

  private openGap(from: Date, reason: DisconnectReason, subscriptionKept: boolean, eventsMayBeLost: boolean): void {
    this.open = { from, reason, subscriptionKept, eventsMayBeLost, lastDelivered: this.lastDeliveredNow() };
  }

  /** The server lost the subscription: events from `from` until a new one exists are lost. */
  lost(reason: DisconnectReason, from: Date): void {
    if (this.open) {
      this.open.subscriptionKept = false;
      this.open.eventsMayBeLost = true;
      this.open.reason = reason;
    } else {
      this.openGap(from, reason, false, true);
    }
  }

  /**
   * A connection ended. `clean`: the server finished it properly, so every envelope it wrote reached
   * us; otherwise a cut or dead socket may have swallowed some that the server counts as delivered.
   */
  disconnected(reason: DisconnectReason, clean: boolean, from: Date, subscriptionKept: boolean): void {
    if (this.open) {
      if (!clean) this.open.eventsMayBeLost = true;
    } else {
      this.openGap(from, reason, subscriptionKept, !clean);
    }
  }

  /** A new subscription exists: the gap a lost one left closes now (from then on it queues events). */
  closeOnSubscribed(subscriptionId: string, at: Date): GapEvent | undefined {
    const gap = this.open;
    if (!gap || gap.subscriptionKept) return undefined;
    this.open = undefined;
    return { type: 'gap', subscriptionId, reason: gap.reason, from: gap.from, to: at, subscriptionKept: false, eventsMayBeLost: true, ...lastDeliveredOf(gap) };
  }

  /** Connected again with the same subscription: the server now sends what it held meanwhile. */
  closeOnConnected(subscriptionId: string, at: Date): GapEvent | undefined {
    const gap = this.open;
    if (!gap?.subscriptionKept) return undefined;
    this.open = undefined;
    return { type: 'gap', subscriptionId, reason: gap.reason, from: gap.from, to: at, subscriptionKept: true, eventsMayBeLost: gap.eventsMayBeLost, ...lastDeliveredOf(gap) };
  }
}

function lastDeliveredOf(gap: OpenStreamingGap): { lastDelivered?: DeliveredEventRef } {
  return gap.lastDelivered === undefined ? {} : { lastDelivered: gap.lastDelivered };
}

/** Marks a lossy gap that no recovery will cover with the reason. @internal */
export function unrecoveredGap(signal: SourceSignal, reason: GapUnrecoverableReason): SourceSignal {
  return signal.type === 'gap' && signal.eventsMayBeLost && signal.unrecoverable === undefined ? { ...signal, unrecoverable: reason } : signal;
}
