/**
 * What every bench client records while it consumes a stream, and how a run settles.
 */

/** Options of {@link consume}. */
export interface ConsumeOptions {
  /** The EWS endpoint. Required. */
  readonly url: string;
  /** Events the stream carries; reaching this count ends the run. Required. */
  readonly expected: number;
  /** Receives every event's key as it arrives (the in-order check). Default: keys are dropped. */
  readonly onKey?: (key: string) => void;
  /** Record the receive time (`process.hrtime`, ns) of every event. Default `false`. */
  readonly recordTimes?: boolean;
  /** Called in every notification callback (the heap sampler hooks in here). Default: none. */
  readonly onCallback?: () => void;
  /** Give up after this long. Default `120_000`. */
  readonly timeoutMs?: number;
}

/** What one run saw. */
export interface ConsumeResult {
  /** Events received. */
  readonly count: number;
  /** Receive time of each event (ns), when asked for. */
  readonly times: Float64Array | undefined;
  /** `process.hrtime.bigint()` when the last event arrived (0 when none did). */
  readonly lastEventNs: bigint;
  /** Why the run ended. */
  readonly endedBy: 'complete' | 'disconnected' | 'timeout' | 'error';
  /** The client's error, when it reported one. */
  readonly error: string | undefined;
}

/** Credentials the clients send (the bench server accepts anything). */
export const BENCH_USER = 'bench@contoso.com';
export const BENCH_PASSWORD = 'not-a-secret';

/** Passes keys on, records times, and settles the run exactly once. */
export class Recorder {
  readonly times: Float64Array | undefined;
  count = 0;
  lastEventNs = 0n;
  private settled = false;
  private readonly timer: NodeJS.Timeout;
  readonly done: Promise<ConsumeResult>;
  private resolve!: (result: ConsumeResult) => void;

  constructor(
    private readonly options: ConsumeOptions,
    private readonly teardown: () => void,
  ) {
    this.times = options.recordTimes === true ? new Float64Array(options.expected) : undefined;
    this.done = new Promise((resolve) => {
      this.resolve = resolve;
    });
    this.timer = setTimeout(() => this.finish('timeout'), options.timeoutMs ?? 120_000);
  }

  /** Marks the arrival of a notification; returns its time. */
  arrived(): bigint {
    const now = process.hrtime.bigint();
    this.options.onCallback?.();
    return now;
  }

  add(key: string | undefined, at: bigint): void {
    if (key !== undefined) this.options.onKey?.(key);
    if (this.times && this.count < this.times.length) this.times[this.count] = Number(at);
    this.count++;
    this.lastEventNs = at;
  }

  /** Counts `n` events that arrived together without recording keys. */
  addCount(n: number, at: bigint): void {
    if (this.times) this.times.fill(Number(at), Math.min(this.count, this.times.length), Math.min(this.count + n, this.times.length));
    this.count += n;
    this.lastEventNs = at;
  }

  /** Ends the run when every expected event is in. */
  checkComplete(): void {
    if (this.count >= this.options.expected) this.finish('complete');
  }

  finish(endedBy: ConsumeResult['endedBy'], error?: unknown): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    try {
      this.teardown();
    } catch {
      // Teardown is best effort; the result is what was received.
    }
    this.resolve({
      count: this.count,
      times: this.times,
      lastEventNs: this.lastEventNs,
      endedBy,
      error: error === undefined ? undefined : error instanceof Error ? `${error.name}: ${error.message}` : String(error),
    });
  }
}

