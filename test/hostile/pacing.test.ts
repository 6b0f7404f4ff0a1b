/**
 * Hostile servers, part 1: pacing. Each test scripts a server that answers the way a load
 * balancer, proxy or broken CAS does in the field, runs a source with its default retry settings
 * against it, and counts the requests the server received — averaged over 8 s after the first
 * 3 s, as issue 13 measures them. A client that can send 100 requests/s to a customer's Exchange
 * gets its service account blocked; these bounds are what "never hammer" means.
 *
 * The bounds are upper bounds on request counts, not on time: a loaded machine only sends fewer.
 * `HOSTILE_LOG=1` prints each rate.
 */
import type { Subscription } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { pullSignals } from '../../lib/sources/pull.js';
import { streamingSignals } from '../../lib/sources/streaming.js';
import type { DisconnectedEvent, RetryingEvent, SourceSignal } from '../../lib/sources/lifecycle.js';
import { connectionStatusEnvelope, newMailEnvelope, serverBusyFault, subscribeResponse } from '../fixtures/ews-wire.js';
import {
  answerXml,
  pullSubscribeResponse,
  startScriptedExchange,
  statusOnlyGetEventsResponse,
  type Operation,
  type ScriptedExchange,
  type ScriptedHandler,
} from '../helpers/scripted-exchange.js';

const AUTH = { type: 'basic', username: 'svc', password: 'not-a-secret' } as const;
const WARM_UP_MS = 3_000;
const WINDOW_MS = 8_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `start` against a scripted server until the measuring window has passed; returns what the server saw. */
async function measure(
  handlers: Partial<Record<Operation, ScriptedHandler>>,
  start: (url: string, signals: SourceSignal[]) => Subscription,
  operation: Operation,
  label: string,
): Promise<{ perSecond: number; inWindow: number; signals: SourceSignal[]; server: ScriptedExchange }> {
  const server = await startScriptedExchange(handlers);
  const signals: SourceSignal[] = [];
  const subscription = start(server.url, signals);
  try {
    while (performance.now() - server.startedAtMs < WARM_UP_MS + WINDOW_MS) await sleep(100);
    const inWindow = server.count(operation, WARM_UP_MS, WARM_UP_MS + WINDOW_MS);
    const perSecond = inWindow / (WINDOW_MS / 1000);
    if (process.env.HOSTILE_LOG) console.log(`${label}: ${perSecond.toFixed(2)} ${operation}/s (${inWindow} in ${WINDOW_MS} ms, ${server.count(operation)} in all)`);
    return { perSecond, inWindow, signals, server };
  } finally {
    subscription.unsubscribe();
    await server.close();
  }
}

const streaming = (url: string, signals: SourceSignal[], extra: object = {}): Subscription =>
  streamingSignals({ url, auth: AUTH, ...extra }).subscribe({ next: (s) => signals.push(s), error: (e: unknown) => signals.push({ type: 'gap', error: e } as never) });

const pull = (url: string, signals: SourceSignal[], extra: object = {}): Subscription =>
  pullSignals({ url, auth: AUTH, ...extra }).subscribe({ next: (s) => signals.push(s), error: (e: unknown) => signals.push({ type: 'gap', error: e } as never) });

const subscribeOk: ScriptedHandler = (res) => answerXml(res, subscribeResponse('sub-1'));
const retrying = (signals: readonly SourceSignal[]): RetryingEvent[] => signals.filter((s): s is RetryingEvent => s.type === 'retrying');

describe.concurrent('hostile servers: no request loop under any answer', () => {
  for (const [variant, body] of [
    ['a keep-alive', () => connectionStatusEnvelope('OK')],
    ['an event', (() => {
      let n = 0;
      return () => newMailEnvelope('sub-1', [`item-${n++}`]);
    })()],
    ['Closed', () => connectionStatusEnvelope('Closed')],
  ] as const) {
    it(`every GetStreamingEvents answered with ${variant}, then ended (a load balancer's idle cut): ≤ 2 GetStreamingEvents/s`, async () => {
      const { perSecond, signals } = await measure(
        { Subscribe: subscribeOk, GetStreamingEvents: (res) => answerXml(res, body()) },
        (url, s) => streaming(url, s),
        'GetStreamingEvents',
        `one envelope then end (${variant})`,
      );
      expect(perSecond).toBeLessThanOrEqual(2);
      // Each short connection counted as a failure: the back-off grew instead of resetting.
      const delays = retrying(signals).map((r) => r.delayMs);
      expect(delays.length).toBeGreaterThanOrEqual(2);
      expect(Math.max(...delays)).toBeGreaterThan(delays[0]!);
    });
  }

  it('HTTP 503 with Retry-After: 0 on GetStreamingEvents: ≤ 3 requests/s, every wait at least the back-off floor', async () => {
    const { perSecond, signals } = await measure(
      { Subscribe: subscribeOk, GetStreamingEvents: (res) => answerXml(res, '', 503, { 'Retry-After': '0' }) },
      (url, s) => streaming(url, s),
      'GetStreamingEvents',
      'streaming 503 Retry-After 0',
    );
    expect(perSecond).toBeLessThanOrEqual(3);
    for (const r of retrying(signals)) expect(r).toMatchObject({ serverRequested: true, reason: 'server-busy' });
    expect(Math.min(...retrying(signals).map((r) => r.delayMs))).toBeGreaterThanOrEqual(1_000);
  });

  it('HTTP 503 with Retry-After: 0 on GetEvents: ≤ 3 requests/s', async () => {
    const { perSecond } = await measure(
      { Subscribe: (res) => answerXml(res, pullSubscribeResponse('sub-1', 'wm-0')), GetEvents: (res) => answerXml(res, '', 503, { 'Retry-After': '0' }) },
      (url, s) => pull(url, s),
      'GetEvents',
      'pull 503 Retry-After 0',
    );
    expect(perSecond).toBeLessThanOrEqual(3);
  });

  it('HTTP 503 with Retry-After: 99999999999: clamped to retry.maxServerDelayMs, no timer overflow, ≤ 3 requests in 8 s', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => void warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const logged: string[] = [];
      const logger = { debug() {}, info() {}, warn: (message: string) => logged.push(message), error() {} };
      const { inWindow, signals, server } = await measure(
        { Subscribe: subscribeOk, GetStreamingEvents: (res) => answerXml(res, '', 503, { 'Retry-After': '99999999999' }) },
        (url, s) => streaming(url, s, { logger }),
        'GetStreamingEvents',
        'streaming 503 Retry-After 99999999999',
      );
      expect(inWindow).toBeLessThanOrEqual(3);
      expect(server.count('GetStreamingEvents')).toBe(1);
      expect(retrying(signals)[0]).toMatchObject({ delayMs: 300_000, serverRequested: true });
      expect(logged.some((m) => m.includes('maxServerDelayMs'))).toBe(true);
      expect(warnings.filter((w) => w.name === 'TimeoutOverflowWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('SOAP fault ErrorServerBusy with BackOffMilliseconds 0: ≤ 3 requests/s', async () => {
    const { perSecond, signals } = await measure(
      { Subscribe: subscribeOk, GetStreamingEvents: (res) => answerXml(res, serverBusyFault(0), 500) },
      (url, s) => streaming(url, s),
      'GetStreamingEvents',
      'ErrorServerBusy BackOffMilliseconds 0',
    );
    expect(perSecond).toBeLessThanOrEqual(3);
    expect(retrying(signals).length).toBeGreaterThan(0);
  });

  it('pull: MoreEvents true forever with only a StatusEvent: waits the poll, ≤ 5 GetEvents/s', async () => {
    let n = 0;
    const { perSecond, signals } = await measure(
      {
        Subscribe: (res) => answerXml(res, pullSubscribeResponse('sub-1', 'wm-0')),
        GetEvents: (res) => {
          const previous = `wm-${n}`;
          n++;
          answerXml(res, statusOnlyGetEventsResponse('sub-1', previous, `wm-${n}`, true));
        },
      },
      (url, s) => pull(url, s, { pollIntervalMs: 1_000 }),
      'GetEvents',
      'pull MoreEvents with status only',
    );
    expect(perSecond).toBeLessThanOrEqual(5);
    // The source is healthy all along: it only declines to chase a page that brought nothing.
    expect(signals.filter((s) => s.type === 'retrying')).toEqual([]);
    expect(signals.filter((s) => s.type === 'notification').length).toBeGreaterThan(2);
  });
});

describe('hostile servers: progress, not bytes', () => {
  it('headers, then one whitespace byte a second and never an envelope: given up within 2 × heartbeatTimeoutMs', async () => {
    const heartbeatTimeoutMs = 3_000;
    let bytesBeforeClose = -1;
    const server = await startScriptedExchange({
      Subscribe: subscribeOk,
      GetStreamingEvents: (res) => {
        res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8' });
        let bytes = 0;
        const timer = setInterval(() => {
          bytes++;
          res.write(' ');
        }, 1_000);
        res.on('close', () => {
          clearInterval(timer);
          if (bytesBeforeClose < 0) bytesBeforeClose = bytes;
        });
      },
    });
    const signals: SourceSignal[] = [];
    const subscription = streaming(server.url, signals, { heartbeatTimeoutMs });
    try {
      while (!signals.some((s) => s.type === 'disconnected')) await sleep(50);
      const disconnected = signals.find((s): s is DisconnectedEvent => s.type === 'disconnected');
      expect(disconnected).toMatchObject({ reason: 'heartbeat-timeout', error: { code: 'EWS_HEARTBEAT_TIMEOUT' } });
      // Counted on the server's own one-byte-a-second clock: it wrote fewer than 2 × 3 bytes.
      while (bytesBeforeClose < 0) await sleep(50);
      expect(bytesBeforeClose).toBeLessThan((2 * heartbeatTimeoutMs) / 1_000);
      expect(bytesBeforeClose).toBeGreaterThanOrEqual(1);
    } finally {
      subscription.unsubscribe();
      await server.close();
    }
  });
});
