/**
 * A pull or hybrid source running against an EwsSimulator, with what tests assert on: signals in
 * order, notifications, sequence numbers received, events delivered (with the client time just
 * before each), and the simulator's recorded requests.
 */
import type { Subscription } from 'rxjs';
import type { PushNotification } from '../../lib/model.js';
import { hybridSignals, type HybridOptions } from '../../lib/sources/hybrid.js';
import type { SourceLifecycleEvent, SourceSignal } from '../../lib/sources/lifecycle.js';
import { pullSignals } from '../../lib/sources/pull.js';
import { EwsSimulator, sequenceOf, type DeliveredEvent, type EwsSimulatorOptions, type SimulatedEvent } from '../../lib/testing/index.js';
import { untilWhileRunning } from './streaming-harness.js';

export const MAILBOX = 'alice@contoso.com';
export const AUTH = { type: 'basic', username: MAILBOX, password: 'correct horse' } as const;

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export interface PullHarness {
  readonly sim: EwsSimulator;
  readonly signals: SourceSignal[];
  readonly notifications: PushNotification[];
  /** Sequence numbers received (object events only), in arrival order. */
  readonly received: number[];
  /** Client time (`performance.now()`) each sequence number was first received. */
  readonly receivedAt: Map<number, number>;
  /** Events made with {@link PullHarness.deliver}, with the client time just before. */
  readonly delivered: (DeliveredEvent & { at: number })[];
  error: unknown;
  completed: boolean;
  subscription: Subscription | undefined;
  deliver(event?: SimulatedEvent): DeliveredEvent;
  lifecycle<T extends SourceLifecycleEvent['type']>(type?: T): Extract<SourceLifecycleEvent, { type: T }>[];
  count(type: SourceLifecycleEvent['type']): number;
  /** Requests the simulator got for one operation. */
  requests(operation: string): EwsSimulator['requests'][number][];
  /** {@link until} from ./until.ts; also fails when the source errors. `hangGuardMs` is not a speed bound. */
  until(predicate: () => boolean, what: string, hangGuardMs?: number): Promise<void>;
  allReceived(hangGuardMs?: number): Promise<void>;
  /** Starts (or restarts) the source; `onNotification` replaces the default (record only, auto ack). */
  start(options?: Partial<HybridOptions>, onNotification?: (n: PushNotification) => void): void;
  stop(): Promise<void>;
}

export interface PullHarnessOptions {
  readonly kind?: 'pull' | 'hybrid';
  readonly sim?: EwsSimulatorOptions;
  readonly source?: Partial<HybridOptions>;
  /** Do not start the source yet (call `h.start()`). */
  readonly deferStart?: boolean;
}

export async function startPullHarness(options: PullHarnessOptions = {}): Promise<PullHarness> {
  const sim = await EwsSimulator.start({ timeScale: 0.001, keepAliveIntervalMs: 200, ...options.sim });
  const kind = options.kind ?? 'pull';
  const h: PullHarness = {
    sim,
    signals: [],
    notifications: [],
    received: [],
    receivedAt: new Map(),
    delivered: [],
    error: undefined,
    completed: false,
    subscription: undefined,
    deliver(event: SimulatedEvent = { type: 'NewMail' }) {
      const at = performance.now();
      const d = sim.deliver(MAILBOX, event);
      h.delivered.push({ ...d, at });
      return d;
    },
    lifecycle(type) {
      return h.signals.filter((s) => s.type !== 'notification' && (type === undefined || s.type === type)) as never;
    },
    count(type) {
      return h.lifecycle(type).length;
    },
    requests(operation) {
      return sim.requests.filter((r) => r.operation === operation);
    },
    until(predicate, what, hangGuardMs) {
      return untilWhileRunning(h, predicate, what, hangGuardMs);
    },
    async allReceived(hangGuardMs) {
      const want = h.delivered.map((d) => d.seq);
      await h.until(() => want.every((seq) => h.receivedAt.has(seq)), `events up to ${want.at(-1)}`, hangGuardMs);
    },
    start(more = {}, onNotification) {
      const sourceOptions: HybridOptions = {
        url: sim.url,
        auth: AUTH,
        pollIntervalMs: 50,
        retry: { minDelayMs: 20, maxDelayMs: 200 },
        heartbeatTimeoutMs: 5_000,
        ...options.source,
        ...more,
      };
      h.error = undefined;
      h.completed = false;
      h.subscription = (kind === 'hybrid' ? hybridSignals(sourceOptions) : pullSignals(sourceOptions)).subscribe({
        next: (signal) => {
          h.signals.push(signal);
          if (signal.type !== 'notification') return;
          const n = signal.notification;
          h.notifications.push(n);
          for (const event of n.events) {
            const seq = sequenceOf(event);
            if (seq === undefined) continue;
            h.received.push(seq);
            if (!h.receivedAt.has(seq)) h.receivedAt.set(seq, performance.now());
          }
          onNotification?.(n);
        },
        error: (error: unknown) => {
          h.error = error;
        },
        complete: () => {
          h.completed = true;
        },
      });
    },
    async stop() {
      h.subscription?.unsubscribe();
      await sim.close();
    },
  };
  if (!options.deferStart) h.start();
  return h;
}

/** Sequence numbers of the object events of some notifications, in order. */
export function seqsOf(notifications: readonly PushNotification[]): number[] {
  return notifications.flatMap((n) => n.events.flatMap((e) => (e.type === 'Status' ? [] : [sequenceOf(e) ?? -1])));
}
