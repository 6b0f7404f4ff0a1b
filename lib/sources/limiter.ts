/**
 * A counting semaphore: at most `max` calls run at once, the rest wait in order. Used so a group
 * of a thousand subscriptions does not send a thousand Subscribe requests at the same moment (the
 * server would throttle them all).
 *
 * @internal
 */
export class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  /**
   * Called when a slot frees and no call waits for it (the caller may start one at once: it runs
   * without waiting). Default: none.
   */
  onFree: (() => void) | undefined = undefined;

  constructor(private readonly max: number) {}

  /** Whether a call made now would run at once (calls only wait while every slot is taken). */
  get free(): boolean {
    return this.active < this.max;
  }

  /**
   * Runs `task` once a slot is free. A `signal` that aborts while the call still waits removes it
   * from the queue and rejects with `signal.reason`; a running task is not interrupted.
   */
  async run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (this.active >= this.max) await this.slot(signal);
    else this.active++;
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      // The slot passes straight to the next waiter, so a newcomer cannot overtake the queue.
      if (next) next();
      else {
        this.active--;
        this.onFree?.();
      }
    }
  }

  private slot(signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = (): void => {
        const index = this.waiting.indexOf(granted);
        if (index >= 0) this.waiting.splice(index, 1);
        reject(signal?.reason);
      };
      const granted = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      this.waiting.push(granted);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
