/**
 * A bounded backlog for push adapters fed by a streaming source (which cannot be slowed down):
 * with a handler or legacy listener that always fails, notifications are held only up to
 * `maxBacklogNotifications`; the next one ends the subscription as Exchange ends a push
 * subscription whose listener does not keep up — `done` rejects with `EwsListenerBacklogError`
 * saying how many notifications were never answered, and the EWS subscription is removed.
 */
import { tap } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { pushCallback, type ErrorContext, type PushCallbackHandle } from '../adapters/push-callback.js';
import { soapForwarder } from '../adapters/soap-forwarder.js';
import { EwsListenerBacklogError } from '../lib/errors.js';
import type { SourceSignal } from '../lib/sources/lifecycle.js';
import { streamingSignals } from '../lib/sources/streaming.js';
import { EwsSimulator } from '../lib/testing/index.js';
import { startCaptureListener } from './helpers/capture-listener.js';
import { thrown } from './helpers/parser-fixtures.js';
import { until } from './helpers/until.js';

const MAILBOX = 'alice@contoso.com';
const AUTH = { type: 'basic', username: MAILBOX, password: 'correct horse' } as const;
const MAX = 5;
/** Long enough that the first failed delivery is still waiting for its retry when the test ends. */
const SLOW_RETRY = { retryScheduleMs: [600_000], statusFrequencyMinutes: 30 } as const;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function simulator(): Promise<EwsSimulator> {
  const sim = await EwsSimulator.start({ timeScale: 0.001, keepAliveIntervalMs: 200 });
  cleanups.push(() => sim.close());
  return sim;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A streaming source that counts the notifications it hands to the adapter. */
function countedStreaming(sim: EwsSimulator): { source: ReturnType<typeof streamingSignals>; notifications: () => number; events: () => number } {
  let notifications = 0;
  let events = 0;
  const source = streamingSignals({ url: sim.url, auth: AUTH }).pipe(
    tap((signal: SourceSignal) => {
      if (signal.type !== 'notification') return;
      notifications++;
      events += signal.notification.events.filter((e) => e.type !== 'Status').length;
    }),
  );
  return { source, notifications: () => notifications, events: () => events };
}

/** Delivers one mail at a time, each after the previous one reached the adapter, until it ends. */
async function feedUntilEnded(sim: EwsSimulator, handle: PushCallbackHandle, received: () => number): Promise<number> {
  let delivered = 0;
  while (!handle.closed && delivered < 50) {
    const before = received();
    sim.deliver(MAILBOX, { type: 'NewMail' });
    delivered++;
    await until(() => received() > before || handle.closed, `notification ${delivered}`);
  }
  return delivered;
}

describe('push-callback: a handler that always fails behind a streaming source', () => {
  it('holds at most maxBacklogNotifications, then ends with EwsListenerBacklogError and removes the subscription', async () => {
    const sim = await simulator();
    const counted = countedStreaming(sim);
    const calls: number[] = [];
    const errors: [unknown, ErrorContext][] = [];
    const handle = pushCallback(
      counted.source,
      (_n, context) => {
        calls.push(context.attempt);
        throw new Error('CRM database is down');
      },
      { ...SLOW_RETRY, maxBacklogNotifications: MAX, onError: (error, context) => errors.push([error, context]) },
    );
    cleanups.push(() => handle.close());
    await until(() => sim.subscriptions.some((s) => s.connected), 'a connected streaming subscription');
    const subscriptionId = sim.subscriptions[0]!.id;

    const delivered = await feedUntilEnded(sim, handle, counted.notifications);
    const error = await handle.done.then(
      () => undefined,
      (e: unknown) => e,
    );

    expect(error).toBeInstanceOf(EwsListenerBacklogError);
    expect(error).toMatchObject({ code: 'EWS_LISTENER_FAILED', retriable: false, heldNotifications: MAX + 1, maxBacklogNotifications: MAX });
    expect((error as Error).message).toContain(`${MAX + 1} notifications`);
    // Every notification the source produced is accounted for: none was answered, all are in the count.
    expect(counted.notifications()).toBe(MAX + 1);
    expect(counted.events()).toBe(delivered);
    // The handler saw the first notification once; it was still waiting for its retry.
    expect(calls).toEqual([1]);
    const fatal = errors.filter(([, context]) => context.fatal);
    expect(fatal).toHaveLength(1);
    expect(fatal[0]![0]).toBe(error);
    expect(fatal[0]![1]).toMatchObject({ phase: 'handler', subscriptionId });
    // Ended like Exchange ends a push subscription: the EWS subscription is gone.
    await until(() => sim.requests.some((r) => r.operation === 'Unsubscribe'), 'the Unsubscribe');
    await until(() => sim.subscriptions.length === 0, 'the subscription removed');
  });

  it('does not end while the backlog stays within the bound', async () => {
    const sim = await simulator();
    const counted = countedStreaming(sim);
    const handle = pushCallback(
      counted.source,
      () => {
        throw new Error('down');
      },
      { ...SLOW_RETRY, maxBacklogNotifications: MAX },
    );
    cleanups.push(() => handle.close());
    await until(() => sim.subscriptions.some((s) => s.connected), 'a connected streaming subscription');
    for (let i = 0; i < MAX; i++) {
      const before = counted.notifications();
      sim.deliver(MAILBOX, { type: 'NewMail' });
      await until(() => counted.notifications() > before, `notification ${i + 1}`);
    }
    await sleep(100);
    expect(handle.closed).toBe(false);
    expect(sim.subscriptions).toHaveLength(1);
  });
});

describe('soap-forwarder: a legacy listener that always fails behind a streaming source', () => {
  it('ends with EwsListenerBacklogError once maxBacklogNotifications are held', async () => {
    const sim = await simulator();
    const listener = await startCaptureListener({ answer: () => ({ status: 500, body: 'listener broken' }) });
    cleanups.push(() => listener.close());
    const counted = countedStreaming(sim);
    const forwarder = soapForwarder(counted.source, { url: listener.url, ...SLOW_RETRY, maxBacklogNotifications: MAX });
    cleanups.push(() => forwarder.close());
    await until(() => sim.subscriptions.some((s) => s.connected), 'a connected streaming subscription');

    await feedUntilEnded(sim, forwarder, counted.notifications);
    const error = await forwarder.done.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(EwsListenerBacklogError);
    expect(error).toMatchObject({ heldNotifications: MAX + 1, maxBacklogNotifications: MAX });
    expect(counted.notifications()).toBe(MAX + 1);
    expect(listener.posts).toHaveLength(1);
    await until(() => sim.subscriptions.length === 0, 'the subscription removed');
  });
});

describe('maxBacklogNotifications validation', () => {
  const source = { subscribe: () => ({ unsubscribe: () => undefined }) };
  it.each([0, -1, 1.5, Number.NaN, '10'])('refuses %s with a RangeError naming the option', (value) => {
    const error = thrown(() => pushCallback(source, () => 'OK', { maxBacklogNotifications: value as number }));
    expect(error).toBeInstanceOf(RangeError);
    expect((error as Error).message).toMatch(/^maxBacklogNotifications must be an integer ≥ 1, or Infinity/);
  });

  it('accepts Infinity and 1', async () => {
    await pushCallback(source, () => 'OK', { maxBacklogNotifications: Infinity }).close();
    await pushCallback(source, () => 'OK', { maxBacklogNotifications: 1 }).close();
  });
});
