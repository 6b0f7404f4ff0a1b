/**
 * The in-bench correctness check: did every event arrive, once, in wire order?
 */
import { objectId } from './stream-fixture.js';

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

/** Folder events repeat their key (FolderId `n % 7`, UnreadCount `n % 100`) with this period. */
const FOLDER_PERIOD = 700;
const ID_HEAD = objectId('', 0).slice(0, objectId('', 0).length - 12);
const DIGITS = '0123456789abcdefghijklmnopqrstuvwxyz';

/**
 * Which fixture event(s) `key` is, read from the key itself (stream-fixture.ts writes `n` into
 * every id): an item event's number `n` (≥ 0); a folder event as `-(1 + 100 × folder + unread)`;
 * `NaN` for anything the fixture never writes. Allocates nothing but a number.
 */
export function decodeKey(key: string): number {
  const head = ID_HEAD.length;
  if (!key.startsWith(ID_HEAD) || key.length < head + 16 || !key.startsWith('AAA=', head + 12)) return NaN;
  let n = 0;
  for (let i = head + 4; i < head + 12; i++) {
    const d = DIGITS.indexOf(key.charAt(i));
    if (d < 0) return NaN;
    n = n * 36 + d;
  }
  if (key.startsWith('item', head)) return key.length === head + 16 ? n : NaN;
  if (!key.startsWith('fold', head) || n >= 7 || key.charCodeAt(head + 16) !== 0x23 /* # */) return NaN;
  const unread = key.slice(head + 17);
  if (!/^(?:0|[1-9][0-9]?)$/.test(unread)) return NaN;
  return -(1 + n * 100 + Number(unread));
}

/** {@link decodeKey} of event `n`'s key, without building the key. */
function codeOf(n: number): number {
  return n % 5 === 4 ? -(1 + (n % 7) * 100 + (n % 100)) : n;
}

/**
 * Matches received keys, one at a time as they arrive, against events `0 … expected-1` of the
 * fixture. Every received key takes one free position with that key, so delivered/lost/duplicate
 * counts are exact; an event whose position is below the highest position seen so far arrived out
 * of order. Keys of folder events repeat every 700 events: a duplicate of one may be counted as a
 * late arrival.
 *
 * It keeps no key and no per-key object (only one byte per expected event): the keys are read
 * back into event numbers ({@link decodeKey}). A table of 10,000 expected keys (~3 MiB of
 * strings and arrays, as this checker once held) survives the young generation, so it showed up
 * in the heap growth of every client that is checked and, by V8's nursery sizing, in its
 * young-generation size, but not in that of the unchecked raw-saxes floor.
 */
export class OrderChecker {
  private readonly matched: Uint8Array;
  private highest = -1;
  private delivered = 0;
  private duplicates = 0;
  private outOfOrder = 0;
  private foreign = 0;

  constructor(private readonly expected: number) {
    this.matched = new Uint8Array(expected);
  }

  /** One received event. */
  add(key: string): void {
    const code = decodeKey(key);
    // Fast path, taken by every event of a correct client: the next event in the stream.
    const next = this.highest + 1;
    if (next < this.expected && this.matched[next] === 0 && code === codeOf(next)) {
      this.matched[next] = 1;
      this.delivered++;
      this.highest = next;
      return;
    }
    if (Number.isNaN(code) || (code >= 0 && (code >= this.expected || code % 5 === 4))) {
      this.foreign++;
      return;
    }
    // A repeated key (a folder event) is taken at the free position nearest to where the stream
    // is: right for reordering within a notification and for skipping past lost ones.
    let position: number | undefined;
    let any = false;
    const first = code >= 0 ? code : this.firstFolderPosition(code);
    const step = code >= 0 ? this.expected : FOLDER_PERIOD;
    for (let candidate = first; candidate < this.expected; candidate += step) {
      any = true;
      if (this.matched[candidate] === 1) continue;
      if (position === undefined || Math.abs(candidate - next) < Math.abs(position - next)) position = candidate;
    }
    if (!any) {
      this.foreign++;
      return;
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

  /** The first event whose key decodes to `code` (a folder code), or `expected` when none does. */
  private firstFolderPosition(code: number): number {
    for (let n = 4; n < Math.min(FOLDER_PERIOD, this.expected); n += 5) if (codeOf(n) === code) return n;
    return this.expected;
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
