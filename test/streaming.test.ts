/**
 * The streaming source against EwsSimulator over real HTTP: the acceptance list of issue 4.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { firstValueFrom, mergeMap, take, toArray } from 'rxjs';
import { EwsAuthError, EwsConnectionTakenError, EwsResponseError } from '../lib/errors.js';
import { openStream } from '../lib/ews/transport.js';
import { SOAP_ACTIONS, buildGetStreamingEventsRequest } from '../lib/ews/requests.js';
import type { DisconnectedEvent, GapEvent, RetryingEvent } from '../lib/sources/lifecycle.js';
import { streamingNotifications } from '../lib/sources/streaming.js';
import { EwsSimulator, sequenceOf } from '../lib/testing/index.js';
import { AUTH, MAILBOX, expectCompleteExceptReportedGaps, startHarness, type Harness } from './helpers/streaming-harness.js';
import { until } from './helpers/until.js';

const harnesses: Harness[] = [];
async function harness(...args: Parameters<typeof startHarness>): Promise<Harness> {
  const h = await startHarness(...args);
  harnesses.push(h);
  return h;
}

afterEach(async () => {
  await Promise.all(harnesses.splice(0).map((h) => h.stop()));
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function requestsOf(h: Harness, operation: string) {
  return h.sim.requests.filter((r) => r.operation === operation);
}

describe('streamingNotifications against EwsSimulator', () => {
  it('emits one PushNotification per Notification as envelopes arrive, in wire order', async () => {
    const h = await harness();
    await h.until(() => h.count('connected') === 1, 'connected');
    const subscriptionId = h.sim.subscriptions[0]?.id;
    for (let i = 0; i < 20; i++) {
      h.deliver({ type: i % 2 === 0 ? 'NewMail' : 'Created' });
      if (i % 5 === 0) await sleep(10);
    }
    await h.allReceived();
    const notifications = h.signals.flatMap((s) => (s.type === 'notification' ? [s.notification] : []));
    for (const n of notifications) {
      expect(n.subscriptionId).toBe(subscriptionId);
      expect(n.moreEvents).toBe(false);
      expect(n.previousWatermark).toBeUndefined();
      for (const e of n.events) expect(e.watermark).toBeUndefined();
    }
    expect(h.received).toEqual(h.delivered.map((d) => d.seq));
    expect(h.lifecycle().map((s) => s.type).slice(0, 2)).toEqual(['subscribed', 'connected']);
    expect(requestsOf(h, 'Subscribe')).toHaveLength(1);
  });

  it('survives 10 forced Closed cycles on one subscription without losing or duplicating an event', async () => {
    const h = await harness();
    await h.until(() => h.count('connected') === 1, 'connected');
    for (let cycle = 1; cycle <= 10; cycle++) {
      h.deliver();
      h.deliver({ type: 'Modified' });
      await h.allReceived();
      h.sim.forceClose();
      // Made while no connection exists: the server holds them for the subscription.
      h.deliver();
      await h.until(() => h.count('connected') === cycle + 1, `reconnect ${cycle}`);
    }
    await h.allReceived();
    expect(expectCompleteExceptReportedGaps(h)).toEqual([]);
    expect(h.received).toEqual(h.delivered.map((d) => d.seq));
    const closed = h.lifecycle('disconnected').filter((s) => 'reason' in s && s.reason === 'closed');
    expect(closed).toHaveLength(10);
    const gaps = h.lifecycle('gap') as GapEvent[];
    expect(gaps).toHaveLength(10);
    for (const gap of gaps) expect(gap).toMatchObject({ reason: 'closed', subscriptionKept: true, eventsMayBeLost: false });
    expect(requestsOf(h, 'Subscribe')).toHaveLength(1);
    expect(requestsOf(h, 'GetStreamingEvents')).toHaveLength(11);
    expect(h.count('retrying')).toBe(0);
  });

  it('reopens at once when the server ends the connection at ConnectionTimeout', async () => {
    // 1 minute × timeScale 0.002 = 120 ms per connection.
    const h = await harness({ sim: { timeScale: 0.002, keepAliveIntervalMs: 40 }, stream: { connectionTimeoutMinutes: 1 } });
    await h.until(() => h.count('connected') >= 4, 'three timeouts');
    h.deliver();
    await h.allReceived();
    const body = requestsOf(h, 'GetStreamingEvents')[0]?.body ?? '';
    expect(body).toContain('<m:ConnectionTimeout>1</m:ConnectionTimeout>');
    expect(h.lifecycle('disconnected').every((s) => 'reason' in s && s.reason === 'closed')).toBe(true);
  });

  it('recovers from a socket cut mid-envelope and reports the lossy window', async () => {
    const h = await harness();
    await h.until(() => h.count('connected') === 1, 'connected');
    h.deliver();
    await h.allReceived();
    await sleep(20);
    h.sim.inject({ type: 'cut-mid-envelope' });
    const lostSeq = h.deliver();
    await h.until(() => h.count('connected') === 2, 'reconnect after the cut');
    h.deliver();
    h.deliver();
    await h.until(() => h.received.length === 3, 'the events after the cut');
    const lost = expectCompleteExceptReportedGaps(h);
    // The simulator, like Exchange, counts the half-written envelope as delivered.
    expect(lost).toEqual([lostSeq]);
    expect(h.lifecycle('disconnected')[0]).toMatchObject({ reason: 'connection-error', error: { code: 'EWS_CONNECTION_FAILED', midEnvelope: true } });
    expect(h.lifecycle('gap')[0]).toMatchObject({ reason: 'connection-error', subscriptionKept: true, eventsMayBeLost: true });
    expect(requestsOf(h, 'Subscribe')).toHaveLength(1);
  });

  it('declares 2 (scaled) minutes of silence dead after heartbeatTimeoutMs and reconnects without loss', async () => {
    // timeScale 0.01: 90 s heartbeat → 900 ms, 2 minutes → 1.2 s. Keep-alives every 100 ms (9× within
    // the heartbeat, not Exchange's 3×), so a loaded machine's stall cannot pass for the silence.
    const h = await harness({ sim: { timeScale: 0.01, keepAliveIntervalMs: 100 }, stream: { heartbeatTimeoutMs: 900 } });
    await h.until(() => h.count('connected') === 1, 'connected');
    h.deliver();
    await h.allReceived();
    h.sim.inject({ type: 'silence', forMs: 1_200 });
    const silentAt = Date.now();
    h.deliver();
    h.deliver();
    await h.until(() => h.count('connected') === 2, 'reconnect after silence');
    const disconnected = h.lifecycle('disconnected')[0] as DisconnectedEvent | undefined;
    expect(disconnected).toMatchObject({ reason: 'heartbeat-timeout', error: { code: 'EWS_HEARTBEAT_TIMEOUT' } });
    // Declared dead no sooner than the heartbeat allows.
    expect((disconnected?.at.getTime() ?? 0) - silentAt).toBeGreaterThanOrEqual(850);
    await h.allReceived();
    expect(expectCompleteExceptReportedGaps(h)).toEqual([]);
    expect(h.lifecycle('gap')[0]).toMatchObject({ reason: 'heartbeat-timeout', subscriptionKept: true, eventsMayBeLost: true });
  });

  it('waits exactly BackOffMilliseconds after ErrorServerBusy before reconnecting', async () => {
    const h = await harness();
    await h.until(() => h.count('connected') === 1, 'connected');
    h.sim.inject({ type: 'server-busy', backOffMs: 600, operation: 'GetStreamingEvents' });
    h.sim.forceClose();
    h.deliver();
    await h.until(() => h.count('connected') === 2, 'reconnect after the back-off');
    await h.allReceived();
    const streams = requestsOf(h, 'GetStreamingEvents');
    expect(streams.map((r) => r.status)).toEqual([200, 500, 200]);
    const waitedMs = (streams[2]?.at.getTime() ?? 0) - (streams[1]?.at.getTime() ?? 0);
    expect(waitedMs).toBeGreaterThanOrEqual(600);
    const retrying = h.lifecycle('retrying') as RetryingEvent[];
    expect(retrying).toHaveLength(1);
    expect(retrying[0]).toMatchObject({ reason: 'server-busy', delayMs: 600, serverRequested: true, error: { responseCode: 'ErrorServerBusy' } });
    expect(expectCompleteExceptReportedGaps(h)).toEqual([]);
  });

  it('honours 503 + Retry-After', async () => {
    const h = await harness();
    await h.until(() => h.count('connected') === 1, 'connected');
    h.sim.inject({ type: 'http-503', retryAfterSeconds: 1, operation: 'GetStreamingEvents' });
    h.sim.forceClose();
    h.deliver();
    await h.until(() => h.count('connected') === 2, 'reconnect after Retry-After');
    await h.allReceived();
    const streams = requestsOf(h, 'GetStreamingEvents');
    expect(streams.map((r) => r.status)).toEqual([200, 503, 200]);
    const waitedMs = (streams[2]?.at.getTime() ?? 0) - (streams[1]?.at.getTime() ?? 0);
    expect(waitedMs).toBeGreaterThanOrEqual(1_000);
    expect(h.lifecycle('retrying')[0]).toMatchObject({ reason: 'server-busy', delayMs: 1_000, serverRequested: true });
    expect(expectCompleteExceptReportedGaps(h)).toEqual([]);
  });

  it('resubscribes when the server forgets the subscription and reports the lossy window', async () => {
    const h = await harness();
    await h.until(() => h.count('connected') === 1, 'connected');
    h.deliver();
    await h.allReceived();
    await sleep(20);
    const firstId = h.sim.subscriptions[0]?.id;
    h.sim.inject({ type: 'forget-subscriptions' });
    // Made while the server knows no subscription for us: gone for good.
    const lostSeq = h.deliver();
    await h.until(() => h.count('connected') === 2, 'reconnect on a new subscription');
    h.deliver();
    await h.until(() => h.received.length === 2, 'the event after the resubscribe');
    expect(expectCompleteExceptReportedGaps(h)).toEqual([lostSeq]);
    const subscribed = h.lifecycle('subscribed');
    expect(subscribed).toHaveLength(2);
    expect(subscribed[1]).toMatchObject({ previousSubscriptionId: firstId });
    expect(h.lifecycle('disconnected')[0]).toMatchObject({ reason: 'subscription-lost', error: { responseCode: 'ErrorSubscriptionNotFound' } });
    expect(h.lifecycle('gap')[0]).toMatchObject({ reason: 'subscription-lost', subscriptionKept: false, eventsMayBeLost: true });
    expect(requestsOf(h, 'Subscribe')).toHaveLength(2);
    // Resubscribed at once: no back-off for the first loss.
    expect(h.count('retrying')).toBe(0);
  });

  it('resets the back-off after a healthy connection', async () => {
    const h = await harness({ stream: { retry: { minDelayMs: 40, maxDelayMs: 10_000, jitter: false, minConnectionLifetimeMs: 0 } } });
    await h.until(() => h.count('connected') === 1, 'connected');
    h.sim.inject({ type: 'http-503', operation: 'GetStreamingEvents', times: 3 });
    h.sim.forceClose();
    await h.until(() => h.count('connected') === 2, 'reconnect after three 503s');
    h.deliver();
    await h.allReceived();
    h.sim.inject({ type: 'http-503', operation: 'GetStreamingEvents', times: 1 });
    h.sim.forceClose();
    await h.until(() => h.count('connected') === 3, 'reconnect after one 503');
    expect((h.lifecycle('retrying') as RetryingEvent[]).map((r) => [r.attempt, r.delayMs, r.serverRequested])).toEqual([
      [1, 40, false],
      [2, 80, false],
      [3, 160, false],
      [1, 40, false],
    ]);
  });

  it('unsubscribing sends EWS Unsubscribe, closes the socket and leaves no timer or handle behind', async () => {
    const sim = await EwsSimulator.start({ timeScale: 0.001, keepAliveIntervalMs: 100 });
    try {
      // Let the server's own handles settle before taking the baseline.
      await sleep(50);
      const baseline = process.getActiveResourcesInfo();
      const seen: number[] = [];
      const subscription = streamingNotifications({ url: sim.url, auth: AUTH }).subscribe({
        next: (n) => n.events.forEach((e) => seen.push(sequenceOf(e) ?? -1)),
      });
      await until(() => sim.openStreamingConnections === 1, 'sim.openStreamingConnections === 1');
      const seq = sim.deliver(MAILBOX, { type: 'NewMail' }).seq;
      await until(() => seen.includes(seq), 'seen.includes(seq)');
      const subscriptionId = sim.subscriptions[0]?.id ?? 'missing';
      subscription.unsubscribe();
      await until(() => sim.requests.some((r) => r.operation === 'Unsubscribe'), "sim.requests.some((r) => r.operation === 'Unsubscribe')");
      const unsubscribe = sim.requests.find((r) => r.operation === 'Unsubscribe');
      expect(unsubscribe?.body).toContain(subscriptionId);
      expect(unsubscribe?.status).toBe(200);
      await until(() => sim.openStreamingConnections === 0 && sim.subscriptions.length === 0, 'sim.openStreamingConnections === 0 && sim.subscriptions.length === 0');
      // Sockets (client and server side) and timers all gone again.
      await until(() => count(process.getActiveResourcesInfo(), 'TCPSocketWrap') <= count(baseline, 'TCPSocketWrap'), "count(process.getActiveResourcesInfo(), 'TCPSocketWrap') <= count(baseline, 'TCPSocketWrap')");
      await until(() => count(process.getActiveResourcesInfo(), 'Timeout') <= count(baseline, 'Timeout'), "count(process.getActiveResourcesInfo(), 'Timeout') <= count(baseline, 'Timeout')");
      expect(count(process.getActiveResourcesInfo(), 'TCPSocketWrap')).toBe(count(baseline, 'TCPSocketWrap'));
    } finally {
      await sim.close();
    }
  });

  it('completes and unsubscribes when options.signal aborts', async () => {
    const controller = new AbortController();
    const h = await harness({ stream: { signal: controller.signal } });
    await h.until(() => h.count('connected') === 1, 'connected');
    controller.abort();
    await h.until(() => h.completed, 'completion');
    await h.until(() => requestsOf(h, 'Unsubscribe').length === 1, 'Unsubscribe');
    expect(h.error).toBeUndefined();
  });

  it('is cold: each subscriber has its own subscription and gets every event', async () => {
    const sim = await EwsSimulator.start({ timeScale: 0.001, keepAliveIntervalMs: 200 });
    try {
      const source = streamingNotifications({ url: sim.url, auth: AUTH });
      // The simulator coalesces events of one tick into one notification: count events, not notifications.
      const firstThreeEvents = () =>
        firstValueFrom(
          source.pipe(
            mergeMap((n) => n.events.map((e) => ({ seq: sequenceOf(e), subscriptionId: n.subscriptionId }))),
            take(3),
            toArray(),
          ),
        );
      const a = firstThreeEvents();
      const b = firstThreeEvents();
      await until(() => sim.openStreamingConnections === 2, 'sim.openStreamingConnections === 2');
      const seqs = [1, 2, 3].map(() => sim.deliver(MAILBOX, { type: 'NewMail' }).seq);
      const [ea, eb] = await Promise.all([a, b]);
      expect(ea.map((e) => e.seq)).toEqual(seqs);
      expect(eb.map((e) => e.seq)).toEqual(seqs);
      expect(new Set([ea[0]?.subscriptionId, eb[0]?.subscriptionId]).size).toBe(2);
      expect(sim.requests.filter((r) => r.operation === 'Subscribe')).toHaveLength(2);
      await until(() => sim.requests.filter((r) => r.operation === 'Unsubscribe').length === 2, "sim.requests.filter((r) => r.operation === 'Unsubscribe').length === 2");
    } finally {
      await sim.close();
    }
  });

  it('hands lifecycle signals to onLifecycle in order with the notifications; a throwing listener is logged, not fatal', async () => {
    const sim = await EwsSimulator.start({ timeScale: 0.001, keepAliveIntervalMs: 200 });
    try {
      const order: string[] = [];
      const logged: string[] = [];
      const logger = { debug() {}, info() {}, warn() {}, error: (message: string) => logged.push(message) };
      const subscription = streamingNotifications({
        url: sim.url,
        auth: AUTH,
        logger,
        // forceClose() stands for ConnectionTimeout here, however young the connection.
        retry: { minConnectionLifetimeMs: 0 },
        onLifecycle: (event) => {
          // Keep-alives come on the simulator's clock; the order of the rest is what matters.
          if (event.type !== 'keep-alive') order.push(event.type);
          if (event.type === 'connected') throw new Error('listener bug');
        },
      }).subscribe({ next: (n) => order.push(`notification:${n.events.map((e) => sequenceOf(e)).join(',')}`) });
      await until(() => order.includes('connected'), "order.includes('connected')");
      const seq = sim.deliver(MAILBOX, { type: 'NewMail' }).seq;
      await until(() => order.includes(`notification:${seq}`), 'order.includes(`notification:${seq}`)');
      sim.forceClose();
      await until(() => order.filter((t) => t === 'connected').length === 2, "order.filter((t) => t === 'connected').length === 2");
      subscription.unsubscribe();
      expect(order).toEqual(['subscribed', 'connected', `notification:${seq}`, 'disconnected', 'connected', 'gap']);
      expect(logged).toEqual(['onLifecycle listener threw', 'onLifecycle listener threw']);
    } finally {
      await sim.close();
    }
  });

  it('watches another mailbox through impersonation and labels its notifications', async () => {
    const h = await harness({ stream: { mailbox: 'bob@contoso.com', folders: ['inbox'], eventTypes: ['NewMail'] } });
    await h.until(() => h.count('connected') === 1, 'connected');
    const seq = h.sim.deliver('bob@contoso.com', { type: 'NewMail' }).seq;
    await h.until(() => h.received.includes(seq), 'bob’s event');
    const notification = h.signals.find((s) => s.type === 'notification');
    expect(notification).toMatchObject({ notification: { mailbox: 'bob@contoso.com' } });
    const subscribe = requestsOf(h, 'Subscribe')[0];
    expect(subscribe?.headers['x-anchormailbox']).toBe('bob@contoso.com');
    expect(subscribe?.body).toContain('<t:SmtpAddress>bob@contoso.com</t:SmtpAddress>');
    expect(subscribe?.body).toContain('<t:EventType>NewMailEvent</t:EventType>');
    expect(requestsOf(h, 'GetStreamingEvents')[0]?.headers['x-anchormailbox']).toBe('bob@contoso.com');
  });

  it('fails fast with EwsAuthError on wrong credentials (no retry storm)', async () => {
    const h = await harness({ sim: { users: { [MAILBOX]: 'the real one' } } });
    await h.until(() => h.error !== undefined || h.completed, 'the error').catch(() => {});
    expect(h.error).toBeInstanceOf(EwsAuthError);
    expect((h.error as EwsAuthError).retriable).toBe(false);
    expect(h.sim.requests).toHaveLength(1);
    expect(String((h.error as Error).message)).not.toContain(AUTH.password);
  });

  it('errors with the typed error for a fatal EWS code (impersonation denied)', async () => {
    const h = await harness({ sim: { impersonation: { [MAILBOX]: [] } }, stream: { mailbox: 'ceo@contoso.com' } });
    await h.until(() => h.error !== undefined, 'the error').catch(() => {});
    expect(h.error).toBeInstanceOf(EwsResponseError);
    expect((h.error as EwsResponseError).action).toBe('fatal');
    expect(requestsOf(h, 'Subscribe')).toHaveLength(1);
  });

  it('surfaces ErrorNewEventStreamConnectionOpened as EwsConnectionTakenError, or takes the subscription back when asked', async () => {
    for (const mode of ['error', 'reconnect'] as const) {
      const h = await harness({ stream: { onConnectionTaken: mode } });
      await h.until(() => h.count('connected') === 1, 'connected');
      const subscriptionId = h.sim.subscriptions[0]?.id ?? '';
      const intruder = new AbortController();
      const intrusion = openStream(
        { soapAction: SOAP_ACTIONS.GetStreamingEvents, envelope: buildGetStreamingEventsRequest({ subscriptionIds: [subscriptionId] }) },
        { url: h.sim.url, auth: AUTH, signal: intruder.signal, onEnvelope: () => {} },
      ).catch(() => undefined);
      if (mode === 'error') {
        await h.until(() => h.error !== undefined, 'the error');
        expect(h.error).toBeInstanceOf(EwsConnectionTakenError);
        expect((h.error as EwsConnectionTakenError).subscriptionIds).toEqual([subscriptionId]);
      } else {
        await h.until(() => h.count('connected') === 2, 'taking it back');
        expect(h.lifecycle('disconnected')[0]).toMatchObject({ reason: 'connection-taken' });
        expect(h.error).toBeUndefined();
      }
      intruder.abort();
      await intrusion;
    }
  });
});

function count(resources: readonly string[], type: string): number {
  return resources.filter((r) => r === type).length;
}

