/**
 * Every timer the simulator starts goes through one {@link TimerSet}, so `close()` can prove that
 * none is left behind.
 */

/** A handle returned by {@link TimerSet.set}. */
export type TimerHandle = ReturnType<typeof setTimeout>;

/** A set of timeouts that can all be cleared at once. */
export class TimerSet {
  private readonly live = new Set<TimerHandle>();
  private closed = false;

  /** Runs `fn` after `ms`; does nothing once the set is closed. */
  set(fn: () => void, ms: number): TimerHandle | undefined {
    if (this.closed) return undefined;
    const handle = setTimeout(() => {
      this.live.delete(handle);
      fn();
    }, Math.max(0, ms));
    this.live.add(handle);
    return handle;
  }

  /** Clears one timer (ignores `undefined` and timers that already ran); returns `undefined` to assign back. */
  clear(handle: TimerHandle | undefined): undefined {
    if (handle === undefined) return undefined;
    clearTimeout(handle);
    this.live.delete(handle);
    return undefined;
  }

  /** Timers still pending. */
  get size(): number {
    return this.live.size;
  }

  /** Clears every timer and refuses new ones. */
  close(): void {
    this.closed = true;
    for (const handle of this.live) clearTimeout(handle);
    this.live.clear();
  }
}
