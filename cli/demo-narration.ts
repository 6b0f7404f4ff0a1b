/**
 * What the demo says about each lifecycle signal of the bridge's sources, and what it counts from
 * them: the switch from signal to narration line and statistics, apart from `runDemo`'s schedule
 * (start, produce, inject, drain, close).
 *
 * @packageDocumentation
 */
import { performance } from 'node:perf_hooks';
import type { SourceLifecycleEvent } from '../lib/index.js';
import type { DemoStats } from './demo-stats.js';
import { duration, plural } from './render.js';

/** Narrates the sources' lifecycle signals and keeps what the demo learns from them. */
export class DemoNarration {
  /** Mailboxes whose source connected at least once. */
  readonly connected = new Set<string>();
  /** The mailbox of each EWS subscription, for naming what the listener files. */
  readonly subscriptionMailbox = new Map<string, string>();
  /** When the latest announced retry is due (`performance.now()`): the drain waits for it. */
  retryDueAt = 0;
  /** Events recovered with SyncFolderItems (the sum of the gaps' `recovered`). */
  recovered = 0;
  /** Hybrid: doorbell connections that ended. */
  doorbells = 0;

  constructor(
    private readonly stats: DemoStats,
    private readonly log: (line: string) => void,
    /** Converts a signal's wall-clock time to the demo's `performance.now()` clock. */
    private readonly wallToPerf: (date: Date) => number,
  ) {}

  /** One lifecycle signal of `mailbox`'s source. */
  onLifecycle(mailbox: string, event: SourceLifecycleEvent): void {
    const { log, stats } = this;
    switch (event.type) {
      case 'subscribed':
        this.subscriptionMailbox.set(event.subscriptionId, mailbox);
        if (event.previousSubscriptionId !== undefined) log(`${mailbox}: subscribed again (the server had lost the subscription)`);
        return;
      case 'connected':
        if (!this.connected.has(mailbox)) {
          this.connected.add(mailbox);
          log(`${mailbox}: subscribed and connected`);
        } else {
          log(`${mailbox}: reconnected`);
        }
        return;
      case 'disconnected':
        stats.reconnects++;
        log(`${mailbox}: connection ended (${event.reason}${event.error ? `, ${event.error.code}` : ''})`);
        return;
      case 'retrying':
        // Quiet while a source waits out its back-off is not the end of the traffic.
        this.retryDueAt = Math.max(this.retryDueAt, performance.now() + event.delayMs);
        log(`${mailbox}: ${event.error.message.split(':')[0]} — retry in ${duration(event.delayMs)}${event.serverRequested ? ', as the server asked' : ''}`);
        return;
      case 'gap':
        stats.gap(mailbox, event, this.wallToPerf);
        this.recovered += event.recovered ?? 0;
        log(
          `${mailbox}: gap of ${duration(event.to.getTime() - event.from.getTime())} reported — ` +
            (event.recovered !== undefined && !event.eventsMayBeLost
              ? `${plural(event.recovered, 'event')} recovered with SyncFolderItems`
              : event.eventsMayBeLost
                ? `events may have been lost${event.unrecoverable ? ` (${event.unrecoverable})` : ''}`
                : 'nothing lost'),
        );
        return;
      case 'doorbell':
        if (event.event.type === 'disconnected') {
          this.doorbells++;
          log(`${mailbox}: doorbell connection ended (${event.event.reason}); polling covers it`);
        }
        return;
      default:
        return;
    }
  }
}
