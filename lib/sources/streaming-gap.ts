/**
 * The open gap of one streaming subscription: opened when events may stop reaching us (a lost
 * subscription, an ended connection), reported as a `gap` signal when it closes (a new
 * subscription, a new connection). Shared by the streaming source and StreamingGroup members.
 *
 * @internal
 */
import type { DisconnectReason, GapEvent } from './lifecycle.js';

interface OpenGap {
  from: Date;
  reason: DisconnectReason;
  subscriptionKept: boolean;
  eventsMayBeLost: boolean;
}

/** @internal */
export class StreamingGap {
  private open: OpenGap | undefined;

  /** The server lost the subscription: events from `from` until a new one exists are lost. */
  lost(reason: DisconnectReason, from: Date): void {
    if (this.open) {
      this.open.subscriptionKept = false;
      this.open.eventsMayBeLost = true;
      this.open.reason = reason;
    } else {
      this.open = { from, reason, subscriptionKept: false, eventsMayBeLost: true };
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
      this.open = { from, reason, subscriptionKept, eventsMayBeLost: !clean };
    }
  }

  /** A new subscription exists: the gap a lost one left closes now (from then on it queues events). */
  closeOnSubscribed(subscriptionId: string, at: Date): GapEvent | undefined {
    const gap = this.open;
    if (!gap || gap.subscriptionKept) return undefined;
    this.open = undefined;
    return { type: 'gap', subscriptionId, reason: gap.reason, from: gap.from, to: at, subscriptionKept: false, eventsMayBeLost: true };
  }

  /** Connected again with the same subscription: the server now sends what it held meanwhile. */
  closeOnConnected(subscriptionId: string, at: Date): GapEvent | undefined {
    const gap = this.open;
    if (!gap?.subscriptionKept) return undefined;
    this.open = undefined;
    return { type: 'gap', subscriptionId, reason: gap.reason, from: gap.from, to: at, subscriptionKept: true, eventsMayBeLost: gap.eventsMayBeLost };
  }
}
