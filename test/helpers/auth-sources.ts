/**
 * Runs any of the three sources (streaming, pull, hybrid) against an EwsSimulator with the same
 * options, for the auth and affinity tests: what it emitted, how it ended, and polling waits.
 */
import type { Subscription } from 'rxjs';
import type { PushNotification } from '../../lib/model.js';
import { hybridSignals, type HybridOptions } from '../../lib/sources/hybrid.js';
import type { SourceLifecycleEvent, SourceSignal } from '../../lib/sources/lifecycle.js';
import { pullSignals } from '../../lib/sources/pull.js';
import { streamingSignals, type StreamingOptions } from '../../lib/sources/streaming.js';
import { sequenceOf, type EwsSimulator } from '../../lib/testing/index.js';
import { until } from './until.js';

export type SourceKind = 'streaming' | 'pull' | 'hybrid';
export const SOURCE_KINDS: readonly SourceKind[] = ['streaming', 'pull', 'hybrid'];

export type AnySourceOptions = HybridOptions & StreamingOptions;

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export interface SourceRun {
  readonly kind: SourceKind;
  readonly signals: SourceSignal[];
  readonly notifications: PushNotification[];
  /** Simulator sequence numbers received (object events only). */
  readonly received: number[];
  error: unknown;
  /** `performance.now()` when the error arrived. */
  erroredAt: number | undefined;
  lifecycle(type?: SourceLifecycleEvent['type']): SourceLifecycleEvent[];
  /**
   * {@link until} from ./until.ts; also fails when the source errors (unless `allowError`).
   * `hangGuardMs` (default HANG_GUARD_MS) is a hang guard, not a speed bound.
   */
  until(predicate: () => boolean, what: string, hangGuardMs?: number, allowError?: boolean): Promise<void>;
  /** Unsubscribes (the source then sends EWS Unsubscribe in the background). */
  stop(): void;
}

/** Options that keep the tests fast: short polls and retries, scaled to a simulator with timeScale 0.001. */
export const FAST: Partial<AnySourceOptions> = {
  pollIntervalMs: 50,
  // The simulator's timeScale makes a 30-minute connection last 1.8 s, and tests force Closed to stand
  // for ConnectionTimeout: no connection is too short to count as healthy here. (test/hostile/ covers
  // retry.minConnectionLifetimeMs with its default.)
  retry: { minDelayMs: 20, maxDelayMs: 200, minConnectionLifetimeMs: 0 },
  heartbeatTimeoutMs: 5_000,
};

export function runSource(kind: SourceKind, sim: EwsSimulator, options: Partial<AnySourceOptions>): SourceRun {
  const all: AnySourceOptions = { url: sim.url, ...FAST, ...options };
  const observable = kind === 'streaming' ? streamingSignals(all) : kind === 'pull' ? pullSignals(all) : hybridSignals(all);
  const run: SourceRun = {
    kind,
    signals: [],
    notifications: [],
    received: [],
    error: undefined,
    erroredAt: undefined,
    lifecycle(type) {
      return run.signals.filter((s): s is SourceLifecycleEvent => s.type !== 'notification' && (type === undefined || s.type === type));
    },
    async until(predicate, what, hangGuardMs, allowError = false) {
      await until(predicate, `${what} (${kind})`, {
        hangGuardMs,
        failWhen: () => (run.error !== undefined && !allowError ? new Error(`${kind} source failed while waiting for ${what}`, { cause: run.error }) : undefined),
        describe: () => `lifecycle: ${run.lifecycle().map((s) => s.type + ('reason' in s ? `(${s.reason})` : '')).join(' ')}`,
      });
    },
    stop() {
      subscription.unsubscribe();
    },
  };
  const subscription: Subscription = observable.subscribe({
    next: (signal) => {
      run.signals.push(signal);
      if (signal.type !== 'notification') return;
      run.notifications.push(signal.notification);
      for (const event of signal.notification.events) {
        const seq = sequenceOf(event);
        if (seq !== undefined) run.received.push(seq);
      }
    },
    error: (error: unknown) => {
      run.error = error;
      run.erroredAt = performance.now();
    },
  });
  return run;
}

/** Waits until the source has a live subscription that can deliver (streaming connected, pull polled once). */
export async function ready(run: SourceRun): Promise<void> {
  await run.until(() => run.lifecycle('connected').length > 0, 'connected');
}

/** A test's teardown: stops the source, lets its Unsubscribe go out, then closes the simulator. */
export async function stopRun(run: SourceRun | undefined, sim: { close(): Promise<void> } | undefined): Promise<void> {
  run?.stop();
  await sleep(20);
  await sim?.close();
}
