/**
 * A streaming source running against an EwsSimulator, with everything a test wants to assert on:
 * the signals in order, the sequence numbers received, the events delivered (with the client-side
 * time they were made), and a completeness check built on the simulator's per-mailbox sequence
 * numbers.
 */
import type { Observer, Subscription } from 'rxjs';
import { expect } from 'vitest';
import type { PushNotification } from '../../lib/model.js';
import type { GapEvent, SourceLifecycleEvent, SourceSignal } from '../../lib/sources/lifecycle.js';
import { streamingSignals, type StreamingOptions } from '../../lib/sources/streaming.js';
import { EwsSimulator, sequenceOf, type EwsSimulatorOptions, type SimulatedEvent } from '../../lib/testing/index.js';
import { until } from './until.js';

export const MAILBOX = 'alice@contoso.com';
export const AUTH = { type: 'basic', username: MAILBOX, password: 'correct horse' } as const;

export interface Harness {
  readonly sim: EwsSimulator;
  readonly signals: SourceSignal[];
  /** Sequence numbers received, in arrival order. */
  readonly received: number[];
  /** Events made with {@link Harness.deliver}: sequence number and client time just before. */
  readonly delivered: { seq: number; at: number }[];
  error: unknown;
  completed: boolean;
  subscription: Subscription;
  deliver(event?: SimulatedEvent): number;
  lifecycle(type?: SourceLifecycleEvent['type']): SourceLifecycleEvent[];
  /**
   * Waits until `predicate` holds ({@link until} from ./until.ts); fails when the source errors, or
   * at the hang guard (`hangGuardMs`, default HANG_GUARD_MS: not a speed bound).
   */
  until(predicate: () => boolean, what: string, hangGuardMs?: number): Promise<void>;
  /** Waits until every delivered event so far was received. */
  allReceived(hangGuardMs?: number): Promise<void>;
  /** Count of lifecycle events of a type so far. */
  count(type: SourceLifecycleEvent['type']): number;
  stop(): Promise<void>;
}

export async function startHarness(
  options: { sim?: EwsSimulatorOptions; stream?: Partial<StreamingOptions> } = {},
): Promise<Harness> {
  const sim = await EwsSimulator.start({ timeScale: 0.001, keepAliveIntervalMs: 200, ...options.sim });
  const h: Harness = {
    sim,
    signals: [],
    received: [],
    delivered: [],
    error: undefined,
    completed: false,
    subscription: undefined as unknown as Subscription,
    deliver(event: SimulatedEvent = { type: 'NewMail' }) {
      const at = Date.now();
      const d = sim.deliver(MAILBOX, event);
      h.delivered.push({ seq: d.seq, at });
      return d.seq;
    },
    lifecycle(type) {
      return h.signals.filter((s): s is SourceLifecycleEvent => s.type !== 'notification' && (type === undefined || s.type === type));
    },
    count(type) {
      return h.lifecycle(type).length;
    },
    until(predicate, what, hangGuardMs) {
      return untilWhileRunning(h, predicate, what, hangGuardMs);
    },
    async allReceived(hangGuardMs) {
      const want = new Set(h.delivered.map((d) => d.seq));
      await h.until(() => [...want].every((seq) => h.received.includes(seq)), `events ${[...want].join(',')}`, hangGuardMs);
    },
    async stop() {
      h.subscription.unsubscribe();
      await sim.close();
    },
  };
  h.subscription = streamingSignals({
    url: sim.url,
    auth: AUTH,
    connectionTimeoutMinutes: 30,
    heartbeatTimeoutMs: 5_000,
    // The simulator's timeScale makes a 30-minute connection last 1.8 s, and tests force Closed to stand
    // for ConnectionTimeout: no connection is too short to count as healthy here. (test/hostile/ covers
    // retry.minConnectionLifetimeMs with its default.)
    retry: { minDelayMs: 20, maxDelayMs: 200, minConnectionLifetimeMs: 0 },
    ...options.stream,
  }).subscribe(recordInto(h));
  return h;
}

/** What {@link recordInto} fills in. */
export interface SignalRecord {
  readonly signals: SourceSignal[];
  readonly received: number[];
  error: unknown;
  completed: boolean;
}

/**
 * An observer that keeps every signal, the simulator sequence number of every event received (in
 * arrival order), the error and completion; `check` sees each notification first.
 */
export function recordInto(record: SignalRecord, check?: (notification: PushNotification) => void): Partial<Observer<SourceSignal>> {
  return {
    next: (signal) => {
      record.signals.push(signal);
      if (signal.type !== 'notification') return;
      check?.(signal.notification);
      for (const event of signal.notification.events) {
        const seq = sequenceOf(event);
        if (seq !== undefined) record.received.push(seq);
      }
    },
    error: (error: unknown) => {
      record.error = error;
    },
    complete: () => {
      record.completed = true;
    },
  };
}

/**
 * The acceptance property: no duplicates, wire order kept, and every delivered event received
 * unless it was made inside a reported gap window that says events may be lost.
 * Returns the sequence numbers that were (legitimately) lost.
 */
export function expectCompleteExceptReportedGaps(h: Harness, label = ''): number[] {
  return expectReceivedExceptLossyGaps(h.received, h.delivered, h.lifecycle('gap') as GapEvent[], label);
}

/** {@link expectCompleteExceptReportedGaps} on its parts. Returns the sequence numbers lost. */
export function expectReceivedExceptLossyGaps(
  received: readonly number[],
  delivered: readonly { seq: number; at: number }[],
  gaps: readonly GapEvent[],
  label = '',
): number[] {
  expect(new Set(received).size, `${label}no duplicates`).toBe(received.length);
  expect([...received].sort((a, b) => a - b), `${label}wire order`).toEqual(received);
  const lossy = gaps.filter((g) => g.eventsMayBeLost);
  const lost: number[] = [];
  for (const { seq, at } of delivered) {
    if (received.includes(seq)) continue;
    const covered = lossy.some((g) => g.from.getTime() <= at && at <= g.to.getTime());
    expect(covered, `${label}event ${seq} (made at ${at}) was lost outside every reported gap: ${JSON.stringify(lossy)}`).toBe(true);
    lost.push(seq);
  }
  return lost;
}

/**
 * Waits until `predicate` holds, failing at once if the source errors meanwhile (with the error as
 * the cause) and, at the hang guard, with the source's lifecycle so far. The harnesses' `until`.
 */
export function untilWhileRunning(
  source: { readonly error: unknown; lifecycle(): readonly SourceLifecycleEvent[] },
  predicate: () => boolean,
  what: string,
  hangGuardMs?: number,
): Promise<void> {
  return until(predicate, what, {
    ...(hangGuardMs === undefined ? {} : { hangGuardMs }),
    failWhen: () => (source.error === undefined ? undefined : new Error(`source failed while waiting for ${what}`, { cause: source.error })),
    describe: () => `lifecycle: ${source.lifecycle().map((s) => s.type + ('reason' in s ? `(${s.reason})` : '')).join(' ')}`,
  });
}
