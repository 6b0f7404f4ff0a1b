/**
 * The in-bench correctness check: did every event arrive, once, in wire order?
 */
import { expectedKey } from './stream-fixture.js';

/** The verdict on one run's received keys. */
export interface OrderCheck {
  readonly expected: number;
  /** Distinct expected events received (in any order). */
  readonly delivered: number;
  /** Expected events never received. */
  readonly lost: number;
  /** Received again after they had already arrived. */
  readonly duplicates: number;
  /** Received after an event that comes later in the stream. */
  readonly outOfOrder: number;
  /** Received keys that are not in the stream at all. */
  readonly foreign: number;
  /** Every event once, in order, nothing else. */
  readonly ok: boolean;
  /** Index (in the stream) of the first event that did not arrive, or -1. */
  readonly firstLost: number;
}

/**
 * Matches received keys, one at a time as they arrive (nothing is retained, so the check does not
 * weigh on the client's heap numbers), against events `0 … expected-1` of the fixture. Every
 * received key takes one free position with that key, so delivered/lost/duplicate counts are exact;
 * an event whose position is below the highest position seen so far arrived out of order. Keys of
 * folder events repeat every 700 events: a duplicate of one may be counted as a late arrival.
 *
 * Build it before the run: the index of expected keys is the only sizeable allocation.
 */
export class OrderChecker {
  private readonly keys: string[] = [];
  private readonly positions = new Map<string, number[]>();
  private readonly matched: Uint8Array;
  private highest = -1;
  private delivered = 0;
  private duplicates = 0;
  private outOfOrder = 0;
  private foreign = 0;

  constructor(private readonly expected: number) {
    this.matched = new Uint8Array(expected);
    for (let n = 0; n < expected; n++) {
      const key = expectedKey(n);
      this.keys.push(key);
      const list = this.positions.get(key);
      if (list) list.push(n);
      else this.positions.set(key, [n]);
    }
  }

  /** One received event. */
  add(key: string): void {
    // Fast path, taken by every event of a correct client: the next event in the stream. A
    // string comparison, no hashing, so the check costs (a) and (b) next to nothing.
    const next = this.highest + 1;
    if (next < this.expected && this.matched[next] === 0 && this.keys[next] === key) {
      this.matched[next] = 1;
      this.delivered++;
      this.highest = next;
      return;
    }
    const list = this.positions.get(key);
    if (!list) {
      this.foreign++;
      return;
    }
    // A repeated key (a folder event) is taken at the free position nearest to where the stream
    // is: right for reordering within a notification and for skipping past lost ones.
    let position: number | undefined;
    for (const candidate of list) {
      if (this.matched[candidate] === 1) continue;
      if (position === undefined || Math.abs(candidate - next) < Math.abs(position - next)) position = candidate;
    }
    if (position === undefined) {
      this.duplicates++;
      return;
    }
    this.matched[position] = 1;
    this.delivered++;
    if (position < this.highest) this.outOfOrder++;
    else this.highest = position;
  }

  /** The verdict so far. */
  result(): OrderCheck {
    const { expected, delivered, duplicates, outOfOrder, foreign } = this;
    return {
      expected,
      delivered,
      lost: expected - delivered,
      duplicates,
      outOfOrder,
      foreign,
      ok: delivered === expected && duplicates === 0 && outOfOrder === 0 && foreign === 0,
      firstLost: this.matched.indexOf(0),
    };
  }
}

/** {@link OrderChecker} over a finished list of keys. */
export function checkOrder(received: readonly string[], expected: number): OrderCheck {
  const checker = new OrderChecker(expected);
  for (const key of received) checker.add(key);
  return checker.result();
}

/** A count-only verdict, for the `saxes` floor, which records no keys by design. */
export function checkCount(count: number, expected: number): OrderCheck {
  const delivered = Math.min(count, expected);
  return {
    expected,
    delivered,
    lost: expected - delivered,
    duplicates: Math.max(0, count - expected),
    outOfOrder: 0,
    foreign: 0,
    ok: count === expected,
    firstLost: count >= expected ? -1 : count,
  };
}
