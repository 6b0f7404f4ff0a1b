/**
 * One GetStreamingEvents connection: ONE chunked HTTP response that carries many envelopes over
 * time — notifications as events happen, `ConnectionStatus OK` keep-alives when idle, per-subscription
 * errors with `ErrorSubscriptionIds`, and `ConnectionStatus Closed` at the requested timeout.
 */
import type { ServerResponse } from 'node:http';
import type { CallFault, FaultBook } from './faults.js';
import type { Output } from './output.js';
import { NO_ERROR, streamingEnvelope, streamingMessage, type WireNotification } from './response-writer.js';
import type { Subscription } from './subscriptions.js';
import type { TimerHandle, TimerSet } from './timers.js';

/** What a connection needs from the simulator. */
export interface StreamingHost {
  readonly timers: TimerSet;
  readonly faults: FaultBook;
  readonly keepAliveIntervalMs: number;
  /** Called once when the connection is gone (ended, cut or closed by the client). */
  connectionGone(connection: StreamingConnection): void;
}

/** A live GetStreamingEvents response. */
export class StreamingConnection {
  readonly subscriptions = new Set<Subscription>();
  private keepAliveTimer: TimerHandle | undefined;
  private closeTimer: TimerHandle | undefined;
  private flushTimer: TimerHandle | undefined;
  private resumeTimer: TimerHandle | undefined;
  private closeDue = false;
  /** Envelopes held back by a `coalesce-envelopes` fault until the group is complete. */
  private held: { xml: string; remaining: number } | undefined;
  private gone = false;

  /** Settles when the response is gone (ended, cut, or closed by the client). */
  readonly finished: Promise<void>;

  constructor(
    private readonly out: Output,
    res: ServerResponse,
    private readonly host: StreamingHost,
    /** The mailbox the request was made for (limits and fault scope). */
    readonly mailbox: string,
    readonly timeoutMs: number,
  ) {
    this.finished = new Promise((resolve) => {
      res.once('close', () => {
        this.release();
        resolve();
      });
    });
  }

  /** Whether the connection is still open. */
  get open(): boolean {
    return !this.gone && !this.out.closed;
  }

  /**
   * Starts the stream: reports unusable subscription ids, takes the others over from any older
   * connection, and writes what they have pending.
   */
  start(subscriptions: readonly Subscription[], unknownIds: readonly string[]): void {
    if (unknownIds.length > 0) {
      const closed = subscriptions.length === 0 ? 'Closed' : undefined;
      this.writeMessages([
        streamingMessage({ code: 'ErrorSubscriptionNotFound' }, { errorSubscriptionIds: unknownIds, ...(closed ? { connectionStatus: closed } : {}) }),
      ]);
      if (closed) {
        this.end();
        return;
      }
    }
    for (const sub of subscriptions) {
      sub.connection?.detach(sub, 'ErrorNewEventStreamConnectionOpened');
      sub.connection = this;
      this.subscriptions.add(sub);
    }
    this.closeTimer = this.host.timers.set(() => this.close(), this.timeoutMs);
    this.flush();
    this.armKeepAlive();
  }

  /** Writes what is pending soon (coalescing events delivered in the same tick into one envelope). */
  scheduleFlush(): void {
    if (this.flushTimer !== undefined || !this.open) return;
    this.flushTimer = this.host.timers.set(() => {
      this.flushTimer = undefined;
      this.flush();
    }, 0);
  }

  /** Writes one envelope with a Notification for every subscription that has events pending. */
  flush(): void {
    const subs = [...this.subscriptions];
    const missed = subs.filter((s) => s.missedPending);
    const pending = subs.map((sub) => ({ sub, events: sub.pending(sub.cursor).events })).filter((p) => p.events.length > 0);
    const messages: string[] = [];
    if (missed.length > 0) {
      messages.push(streamingMessage({ code: 'ErrorMissedNotificationEvents' }, { errorSubscriptionIds: missed.map((s) => s.id) }));
    }
    if (pending.length > 0) {
      const notifications: WireNotification[] = pending.map((p) => ({ subscriptionId: p.sub.id, events: p.events }));
      messages.push(streamingMessage(NO_ERROR, { notifications }));
    }
    this.emit(messages, () => {
      for (const sub of missed) sub.missedPending = false;
      for (const sub of subs) sub.cursor = sub.mailbox.seq;
    });
  }

  /**
   * Takes a subscription off this connection, with an error for it when `code` is given
   * (`ErrorNewEventStreamConnectionOpened` when another connection took it over,
   * `ErrorSubscriptionNotFound` when the server forgot it); a connection left with no subscription
   * is closed.
   */
  detach(sub: Subscription, code?: string): void {
    if (!this.subscriptions.delete(sub)) return;
    if (sub.connection === this) sub.connection = undefined;
    if (!this.open) return;
    const last = this.subscriptions.size === 0;
    if (code === undefined) {
      if (last) this.close(true);
      return;
    }
    this.writeMessages([streamingMessage({ code }, { errorSubscriptionIds: [sub.id], ...(last ? { connectionStatus: 'Closed' as const } : {}) })]);
    if (last) this.end();
  }

  /**
   * Ends the stream the way Exchange does at its timeout: `ConnectionStatus Closed`. A silent
   * connection closes when its silence ends, unless `force`d.
   */
  close(force = false): void {
    if (!this.open) return;
    if (force) this.resumeTimer = this.host.timers.clear(this.resumeTimer);
    if (this.silent) {
      this.closeDue = true;
      return;
    }
    this.writeMessages([streamingMessage(NO_ERROR, { connectionStatus: 'Closed' })]);
    this.end();
  }

  /** Cleans up after the response is gone, however it went. Idempotent. */
  release(): void {
    if (this.gone) return;
    this.gone = true;
    for (const sub of this.subscriptions) if (sub.connection === this) sub.connection = undefined;
    this.subscriptions.clear();
    this.clearTimers();
    this.host.connectionGone(this);
  }

  /** Drops the socket without a goodbye (used by `close()` of the simulator only after ending). */
  destroy(): void {
    this.out.destroy();
    this.release();
  }

  private end(): void {
    if (this.held) {
      this.out.write(this.held.xml);
      this.held = undefined;
    }
    for (const sub of this.subscriptions) if (sub.connection === this) sub.connection = undefined;
    this.subscriptions.clear();
    this.clearTimers();
    this.out.end();
  }

  private clearTimers(): void {
    for (const t of [this.keepAliveTimer, this.closeTimer, this.flushTimer, this.resumeTimer]) this.host.timers.clear(t);
    this.keepAliveTimer = this.closeTimer = this.flushTimer = this.resumeTimer = undefined;
  }

  private armKeepAlive(): void {
    this.host.timers.clear(this.keepAliveTimer);
    this.keepAliveTimer = undefined;
    if (!this.open) return;
    this.keepAliveTimer = this.host.timers.set(() => {
      this.keepAliveTimer = undefined;
      this.writeMessages([streamingMessage(NO_ERROR, { connectionStatus: 'OK' })]);
      // A keep-alive swallowed by a silence is re-armed when the silence ends.
    }, this.host.keepAliveIntervalMs);
  }

  private get silent(): boolean {
    return this.resumeTimer !== undefined;
  }

  private writeMessages(messages: readonly string[]): void {
    this.emit(messages, () => {});
  }

  /**
   * Writes one envelope unless the connection is (or now goes) silent; `commit` runs only when the
   * envelope is really written, so what a silent connection held back is still pending — for this
   * connection once the silence ends, or for the next one if the client gives up first.
   */
  private emit(messages: readonly string[], commit: () => void): void {
    if (!this.open || messages.length === 0) return;
    if (this.silent) return;
    const fault = this.host.faults.take('envelope', 'GetStreamingEvents', this.mailbox);
    if (fault?.type === 'silence') {
      this.host.timers.clear(this.keepAliveTimer);
      this.keepAliveTimer = undefined;
      this.resumeTimer = this.host.timers.set(() => {
        this.resumeTimer = undefined;
        if (this.closeDue) {
          this.flush();
          this.close();
          return;
        }
        this.flush();
        this.armKeepAlive();
      }, fault.forMs);
      return;
    }
    commit();
    const xml = streamingEnvelope(messages);
    if (fault?.type === 'coalesce-envelopes') {
      this.held = { xml, remaining: (fault.count ?? 2) - 1 };
      this.armKeepAlive();
      return;
    }
    if (this.held) {
      // Part of a coalesced group: written with the others in one socket write.
      this.held.xml += xml;
      if (--this.held.remaining > 0) {
        this.armKeepAlive();
        return;
      }
      const group = this.held.xml;
      this.held = undefined;
      this.write(group, fault);
      return;
    }
    this.write(xml, fault);
  }

  private write(xml: string, fault: CallFault | undefined): void {
    const effect = fault?.type === 'cut-mid-envelope' ? 'cut' : fault?.type === 'malformed-xml' ? 'malformed' : undefined;
    this.out.write(xml, effect);
    if (effect === 'cut') {
      // The socket dies once the half envelope is out; the subscriptions are free for a new connection.
      for (const sub of this.subscriptions) if (sub.connection === this) sub.connection = undefined;
      this.subscriptions.clear();
      return;
    }
    this.armKeepAlive();
  }
}
