/**
 * Live subscriptions and what they watch. Each subscription reads its mailbox's event log from its
 * own position: `cursor` for streaming and push (the last event handed out), the client's watermark
 * for pull.
 */
import type { EventType } from '../model.js';
import type { DeliveredEvent } from './events.js';
import type { Mailbox } from './mailbox-store.js';
import type { TimerHandle } from './timers.js';

/** A subscription's kind, as in `Subscribe`. */
export type SubscriptionKind = 'streaming' | 'pull' | 'push';

/** A read-only view of a live subscription, from `sim.subscriptions`. */
export interface SubscriptionInfo {
  readonly id: string;
  readonly kind: SubscriptionKind;
  /** The mailbox it watches (lower-cased SMTP address or user name). */
  readonly mailbox: string;
  /** The account that created it (the authenticated user). */
  readonly owner: string;
  /** Folder ids it watches; empty with `subscribeToAllFolders`. */
  readonly folderIds: readonly string[];
  readonly subscribeToAllFolders: boolean;
  readonly eventTypes: readonly EventType[];
  /** The watermark of the newest event this subscription has been given (streaming/push) or asked from (pull). */
  readonly watermark: string;
  /** Streaming: whether a GetStreamingEvents connection currently carries it. */
  readonly connected: boolean;
  /** Push: the listener URL. */
  readonly url?: string;
  /** Affinity mode: the `X-BackEndOverrideCookie` value its calls must carry. */
  readonly backendCookie?: string;
  /** When it was created. */
  readonly createdAt: Date;
}

/** Internal state of one subscription. */
export class Subscription {
  /** Sequence number of the last event handed out (streaming/push) or asked from (pull). */
  cursor: number;
  /** Events with seq ≤ this were dropped by a `missed-events` fault. */
  droppedUpTo = 0;
  /** A `missed-events` fault is waiting to be reported. */
  missedPending = false;
  /** Streaming: the connection that carries it now. */
  connection: { detach(sub: Subscription, code?: string): void } | undefined;
  /** Pull: the expiry timer; push: the status/retry timer. */
  timer: TimerHandle | undefined;
  readonly createdAt = new Date();

  constructor(
    readonly id: string,
    readonly kind: SubscriptionKind,
    readonly mailbox: Mailbox,
    readonly owner: string,
    readonly folderIds: ReadonlySet<string>,
    readonly subscribeToAllFolders: boolean,
    readonly eventTypes: ReadonlySet<EventType>,
    startSeq: number,
    readonly extra: { readonly url?: string; readonly timeoutMs?: number; readonly statusFrequencyMs?: number; readonly backendCookie?: string },
  ) {
    this.cursor = startSeq;
  }

  /** Whether an event of its mailbox is one this subscription reports. */
  matches(event: DeliveredEvent): boolean {
    if (event.seq <= this.droppedUpTo || !this.eventTypes.has(event.type)) return false;
    if (this.subscribeToAllFolders) return true;
    const moved = event.type === 'Moved' || event.type === 'Copied' ? event.oldParentFolderId.id : undefined;
    return (
      this.folderIds.has(event.parentFolderId.id) ||
      (event.folderId !== undefined && this.folderIds.has(event.folderId.id)) ||
      (moved !== undefined && this.folderIds.has(moved))
    );
  }

  /** Matching events after `afterSeq`, at most `limit`; `more` tells whether any matching one is left. */
  pending(afterSeq: number, limit = Infinity): { events: DeliveredEvent[]; more: boolean } {
    const events: DeliveredEvent[] = [];
    for (const event of this.mailbox.eventsAfter(afterSeq)) {
      if (!this.matches(event)) continue;
      if (events.length === limit) return { events, more: true };
      events.push(event);
    }
    return { events, more: false };
  }

  /** A snapshot for `sim.subscriptions`. */
  info(): SubscriptionInfo {
    return {
      id: this.id,
      kind: this.kind,
      mailbox: this.mailbox.address,
      owner: this.owner,
      folderIds: [...this.folderIds],
      subscribeToAllFolders: this.subscribeToAllFolders,
      eventTypes: [...this.eventTypes],
      watermark: this.mailbox.watermarkAt(this.cursor),
      connected: this.connection !== undefined,
      ...(this.extra.url === undefined ? {} : { url: this.extra.url }),
      ...(this.extra.backendCookie === undefined ? {} : { backendCookie: this.extra.backendCookie }),
      createdAt: this.createdAt,
    };
  }
}
