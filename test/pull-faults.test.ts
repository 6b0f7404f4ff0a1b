/**
 * The pull source under the failures streaming is tested against (server busy, 503, a forgotten
 * subscription, a cut response, malformed XML, 401) and the pull-only ones (an expired
 * subscription, an invalid watermark, missed events, a failing checkpoint store). The common
 * property: every event arrives exactly once unless a reported gap says it may be lost.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { CheckpointStore } from '../lib/checkpoint/checkpoint-store.js';
import { MemoryCheckpointStore } from '../lib/checkpoint/memory-store.js';
import { EwsAuthError, EwsCheckpointError, EwsHttpError, type EwsResponseError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { deferAck } from '../lib/sources/ack.js';
import type { HybridOptions } from '../lib/sources/hybrid.js';
import { sleep, startPullHarness, type PullHarness, type PullHarnessOptions } from './helpers/pull-harness.js';

const harnesses: PullHarness[] = [];
async function harness(options?: PullHarnessOptions): Promise<PullHarness> {
  const h = await startPullHarness(options);
  harnesses.push(h);
  return h;
}
afterEach(async () => {
  await Promise.all(harnesses.splice(0).map((h) => h.stop()));
});

/** No duplicates, wire order, nothing missing. */
function expectExactlyOnce(h: PullHarness): void {
  expect(h.received).toEqual(h.delivered.map((d) => d.seq));
}

/** Delivers `n` events `gapMs` apart. */
async function trickle(h: PullHarness, n: number, gapMs = 10): Promise<void> {
  for (let i = 0; i < n; i++) {
    h.deliver({ type: i % 2 ? 'Modified' : 'NewMail' });
    await sleep(gapMs);
  }
}

/** The same tests run for the hybrid source in hybrid.test.ts; here: pure pull. */
const pull = (source: Partial<HybridOptions> = {}): PullHarnessOptions => ({ source: { emitStatusEvents: false, ...source } });

describe('pull source faults', () => {
  it('ErrorServerBusy: waits exactly BackOffMilliseconds before the next GetEvents, loses nothing', async () => {
    const h = await harness(pull());
    await h.until(() => h.count('connected') === 1, 'connected');
    await trickle(h, 3);
    h.sim.inject({ type: 'server-busy', backOffMs: 400, operation: 'GetEvents' });
    await trickle(h, 5);
    await h.allReceived();
    expectExactlyOnce(h);
    const retrying = h.lifecycle('retrying');
    expect(retrying).toHaveLength(1);
    expect(retrying[0]).toMatchObject({ reason: 'server-busy', delayMs: 400, serverRequested: true });
    const calls = h.requests('GetEvents');
    const busy = calls.findIndex((r) => r.fault === 'server-busy');
    const after = calls[busy + 1];
    expect(after).toBeDefined();
    expect(after!.at.getTime() - calls[busy]!.at.getTime()).toBeGreaterThanOrEqual(400 - 5);
    expect(h.lifecycle('gap')).toMatchObject([{ reason: 'server-busy', subscriptionKept: true, eventsMayBeLost: false }]);
  });

  it('HTTP 503 with Retry-After: waits that long, loses nothing', async () => {
    const h = await harness(pull());
    await h.until(() => h.count('connected') === 1, 'connected');
    h.sim.inject({ type: 'http-503', retryAfterSeconds: 1, operation: 'GetEvents' });
    await trickle(h, 4);
    await h.allReceived();
    expectExactlyOnce(h);
    expect(h.lifecycle('retrying')[0]).toMatchObject({ reason: 'server-busy', delayMs: 1000, serverRequested: true });
    expect(h.lifecycle('retrying')[0]?.error).toBeInstanceOf(EwsHttpError);
    const calls = h.requests('GetEvents');
    const failed = calls.findIndex((r) => r.status === 503);
    expect(calls[failed + 1]!.at.getTime() - calls[failed]!.at.getTime()).toBeGreaterThanOrEqual(1000 - 5);
  });

  it('forgotten subscription: resubscribes from the last watermark — events made meanwhile are not lost', async () => {
    const store = new MemoryCheckpointStore();
    const h = await harness(pull({ checkpoint: store, pollIntervalMs: 150 }));
    await h.until(() => h.count('connected') === 1, 'connected');
    const first = h.sim.subscriptions[0]?.id;
    await trickle(h, 3);
    await h.allReceived();
    h.sim.inject({ type: 'forget-subscriptions' });
    // Made while the server has no subscription for us.
    h.deliver();
    h.deliver({ type: 'Deleted' });
    await trickle(h, 3);
    await h.allReceived();
    expectExactlyOnce(h);
    const subscribes = h.requests('Subscribe');
    expect(subscribes).toHaveLength(2);
    expect((subscribes[1]?.request as { watermark?: string }).watermark).toBe(h.delivered[2]?.watermark);
    expect(h.lifecycle('subscribed')[1]).toMatchObject({ previousSubscriptionId: first });
    expect(h.lifecycle('gap')).toMatchObject([{ reason: 'subscription-lost', subscriptionKept: false, eventsMayBeLost: false }]);
    expect(h.lifecycle('disconnected')).toMatchObject([{ reason: 'subscription-lost', subscriptionId: first }]);
  });

  it('expired subscription (consumer slower than subscriptionTimeoutMinutes): resubscribes from the watermark, loses nothing', async () => {
    // timeScale 0.001: the 1-minute subscription lives 60 ms without a GetEvents.
    const h = await harness({ deferStart: true });
    h.start({ subscriptionTimeoutMinutes: 1, pollIntervalMs: 20, emitStatusEvents: false }, (n) => {
      const ack = deferAck(n);
      setTimeout(() => void ack(), 250);
    });
    await h.until(() => h.count('connected') === 1, 'connected');
    h.deliver();
    await sleep(50);
    h.deliver(); // made while the consumer holds the first one and the subscription expires
    await sleep(300);
    h.deliver();
    await h.allReceived();
    expectExactlyOnce(h);
    expect(h.lifecycle('retrying').map((r) => (r.error as EwsResponseError).responseCode)).toContain('ErrorExpiredSubscription');
    expect(h.count('subscribed')).toBeGreaterThanOrEqual(2);
    for (const gap of h.lifecycle('gap')) expect(gap.eventsMayBeLost).toBe(false);
  });

  it('invalid start watermark: resubscribes without it and reports a gap that may have lost events', async () => {
    const h = await harness(pull({ watermark: 'AAEAAQAAAAAAAAPnAQ==' /* position 999: past the newest event */ }));
    await h.until(() => h.count('connected') === 1, 'connected');
    const subscribes = h.requests('Subscribe');
    expect(subscribes).toHaveLength(2);
    expect((subscribes[0]?.request as { watermark?: string }).watermark).toBe('AAEAAQAAAAAAAAPnAQ==');
    expect((subscribes[1]?.request as { watermark?: string }).watermark).toBeUndefined();
    expect(h.lifecycle('gap')).toMatchObject([{ reason: 'subscription-lost', subscriptionKept: false, eventsMayBeLost: true }]);
    await trickle(h, 3);
    await h.allReceived();
    expectExactlyOnce(h);
  });

  it('invalid checkpointed watermark: the gap starts when that checkpoint was written', async () => {
    const store = new MemoryCheckpointStore();
    const h = await harness({ deferStart: true });
    const key = 'the-key';
    await store.set(key, { watermark: 'not-a-watermark-of-this-server' });
    const writtenAt = new Date((await store.get(key))!.updatedAt);
    h.start({ checkpoint: store, checkpointKey: key, emitStatusEvents: false });
    await h.until(() => h.count('gap') === 1, 'gap');
    const gap = h.lifecycle('gap')[0]!;
    expect(gap).toMatchObject({ eventsMayBeLost: true, from: writtenAt });
    expect(gap.to.getTime()).toBeGreaterThanOrEqual(writtenAt.getTime());
    // The fresh subscription's watermark replaced the bad one.
    await h.until(() => h.count('connected') === 1, 'connected');
    expect((await store.get(key))?.watermark).toBe(h.sim.subscriptions[0]?.watermark);
  });

  it('ErrorMissedNotificationEvents: keeps the subscription and reports a gap that may have lost events', async () => {
    const h = await harness(pull());
    await h.until(() => h.count('connected') === 1, 'connected');
    await trickle(h, 2);
    await h.allReceived();
    h.sim.inject({ type: 'missed-events' });
    await h.until(() => h.count('gap') === 1, 'gap');
    expect(h.lifecycle('gap')[0]).toMatchObject({ reason: 'missed-events', subscriptionKept: true, eventsMayBeLost: true });
    await trickle(h, 2);
    await h.allReceived();
    expect(h.requests('Subscribe')).toHaveLength(1);
  });

  it('a response cut mid-envelope or malformed is fetched again: nothing lost, nothing twice', async () => {
    const h = await harness(pull());
    await h.until(() => h.count('connected') === 1, 'connected');
    for (let i = 0; i < 5; i++) h.deliver();
    h.sim.inject({ type: 'cut-mid-envelope', operation: 'GetEvents' });
    await h.allReceived();
    for (let i = 0; i < 5; i++) h.deliver();
    h.sim.inject({ type: 'malformed-xml', operation: 'GetEvents' });
    await h.allReceived();
    expectExactlyOnce(h);
    expect(h.lifecycle('retrying').map((r) => r.reason)).toEqual(['connection-error', 'server-error']);
  });

  it('HTTP 401 errors the Observable with EwsAuthError', async () => {
    const h = await harness(pull());
    await h.until(() => h.count('connected') === 1, 'connected');
    h.sim.inject({ type: 'http-401', operation: 'GetEvents' });
    await h.until(() => h.error !== undefined, 'error').catch(() => undefined);
    expect(h.error).toBeInstanceOf(EwsAuthError);
  });

  it('gives up after retry.maxAttempts with the last error', async () => {
    const h = await harness(pull({ retry: { minDelayMs: 5, maxDelayMs: 10, maxAttempts: 3 } }));
    await h.until(() => h.count('connected') === 1, 'connected');
    h.sim.inject({ type: 'http-503', operation: 'GetEvents', times: Infinity });
    await h.until(() => h.error !== undefined, 'error').catch(() => undefined);
    expect(h.error).toBeInstanceOf(EwsHttpError);
    expect(h.count('retrying')).toBe(2);
  });

  it('a checkpoint write that fails is retried; the acknowledged events are not emitted twice', async () => {
    const inner = new MemoryCheckpointStore();
    let failNext = false;
    const flaky: CheckpointStore = {
      get: (key) => inner.get(key),
      delete: (key) => inner.delete(key),
      set: (key, update) => {
        if (failNext) {
          failNext = false;
          return Promise.reject(new EwsCheckpointError('disk full', { retriable: true }));
        }
        return inner.set(key, update);
      },
    };
    const ackResults: Promise<string>[] = [];
    const debug = vi.fn();
    const logger: Logger = { debug, info() {}, warn() {}, error() {} };
    const h = await harness({ deferStart: true });
    h.start({ checkpoint: flaky, checkpointKey: 'k', emitStatusEvents: false, logger }, (n) => {
      const ack = deferAck(n);
      ackResults.push(
        ack().then(
          () => 'written',
          (e: unknown) => (e instanceof EwsCheckpointError ? 'failed' : 'other'),
        ),
      );
    });
    await h.until(() => h.count('connected') === 1, 'connected');
    failNext = true;
    h.deliver();
    h.deliver();
    await h.until(() => h.count('retrying') === 1, 'retry after the failed write');
    h.deliver();
    await h.allReceived();
    expectExactlyOnce(h);
    expect(await Promise.all(ackResults)).toEqual(['failed', 'written']);
    await h.until(() => h.requests('GetEvents').length > 4, 'more polls');
    expect((await inner.get('k'))?.watermark).toBe(h.delivered.at(-1)?.watermark);
    // The re-fetch after the failure came from the old watermark: the server sent the two events
    // again and the source dropped them as already acknowledged.
    expect(debug).toHaveBeenCalledWith('dropped events already acknowledged', { count: 2 });
    expect(h.notifications.filter((n) => n.events.some((e) => e.type !== 'Status'))).toHaveLength(2);
  });
  it('mini-soak: random faults for a few seconds — exactly once, no unhandled rejection, no handle left after teardown', async () => {
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown): void => {
      rejections.push(reason);
    };
    process.on('unhandledRejection', onRejection);
    const baseline = process.getActiveResourcesInfo().length;
    try {
      const h = await harness(pull({ pollIntervalMs: 10, retry: { minDelayMs: 5, maxDelayMs: 50 } }));
      await h.until(() => h.count('connected') === 1, 'connected');
      let seed = 7;
      const random = (): number => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
      const faults = [
        () => h.sim.inject({ type: 'server-busy', backOffMs: 20, operation: 'GetEvents' }),
        () => h.sim.inject({ type: 'http-503', operation: 'GetEvents' }),
        () => h.sim.inject({ type: 'cut-mid-envelope', operation: 'GetEvents' }),
        () => h.sim.inject({ type: 'malformed-xml', operation: 'GetEvents' }),
        () => h.sim.inject({ type: 'forget-subscriptions' }),
        () => h.sim.inject({ type: 'http-503', operation: 'Subscribe' }),
      ];
      const until = Date.now() + 2_500;
      while (Date.now() < until) {
        h.deliver({ type: random() < 0.7 ? 'NewMail' : 'Modified' });
        if (random() < 0.15) faults[Math.floor(random() * faults.length)]!();
        await sleep(5 + random() * 10);
      }
      h.sim.clearFaults();
      await h.allReceived();
      expectExactlyOnce(h);
      expect(h.error).toBeUndefined();
      expect(h.count('retrying')).toBeGreaterThan(5);
      h.subscription?.unsubscribe();
      await h.until(() => h.sim.subscriptions.length === 0, 'unsubscribed');
    } finally {
      process.off('unhandledRejection', onRejection);
    }
    expect(rejections).toEqual([]);
    // The simulator of this test is still open (closed in afterEach): allow for its server handle.
    await sleep(50);
    expect(process.getActiveResourcesInfo().length).toBeLessThanOrEqual(baseline + 2);
  });
});
