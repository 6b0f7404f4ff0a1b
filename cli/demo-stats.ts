/**
 * The demo's bookkeeping: every event produced (by the simulator's per-mailbox sequence number)
 * and every one the legacy listener received, so that loss, duplicates and latency are counted
 * from the wire, not from the bridge's own claims. A lost event is "explained" when it was
 * produced inside a gap window the bridge reported with `eventsMayBeLost`.
 *
 * @packageDocumentation
 */
import type { GapEvent } from '../lib/index.js';

/** Latency percentiles, in milliseconds. */
export interface LatencySummary {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

/** A gap the bridge reported, as the demo shows it. */
export interface DemoGap {
  readonly mailbox: string;
  readonly reason: string;
  /** Milliseconds since the demo started. */
  readonly fromMs: number;
  readonly toMs: number;
  readonly eventsMayBeLost: boolean;
}

/**
 * How far before a gap's reported start an event may have been produced and still be inside the
 * gap: the bridge dates a gap from the last envelope it saw, and an event produced just before
 * that envelope arrived may only have been written into the next (lost) one.
 */
export const GAP_SLACK_MS = 1_000;

/** The `q` quantile (0–1) of ascending `sorted` values, nearest-rank; 0 when empty. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] ?? 0;
}

/** Counts of the demo, by mailbox and overall. */
export class DemoStats {
  /** `performance.now()` at the start: every time the demo shows is relative to it. */
  readonly startedAt: number;
  private readonly produced = new Map<string, Map<number, number>>();
  private readonly received = new Map<string, Set<number>>();
  /** Per mailbox: the items each event touched (a move touches the old and the new item). */
  private readonly itemsOf = new Map<string, Map<number, readonly string[]>>();
  /** Per mailbox and item: the newest sequence number received for it (a later version of the item). */
  private readonly newestOfItem = new Map<string, Map<string, number>>();
  /** Per mailbox and item: the sequence number of the event that deleted it (or moved it away). */
  private readonly deletedAt = new Map<string, Map<string, number>>();
  /** Per mailbox: items whose deletion was received. */
  private readonly deletedItems = new Map<string, Set<string>>();
  /** Per mailbox: (sequence number, event type) pairs received, to tell duplicates from Created + NewMail of one change. */
  private readonly receivedTypes = new Map<string, Set<string>>();
  private readonly latencies: number[] = [];
  /** Per received event, in receipt order: its mailbox and when it was produced (for {@link DemoStats.latency}'s filter). */
  private readonly receipts: { readonly mailbox: string; readonly producedAt: number }[] = [];
  private sortedCache: number[] | undefined;
  producedCount = 0;
  deliveredCount = 0;
  duplicates = 0;
  /** Events received that the demo did not produce (should stay 0). */
  unknown = 0;
  reconnects = 0;
  readonly gaps: DemoGap[] = [];
  /** When the listener last received a new event. */
  lastReceiptAt: number;

  constructor(now: number) {
    this.startedAt = now;
    this.lastReceiptAt = now;
  }

  /** Records an event produced in `mailbox` with sequence number `seq` at `at` (`performance.now()`). */
  produce(mailbox: string, seq: number, at: number, items: readonly string[] = [], deletes: readonly string[] = []): void {
    for (const item of deletes) {
      let byItem = this.deletedAt.get(mailbox);
      if (!byItem) this.deletedAt.set(mailbox, (byItem = new Map()));
      byItem.set(item, seq);
    }
    let byMailbox = this.produced.get(mailbox);
    if (!byMailbox) this.produced.set(mailbox, (byMailbox = new Map()));
    byMailbox.set(seq, at);
    if (items.length > 0) {
      let of = this.itemsOf.get(mailbox);
      if (!of) this.itemsOf.set(mailbox, (of = new Map()));
      of.set(seq, items);
    }
    this.producedCount++;
  }

  /**
   * Records that the listener was told item `itemId` was deleted, by an event that names no
   * version (a deletion recovered by SyncFolderItems carries no change key): every earlier event
   * of the item is accounted for by it.
   */
  receiveDeletion(mailbox: string, itemId: string): void {
    let deleted = this.deletedItems.get(mailbox);
    if (!deleted) this.deletedItems.set(mailbox, (deleted = new Set()));
    deleted.add(itemId);
  }

  /**
   * Records an event the listener received. `type` tells a second event type for the same change
   * (Exchange sends Created and NewMail for one new message) from a duplicate.
   */
  receive(mailbox: string, seq: number, at: number, type = ''): void {
    const producedAt = this.produced.get(mailbox)?.get(seq);
    if (producedAt === undefined) {
      this.unknown++;
      return;
    }
    for (const item of this.itemsOf.get(mailbox)?.get(seq) ?? []) {
      let newest = this.newestOfItem.get(mailbox);
      if (!newest) this.newestOfItem.set(mailbox, (newest = new Map()));
      newest.set(item, Math.max(newest.get(item) ?? 0, seq));
    }
    let seen = this.received.get(mailbox);
    if (!seen) this.received.set(mailbox, (seen = new Set()));
    let types = this.receivedTypes.get(mailbox);
    if (!types) this.receivedTypes.set(mailbox, (types = new Set()));
    const pair = `${seq}|${type}`;
    if (seen.has(seq)) {
      if (types.has(pair)) this.duplicates++;
      types.add(pair);
      return;
    }
    types.add(pair);
    seen.add(seq);
    this.deliveredCount++;
    this.lastReceiptAt = at;
    this.latencies.push(at - producedAt);
    this.receipts.push({ mailbox, producedAt });
    this.sortedCache = undefined;
  }

  /** Records a gap the bridge reported for `mailbox` (dates are wall-clock; converted with `wallToPerf`). */
  gap(mailbox: string, gap: GapEvent, wallToPerf: (date: Date) => number): void {
    this.gaps.push({
      mailbox,
      reason: gap.reason,
      fromMs: wallToPerf(gap.from) - this.startedAt,
      toMs: wallToPerf(gap.to) - this.startedAt,
      eventsMayBeLost: gap.eventsMayBeLost,
    });
  }

  /** Events produced but not (yet) received. */
  get missing(): number {
    if (this.itemsOf.size === 0 || this.deliveredCount >= this.producedCount) return this.producedCount - this.deliveredCount;
    const { coalesced, vanished } = this.losses();
    return this.producedCount - this.deliveredCount - coalesced - vanished;
  }

  /**
   * Latency percentiles of every event received so far, or only of those for which `include`
   * (given the mailbox and the `performance.now()` it was produced at) is true.
   */
  latency(include?: (mailbox: string, producedAt: number) => boolean): LatencySummary {
    let s: number[];
    if (include === undefined) {
      this.sortedCache ??= [...this.latencies].sort((a, b) => a - b);
      s = this.sortedCache;
    } else {
      s = this.latencies.filter((_, i) => {
        const r = this.receipts[i];
        return r !== undefined && include(r.mailbox, r.producedAt);
      });
      s.sort((a, b) => a - b);
    }
    return { p50: quantile(s, 0.5), p90: quantile(s, 0.9), p99: quantile(s, 0.99), max: s.at(-1) ?? 0 };
  }

  /**
   * The events never received, split by whether a reported gap accounts for them. An event whose
   * item the listener later received in a newer version, or as deleted, is not lost but
   * `coalesced`: SyncFolderItems reports one change per item, its latest (Exchange folds a create
   * and an update inside one window into one Create).
   */
  losses(): { lost: number; inReportedGaps: number; unexplained: number; coalesced: number; vanished: number } {
    let lost = 0;
    let inReportedGaps = 0;
    let coalesced = 0;
    let vanished = 0;
    for (const [mailbox, events] of this.produced) {
      const seen = this.received.get(mailbox);
      const windows = this.gaps.filter((g) => g.mailbox === mailbox && g.eventsMayBeLost);
      const items = this.itemsOf.get(mailbox);
      const newest = this.newestOfItem.get(mailbox);
      const deleted = this.deletedItems.get(mailbox);
      const deletedAt = this.deletedAt.get(mailbox);
      const everyGap = this.gaps.filter((g) => g.mailbox === mailbox);
      const inOneGap = (a: number, b: number): boolean => everyGap.some((g) => a >= g.fromMs - GAP_SLACK_MS && b <= g.toMs);
      for (const [seq, at] of events) {
        if (seen?.has(seq)) continue;
        const touched = items?.get(seq) ?? [];
        if (touched.length > 0 && touched.every((item) => (newest?.get(item) ?? 0) > seq || deleted?.has(item) === true)) {
          coalesced++;
          continue;
        }
        // Made and deleted inside one reported gap, never seen: SyncFolderItems cannot report an
        // item that no longer exists (Exchange folds a create and a delete into nothing).
        const t0 = at - this.startedAt;
        const goneInGap =
          touched.length > 0 &&
          touched.every((item) => {
            const d = deletedAt?.get(item);
            const dAt = d === undefined ? undefined : events.get(d);
            return d !== undefined && d >= seq && dAt !== undefined && newest?.get(item) === undefined && inOneGap(t0, dAt - this.startedAt);
          });
        if (goneInGap) {
          vanished++;
          continue;
        }
        lost++;
        const t = at - this.startedAt;
        if (windows.some((g) => t >= g.fromMs - GAP_SLACK_MS && t <= g.toMs)) inReportedGaps++;
      }
    }
    return { lost, inReportedGaps, unexplained: lost - inReportedGaps, coalesced, vanished };
  }
}
