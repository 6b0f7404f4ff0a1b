/**
 * push-callback against hand-driven sources, with fake timers: Exchange's retry schedule and its
 * end, idle StatusEvents, per-subscription serialization, Unsubscribe, acknowledgement only after
 * an answer, graceful close, source end, gaps and option errors. The same adapter against
 * EwsSimulator: adapters-push-callback-sim.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { pushCallback, type DeliveryContext, type ErrorContext, type PushHandler } from '../adapters/push-callback.js';
import { EwsListenerError } from '../lib/errors.js';
import type { PushNotification, SubscriptionStatus } from '../lib/model.js';
import type { GapEvent } from '../lib/sources/lifecycle.js';
import { deferred, flush, manualSource, newMail, notification, type Deferred } from './helpers/adapter-sources.js';

const MINUTE = 60_000;
const at = new Date('2024-05-01T10:00:00Z');

interface Call {
  readonly n: PushNotification;
  readonly context: DeliveryContext;
  readonly atMs: number;
}

function recorder(answer: (n: PushNotification, context: DeliveryContext) => SubscriptionStatus | Promise<SubscriptionStatus> = () => 'OK') {
  const calls: Call[] = [];
  const start = Date.now();
  const handler: PushHandler = (n, context) => {
    calls.push({ n, context, atMs: Date.now() - start });
    return answer(n, context);
  };
  return { calls, handler };
}

function errorsRecorder() {
  const errors: { error: unknown; context: ErrorContext }[] = [];
  return { errors, onError: (error: unknown, context: ErrorContext) => void errors.push({ error, context }) };
}

beforeEach(() => {
  vi.useFakeTimers({ now: at });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('pushCallback: failed deliveries follow Exchange’s retry schedule', () => {
  it('retries the same notification at 30 s, 1, 2, 4, 8 min, then gives up with EwsListenerError and ends the source', async () => {
    const src = manualSource();
    const failure = new Error('listener down');
    const { calls, handler } = recorder(() => {
      throw failure;
    });
    const { errors, onError } = errorsRecorder();
    const bridge = pushCallback(src.source, handler, { onError });
    const outcome = bridge.done.then(
      () => 'resolved',
      (error: unknown) => error,
    );
    const n = notification('sub-1');
    src.emit({ type: 'subscribed', subscriptionId: 'sub-1', at });
    src.notify(n);
    await vi.advanceTimersByTimeAsync(29 * MINUTE);

    // Cumulative waits 0.5, 1.5, 3.5, 7.5, 15.5 min; the next (16 min) would reach 31.5 > 30.
    expect(calls.map((c) => c.atMs)).toEqual([0, 30_000, 90_000, 210_000, 450_000, 930_000]);
    expect(calls.every((c) => c.n === n && !c.context.synthesized)).toBe(true);
    expect(calls.map((c) => c.context.attempt)).toEqual([1, 2, 3, 4, 5, 6]);

    expect(errors).toHaveLength(6);
    expect(errors.slice(0, 5).map((e) => e.context.retryInMs)).toEqual([30_000, 60_000, 120_000, 240_000, 480_000]);
    expect(errors.slice(0, 5).every((e) => e.error === failure && !e.context.fatal && e.context.phase === 'handler')).toBe(true);
    const final = errors[5]!;
    expect(final.context).toMatchObject({ phase: 'handler', fatal: true, subscriptionId: 'sub-1', attempt: 6 });
    expect(final.error).toBeInstanceOf(EwsListenerError);
    expect((final.error as EwsListenerError).code).toBe('EWS_LISTENER_FAILED');
    expect((final.error as EwsListenerError).cause).toBe(failure);
    expect((final.error as Error).message).toMatch(/failed 6 times for subscription sub-1.*30 min/);

    expect(await outcome).toBe(final.error);
    expect(src.subscribed()).toBe(false);
    expect(bridge.closed).toBe(true);
  });

  it('statusFrequencyMinutes bounds the retries (1 min: one retry at 30 s, the next would pass it)', async () => {
    const src = manualSource();
    const { calls, handler } = recorder(() => Promise.reject(new Error('503 from the listener')));
    const { errors, onError } = errorsRecorder();
    const bridge = pushCallback(src.source, handler, { statusFrequencyMinutes: 1, onError });
    src.notify(notification('sub-1'));
    await vi.advanceTimersByTimeAsync(5 * MINUTE);
    expect(calls.map((c) => c.atMs)).toEqual([0, 30_000]);
    await expect(bridge.done).rejects.toBeInstanceOf(EwsListenerError);
    expect(errors.map((e) => e.context.fatal)).toEqual([false, true]);
  });

  it('uses retryScheduleMs, doubling past its end', async () => {
    const src = manualSource();
    const { calls, handler } = recorder(() => {
      throw new Error('nope');
    });
    const bridge = pushCallback(src.source, handler, { statusFrequencyMinutes: 1, retryScheduleMs: [1_000, 5_000], onError: () => {} });
    src.notify(notification('sub-1'));
    await vi.advanceTimersByTimeAsync(2 * MINUTE);
    // Waits 1, 5, 10, 20 s (36 s in all); the next 40 s would reach 76 s > 60 s.
    expect(calls.map((c) => c.atMs)).toEqual([0, 1_000, 6_000, 16_000, 36_000]);
    await expect(bridge.done).rejects.toBeInstanceOf(EwsListenerError);
  });

  it('an answer other than OK/Unsubscribe is a failed post, reported with a TypeError that says so', async () => {
    const src = manualSource();
    let answer: unknown = undefined;
    const { calls, handler } = recorder(() => answer as SubscriptionStatus);
    const { errors, onError } = errorsRecorder();
    const bridge = pushCallback(src.source, handler, { onError });
    src.notify(notification('sub-1'));
    await flush();
    expect(errors[0]?.error).toBeInstanceOf(TypeError);
    expect((errors[0]?.error as Error).message).toBe("the handler must answer 'OK' or 'Unsubscribe' (got undefined)");
    answer = 'OK';
    await vi.advanceTimersByTimeAsync(30_000);
    expect(calls).toHaveLength(2);
    expect(errors).toHaveLength(1);
    expect(bridge.closed).toBe(false);
    await bridge.close();
  });

  it('a handler that recovers goes on; notifications that came meanwhile wait their turn, in order', async () => {
    const src = manualSource();
    let failures = 2;
    const { calls, handler } = recorder(() => {
      if (failures-- > 0) throw new Error('flaky');
      return 'OK';
    });
    const bridge = pushCallback(src.source, handler, { onError: () => {} });
    const first = notification('sub-1');
    const second = notification('sub-1');
    src.notify(first);
    await flush();
    src.notify(second);
    await vi.advanceTimersByTimeAsync(30_000 + 60_000);
    expect(calls.map((c) => [c.n === first ? 'first' : 'second', c.atMs])).toEqual([
      ['first', 0],
      ['first', 30_000],
      ['first', 90_000],
      ['second', 90_000],
    ]);
    await bridge.close();
  });
});

describe('pushCallback: StatusEvents every statusFrequencyMinutes of idleness', () => {
  it('delivers a StatusEvent after exactly statusFrequencyMinutes without a post, then again', async () => {
    const src = manualSource();
    const { calls, handler } = recorder();
    const bridge = pushCallback(src.source, handler, { statusFrequencyMinutes: 30 });
    src.emit({ type: 'subscribed', subscriptionId: 'sub-1', at });
    await vi.advanceTimersByTimeAsync(30 * MINUTE - 1);
    expect(calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.n).toEqual({ subscriptionId: 'sub-1', moreEvents: false, events: [{ type: 'Status' }] });
    expect(calls[0]!.context).toEqual({ attempt: 1, synthesized: true });
    await vi.advanceTimersByTimeAsync(60 * MINUTE);
    expect(calls.map((c) => c.atMs)).toEqual([30 * MINUTE, 60 * MINUTE, 90 * MINUTE]);
    await bridge.close();
  });

  it('counts idleness from the last post, and carries the last watermark when the source has one', async () => {
    const src = manualSource();
    const { calls, handler } = recorder();
    const bridge = pushCallback(src.source, handler, { statusFrequencyMinutes: 5 });
    src.emit({ type: 'subscribed', subscriptionId: 'sub-1', at });
    await vi.advanceTimersByTimeAsync(3 * MINUTE);
    src.notify(notification('sub-1', [newMail('W1'), newMail('W2')], { previousWatermark: 'W0', mailbox: 'alice@contoso.com' }));
    await vi.advanceTimersByTimeAsync(5 * MINUTE - 1);
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls.map((c) => c.atMs)).toEqual([3 * MINUTE, 8 * MINUTE]);
    expect(calls[1]!.n).toEqual({
      subscriptionId: 'sub-1',
      previousWatermark: 'W2',
      moreEvents: false,
      events: [{ type: 'Status', watermark: 'W2' }],
      mailbox: 'alice@contoso.com',
    });
    await bridge.close();
  });

  it('acknowledges the source’s own idle StatusEvents (pull) without handing them over or resetting the clock', async () => {
    const src = manualSource();
    const { calls, handler } = recorder();
    const bridge = pushCallback(src.source, handler, { statusFrequencyMinutes: 1 });
    src.emit({ type: 'subscribed', subscriptionId: 'sub-1', at });
    const handles = [];
    for (let i = 1; i <= 5; i++) {
      handles.push(src.notifyWithAck(notification('sub-1', [{ type: 'Status', watermark: `S${i}` }])));
      await vi.advanceTimersByTimeAsync(10_000);
    }
    expect(handles.every((h) => h.acked)).toBe(true);
    expect(calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.atMs).toBe(MINUTE);
    expect(calls[0]!.n.events).toEqual([{ type: 'Status', watermark: 'S5' }]);
    await bridge.close();
  });

  it('pauses while the source is disconnected and resumes when it reconnects (at once if overdue)', async () => {
    const src = manualSource();
    const { calls, handler } = recorder();
    const bridge = pushCallback(src.source, handler, { statusFrequencyMinutes: 2 });
    src.emit({ type: 'subscribed', subscriptionId: 'sub-1', at });
    src.emit({ type: 'connected', subscriptionId: 'sub-1', at });
    await vi.advanceTimersByTimeAsync(MINUTE);
    src.emit({ type: 'disconnected', subscriptionId: 'sub-1', reason: 'connection-error', at });
    await vi.advanceTimersByTimeAsync(10 * MINUTE);
    expect(calls).toHaveLength(0);
    src.emit({ type: 'connected', subscriptionId: 'sub-1', at });
    await vi.advanceTimersByTimeAsync(0);
    expect(calls.map((c) => c.atMs)).toEqual([11 * MINUTE]);
    await vi.advanceTimersByTimeAsync(2 * MINUTE);
    expect(calls.map((c) => c.atMs)).toEqual([11 * MINUTE, 13 * MINUTE]);
    await bridge.close();
  });

  it('a replacement subscription continues the lane: keep-alives carry the new id', async () => {
    const src = manualSource();
    const { calls, handler } = recorder();
    const bridge = pushCallback(src.source, handler, { statusFrequencyMinutes: 1 });
    src.emit({ type: 'subscribed', subscriptionId: 'old', at });
    await vi.advanceTimersByTimeAsync(30_000);
    src.emit({ type: 'retrying', reason: 'subscription-lost', error: new EwsListenerError('x'), attempt: 1, delayMs: 1, serverRequested: false, at });
    src.emit({ type: 'subscribed', subscriptionId: 'new', previousSubscriptionId: 'old', at });
    await vi.advanceTimersByTimeAsync(30_000);
    expect(calls.map((c) => [c.n.subscriptionId, c.atMs])).toEqual([['new', MINUTE]]);
    await bridge.close();
  });
});

describe('pushCallback: serialization', () => {
  it('never overlaps two calls of one subscription, keeps their order, and runs other subscriptions in parallel', async () => {
    const src = manualSource();
    const pending = new Map<PushNotification, Deferred<SubscriptionStatus>>();
    const active = new Map<string, number>();
    let maxPerSub = 0;
    const order: string[] = [];
    const bridge = pushCallback(src.source, async (n) => {
      const now = (active.get(n.subscriptionId) ?? 0) + 1;
      active.set(n.subscriptionId, now);
      maxPerSub = Math.max(maxPerSub, now);
      order.push(`${n.subscriptionId}:${n.events[0]?.type === 'NewMail' ? n.events[0].itemId?.id : '?'}`);
      const d = deferred<SubscriptionStatus>();
      pending.set(n, d);
      try {
        return await d.promise;
      } finally {
        active.set(n.subscriptionId, now - 1);
      }
    });
    const a = [notification('A'), notification('A'), notification('A')];
    const b = [notification('B'), notification('B')];
    for (const n of [a[0]!, b[0]!, a[1]!, b[1]!, a[2]!]) src.notify(n);
    await flush();
    // One call per subscription at a time: A's first and B's first.
    expect([...pending.keys()]).toEqual([a[0], b[0]]);
    pending.get(b[0]!)!.resolve('OK');
    await flush();
    expect([...pending.keys()]).toEqual([a[0], b[0], b[1]]);
    pending.get(a[0]!)!.resolve('OK');
    await flush();
    pending.get(a[1]!)!.resolve('OK');
    await flush();
    pending.get(b[1]!)!.resolve('OK');
    pending.get(a[2]!)!.resolve('OK');
    await flush();
    expect(maxPerSub).toBe(1);
    const ids = (ns: PushNotification[]): string[] => ns.map((n) => (n.events[0]?.type === 'NewMail' ? n.events[0].itemId!.id : '?'));
    expect(order.filter((o) => o.startsWith('A:'))).toEqual(ids(a).map((id) => `A:${id}`));
    expect(order.filter((o) => o.startsWith('B:'))).toEqual(ids(b).map((id) => `B:${id}`));
    await bridge.close();
  });

  it('delivers a large backlog in order, once each', async () => {
    const src = manualSource();
    const gate = deferred<SubscriptionStatus>();
    const seen: string[] = [];
    const bridge = pushCallback(src.source, async (n) => {
      seen.push(n.events[0]?.type === 'NewMail' ? n.events[0].itemId!.id : '?');
      if (seen.length === 1) return gate.promise;
      return 'OK';
    });
    const sent = Array.from({ length: 5_000 }, () => notification('sub-1'));
    for (const n of sent) src.notify(n);
    await flush();
    gate.resolve('OK');
    for (let i = 0; i < 100 && seen.length < sent.length; i++) await vi.advanceTimersByTimeAsync(0);
    expect(seen).toEqual(sent.map((n) => (n.events[0]?.type === 'NewMail' ? n.events[0].itemId!.id : '')));
    await bridge.close();
  });

  it('does not call the handler inside the source’s next()', () => {
    const src = manualSource();
    const { calls, handler } = recorder();
    const bridge = pushCallback(src.source, handler);
    src.notify(notification('sub-1'));
    expect(calls).toHaveLength(0);
    return bridge.close();
  });

  it('keeps the order across a replaced subscription: the new one waits for the old one’s call', async () => {
    const src = manualSource();
    const gate = deferred<SubscriptionStatus>();
    const seen: string[] = [];
    const bridge = pushCallback(src.source, (n) => {
      seen.push(n.subscriptionId);
      return n.subscriptionId === 'old' ? gate.promise : 'OK';
    });
    src.notify(notification('old'));
    src.emit({ type: 'subscribed', subscriptionId: 'new', previousSubscriptionId: 'old', at });
    src.notify(notification('new'));
    await flush();
    expect(seen).toEqual(['old']);
    gate.resolve('OK');
    await flush();
    expect(seen).toEqual(['old', 'new']);
    await bridge.close();
  });
});

describe('pushCallback: Unsubscribe, acknowledgement, close', () => {
  it("'Unsubscribe' ends the source and resolves done; later notifications are not handed over", async () => {
    const src = manualSource();
    const { calls, handler } = recorder(() => 'Unsubscribe');
    const bridge = pushCallback(src.source, handler);
    const first = src.notifyWithAck(notification('sub-1'));
    const later = src.notifyWithAck(notification('sub-1'));
    await flush();
    await expect(bridge.done).resolves.toEqual({ reason: 'unsubscribed', subscriptionId: 'sub-1' });
    expect(calls).toHaveLength(1);
    expect(src.subscribed()).toBe(false);
    expect(src.teardowns()).toBe(1);
    // The answered one counts as delivered (Exchange too considers it delivered); the other is not.
    expect(first.acked).toBe(true);
    expect(later.acked).toBe(false);
  });

  it('acknowledges a notification only after the handler answered OK', async () => {
    const src = manualSource();
    const gate = deferred<SubscriptionStatus>();
    const bridge = pushCallback(src.source, () => gate.promise);
    const handle = src.notifyWithAck(notification('sub-1', [newMail('W1')]));
    await flush();
    await vi.advanceTimersByTimeAsync(60 * MINUTE);
    expect(handle.deferred).toBe(true);
    expect(handle.acked).toBe(false);
    gate.resolve('OK');
    await flush();
    expect(handle.acked).toBe(true);
    await bridge.close();
  });

  it('never acknowledges a notification whose delivery failed for good', async () => {
    const src = manualSource();
    const bridge = pushCallback(src.source, () => Promise.reject(new Error('down')), { statusFrequencyMinutes: 2, onError: () => {} });
    const handle = src.notifyWithAck(notification('sub-1', [newMail('W1')]));
    await vi.advanceTimersByTimeAsync(10 * MINUTE);
    await expect(bridge.done).rejects.toBeInstanceOf(EwsListenerError);
    expect(handle.acked).toBe(false);
  });

  it('close() lets the call in progress finish and be acknowledged, starts nothing new, then ends the source', async () => {
    const src = manualSource();
    const gate = deferred<SubscriptionStatus>();
    const { calls, handler } = recorder(() => gate.promise);
    const bridge = pushCallback(src.source, handler);
    const inProgress = src.notifyWithAck(notification('sub-1'));
    const queued = src.notifyWithAck(notification('sub-1'));
    await flush();
    let closed = false;
    const closing = bridge.close().then(() => (closed = true));
    // Arrives while closing: deferred (so not auto-acknowledged) and never delivered.
    const late = src.notifyWithAck(notification('sub-1'));
    await flush();
    expect(bridge.closed).toBe(true);
    expect(closed).toBe(false);
    expect(src.subscribed()).toBe(true);
    gate.resolve('OK');
    await closing;
    expect(calls).toHaveLength(1);
    expect(inProgress.acked).toBe(true);
    expect(queued.acked).toBe(false);
    expect(late.acked).toBe(false);
    expect(src.subscribed()).toBe(false);
    await expect(bridge.done).resolves.toEqual({ reason: 'closed' });
    await bridge.close();
  });

  it('close() during a retry wait ends at once without another attempt', async () => {
    const src = manualSource();
    const { calls, handler } = recorder(() => {
      throw new Error('down');
    });
    const bridge = pushCallback(src.source, handler, { onError: () => {} });
    src.notify(notification('sub-1'));
    await flush();
    await bridge.close();
    await vi.advanceTimersByTimeAsync(60 * MINUTE);
    expect(calls).toHaveLength(1);
    await expect(bridge.done).resolves.toEqual({ reason: 'closed' });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('aborting options.signal closes the adapter', async () => {
    const src = manualSource();
    const controller = new AbortController();
    const bridge = pushCallback(src.source, () => 'OK', { signal: controller.signal });
    src.emit({ type: 'subscribed', subscriptionId: 'sub-1', at });
    controller.abort();
    await expect(bridge.done).resolves.toEqual({ reason: 'closed' });
    expect(src.subscribed()).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('pushCallback: source end, gaps, lifecycle', () => {
  it('a completed source: what was received is still delivered, then done resolves', async () => {
    const src = manualSource();
    const gate = deferred<SubscriptionStatus>();
    const { calls, handler } = recorder(() => gate.promise);
    const bridge = pushCallback(src.source, handler);
    src.notify(notification('sub-1'));
    src.notify(notification('sub-1'));
    src.complete();
    await flush();
    gate.resolve('OK');
    await expect(bridge.done).resolves.toEqual({ reason: 'completed' });
    expect(calls).toHaveLength(2);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a failed source: reported to onError at once, done rejects with its error after the queue is delivered', async () => {
    const src = manualSource();
    const { calls, handler } = recorder();
    const { errors, onError } = errorsRecorder();
    const bridge = pushCallback(src.source, handler, { onError });
    const failure = new Error('auth failed');
    src.notify(notification('sub-1'));
    src.error(failure);
    expect(errors).toEqual([{ error: failure, context: { phase: 'source', fatal: true } }]);
    await expect(bridge.done).rejects.toBe(failure);
    expect(calls).toHaveLength(1);
  });

  it('onGap runs in order with the handler calls and is awaited; onLifecycle sees every signal at once', async () => {
    const src = manualSource();
    const log: string[] = [];
    const gapGate = deferred<void>();
    const gap: GapEvent = { type: 'gap', subscriptionId: 'sub-1', reason: 'connection-error', from: at, to: at, subscriptionKept: true, eventsMayBeLost: true };
    const bridge = pushCallback(
      src.source,
      (n) => {
        log.push(`handler ${n.events[0]?.type === 'NewMail' ? n.events[0].itemId?.id : ''}`);
        return 'OK';
      },
      {
        onGap: async (g) => {
          log.push(`gap start ${g.reason}`);
          await gapGate.promise;
          log.push('gap end');
        },
        onLifecycle: (e) => log.push(`lifecycle ${e.type}`),
      },
    );
    const before = notification('sub-1');
    const after = notification('sub-1');
    const id = (n: PushNotification): string => (n.events[0]?.type === 'NewMail' ? n.events[0].itemId!.id : '');
    src.notify(before);
    src.emit(gap);
    src.notify(after);
    await flush();
    expect(log).toEqual(['lifecycle gap', `handler ${id(before)}`, 'gap start connection-error']);
    gapGate.resolve();
    await flush();
    expect(log.slice(3)).toEqual(['gap end', `handler ${id(after)}`]);
    await bridge.close();
  });

  it('reports a throwing onGap/onLifecycle/onError without stopping', async () => {
    const src = manualSource();
    const { errors, onError } = errorsRecorder();
    const { calls, handler } = recorder();
    const bridge = pushCallback(src.source, handler, {
      onGap: () => {
        throw new Error('gap listener bug');
      },
      onLifecycle: () => {
        throw new Error('lifecycle listener bug');
      },
      onError,
    });
    src.emit({ type: 'gap', subscriptionId: 'sub-1', reason: 'closed', from: at, to: at, subscriptionKept: true, eventsMayBeLost: false });
    src.notify(notification('sub-1'));
    await flush();
    expect(errors.map((e) => [e.context.phase, (e.error as Error).message])).toEqual([
      ['lifecycle-listener', 'lifecycle listener bug'],
      ['gap-listener', 'gap listener bug'],
    ]);
    expect(calls).toHaveLength(1);

    const src2 = manualSource();
    const lines: string[] = [];
    const logger = { debug: () => {}, info: () => {}, warn: () => {}, error: (m: string) => void lines.push(m) };
    const bridge2 = pushCallback(src2.source, () => Promise.reject(new Error('x')), {
      logger,
      onError: () => {
        throw new Error('onError bug');
      },
    });
    src2.notify(notification('sub-2'));
    await flush();
    expect(lines).toContain('push adapter: onError threw');
    await Promise.all([bridge.close(), bridge2.close()]);
  });

  it('without onError, errors go to the logger', async () => {
    const src = manualSource();
    const lines: { message: string; fields?: Readonly<Record<string, unknown>> }[] = [];
    const logger = { debug: () => {}, info: () => {}, warn: () => {}, error: (message: string, fields?: Readonly<Record<string, unknown>>) => void lines.push({ message, fields }) };
    const bridge = pushCallback(src.source, () => Promise.reject(new Error('listener said 500')), { logger });
    src.notify(notification('sub-1'));
    await flush();
    expect(lines[0]).toMatchObject({ message: 'push adapter error', fields: { phase: 'handler', fatal: false, error: 'Error: listener said 500' } });
    await bridge.close();
  });
});

describe('pushCallback: arguments', () => {
  it('names the bad option', () => {
    const src = manualSource();
    const ok = (): SubscriptionStatus => 'OK';
    expect(() => pushCallback(src.source, ok, { statusFrequencyMinutes: 0 })).toThrow(new RangeError('statusFrequencyMinutes must be 1–1440 (got 0)'));
    expect(() => pushCallback(src.source, ok, { statusFrequencyMinutes: 1.5 })).toThrow(/statusFrequencyMinutes must be 1–1440/);
    expect(() => pushCallback(src.source, ok, { retryScheduleMs: [] })).toThrow(new TypeError('retryScheduleMs must be a non-empty array of milliseconds (got an empty array)'));
    expect(() => pushCallback(src.source, ok, { retryScheduleMs: [1, -2] })).toThrow(/retryScheduleMs\[1\] must be a positive finite number/);
    expect(() => pushCallback(src.source, ok, { onError: 'x' as never })).toThrow(/onError must be a function/);
    expect(() => pushCallback(src.source, ok, { logger: {} as never })).toThrow(/logger must have debug, info, warn and error methods/);
    expect(() => pushCallback(src.source, ok, { signal: {} as never })).toThrow(/signal must be an AbortSignal/);
    expect(() => pushCallback({} as never, ok)).toThrow(/source must be an Observable/);
    expect(() => pushCallback(src.source, 'OK' as never)).toThrow(/handler must be a function/);
    expect(src.subscribed()).toBe(false);
  });
});
