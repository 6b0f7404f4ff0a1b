/**
 * Every duration option ends up in a timer, and Node fires a timer longer than 2^31 − 1 ms at once
 * (with a TimeoutOverflowWarning). A user's "effectively never" (a 30-day timeout) must not become
 * "at once": such a value is held at the longest delay a timer takes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_TIMER_MS, positiveMs } from '../lib/validate.js';
import { startHarness, type Harness } from './helpers/streaming-harness.js';

const THIRTY_DAYS_MS = 30 * 24 * 3_600_000;

let h: Harness | undefined;
const warnings: Error[] = [];
const onWarning = (warning: Error): void => {
  warnings.push(warning);
};
afterEach(async () => {
  process.off('warning', onWarning);
  await h?.stop();
  h = undefined;
});

describe('durations longer than a timer holds', () => {
  it('positiveMs holds them at MAX_TIMER_MS and keeps Infinity where it is allowed', () => {
    expect(positiveMs(THIRTY_DAYS_MS, 'x', 1)).toBe(MAX_TIMER_MS);
    expect(positiveMs(Infinity, 'x', 1, { allowInfinity: true })).toBe(Infinity);
    expect(positiveMs(1_000, 'x', 1)).toBe(1_000);
    expect(() => positiveMs(Infinity, 'x', 1)).toThrow(/^x must be a positive number of milliseconds \(got Infinity\)$/);
  });

  it('a streaming source with 30-day request, heartbeat and unsubscribe timeouts subscribes, receives and unsubscribes, with no timer overflow', async () => {
    process.on('warning', onWarning);
    h = await startHarness({ stream: { requestTimeoutMs: THIRTY_DAYS_MS, heartbeatTimeoutMs: THIRTY_DAYS_MS, unsubscribeTimeoutMs: THIRTY_DAYS_MS } });
    await h.until(() => h!.count('connected') > 0, 'connected');
    h.deliver();
    h.deliver();
    await h.allReceived();
    expect(h.count('disconnected')).toBe(0);
    await h.stop();
    expect(h.sim.subscriptions).toEqual([]);
    h = undefined;
    expect(warnings.filter((w) => w.name === 'TimeoutOverflowWarning')).toEqual([]);
  });
});
